"""What an output image says about itself: XMP, a PNG text record and EXIF, and reading them back.

Every image the app writes says, in the places other software looks, that it was made by an AI model in
GAN Studio:

* an XMP packet (PNG: the ``XML:com.adobe.xmp`` iTXt chunk; JPEG: the APP1 XMP segment; WebP: the XMP
  chunk) with IPTC's ``Iptc4xmpExt:DigitalSourceType`` = ``trainedAlgorithmicMedia``, ``dc:creator`` and
  ``xmp:CreatorTool`` = GAN Studio, an optional PLUS ``plus:DataMining`` (training on it not allowed, by
  default) and our own ``ganstudio:`` fields (model, family, dataset fingerprint, attestation, install id,
  watermark on/off, action, time);
* in PNG, an iTXt chunk ``gan-studio`` holding the same :class:`OutputInfo` as JSON, plus ``Software`` and
  ``Description`` text;
* EXIF (JPEG and PNG) with ``Software`` and ``ImageDescription``, carried over from a source image minus the
  fields that can identify a person (:data:`PRIVATE_EXIF`: GPS, serial numbers, owner and artist names,
  maker notes, user comments). Copyright and orientation are kept.

None of this is tamper-proof (anyone can strip or edit metadata); the watermark and the signed content
credentials (:mod:`engine.provenance.credentials`) are the parts that survive or detect that.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ElementTree
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from PIL import ExifTags, Image, PngImagePlugin

from engine.errors import DataError

__all__ = [
    "DIGITAL_SOURCE_TYPE",
    "GAN_NS",
    "TRAINING_USES",
    "DEFAULT_TRAINING",
    "PRIVATE_EXIF",
    "OutputInfo",
    "description",
    "xmp_packet",
    "parse_xmp",
    "png_info",
    "exif_for_output",
    "save_options",
    "strip_private_exif",
    "private_fields",
    "read_metadata",
    "data_mining_allows",
]

DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
GAN_NS = "https://gan-studio.invalid/ns/provenance/1.0/"  # .invalid: a name that can never belong to anyone else
XMP_KEY = "XML:com.adobe.xmp"  # the PNG iTXt keyword the XMP specification gives
JSON_KEY = "gan-studio"  # our PNG iTXt chunk: the OutputInfo as JSON
JSON_FORMAT_VERSION = 1
CREATOR = "GAN Studio"

# Training permission, in C2PA's words (c2pa.training-mining "use"); metadata maps it onto PLUS DataMining.
TRAINING_USES = ("allowed", "notAllowed", "constrained")
DEFAULT_TRAINING = "notAllowed"  # outputs should not be used to train models without asking
_PLUS_VOCAB = "http://ns.useplus.org/ldf/vocab/"
_PLUS_FOR_USE = {
    "allowed": "DMI-ALLOWED",
    "notAllowed": "DMI-PROHIBITED-AIMLTRAINING",
    "constrained": "DMI-PROHIBITED-SEECONSTRAINT",
}

_NS = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "Iptc4xmpExt": "http://iptc.org/std/Iptc4xmpExt/2008-02-29/",
    "plus": "http://ns.useplus.org/ldf/xmp/1.0/",
    "ganstudio": GAN_NS,
}

# EXIF tags that can identify a person or their equipment, by tag number (IFD0 or the Exif IFD).
PRIVATE_EXIF: dict[int, str] = {
    int(ExifTags.IFD.GPSInfo): "GPSInfo",  # where the photo was taken
    0xA431: "BodySerialNumber",
    0xA435: "LensSerialNumber",
    0xC62F: "CameraSerialNumber",
    0xFDE9: "SerialNumber",  # Photoshop Camera Raw's copy of the body serial
    0xA430: "CameraOwnerName",
    0xFDE8: "OwnerName",
    0x013B: "Artist",
    0x9C9D: "XPAuthor",
    0x013C: "HostComputer",  # often the owner's name ("Anna's MacBook")
    0x927C: "MakerNote",  # vendor blob: serials, owner, sometimes location
    0x9286: "UserComment",
    0x9C9C: "XPComment",
}
_SOFTWARE_TAG = 0x0131
_ORIENTATION_TAG = 0x0112
_DESCRIPTION_TAG = 0x010E
_MAX_XMP = 4 * 1024 * 1024


@dataclass(frozen=True)
class OutputInfo:
    """What made one output image: the facts every writer records (XMP, PNG text, C2PA assertion)."""

    action: str  # "generate", "translate", "upscale", "edit", ...
    model_name: str
    model_card_id: str
    family: str
    dataset_fingerprint: str
    attestation_id: str
    install_id: int  # 24-bit, engine.provenance.identity.install_id()
    watermark: bool
    software: str = "GAN Studio 0.1.0"
    created_at: str = ""  # ISO-8601 UTC; filled with the current time when empty

    def __post_init__(self) -> None:
        if not 0 <= int(self.install_id) < 1 << 24:
            raise ValueError(f"install_id must be a 24-bit number, got {self.install_id}")
        if not self.created_at:
            now = datetime.now(timezone.utc).isoformat(timespec="seconds")
            object.__setattr__(self, "created_at", now)

    @property
    def install_id_hex(self) -> str:
        """The install id as six hex digits, as identity.json and the watermark report show it."""
        return f"{int(self.install_id):06x}"

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict (install_id as a number)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OutputInfo:
        """Rebuild from :meth:`to_dict` output or metadata read from a file; unknown keys are ignored.

        ``install_id`` may be a number or hex digits; ``watermark`` a bool or "true"/"false" text.
        Raises ValueError when a required field is missing or unusable.
        """
        values: dict[str, Any] = {}
        for item in fields(cls):
            if item.name not in data or data[item.name] is None:
                continue
            value = data[item.name]
            if item.name == "install_id":
                value = int(value, 16) if isinstance(value, str) else int(value)
            elif item.name == "watermark":
                value = value.strip().lower() in ("true", "1", "yes", "on") if isinstance(value, str) else bool(value)
            else:
                value = str(value)
            values[item.name] = value
        missing = [item.name for item in fields(cls) if item.name not in values and item.name not in _DEFAULTED]
        if missing:
            raise ValueError(f"output info lacks {', '.join(missing)}")
        return cls(**values)


_DEFAULTED = {"software", "created_at"}
# OutputInfo field -> the XMP property name in our namespace.
_XMP_NAMES = {
    "action": "Action",
    "model_name": "ModelName",
    "model_card_id": "ModelCardId",
    "family": "Family",
    "dataset_fingerprint": "DatasetFingerprint",
    "attestation_id": "AttestationId",
    "install_id": "InstallId",
    "watermark": "Watermark",
    "software": "Software",
    "created_at": "CreatedAt",
}


def description(info: OutputInfo) -> str:
    """The one-line human description written to ImageDescription, PNG Description and dc:description."""
    model = info.model_name or info.model_card_id or "unknown"
    family = f" ({info.family})" if info.family else ""
    return f"AI-generated by GAN Studio ({info.action}), model {model}{family}"


def _plus_value(training: str | None) -> str | None:
    if training is None:
        return None
    if training not in _PLUS_FOR_USE:
        raise ValueError(f"training must be one of {', '.join(TRAINING_USES)} or None, got {training!r}")
    return _PLUS_VOCAB + _PLUS_FOR_USE[training]


def xmp_packet(info: OutputInfo, *, training: str | None = DEFAULT_TRAINING) -> str:
    """The XMP packet for an output: IPTC digital source type, creator, PLUS data mining, our fields.

    ``training`` ("allowed", "notAllowed", "constrained" or None to leave plus:DataMining out) becomes
    the PLUS DataMining value (notAllowed: DMI-PROHIBITED-AIMLTRAINING).
    """
    ours = {name: str(getattr(info, field)) for field, name in _XMP_NAMES.items()}
    ours["InstallId"] = info.install_id_hex
    attributes = [
        f"Iptc4xmpExt:DigitalSourceType={quoteattr(DIGITAL_SOURCE_TYPE)}",
        f"xmp:CreatorTool={quoteattr(info.software)}",
        f"xmp:CreateDate={quoteattr(info.created_at)}",
        *(f"ganstudio:{name}={quoteattr(value)}" for name, value in ours.items()),
    ]
    declared = [(prefix, uri) for prefix, uri in _NS.items() if prefix not in ("x", "rdf")]  # x, rdf: on parents
    namespaces = "".join(f"\n    xmlns:{prefix}={quoteattr(uri)}" for prefix, uri in declared)
    plus = _plus_value(training)
    mining = f"\n   <plus:DataMining rdf:resource={quoteattr(plus)}/>" if plus else ""
    attrs = "".join(f"\n    {attribute}" for attribute in attributes)
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
        ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        f'  <rdf:Description rdf:about=""{namespaces}{attrs}>\n'
        f"   <dc:creator><rdf:Seq><rdf:li>{escape(CREATOR)}</rdf:li></rdf:Seq></dc:creator>\n"
        "   <dc:description><rdf:Alt>"
        f'<rdf:li xml:lang="x-default">{escape(description(info))}</rdf:li></rdf:Alt></dc:description>'
        f"{mining}\n"
        "  </rdf:Description>\n"
        " </rdf:RDF>\n"
        "</x:xmpmeta>\n"
        '<?xpacket end="w"?>'
    )


def parse_xmp(packet: str | bytes) -> dict[str, Any]:
    """The properties of an XMP packet as {"{namespace}Name": value} (lists for rdf:Seq/Bag/Alt).

    A packet with a DOCTYPE or entity declarations (an XML bomb in a file from anywhere) or over 4 MB is
    refused with ValueError, as is one that is not well-formed XML.
    """
    text = packet.decode("utf-8", "replace") if isinstance(packet, bytes) else packet
    if len(text) > _MAX_XMP:
        raise ValueError("XMP packet larger than 4 MB")
    if re.search(r"<!(DOCTYPE|ENTITY)", text, re.IGNORECASE):
        raise ValueError("XMP packet declares a DOCTYPE or entities")
    root = ElementTree.fromstring(text.strip().lstrip("\ufeff").strip())
    rdf = "{" + _NS["rdf"] + "}"
    props: dict[str, Any] = {}
    for node in root.iter(rdf + "Description"):
        for key, value in node.attrib.items():
            if key != rdf + "about":
                props.setdefault(key, value)
        for child in node:
            prop: str | list[str]
            if rdf + "resource" in child.attrib:
                prop = child.attrib[rdf + "resource"]
            else:
                items = [li.text or "" for li in child.iter(rdf + "li")]
                prop = items if items else (child.text or "").strip()
            props.setdefault(child.tag, prop)
    return props


def _first(value: Any) -> str | None:
    if isinstance(value, list):
        return str(value[0]) if value else None
    return None if value is None else str(value)


def _info_from_xmp(props: dict[str, Any]) -> dict[str, Any] | None:
    ns = "{" + GAN_NS + "}"
    found = {field: _first(props.get(ns + name)) for field, name in _XMP_NAMES.items()}
    if not any(found.values()):
        return None
    try:
        return OutputInfo.from_dict(found).to_dict()
    except ValueError:
        return {key: value for key, value in found.items() if value is not None}


def png_info(
    info: OutputInfo, base: PngImagePlugin.PngInfo | None = None, *, training: str | None = DEFAULT_TRAINING
) -> PngImagePlugin.PngInfo:
    """PNG text chunks for an output: XMP (iTXt XML:com.adobe.xmp), ``gan-studio`` JSON, Software, Description.

    Chunks of ``base`` are kept, except earlier ones with the same keywords (they describe another image).
    """
    ours = {XMP_KEY.encode(), JSON_KEY.encode(), b"Software", b"Description"}
    result = PngImagePlugin.PngInfo()
    if base is not None:
        for chunk in base.chunks:
            cid, data = chunk[0], chunk[1]
            if cid in (b"tEXt", b"zTXt", b"iTXt") and data.split(b"\0", 1)[0] in ours:
                continue
            result.chunks.append(chunk)
    result.add_itxt(XMP_KEY, xmp_packet(info, training=training), zip=False)
    record = {"format_version": JSON_FORMAT_VERSION, **info.to_dict()}
    result.add_itxt(JSON_KEY, json.dumps(record, sort_keys=True, ensure_ascii=False), zip=False)
    result.add_text("Software", info.software)
    result.add_text("Description", description(info))
    return result


def _load_exif(base: bytes | Image.Exif | None) -> Image.Exif:
    if isinstance(base, Image.Exif):
        return base
    exif = Image.Exif()
    if base:
        try:
            exif.load(base)
        except Exception:  # a damaged EXIF block from a source image is dropped, not fatal
            exif = Image.Exif()
    return exif


def exif_for_output(info: OutputInfo, base: bytes | Image.Exif | None = None) -> bytes:
    """EXIF bytes for an output (JPEG ``exif=``, PNG ``exif=``): ``base`` minus private tags, plus Software
    and ImageDescription. Copyright and the camera settings of a source photo are kept; Orientation is set
    to 1 (upright), since the app applies a source's orientation when it reads the pixels."""
    exif, _removed = strip_private_exif(_load_exif(base))
    if _ORIENTATION_TAG in exif:
        exif[_ORIENTATION_TAG] = 1  # outputs are written upright: every reader here applies the orientation
    exif[_SOFTWARE_TAG] = info.software
    exif[_DESCRIPTION_TAG] = description(info)
    return exif.tobytes()


