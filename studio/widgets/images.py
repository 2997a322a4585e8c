"""numpy uint8 images -> QImage, on the GUI thread (the one conversion the GUI does itself)."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage

_FORMATS = {1: QImage.Format.Format_Grayscale8, 3: QImage.Format.Format_RGB888, 4: QImage.Format.Format_RGBA8888}


def array_to_qimage(array: np.ndarray) -> QImage:
    """A QImage owning a copy of an (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) uint8 array."""
    data = np.ascontiguousarray(array, dtype=np.uint8)
    if data.ndim == 2:
        data = data[:, :, None]
    height, width, channels = data.shape
    if channels not in _FORMATS:
        raise ValueError(f"cannot show an image with {channels} channels")
    image = QImage(data.data, width, height, width * channels, _FORMATS[channels])
    return image.copy()  # detach from the numpy buffer, which may be freed or reused
