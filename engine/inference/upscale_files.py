"""Upscale image files into a folder, keeping what the files carry: bit depth, colour profile, metadata.

- Inputs are files or folders (their images, recursively, hidden ones and the output folder left
  out). A file that cannot be read, or is too big to upscale in the memory there is, is skipped with
  the reason; the rest of the batch goes on.
- Results are ``<stem>-x<scale>.png``; a name that is taken becomes ``-2``, ``-3``... so nothing is
  ever overwritten. Each is written atomically (engine/fsutil.py): a cancel or a crash leaves no
  half-written PNG.
- 16-bit PNGs (grey, grey+alpha, RGB, RGBA) come out as 16-bit PNGs. Pillow reads 16-bit colour PNGs
  as 8 bits and cannot write them, so 16-bit PNGs are read and written by the small PNG codec here
  (zlib and numpy; torchvision's decoder would do, but its image I/O is deprecated).
- The ICC profile (when it matches the result's colour model), EXIF (orientation applied to the
  pixels and reset to 1), PNG text chunks, XMP and a JPEG comment are written into the result.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image, PngImagePlugin, UnidentifiedImageError

from engine.data.decode import PIL_FORMATS, BadImage
from engine.data.options import DEFAULT_MAX_PIXELS
from engine.data.scan import IMAGE_EXTENSIONS
from engine.device import is_oom
from engine.errors import DeviceError, UpscaleCancelled
from engine.fsutil import atomic_write_bytes
from engine.inference.translate_files import free_path
from engine.inference.upscale import DEFAULT_OVERLAP, Upscaler, available_host_memory
from engine.provenance.stamp import Provenance, provenance_for

ORIENTATION_TAG = 0x0112
XMP_KEY = "XML:com.adobe.xmp"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ROWS_PER_BLOCK = 256
"""Rows of a 16-bit PNG filtered and compressed at a time: bounded memory for any size."""
IDAT_SIZE = 1 << 20
ImagesProgress = Callable[[int, int, Path], None]


@dataclass
class UpscaleFilesResult:
    """Files written, inputs skipped with the reason, whether the user cancelled, and notes on what was done."""

    written: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    cancelled: bool = False
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-able summary."""
        return {
            "written": [str(p) for p in self.written],
            "skipped": [{"path": str(p), "reason": r} for p, r in self.skipped],
            "cancelled": self.cancelled,
            "notes": list(self.notes),
        }


@dataclass
class SourceImage:
    """An input image as pixels in display orientation plus what its file carried."""

    pixels: np.ndarray
    """(H, W, C) uint8 or uint16 (or float32 in [0, 1] from float TIFFs), C in 1-4."""
    icc: bytes | None = None
    exif: bytes | None = None
    text: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def collect_images(
    inputs: Iterable[Path | str], exclude: Path | None = None
) -> tuple[list[Path], list[tuple[Path, str]]]:
    """(files to upscale, [(missing input, reason)]): files as given, folders' images sorted, ``exclude`` left out."""
    found: list[Path] = []
    missing: list[tuple[Path, str]] = []
    skip_root = exclude.resolve() if exclude is not None else None
    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if _is_listed_image(p, path, skip_root))
        elif path.is_file():
            found.append(path)
        else:
            missing.append((path, "does not exist"))
    return found, missing


def _is_listed_image(path: Path, root: Path, skip_root: Path | None) -> bool:
    if not path.is_file() or path.suffix.lower() not in IMAGE_EXTENSIONS:
        return False
    if any(part.startswith(".") for part in path.relative_to(root).parts):
        return False
    return skip_root is None or not path.resolve().is_relative_to(skip_root)


def result_path(out_dir: Path, source: Path, scale: int) -> Path:
    """``out_dir/<stem>-x<scale>.png``, or ``-2``, ``-3``... when taken: never an existing file."""
    return free_path(out_dir / f"{source.stem}-x{scale}.png", first=2)


