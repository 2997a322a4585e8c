"""Bring an image to the square training resolution: centre-crop, letterbox or stretch."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

from engine.data.options import BACKGROUNDS

_RESAMPLE = Image.Resampling.LANCZOS


def fit_image(image: Image.Image, size: int, fit: str, alpha: str) -> Image.Image:
    """Return a ``size`` x ``size`` image from an RGB/RGBA one.

    "crop" scales the short side to ``size`` and cuts the centre; "pad" scales the long side to
    ``size`` and centres it on the background (transparent when alpha is "keep"); "stretch" ignores
    the aspect ratio. Pillow premultiplies alpha while resampling, so RGBA edges do not fringe.
    """
    if image.size == (size, size):
        return image
    if fit == "crop":
        return ImageOps.fit(image, (size, size), method=_RESAMPLE)
    if fit == "pad":
        return _letterbox(image, size, alpha)
    return image.resize((size, size), _RESAMPLE)


def _letterbox(image: Image.Image, size: int, alpha: str) -> Image.Image:
    width, height = image.size
    scale = size / max(width, height)
    inner = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = image.resize(inner, _RESAMPLE)
    fill = (0, 0, 0, 0) if alpha == "keep" else BACKGROUNDS[alpha]
    canvas = Image.new(image.mode, (size, size), fill)
    canvas.paste(resized, ((size - inner[0]) // 2, (size - inner[1]) // 2))
    return canvas


def to_array(image: Image.Image, channels: int) -> np.ndarray:
    """HWC uint8 array of an RGB (3) or RGBA (4) image, checked against the expected channels."""
    array = np.asarray(image, dtype=np.uint8)
    if array.ndim != 3 or array.shape[2] != channels:
        raise ValueError(f"expected {channels} channels, got array of shape {array.shape}")
    return array