def save_options(
    info: OutputInfo,
    image_format: str,
    *,
    base_exif: bytes | Image.Exif | None = None,
    base_pnginfo: PngImagePlugin.PngInfo | None = None,
    training: str | None = DEFAULT_TRAINING,
) -> dict[str, Any]:
    """Keyword arguments for ``PIL.Image.save`` that write all of the above in ``image_format``.

    PNG: ``pnginfo`` + ``exif``; JPEG and WebP: ``exif`` + ``xmp``. Other formats: ValueError.
    """
    kind = image_format.upper()
    exif = exif_for_output(info, base_exif)
    if kind == "PNG":
        return {"pnginfo": png_info(info, base_pnginfo, training=training), "exif": exif}
    if kind in ("JPEG", "JPG", "WEBP"):
        return {"exif": exif, "xmp": xmp_packet(info, training=training).encode("utf-8")}
    raise ValueError(f"no output metadata for the {image_format} format (PNG, JPEG or WebP)")


def _copy_exif(exif: Image.Exif) -> Image.Exif:
    copy = Image.Exif()
    copy.load(exif.tobytes())
    return copy


def strip_private_exif(exif: Image.Exif) -> tuple[Image.Exif, list[str]]:
    """A copy of ``exif`` without the :data:`PRIVATE_EXIF` tags, and the names of those it removed.

    ``exif`` itself is not changed. Tags are looked for in IFD0 and the Exif IFD (writers misplace
    them); the GPS IFD goes as a whole. EXIF too damaged to copy is dropped entirely except its
    Orientation, and reported as "EXIF (unreadable)".
    """
    removed: list[str] = []
    try:
        clean = _copy_exif(exif)
        sub = clean.get_ifd(ExifTags.IFD.Exif)
    except Exception:
        orientation = exif.get(_ORIENTATION_TAG)
        clean = Image.Exif()
        if isinstance(orientation, int):
            clean[_ORIENTATION_TAG] = orientation
        return clean, ["EXIF (unreadable)"]
    for tag, name in PRIVATE_EXIF.items():
        present = False
        if tag in clean:
            del clean[tag]
            present = True
        if tag in sub:
            del sub[tag]
            present = True
        if present:
            removed.append(name)
    return clean, removed