def upscale_files(
    upscaler: Upscaler,
    inputs: list[Path],
    out_dir: Path,
    *,
    tile: int | None = None,
    overlap: int = DEFAULT_OVERLAP,
    progress: ImagesProgress | None = None,
    should_cancel: Callable[[], bool] | None = None,
    tile_progress: Callable[[int, int], None] | None = None,
    provenance: Provenance | None = None,
) -> UpscaleFilesResult:
    """Upscale every image among ``inputs`` (files or folders) into ``out_dir`` as PNG.

    Each result is watermarked, described and signed per ``provenance`` (default: the upscaler's model,
    action "upscale"); personal EXIF fields of the source (GPS, serial numbers, owner) are left out.

    ``progress(done_images, total_images, current)`` after each image; ``tile_progress(done, total)``
    within one; ``should_cancel()`` is polled between tiles: the image in progress is then not
    written, those before it are kept, and the result says ``cancelled``.
    """
    out = Path(out_dir)
    provenance = provenance or provenance_for(upscaler.identity, "upscale")
    files, skipped = collect_images(inputs, exclude=out)
    result = UpscaleFilesResult(skipped=list(skipped))
    out.mkdir(parents=True, exist_ok=True)
    for done, path in enumerate(files, 1):
        if should_cancel and should_cancel():
            result.cancelled = True
            break
        try:
            _upscale_one(upscaler, path, out, result, tile, overlap, should_cancel, tile_progress, provenance)
        except UpscaleCancelled:
            result.cancelled = True
            break
        except BadImage as exc:
            result.skipped.append((path, str(exc)))
        if progress:
            progress(done, len(files), path)
    return result


def _upscale_one(
    upscaler: Upscaler,
    path: Path,
    out: Path,
    result: UpscaleFilesResult,
    tile: int | None,
    overlap: int,
    should_cancel: Callable[[], bool] | None,
    tile_progress: Callable[[int, int], None] | None,
    provenance: Provenance,
) -> None:
    source = read_source(path)
    _check_fits(source.pixels, upscaler.scale)
    try:
        pixels = upscaler.upscale_array(
            source.pixels, tile=tile, overlap=overlap, progress=tile_progress, should_cancel=should_cancel
        )
    except DeviceError as exc:  # out of memory even with the smallest tiles: this image, not the batch
        raise BadImage(str(exc)) from None
    except MemoryError:
        raise BadImage(f"not enough memory for the x{upscaler.scale} result") from None
    except RuntimeError as exc:
        if is_oom(exc):
            raise BadImage(f"not enough memory for the x{upscaler.scale} result") from None
        raise
    if pixels.dtype == np.float32:  # float sources keep their precision as 16 bits
        pixels = np.rint(pixels * 65535.0).astype(np.uint16)
    target = result_path(out, path, upscaler.scale)
    write_png(target, pixels, icc=source.icc, exif=source.exif, text=source.text, provenance=provenance)
    result.written.append(target)
    for note in [*source.notes, *upscaler.run_notes]:
        line = f"{path.name}: {note}" if note in source.notes else note
        if line not in result.notes:
            result.notes.append(line)


def _check_fits(pixels: np.ndarray, scale: int) -> None:
    """BadImage when the result alone would take more than half the memory available."""
    h, w, c = pixels.shape
    need = h * w * scale * scale * c * pixels.itemsize
    available, _ = available_host_memory()
    if need > available / 2:
        raise BadImage(
            f"the x{scale} result ({w * scale}x{h * scale}, {need / 2**30:.1f} GiB) would not fit in the "
            f"{available / 2**30:.1f} GiB of memory available; upscale a smaller image or crop it first"
        )


