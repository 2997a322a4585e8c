"""Open one image file safely and normalise it: orientation, pixel mode, alpha, size checks.

Every problem with a file becomes :class:`BadImage` carrying a human reason; callers turn that into a
skipped entry. Nothing here trusts the file: formats are restricted to the supported ones (so a
renamed PostScript file never reaches Ghostscript), sizes are checked from the header before any
pixel is decoded, and PIL's decompression-bomb warning is an error, not a log line.
"""

from __future__ import annotations

import io
import threading
import warnings
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from engine.data.options import BACKGROUNDS, MAX_ASPECT, MIN_SIDE
from engine.provenance.metadata import private_fields

# Only the decoders we support. MPO (multi-picture camera JPEGs) is its own plugin in older Pillow
# releases and part of JPEG in newer ones, so the list is filtered by what this Pillow registers.
_WANTED_FORMATS = ("PNG", "JPEG", "MPO", "WEBP", "BMP", "DIB", "TIFF", "GIF")
Image.init()
PIL_FORMATS: tuple[str, ...] = tuple(f for f in _WANTED_FORMATS if f in Image.OPEN)
_ORIENTATION_TAG = 0x0112
# warnings.catch_warnings() edits process-wide state and is not thread-safe before Python 3.14, so
# header parsing (cheap; pixel decoding happens later, outside the lock) is serialised.
_OPEN_LOCK = threading.Lock()


class BadImage(Exception):
    """A file that cannot become a training image; ``str(exc)`` is the reason shown to the user."""


@dataclass
class DecodedImage:
    """A loaded image in RGB or RGBA with EXIF orientation applied.

    ``width``/``height`` are the original full-resolution size as displayed (after orientation),
    even when JPEG draft mode decoded a smaller version. ``notes`` are warnings for the report.
    ``private`` names the personal metadata the file held (GPS, serial numbers, owner): only pixels
    reach the prepared dataset, so these never travel further; the report says they were left behind.
    """

    image: Image.Image
    width: int
    height: int
    notes: list[str] = field(default_factory=list)
    private: list[str] = field(default_factory=list)


def check_geometry(width: int, height: int, max_pixels: int) -> None:
    """Raise BadImage when a size is unusable: over ``max_pixels``, a tiny side or an extreme ratio."""
    if width * height > max_pixels:
        raise BadImage(
            f"too large: {width}x{height} is {width * height / 1e6:.1f} megapixels, over the "
            f"{max_pixels / 1e6:g} MP limit (max_pixels); raise max_pixels if the image is genuine"
        )
    # Ratio before size: "4000x3 is a strip" tells the user more than "3 px is too small".
    if max(width, height) > MAX_ASPECT * min(width, height):
        raise BadImage(f"extreme aspect ratio: {width}x{height} is more than {MAX_ASPECT:g}:1")
    if min(width, height) < MIN_SIDE:
        raise BadImage(f"too small: {width}x{height} (a side is under {MIN_SIDE} px)")


def decode_image(data: bytes, *, max_pixels: int, min_decode_size: int | None = None) -> DecodedImage:
    """Decode file bytes into an oriented RGB/RGBA image, or raise BadImage with the reason.

    ``min_decode_size`` lets JPEG decoding use DCT scaling (draft mode) while keeping both sides at
    least that many pixels, which makes large photos several times cheaper to prepare.
    """
    if not data:
        raise BadImage("empty file (0 bytes)")
    image = _open(data, max_pixels)
    try:
        return _decode_opened(image, max_pixels, min_decode_size)
    except BadImage:
        raise
    except MemoryError:
        raise BadImage("not enough memory to decode this image") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise BadImage(f"too large: refused by the decompression-bomb guard ({exc})") from None
    except Exception as exc:  # a damaged file can fail inside any decoder; it must never abort an import
        raise BadImage(_damaged_reason(exc)) from None
    finally:
        image.close()


