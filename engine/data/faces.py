"""Offline face flagging for the import: which images may show an identifiable person.

Uses the Haar cascades bundled in opencv-python-headless 4.x (``cv2.data.haarcascades``); nothing
is downloaded. The cascades alone flag far too much artwork (one emoji in eight: smileys, and the
small figures of people emoji), so a face counts only when

1. two different frontal cascades (``alt2`` and ``default``) both find it (intersection over
   union >= 0.3);
2. its pixels look photographed rather than drawn: with the face scaled to 48x48 px (so an
   enlarged, soft photo and a sharp one are judged alike), under 5% of its pixels sit in flat 3x3
   patches (grey-level spread under one level), which flat fills and smooth vector gradients exceed;
3. it is large enough to identify someone: at least 16 px, and either 32 px or more or at least
   half of the picture's shorter side (a face thumbnail).

Measured on scikit-image's ``lfw_subset`` (100 faces, 100 non-faces, 25x25 px): 81-85 faces
flagged whether the crops are used as they are or enlarged to 64-400 px, 0 non-faces; on the shared
emoji (3,786), MNIST (5,000), the bundled sample and the photos-mate photos: 0 flagged; astronaut:
her face. bench/faces.py prints these figures again.

This is our own combination because no offline detector better than the cascades ships in the
dependencies; it errs towards silence on drawings, and the consent dialog lets a person review
what it flagged.
"""

from __future__ import annotations

import threading
from typing import Any, NamedTuple

import numpy as np
from PIL import Image

DETECTOR_VERSION = 1
"""Stored with each manifest entry's faces; a newer detector re-examines files flagged by an older one."""

_SMALLEST, _LARGEST = 96, 512  # the longer side the image is scaled to for the cascades
_MIN_FACE = 16  # px of the original, below which nobody can be told apart
_CLEAR_FACE = 32  # px of the original from which a face counts wherever it is in the picture
_MAX_FLAT = 0.05
_FLAT_SIDE = 48
_AGREEMENT = 0.3
_STEP = 1.1  # scale step of the first cascade's image pyramid
_local = threading.local()  # CascadeClassifier is not safe to share between the import's threads
_import_lock = threading.Lock()


class Face(NamedTuple):
    """A face box in the original image's pixels."""

    x: int
    y: int
    w: int
    h: int


def _cv2() -> Any:
    """The cv2 module, imported by one thread at a time: its loader swaps modules in sys.modules while it
    runs, and a second thread importing it at that moment saw a half-made module without cv2.data (the
    import then skipped good files)."""
    with _import_lock:
        import cv2

        return cv2


def _cascades() -> tuple[object, object]:
    pair = getattr(_local, "pair", None)
    if pair is None:
        cv2 = _cv2()
        folder = cv2.data.haarcascades
        # The import already runs one thread per core; OpenCV's own threads on top only contend.
        cv2.setNumThreads(1)
        pair = tuple(
            cv2.CascadeClassifier(folder + name)
            for name in ("haarcascade_frontalface_alt2.xml", "haarcascade_frontalface_default.xml")
        )
        if any(c.empty() for c in pair):
            raise RuntimeError(f"the face cascades in {folder} cannot be loaded; reinstall opencv-python-headless")
        _local.pair = pair
    return pair


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return float(inter / (a[2] * a[3] + b[2] * b[3] - inter))


def _flat_share(patch: np.ndarray) -> float:
    """Share of pixels whose 3x3 neighbourhood spreads less than one grey level, at _FLAT_SIDE px."""
    if min(patch.shape) < 3:
        return 1.0
    patch = np.asarray(Image.fromarray(patch).resize((_FLAT_SIDE, _FLAT_SIDE), Image.Resampling.BILINEAR))
    windows = np.lib.stride_tricks.sliding_window_view(patch, (3, 3))
    return float((windows.std(axis=(-2, -1)) < 1.0).mean())


def _confirmed(cascade: object, work: np.ndarray, box: np.ndarray) -> bool:
    """Whether ``cascade`` finds the same face around ``box``: searched in a margin of half the box
    on each side, at 0.6-1.7x its size, which costs a fraction of a second pass over the image."""
    x, y, w, h = (int(v) for v in box)
    left, top = max(0, x - w // 2), max(0, y - h // 2)
    roi = work[top : y + h + h // 2, left : x + w + w // 2]
    lo, hi = max(20, int(0.6 * w)), int(1.7 * w) + 1
    found = cascade.detectMultiScale(roi, 1.1, 3, minSize=(lo, lo), maxSize=(hi, hi))  # type: ignore[attr-defined]
    return any(_iou(box, np.array([fx + left, fy + top, fw, fh])) >= _AGREEMENT for fx, fy, fw, fh in found)


def detect_faces(image: Image.Image, original_size: tuple[int, int] | None = None) -> list[Face]:
    """The faces of ``image`` (any mode; alpha should already be flattened) as boxes.

    ``original_size`` is the (width, height) the boxes are reported in, when ``image`` is a reduced
    decode of a larger file; by default the image's own size.
    """
    cv2 = _cv2()

    grey = np.asarray(image.convert("L"))
    height, width = grey.shape
    longer = max(width, height)
    scale = min(_LARGEST, max(_SMALLEST, longer)) / longer
    work = grey
    if scale != 1:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        work = np.asarray(Image.fromarray(grey).resize(size, Image.Resampling.BILINEAR))
    work = cv2.equalizeHist(work)
    smallest = max(20, int(min(work.shape) * 0.06))
    first, second = _cascades()
    found = first.detectMultiScale(work, _STEP, 3, minSize=(smallest, smallest))  # type: ignore[attr-defined]
    grey_f = grey.astype(np.float32)
    out_w, out_h = original_size or (width, height)
    faces = []
    for box in found:
        x, y, w, h = (int(round(v / scale)) for v in box)
        side = min(w, h)
        if side < _MIN_FACE or (side < _CLEAR_FACE and side < 0.5 * min(width, height)):
            continue
        if _flat_share(grey_f[y : y + h, x : x + w]) >= _MAX_FLAT or not _confirmed(second, work, box):
            continue
        fx, fy = out_w / width, out_h / height
        faces.append(Face(round(x * fx), round(y * fy), round(w * fx), round(h * fy)))
    return faces