# -- reading ----------------------------------------------------------------------------------------
def read_source(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> SourceImage:
    """The image at ``path`` with its metadata; BadImage says why it cannot be used."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise BadImage(f"cannot read the file ({exc.strerror or exc})") from None
    if not data:
        raise BadImage("empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=PIL_FORMATS)
    except UnidentifiedImageError:
        raise BadImage("not a readable image (unknown format or damaged header)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise BadImage(f"too large: refused by Pillow's decompression-bomb guard ({exc})") from None
    except Exception as exc:
        raise BadImage(f"cannot open the image ({type(exc).__name__}: {exc})") from None
    with image:
        width, height = image.size
        if width * height > max_pixels:
            raise BadImage(f"too large: {width}x{height} is over the {max_pixels / 1e6:g} MP limit")
        try:
            return _decode(image, data)
        except BadImage:
            raise
        except Exception as exc:  # a damaged file can fail inside any decoder
            raise BadImage(f"cannot decode the image ({type(exc).__name__}: {exc})") from None


def _decode(image: Image.Image, data: bytes) -> SourceImage:
    notes = []
    frames = int(getattr(image, "n_frames", 1))  # only multi-frame formats (GIF, TIFF, APNG) have it
    if frames > 1:
        notes.append(f"{frames} frames: only the first is upscaled")
    # decode first: Pillow reads chunks after the pixel data (a PNG's late eXIf) only when it loads them
    pixels = _png16(data) if _is_png16(data) else _pil_pixels(image, notes)
    exif = image.getexif()
    orientation = int(exif.get(ORIENTATION_TAG, 1) or 1)
    pixels = _orient(pixels, orientation)
    raw_exif = image.info.get("exif")
    if orientation != 1:
        exif[ORIENTATION_TAG] = 1  # the pixels are now upright
        raw_exif = exif.tobytes()
    icc = _matching_icc(image.info.get("icc_profile"), pixels.shape[2], notes)
    return SourceImage(pixels, icc=icc, exif=raw_exif or None, text=_text_of(image), notes=notes)


def _is_png16(data: bytes) -> bool:
    """True for a PNG whose IHDR says 16 bits per sample."""
    return data[:8] == PNG_SIGNATURE and len(data) > 25 and data[12:16] == b"IHDR" and data[24] == 16


def _png16(data: bytes) -> np.ndarray:
    """A 16-bit PNG as (H, W, C) uint16, decoded here: Pillow would keep only 8 bits of a colour one."""
    header, compressed = _png_chunks(data)
    width, height, _depth, colour_type, _method, _filter, interlace = struct.unpack(">IIBBBBB", header)
    channels = {0: 1, 4: 2, 2: 3, 6: 4}.get(colour_type)
    if channels is None:
        raise BadImage(f"unsupported 16-bit PNG colour type {colour_type}")
    if interlace:
        raise BadImage("interlaced 16-bit PNGs are not supported; save the image without interlacing")
    bpp = 2 * channels
    expected = height * (1 + width * bpp)
    inflater = zlib.decompressobj()
    raw = inflater.decompress(compressed, expected + 1)  # bounded: a zip bomb cannot grow past the header's size
    if len(raw) != expected:
        raise BadImage(f"truncated or damaged 16-bit PNG ({len(raw)} of {expected} bytes of pixel data)")
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(height, 1 + width * bpp)
    if rows[:, 0].max(initial=0) > 4:
        raise BadImage("damaged 16-bit PNG (unknown row filter)")
    pixels = unfilter_png_rows(rows[:, 0], rows[:, 1:].reshape(height, width, bpp))
    return pixels.view(">u2").reshape(height, width, channels).astype(np.uint16)


def _png_chunks(data: bytes) -> tuple[bytes, bytes]:
    """(IHDR body, the IDAT bodies joined) of a PNG file."""
    at, header, idat = 8, b"", []
    while at + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[at : at + 8])
        body = data[at + 8 : at + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        at += 12 + length
    if len(header) != 13 or not idat:
        raise BadImage("damaged PNG (no header or no pixel data)")
    return header, b"".join(idat)


def unfilter_png_rows(filters: np.ndarray, filtered: np.ndarray) -> np.ndarray:
    """Undo PNG row filtering: (H,) filter types and (H, W, bytes per pixel) filtered bytes -> raw bytes.

    A pixel depends on its left, upper and upper-left neighbours, so the pixels of one anti-diagonal
    (row + column constant) are independent given the two before it. The image is skewed (row r
    shifted right by r) so each anti-diagonal is one contiguous slice, and the diagonals are rebuilt
    in order, all rows at once: H + W vectorised steps instead of H * W pixel steps in Python.
    """
    height, width, bpp = filtered.shape
    diagonals = height + width - 1
    # diag[d + 2, r + 1] holds pixel (r, d - r); index 0 of both axes (and column 1) stays zero padding
    diag = np.zeros((diagonals + 2, height + 1, bpp), dtype=np.uint8)
    kind = filters.astype(np.intp)
    choices = np.zeros((5, height, bpp), dtype=np.int16)
    for d in range(diagonals):
        first, last = max(0, d - width + 1), min(height - 1, d)  # the rows this diagonal crosses
        rows = np.arange(first, last + 1)
        n = len(rows)
        left = diag[d + 1, first + 1 : last + 2].astype(np.int16)
        up = diag[d + 1, first : last + 1].astype(np.int16)
        up_left = diag[d, first : last + 1].astype(np.int16)
        picks = choices[:, :n]
        picks[1], picks[2] = left, up
        np.right_shift(left + up, 1, out=picks[3])
        estimate = left + up - up_left
        pa, pb, pc = np.abs(estimate - left), np.abs(estimate - up), np.abs(estimate - up_left)
        picks[4] = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, up_left))
        predicted = picks[kind[first : last + 1], np.arange(n)]
        diag[d + 2, first + 1 : last + 2] = (filtered[rows, d - rows] + predicted) & 0xFF
    out = np.empty((height, width, bpp), dtype=np.uint8)
    for r in range(height):
        out[r] = diag[r + 2 : r + 2 + width, r + 1]
    return out


def _pil_pixels(image: Image.Image, notes: list[str]) -> np.ndarray:
    """Pixels as (H, W, C): grey stays grey, alpha is kept, deep grey stays 16-bit."""
    image.seek(0)
    image.load()
    mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        return np.asarray(image).astype(np.uint16)[:, :, None]
    if mode == "I":
        values = np.asarray(image)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise BadImage("32-bit integer pixels outside 0-65535; save the image as 16-bit")
        return values.astype(np.uint16)[:, :, None]
    if mode == "F":
        values = np.asarray(image, dtype=np.float32)
        if values.size and (values.min() < 0 or values.max() > 1):
            raise BadImage("floating-point pixels outside 0-1; save the image as 8 or 16-bit")
        return values[:, :, None]
    bits = getattr(image, "tag_v2", {}).get(258) if image.format == "TIFF" else None
    if bits and max(bits if isinstance(bits, tuple) else (bits,)) > 8:
        notes.append("16-bit colour TIFF read as 8 bits per channel (save it as a 16-bit PNG to keep 16 bits)")
    target = _target_mode(image)
    if mode == "CMYK":
        notes.append("CMYK converted to RGB")
    return _as_hwc(np.asarray(image if mode == target else image.convert(target)))


def _target_mode(image: Image.Image) -> str:
    mode = image.mode
    if mode in ("L", "LA", "RGB", "RGBA"):
        return mode
    if mode == "1":
        return "L"
    if mode in ("La",):
        return "LA"
    if mode in ("PA", "RGBa") or "transparency" in image.info:
        return "RGBA"
    if mode == "P":
        return "RGBA" if image.palette and image.palette.mode == "RGBA" else "RGB"
    return "RGB"


def _as_hwc(array: np.ndarray) -> np.ndarray:
    return array[:, :, None] if array.ndim == 2 else array


def _orient(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (the same transforms as PIL.ImageOps.exif_transpose)."""
    transforms: dict[int, Callable[[np.ndarray], np.ndarray]] = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.transpose(1, 0, 2),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
        8: lambda a: np.rot90(a, 1),
    }
    transform = transforms.get(orientation)
    return np.ascontiguousarray(transform(pixels)) if transform else pixels