def _open(path_or_image: Path | str | Image.Image) -> tuple[Image.Image, bool]:
    if isinstance(path_or_image, Image.Image):
        return path_or_image, False
    path = Path(path_or_image)
    try:
        return Image.open(path), True
    except FileNotFoundError:
        raise DataError(f"{path}: no such image file; check the path.") from None
    except Exception as exc:
        raise DataError(
            f"{path}: not a readable image ({exc}); open it in an image viewer to check it is not damaged."
        ) from None


def _xmp_text(image: Image.Image) -> str | None:
    raw = image.info.get("xmp") or image.info.get(XMP_KEY)
    if not raw:
        return None
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def private_fields(path_or_image: Path | str | Image.Image) -> list[str]:
    """The personal fields an image holds: EXIF names from :data:`PRIVATE_EXIF`, and "XMP GPS location".

    For the import report: what would have travelled with the file. Raises DataError for an unreadable
    file path.
    """
    image, opened = _open(path_or_image)
    try:
        try:
            exif = image.getexif()
        except Exception:
            return ["EXIF (unreadable)"]
        _clean, found = strip_private_exif(exif)
        xmp = _xmp_text(image)
        if xmp and re.search(r"GPS(Latitude|Longitude)", xmp):
            found.append("XMP GPS location")
        return found
    finally:
        if opened:
            image.close()