def _open(data: bytes, max_pixels: int) -> Image.Image:
    # Pillow warns above its own limit; that warning becomes a skip, unless the user deliberately
    # allowed more pixels (check_geometry then applies their limit). Pillow's hard error at twice
    # its limit always stands.
    pil_limit = Image.MAX_IMAGE_PIXELS
    action: Literal["ignore", "error"] = "ignore" if pil_limit is None or max_pixels > pil_limit else "error"
    try:
        with _OPEN_LOCK, warnings.catch_warnings():
            warnings.simplefilter(action, Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data), formats=PIL_FORMATS)
    except UnidentifiedImageError:
        raise BadImage("not a readable image (unknown format or damaged header)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise BadImage(f"too large: refused by Pillow's decompression-bomb guard ({exc})") from None
    except Exception as exc:
        raise BadImage(_damaged_reason(exc)) from None


def _decode_opened(image: Image.Image, max_pixels: int, min_decode_size: int | None) -> DecodedImage:
    width, height = image.size
    check_geometry(width, height, max_pixels)
    notes = []
    frames = getattr(image, "n_frames", 1)  # only multi-frame formats (GIF, TIFF, WebP) have it
    if frames > 1:
        notes.append(f"{frames} frames: only the first is used")
        image.seek(0)
    swap = image.getexif().get(_ORIENTATION_TAG, 1) in (5, 6, 7, 8)
    private = private_fields(image)
    if min_decode_size:
        image.draft(image.mode, (min_decode_size, min_decode_size))
    image.load()
    oriented = _orient(image, notes)
    if swap:
        width, height = height, width
    return DecodedImage(to_rgb_or_rgba(oriented), width, height, notes, private)


def _orient(image: Image.Image, notes: list[str]) -> Image.Image:
    try:
        return ImageOps.exif_transpose(image) or image
    except Exception as exc:  # broken EXIF should not cost the user the picture itself
        notes.append(f"EXIF orientation could not be applied ({exc}); kept as stored")
        return image


def _damaged_reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    if "truncated" in text.lower():
        return f"truncated or damaged file ({text})"
    return f"cannot decode image: {type(exc).__name__}: {text}"


def to_rgb_or_rgba(image: Image.Image) -> Image.Image:
    """Convert any supported pixel mode to RGB, or RGBA when the image carries transparency.

    16-bit and 32-bit integer and float greyscale are rescaled to 8 bits first, because Pillow's own
    conversion clips them (a 16-bit photo would come out almost white).
    """
    mode = image.mode
    if mode in ("RGB", "RGBA"):
        return image
    if mode.startswith("I") or mode == "F":
        return _deep_grey_to_l(image).convert("RGB")
    if mode in ("LA", "PA", "La", "RGBa") or "transparency" in image.info:
        return image.convert("RGBA")
    try:
        return image.convert("RGB")  # P, L, 1, CMYK, YCbCr, HSV, RGBX
    except (ValueError, OSError):
        raise BadImage(f"unsupported pixel mode {mode}; save the image as 8-bit RGB") from None


def _deep_grey_to_l(image: Image.Image) -> Image.Image:
    values = np.asarray(image).astype(np.float64)
    if image.mode.startswith("I;16"):
        scaled = values / 257.0
    elif image.mode == "F" and values.size and values.min() >= 0.0 and values.max() <= 1.0:
        scaled = values * 255.0  # float images in [0, 1] are the common convention
    elif values.size and values.min() >= 0.0 and values.max() <= 255.0:
        scaled = values
    elif values.size and values.min() >= 0.0 and values.max() <= 65535.0:
        scaled = values / 257.0  # Pillow opens some 16-bit files as mode I
    else:
        low, high = (values.min(), values.max()) if values.size else (0.0, 1.0)
        scaled = (values - low) * (255.0 / max(high - low, 1e-12))
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8))  # 2-D uint8: mode L


def apply_alpha(image: Image.Image, alpha: str) -> Image.Image:
    """Composite RGBA onto the "white"/"black" background (giving RGB), or make it RGBA for "keep"."""
    if alpha == "keep":
        return image if image.mode == "RGBA" else image.convert("RGBA")
    if image.mode != "RGBA":
        return image
    background = Image.new("RGB", image.size, BACKGROUNDS[alpha])
    background.paste(image, mask=image.getchannel("A"))
    return background