def _matching_icc(icc: bytes | None, channels: int, notes: list[str]) -> bytes | None:
    """The ICC profile when its colour space fits the result (RGB or grey), else None with a note."""
    if not icc:
        return None
    space = icc[16:20] if len(icc) >= 20 else b""
    wanted = b"RGB " if channels >= 3 else b"GRAY"
    if space != wanted:
        notes.append(f"ICC profile for {space.decode('ascii', 'replace').strip() or '?'} data dropped")
        return None
    return icc


def _text_of(image: Image.Image) -> dict[str, str]:
    """PNG text chunks, XMP and a JPEG comment, as text entries for the result."""
    text: dict[str, str] = {}
    for key, value in (getattr(image, "text", None) or {}).items():
        text[str(key)] = str(value)
    xmp = image.info.get("xmp")
    if xmp and XMP_KEY not in text:
        text[XMP_KEY] = xmp.decode("utf-8", "replace") if isinstance(xmp, bytes) else str(xmp)
    comment = image.info.get("comment")
    if comment and "Comment" not in text:
        text["Comment"] = comment.decode("utf-8", "replace") if isinstance(comment, bytes) else str(comment)
    return text


# -- writing ----------------------------------------------------------------------------------------
def write_png(
    path: Path,
    pixels: np.ndarray,
    *,
    icc: bytes | None = None,
    exif: bytes | None = None,
    text: dict[str, str] | None = None,
    provenance: Provenance | None = None,
) -> None:
    """Write (H, W, C) uint8 or uint16 pixels (C in 1-4) as an 8- or 16-bit PNG atomically, with metadata.

    With ``provenance`` the pixels are watermarked, its metadata replaces a source's earlier provenance
    (the source's other text, ICC profile and EXIF minus personal fields stay) and the file is signed."""
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    text = dict(text or {})
    if provenance is not None:
        provenance = provenance.fresh()
        pixels = provenance.mark(pixels)
        text.update(provenance.text())
        exif = provenance.exif(exif)
    buffer = io.BytesIO()
    if pixels.dtype == np.uint16:
        _write_png16(buffer, pixels, icc, exif, text)
    else:
        info = PngImagePlugin.PngInfo()
        for key, value in text.items():
            info.add_itxt(key, value)
        image = Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels)
        options = {"icc_profile": icc} if icc else {}
        image.save(buffer, format="PNG", pnginfo=info, exif=exif or b"", **options)
    data = buffer.getvalue()
    atomic_write_bytes(path, data if provenance is None else provenance.sign(data, str(path)))


