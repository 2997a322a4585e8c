"""Check an image: is it one of ours, which model and installation made it, and was it changed since?

``verify_image(path)`` reads the file once, safely (only the image formats we know, the size checked
from the header against Pillow's ``Image.MAX_IMAGE_PIXELS`` before any pixel is decoded, 16-bit PNGs
kept at 16 bits), then asks three independent witnesses:

- the invisible watermark (``watermark.detect`` on the stored pixels): survives re-saving, JPEG and
  light edits, and carries the 48-bit payload = install id and model id (``identity.unpack``);
- the metadata (``metadata.read_metadata``): IPTC digital source type, our ``gan-studio`` fields;
  most editors and every screenshot drop it;
- the C2PA content credentials (``credentials.read_credentials``): a signed manifest bound to the
  pixels by a hash, so any pixel change after signing makes them Invalid.

The :class:`VerifyReport` puts them together as sentences an artist understands (``lines()``), and as
JSON (``to_dict()``) for the CLI. "Tampered" means the credentials are Invalid, or the metadata or the
credentials name another model or installation than the watermark. Only a file that cannot be read
as an image raises (a DataError naming it); anything a witness cannot read becomes a problem line.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from engine.errors import DataError
from engine.provenance import credentials as credentials_mod
from engine.provenance import identity, watermark
from engine.provenance import metadata as metadata_mod
from engine.provenance.credentials import CredentialReport
from engine.provenance.watermark import Detection

READ_FORMATS = ("PNG", "JPEG", "WEBP", "TIFF", "BMP", "GIF")
"""What we open: the formats GAN Studio writes or an editor re-saves them as (never EPS/PDF/...)."""
C2PA_FORMATS = ("PNG", "JPEG", "WEBP", "TIFF", "GIF")
"""The formats we read that can carry a C2PA manifest."""
PROVENANCE_ASSERTION = credentials_mod.PROVENANCE_LABEL
STATUSES = ("found", "tampered", "not_found")
"""What the studio colours: GAN Studio marks found, found but changed since, no marks of ours."""
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class ImageFacts:
    """What the file is: format, size, pixel mode, bits per sample and frames."""

    format: str
    width: int
    height: int
    mode: str
    bits: int
    frames: int = 1

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "format": self.format,
            "width": self.width,
            "height": self.height,
            "mode": self.mode,
            "bits": self.bits,
            "frames": self.frames,
        }


@dataclass(frozen=True)
class VerifyReport:
    """Everything the image check found about one file; ``lines()`` says it in words."""

    path: Path
    image: ImageFacts
    watermark: Detection
    install_id: int | None
    """The installation that made it (from the watermark), when found."""
    model_id: int | None
    """The model that made it (from the watermark), when found."""
    model: dict[str, Any] | None
    """What this installation knows about that model (identity.lookup_model), or None."""
    this_install: bool
    """The watermark's install id is this installation's."""
    metadata: dict[str, Any]
    credentials: CredentialReport
    verdict: str
    """The headline sentence (first of ``lines()``)."""
    status: str
    """One of STATUSES."""
    tampered: bool
    problems: list[str] = field(default_factory=list)
    """Why it counts as tampered, and anything a witness could not read."""
    notes: list[str] = field(default_factory=list)
    """The other sentences of ``lines()`` (credentials, metadata, what was missing)."""

    @property
    def model_name(self) -> str:
        """The model's name: this installation's record, else the metadata's when it names the same id."""
        if self.model and self.model.get("name"):
            return str(self.model["name"])
        info = self.metadata.get("gan_studio") or {}
        card = str(info.get("model_card_id") or "")
        if card and self.model_id is not None and identity.model_id(card) == self.model_id:
            return str(info.get("model_name") or "")
        return ""

    def lines(self) -> list[str]:
        """The verdict, then one sentence per witness and per problem."""
        return [self.verdict, *self.notes, *(f"Problem: {p}" for p in self.problems if p not in self.verdict)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ids as 6-digit hex (how the app shows them), every witness in full."""
        return {
            "path": str(self.path),
            "status": self.status,
            "verdict": self.verdict,
            "tampered": self.tampered,
            "image": self.image.to_dict(),
            "watermark": self.watermark.to_dict(),
            "install_id": _hex(self.install_id),
            "model_id": _hex(self.model_id),
            "model_name": self.model_name,
            "model": self.model,
            "this_install": self.this_install,
            "metadata": self.metadata,
            "credentials": self.credentials.to_dict(),
            "problems": list(self.problems),
            "lines": self.lines(),
        }


def _hex(value: int | None) -> str | None:
    return None if value is None else f"{value:06x}"


# -- reading the pixels -------------------------------------------------------------------------------
def read_pixels(path: Path) -> tuple[np.ndarray, ImageFacts]:
    """The stored pixels of ``path`` (uint8, or uint16 for 16-bit files; EXIF orientation not applied:
    the watermark lives in the pixels as written) and what the file is. DataError naming the file and
    why when it is not a readable image."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise DataError(f"{path} is a folder, not an image file; give the image files themselves") from None
    except OSError as exc:
        raise DataError(f"cannot read {path} ({exc.strerror or exc}); check the path and its permissions") from None
    if not data:
        raise DataError(f"{path} is empty (0 bytes), not an image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=READ_FORMATS)
    except UnidentifiedImageError:
        raise DataError(
            f"{path} is not an image GAN Studio can check: not a PNG, JPEG, WebP, TIFF, BMP or GIF file, "
            "or its header is damaged"
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise DataError(_too_large(path)) from None
    except Exception as exc:  # a damaged header can fail inside any plugin
        raise DataError(f"{path} cannot be opened as an image ({type(exc).__name__}: {exc})") from None
    with image:
        width, height = image.size
        limit = Image.MAX_IMAGE_PIXELS
        if limit is not None and width * height > limit:
            raise DataError(_too_large(path, width, height))
        frames = int(getattr(image, "n_frames", 1) or 1)
        try:
            if _is_png16(data):
                pixels = _png16_pixels(data)
            else:
                pixels = _pil_pixels(image)
        except DataError:
            raise
        except MemoryError:
            raise DataError(f"{path}: not enough memory to decode this {width}x{height} image") from None
        except Exception as exc:  # truncated or damaged pixel data
            raise DataError(f"{path} is damaged: its pixels cannot be decoded ({type(exc).__name__}: {exc})") from None
        bits = 16 if pixels.dtype == np.uint16 else 8
        facts = ImageFacts(str(image.format or "?"), width, height, image.mode, bits, frames)
    return pixels, facts


def _too_large(path: Path, width: int = 0, height: int = 0) -> str:
    size = f"{width}x{height} " if width else ""
    limit = Image.MAX_IMAGE_PIXELS or 0
    return (
        f"{path} is too large to check: {size}is over the {limit / 1e6:.0f} megapixel limit that guards "
        "against decompression bombs; scale the image down to check it"
    )


def _is_png16(data: bytes) -> bool:
    """A PNG whose header says 16 bits per sample (Pillow would keep only 8 of a colour one)."""
    return data[:8] == _PNG_SIGNATURE and len(data) > 25 and data[12:16] == b"IHDR" and data[24] == 16


def _png16_pixels(data: bytes) -> np.ndarray:
    """A 16-bit PNG as uint16 HxW or HxWxC (RGB order), decoded by OpenCV (the size was checked already)."""
    import cv2

    decoded = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if decoded is None:
        raise ValueError("OpenCV could not decode the 16-bit PNG")
    if decoded.ndim == 3 and decoded.shape[2] == 4:
        decoded = cv2.cvtColor(decoded, cv2.COLOR_BGRA2RGBA)
    elif decoded.ndim == 3 and decoded.shape[2] == 3:
        decoded = cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)
    elif decoded.ndim == 3 and decoded.shape[2] == 2:
        decoded = decoded[:, :, 0]  # grey + alpha: the grey
    return np.ascontiguousarray(decoded.astype(np.uint16, copy=False))


def _pil_pixels(image: Image.Image) -> np.ndarray:
    """The first frame as uint8 L/RGB/RGBA, or uint16 for 16-bit grey."""
    image.seek(0)
    image.load()
    mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        return np.asarray(image).astype(np.uint16)
    if mode == "I":  # 32-bit integer grey: what some 16-bit grey files open as
        return np.clip(np.asarray(image), 0, 65535).astype(np.uint16)
    if mode in ("L", "RGB", "RGBA"):
        return np.asarray(image, dtype=np.uint8).copy()
    if mode in ("1", "F"):
        return np.asarray(image.convert("L"), dtype=np.uint8).copy()
    if mode in ("LA", "La"):
        return np.asarray(image.convert("LA"), dtype=np.uint8)[:, :, 0].copy()
    if mode == "P":
        has_alpha = "transparency" in image.info or image.palette is not None and image.palette.mode == "RGBA"
        return np.asarray(image.convert("RGBA" if has_alpha else "RGB"), dtype=np.uint8).copy()
    if mode in ("RGBa", "RGBX", "PA"):
        return np.asarray(image.convert("RGBA"), dtype=np.uint8).copy()
    return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()  # CMYK, YCbCr, LAB, HSV


# -- the witnesses --------------------------------------------------------------------------------------
def _detect(pixels: np.ndarray, problems: list[str]) -> Detection:
    try:
        return watermark.detect(pixels)
    except Exception as exc:  # never let one witness hide the others
        problems.append(f"the watermark could not be checked ({type(exc).__name__}: {exc})")
        return Detection(found=False, payload=None, confidence=0.0, bit_errors=None, detail=str(exc))


def _read_metadata(path: Path, problems: list[str]) -> dict[str, Any]:
    try:
        meta = dict(metadata_mod.read_metadata(path))
        problems.extend(f"metadata: {problem}" for problem in meta.get("problems") or [])
        return meta
    except Exception as exc:  # a damaged XMP or EXIF block must not stop the check
        problems.append(f"the metadata could not be read ({type(exc).__name__}: {exc})")
        return {"digital_source_type": "", "gan_studio": None, "xmp": False, "exif": {}}


def _no_credentials(problem: str = "") -> CredentialReport:
    return CredentialReport(state="none", problems=[problem] if problem else [])


def _read_credentials(path: Path, facts: ImageFacts, problems: list[str]) -> CredentialReport:
    if facts.format not in C2PA_FORMATS:
        return _no_credentials()  # BMP and the like cannot carry a manifest: nothing to read
    try:
        return credentials_mod.read_credentials(path)
    except Exception as exc:  # a damaged manifest store: report it, keep the other witnesses
        problem = f"the content credentials could not be read ({type(exc).__name__}: {exc})"
        problems.append(problem)
        return _no_credentials(problem)


# -- the verdict --------------------------------------------------------------------------------------
def verify_image(path: Path | str) -> VerifyReport:
    """Check one image file (see the module docstring). DataError only when it is not a readable image."""
    path = Path(path)
    pixels, facts = read_pixels(path)
    problems: list[str] = []
    detection = _detect(pixels, problems)
    del pixels
    meta = _read_metadata(path, problems)
    creds = _read_credentials(path, facts, problems)

    install = model = None
    record: dict[str, Any] | None = None
    this_install = False
    if detection.found and detection.payload is not None:
        install, model = identity.unpack(int(detection.payload))
        record = _lookup(model, problems)
        this_install = _is_this_install(install, problems)

    tamper = _tamper_reasons(detection, install, model, meta, creds)
    gan_info = meta.get("gan_studio") or None
    if creds.state in ("Valid", "Trusted") and not gan_info and _signed_info(creds):
        gan_info = _signed_info(creds)  # intact credentials speak for the stripped metadata
    if tamper:
        status = "tampered"
        verdict = "Tampered: " + "; ".join(tamper)
    elif detection.found:
        status = "found"
        verdict = _found_sentence(detection, install, model, record, gan_info, this_install)
    elif _ours_by_record(gan_info, creds):
        status = "found"
        verdict = _record_only_sentence(gan_info, creds)
    else:
        status = "not_found"
        verdict = _not_found_sentence(meta, creds)

    notes = [_credentials_sentence(creds), _metadata_sentence(meta)]
    if tamper and detection.found:  # who made the original is still known
        notes.insert(
            0,
            f"The watermark is intact (confidence {detection.confidence:.2f}): the original is by "
            + _made_by(model, record, gan_info, this_install, install),
        )
    has_records = bool(gan_info) or meta.get("xmp") or creds.state != "none"
    if detection.found and not has_records:
        notes.append(
            "Watermark found but no metadata or credentials: probably re-saved or edited "
            "(metadata is removed by most editors)"
        )
    if creds.training_allowed is False:
        notes.append("AI training: not allowed (its content credentials forbid it)")
    if creds.state in ("Valid", "Trusted"):
        problems.extend(creds.problems)
    return VerifyReport(
        path=path,
        image=facts,
        watermark=detection,
        install_id=install,
        model_id=model,
        model=record,
        this_install=this_install,
        metadata=meta,
        credentials=creds,
        verdict=verdict,
        status=status,
        tampered=bool(tamper),
        problems=[*tamper, *problems] if tamper else problems,
        notes=notes,
    )


def _lookup(model: int, problems: list[str]) -> dict[str, Any] | None:
    try:
        return identity.lookup_model(model)
    except Exception as exc:  # the user data folder is unreadable: the id alone still says a lot
        problems.append(f"this computer's list of models could not be read ({exc})")
        return None


def _is_this_install(install: int, problems: list[str]) -> bool:
    try:
        return install == identity.install_id()
    except Exception as exc:  # identity.json cannot be written (read-only home): unknown, say so
        problems.append(f"this computer's install id could not be read ({exc})")
        return False


def _tamper_reasons(
    detection: Detection, install: int | None, model: int | None, meta: dict[str, Any], creds: CredentialReport
) -> list[str]:
    """Why this image counts as changed after GAN Studio made it (empty: no sign of it)."""
    reasons = []
    if creds.state == "Invalid":
        codes = " ".join(creds.codes).lower()
        if "hash" in codes and "mismatch" in codes:
            reasons.append("the pixels changed after the content credentials were signed (c2pa data hash mismatch)")
        elif creds.tampered:
            reasons.append(f"the content credentials were changed or damaged after signing ({', '.join(creds.codes)})")
        else:
            why = creds.problems[0] if creds.problems else "they do not validate"
            reasons.append(f"the content credentials are invalid ({why})")
    if not detection.found or model is None or install is None:
        return reasons
    witnesses = (("the metadata", meta.get("gan_studio") or {}), ("the content credentials", _signed_info(creds)))
    for witness, record in witnesses:  # each record must name the model and installation the pixels do
        card = str(record.get("model_card_id") or "")
        if card and identity.model_id(card) != model:
            reasons.append(
                f"{witness} names model '{record.get('model_name') or card}' (id {identity.model_id(card):06x}) "
                f"but the watermark says model id {model:06x}"
            )
        recorded_install = _as_int(record.get("install_id"))
        if recorded_install is not None and recorded_install != install:
            reasons.append(f"{witness} says install {recorded_install:06x} but the watermark says {install:06x}")
    return reasons


def _signed_info(creds: CredentialReport) -> dict[str, Any]:
    """The OutputInfo fields of the credentials' org.ganstudio.provenance assertion ({} without one)."""
    signed = creds.assertions.get(PROVENANCE_ASSERTION) if isinstance(creds.assertions, dict) else None
    return signed if isinstance(signed, dict) else {}


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool) or value is None or value == "":
        return None
    if isinstance(value, int):
        return value
    try:
        return int(str(value), 16) if isinstance(value, str) else int(value)
    except (TypeError, ValueError):
        return None


def _short_source_type(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1] if url else ""


def _model_words(model: int, record: dict[str, Any] | None, gan_info: dict[str, Any] | None) -> str:
    name = str(record.get("name") or "") if record else ""
    if not name and gan_info:
        card = str(gan_info.get("model_card_id") or "")
        if card and identity.model_id(card) == model:
            name = str(gan_info.get("model_name") or "")
    if name:
        return f"model '{name}' (id {model:06x})"
    return f"model id {model:06x} (not a model this computer has used)"


def _found_sentence(
    detection: Detection,
    install: int | None,
    model: int | None,
    record: dict[str, Any] | None,
    gan_info: dict[str, Any] | None,
    this_install: bool,
) -> str:
    made = _made_by(model, record, gan_info, this_install, install)
    return f"AI-generated with GAN Studio: watermark found (confidence {detection.confidence:.2f}), {made}"


def _made_by(
    model: int | None,
    record: dict[str, Any] | None,
    gan_info: dict[str, Any] | None,
    this_install: bool,
    install: int | None = None,
) -> str:
    if this_install:
        where = "made on this computer"
    else:
        where = f"made by another GAN Studio installation (install id {install or 0:06x})"
    return f"{_model_words(model or 0, record, gan_info)} {where}"


def _ours_by_record(gan_info: dict[str, Any] | None, creds: CredentialReport) -> bool:
    """No watermark, but our metadata, or intact credentials written by GAN Studio."""
    return bool(gan_info) or (creds.state in ("Valid", "Trusted") and "gan studio" in creds.claim_generator.lower())


def _record_only_sentence(gan_info: dict[str, Any] | None, creds: CredentialReport) -> str:
    witness = "its content credentials" if creds.state in ("Valid", "Trusted") else "its metadata"
    name = str((gan_info or {}).get("model_name") or "")
    model = f" with model '{name}'" if name else ""
    if gan_info is not None and gan_info.get("watermark") is False:
        why = "it was made with the watermark turned off"
    else:
        why = "the watermark did not survive (strong cropping, resizing or filtering)"
    return f"AI-generated with GAN Studio{model} (says {witness}), but no watermark found: {why}"


def _not_found_sentence(meta: dict[str, Any], creds: CredentialReport) -> str:
    source = creds.digital_source_type or str(meta.get("digital_source_type") or "")
    if "algorithmicmedia" in source.lower() or "compositewithtrained" in source.lower():
        by = f" by {creds.claim_generator}" if creds.claim_generator else ""
        return f"No GAN Studio watermark found, but the file says it is AI-generated{by} ({_short_source_type(source)})"
    return "No GAN Studio watermark found (this does not prove the image is not AI-generated)"


def _credentials_sentence(creds: CredentialReport) -> str:
    if creds.state == "none":
        return "Content credentials: none"
    parts = []
    issuer = creds.issuer or "an unnamed signer"
    if creds.state == "Trusted":
        parts.append(f"Trusted (signed by {issuer}, trusted on this computer)")
    elif creds.state == "Valid":
        parts.append(f"Valid (intact, signed by {issuer}, a signer this computer does not know)")
    else:
        parts.append(f"Invalid ({', '.join(creds.codes) or '; '.join(creds.problems) or 'they do not validate'})")
    if creds.claim_generator:
        parts.append(f"created by {creds.claim_generator}")
    if creds.digital_source_type:
        parts.append(_short_source_type(creds.digital_source_type))
    return "Content credentials: " + "; ".join(parts)


def _metadata_sentence(meta: dict[str, Any]) -> str:
    info = meta.get("gan_studio") or None
    source = str(meta.get("digital_source_type") or "")
    exif = meta.get("exif")
    described = str(exif.get("ImageDescription") or "") if isinstance(exif, dict) else ""
    if not info and not source:
        if "ai-generated" in described.lower():
            return f"Metadata: EXIF only: {described}"
        return "Metadata: none (no AI-generation fields)" if not meta.get("xmp") else "Metadata: XMP without AI fields"
    parts = []
    if source:
        parts.append(f"AI-generated ({_short_source_type(source)})")
    if info:
        fields = [str(info.get("action") or "made")]
        if info.get("model_name"):
            fields.append(f"model '{info['model_name']}'")
        if info.get("family"):
            fields.append(str(info["family"]))
        if info.get("software"):
            fields.append(str(info["software"]))
        if info.get("created_at"):
            fields.append(str(info["created_at"]))
        parts.append("GAN Studio: " + ", ".join(fields))
    return "Metadata: " + "; ".join(parts)