def data_mining_allows(value: str | None) -> bool | None:
    """What a PLUS DataMining value says about training: False (…PROHIBITED…), True (…ALLOWED…), else None."""
    if not value:
        return None
    upper = value.upper()
    if "PROHIBITED" in upper:
        return False
    if "ALLOWED" in upper:
        return True
    return None  # DMI-UNSPECIFIED or something unknown


def _exif_summary(exif: Image.Exif) -> dict[str, str]:
    summary: dict[str, str] = {}
    try:
        items = list(exif.items()) + list(exif.get_ifd(ExifTags.IFD.Exif).items())
    except Exception:
        return {"error": "EXIF unreadable"}
    for tag, value in items:
        if tag in (ExifTags.IFD.Exif, ExifTags.IFD.Interop):
            continue
        name = PRIVATE_EXIF.get(tag) or ExifTags.TAGS.get(tag, f"0x{tag:04X}")
        if tag == ExifTags.IFD.GPSInfo:
            summary[name] = "present"
        elif isinstance(value, bytes):
            summary[name] = f"<{len(value)} bytes>"
        else:
            summary[name] = str(value)[:200]
    return summary


def read_metadata(path: Path | str) -> dict[str, Any]:
    """What an image file says about its origin.

    Returns {"format", "digital_source_type" (str | None), "gan_studio" (OutputInfo dict | None),
    "xmp" (bool: an XMP packet is present), "data_mining" (PLUS value | None), "exif" (tag name -> text),
    "text" (PNG text chunks other than ours), "private" (personal fields, see :func:`private_fields`),
    "problems" (list of words about unreadable parts)}. PNG, JPEG and WebP are read fully, other formats
    as far as Pillow can. Raises DataError naming the file when it is not a readable image.
    """
    path = Path(path)
    image, _opened = _open(path)
    problems: list[str] = []
    with image:
        if image.format == "PNG" and JSON_KEY not in image.info:
            try:
                image.load()  # chunks after the pixel data are read only with them
            except Exception as exc:
                problems.append(f"pixel data unreadable ({exc})")
        result: dict[str, Any] = {
            "format": image.format,
            "digital_source_type": None,
            "gan_studio": None,
            "xmp": False,
            "data_mining": None,
            "exif": {},
            "text": {},
            "private": [],
            "problems": problems,
        }
        xmp = _xmp_text(image)
        if xmp:
            result["xmp"] = True
            try:
                props = parse_xmp(xmp)
            except (ValueError, ElementTree.ParseError) as exc:
                problems.append(f"XMP unreadable ({exc})")
                props = {}
            result["digital_source_type"] = _first(props.get("{" + _NS["Iptc4xmpExt"] + "}DigitalSourceType"))
            result["data_mining"] = _first(props.get("{" + _NS["plus"] + "}DataMining"))
            result["gan_studio"] = _info_from_xmp(props)
        record = image.info.get(JSON_KEY)
        if record:
            try:
                data = json.loads(record)
                result["gan_studio"] = OutputInfo.from_dict(data).to_dict()
            except (ValueError, TypeError, AttributeError) as exc:
                problems.append(f"gan-studio record unreadable ({exc})")
        try:
            exif = image.getexif()
        except Exception as exc:
            problems.append(f"EXIF unreadable ({exc})")
            exif = Image.Exif()
        result["exif"] = _exif_summary(exif)
        skip = {XMP_KEY, JSON_KEY, "xmp", "exif", "icc_profile"}
        text = getattr(image, "text", None) if image.format == "PNG" else None
        for key, value in (text or {}).items():
            if key not in skip and isinstance(value, str):
                result["text"][key] = value[:500]
        result["private"] = private_fields(image)
    return result