def _chunk(handle: IO[bytes], kind: bytes, body: bytes) -> None:
    handle.write(struct.pack(">I", len(body)) + kind + body)
    handle.write(struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))


def _write_png16(handle: IO[bytes], pixels: np.ndarray, icc: bytes | None, exif: bytes | None, text: dict) -> None:
    """A 16-bit PNG, streamed: rows filtered ('Up') and compressed a block at a time."""
    h, w, c = pixels.shape
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    handle.write(PNG_SIGNATURE)
    _chunk(handle, b"IHDR", struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0))
    if icc:
        _chunk(handle, b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(icc))
    if exif:
        _chunk(handle, b"eXIf", exif[6:] if exif.startswith(b"Exif\x00\x00") else exif)
    for key, value in text.items():
        _chunk(handle, b"iTXt", key.encode("latin-1", "replace")[:79] + b"\x00\x00\x00\x00\x00" + value.encode("utf-8"))
    compressor = zlib.compressobj(6)
    pending = bytearray()
    previous = np.zeros((1, w * c * 2), dtype=np.uint8)
    for top in range(0, h, ROWS_PER_BLOCK):
        block = pixels[top : top + ROWS_PER_BLOCK]
        rows = block.astype(">u2").reshape(len(block), w * c).view(np.uint8)
        stacked = np.concatenate([previous, rows])
        filtered = stacked[1:] - stacked[:-1]  # filter type 2 (Up): uint8 arithmetic wraps mod 256
        previous = rows[-1:]
        lines = np.concatenate([np.full((len(rows), 1), 2, dtype=np.uint8), filtered], axis=1)
        pending += compressor.compress(lines.tobytes())
        while len(pending) >= IDAT_SIZE:
            _chunk(handle, b"IDAT", bytes(pending[:IDAT_SIZE]))
            del pending[:IDAT_SIZE]
    pending += compressor.flush()
    _chunk(handle, b"IDAT", bytes(pending))
    _chunk(handle, b"IEND", b"")
