"""Mark and write an output image: the one path every writer of the app goes through.

``provenance_for(model.identity, action)`` says what an output records; ``save_png`` then hides the
watermark in the pixels (engine/provenance/watermark.py), adds the metadata (XMP with IPTC's
trainedAlgorithmicMedia, the ``gan-studio`` record, EXIF without personal fields: metadata.py), signs the
file's bytes with C2PA content credentials (credentials.py) and writes the result atomically. A writer with
its own encoder (the 16-bit PNGs of upscale_files) uses :meth:`Provenance.mark`, :meth:`Provenance.text`,
:meth:`Provenance.exif` and :meth:`Provenance.sign` the same way.

Turning the watermark off (the run's ``watermark`` setting, or ``--no-watermark`` for one command) is
recorded: the metadata and the credentials say ``watermark: false``.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin

import engine
from engine.fsutil import atomic_write_bytes
from engine.provenance import identity, metadata
from engine.provenance.model_info import ModelIdentity

SOFTWARE = f"GAN Studio {engine.__version__}"


@dataclass(frozen=True)
class Provenance:
    """What one kind of output records, and the switches for its watermark and credentials."""

    info: metadata.OutputInfo
    watermark: bool = True
    credentials: bool = True
    training: str = metadata.DEFAULT_TRAINING
    """What the output allows for AI training and data mining ("notAllowed" by default)."""
    premarked: bool = False
    """The model's graph already marked the pixels (an ONNX export with the watermark in its graph)."""

    @property
    def payload(self) -> int:
        """The 48-bit watermark payload: this install's id and the model's id."""
        return identity.pack(self.info.install_id, identity.model_id(self.info.model_card_id))

    def mark(self, pixels: np.ndarray) -> np.ndarray:
        """``pixels`` (uint8 or uint16, grey/RGB/RGBA) with the invisible watermark, when it is on."""
        if not self.watermark or self.premarked:
            return pixels
        from engine.provenance import watermark

        return watermark.embed(pixels, self.payload)

    def fresh(self) -> Provenance:
        """The same provenance with this moment as its creation time (one per written file)."""
        return replace(self, info=replace(self.info, created_at=""))

    def text(self) -> dict[str, str]:
        """PNG text entries (keyword -> text) for writers with their own PNG encoder."""
        record = {"format_version": metadata.JSON_FORMAT_VERSION, **self.info.to_dict()}
        return {
            metadata.XMP_KEY: metadata.xmp_packet(self.info, training=self.training),
            metadata.JSON_KEY: json.dumps(record, sort_keys=True, ensure_ascii=False),
            "Software": self.info.software,
            "Description": metadata.description(self.info),
        }

    def exif(self, base: bytes | None = None) -> bytes:
        """EXIF for the output: ``base`` (a source image's) without personal fields, plus Software/Description."""
        return metadata.exif_for_output(self.info, base)

    def sign(self, data: bytes, name: str) -> bytes:
        """The encoded file ``data`` with content credentials embedded (unchanged when they are off)."""
        if not self.credentials:
            return data
        from engine.provenance import credentials

        return credentials.sign_bytes(data, self.info, training=self.training, name=name)


def provenance_for(
    model: ModelIdentity, action: str, *, watermark: bool | None = None, credentials: bool = True
) -> Provenance:
    """The provenance of images ``model`` makes by ``action`` ("generate", "translate", "upscale", ...).

    ``watermark`` None follows the model's own setting; False turns it off for this output (recorded).
    The model is remembered in this installation's models.jsonl, so checking an image here can name it.
    """
    identity.remember_model(model.card_id, model.name)
    install = identity.install_id()
    premarked = model.graph_payload is not None
    if premarked:
        # the graph marked the images with the exporting installation's id, which the metadata repeats;
        # and a mark inside the graph cannot be left out, so the metadata says it is there
        install, watermark = identity.unpack(int(model.graph_payload or 0))[0], True
    info = metadata.OutputInfo(
        action=action,
        model_name=model.name,
        model_card_id=model.card_id,
        family=model.family,
        dataset_fingerprint=model.dataset_fingerprint,
        attestation_id=model.attestation_id,
        install_id=install,
        watermark=model.watermark if watermark is None else watermark,
        software=SOFTWARE,
    )
    return Provenance(info, watermark=info.watermark, credentials=credentials, premarked=premarked)


def encode_png(
    pixels: np.ndarray, provenance: Provenance | None, *, base_pnginfo: PngImagePlugin.PngInfo | None = None
) -> bytes:
    """An 8-bit PNG file of (H, W[, C]) uint8 ``pixels``, with the provenance's metadata (not marked here)."""
    array = pixels[:, :, 0] if pixels.ndim == 3 and pixels.shape[2] == 1 else pixels
    buffer = io.BytesIO()
    if provenance is None:
        Image.fromarray(array).save(buffer, format="PNG", pnginfo=base_pnginfo)
    else:
        options = metadata.save_options(provenance.info, "PNG", base_pnginfo=base_pnginfo, training=provenance.training)
        Image.fromarray(array).save(buffer, format="PNG", **options)
    return buffer.getvalue()


def save_png(pixels: np.ndarray, path: Path | str, provenance: Provenance | None) -> None:
    """Write uint8 ``pixels`` to ``path`` as PNG atomically: marked, described and signed per ``provenance``
    (None: a plain PNG, for files that are not outputs, such as training previews)."""
    path = Path(path)
    if provenance is None:
        atomic_write_bytes(path, encode_png(pixels, None))
        return
    provenance = provenance.fresh()
    data = encode_png(provenance.mark(pixels), provenance)
    atomic_write_bytes(path, provenance.sign(data, str(path)))
