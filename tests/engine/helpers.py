"""Shared test helpers: tiny image folders written with PIL, imported and attested datasets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from engine.consent import attest
from engine.data import import_folder


def write_shapes_folder(folder: Path, per_class: int = 12, size: int = 40, classes=("circles", "squares")) -> Path:
    """Class subfolders of coloured circles/squares on random backgrounds (real PNG files)."""
    rng = np.random.default_rng(0)
    for ci, name in enumerate(classes):
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            bg = tuple(int(v) for v in rng.integers(0, 255, 3))
            fg = tuple(int(v) for v in rng.integers(0, 255, 3))
            img = Image.new("RGB", (size, size), bg)
            draw = ImageDraw.Draw(img)
            a, b = int(rng.integers(2, size // 3)), int(rng.integers(2 * size // 3, size - 2))
            (draw.ellipse if ci % 2 == 0 else draw.rectangle)([a, a, b, b], fill=fg)
            img.save(folder / name / f"{i:03d}.png")
    return folder


def make_dataset(tmp: Path, size: int = 32, attested: bool = True, **kw) -> Path:
    """Write, import and (optionally) attest a tiny two-class dataset; returns the dataset folder."""
    source = write_shapes_folder(tmp / "images", **kw)
    dataset = tmp / "dataset"
    import_folder(source, dataset, size=size)
    if attested:
        attest(dataset, rights="own", people="none", attested_by="test")
    return dataset


def tiny_config(dataset: Path, family: str = "dcgan", **overrides):
    """A TrainConfig for a model small enough to train a few steps on CPU in well under a second."""
    from engine.families import get_family
    from engine.runs import TrainConfig

    fields = dict(
        dataset=str(dataset),
        family=family,
        family_options=dict(get_family(family).tiny_options),
        batch_size=8,
        steps=6,
        preview_every=3,
        preview_count=4,
        checkpoint_every=3,
        log_every=1,
        r1_gamma=1.0,
        r1_every=2,
        seed=1,
        conditional=True,
    )
    fields.update(overrides)
    return TrainConfig(**fields)


def write_ab_folder(folder: Path, count: int = 8, size: int = 40, unmatched: int = 0) -> Path:
    """A/ (grey shapes) and B/ (the same shapes in colour) with matching names, plus ``unmatched`` extra B files."""
    shapes = write_shapes_folder(folder / "_colour", per_class=count, size=size, classes=("b",))
    (folder / "A").mkdir(parents=True, exist_ok=True)
    (folder / "B").mkdir(parents=True, exist_ok=True)
    for path in sorted((shapes / "b").iterdir()):
        image = Image.open(path)
        image.convert("L").convert("RGB").save(folder / "A" / path.name)
        image.save(folder / "B" / path.name)
    for i in range(unmatched):
        Image.new("RGB", (size, size), (200, 10 * i, 30)).save(folder / "B" / f"extra-{i}.png")
    for path in (shapes / "b").iterdir():
        path.unlink()
    (shapes / "b").rmdir()
    shapes.rmdir()
    return folder


def make_ab_dataset(tmp: Path, size: int = 32, **kw) -> Path:
    """Import and attest an A/B folder (see write_ab_folder); returns the dataset folder."""
    source = write_ab_folder(tmp / "ab", **kw)
    dataset = tmp / "ab-dataset"
    import_folder(source, dataset, size=size)
    attest(dataset, rights="own", people="none", attested_by="test")
    return dataset


def marked_as_by_export(images: np.ndarray, ort_runner) -> np.ndarray:
    """A PyTorch runner's (N, H, W, C) uint8 ``images`` watermarked the way ``ort_runner``'s graph marks its own.

    A generator export marks inside its graph (engine/export/onnx_export.py), the PyTorch runner leaves that
    to the writers: parity between the two is parity after this mark (to uint8 rounding).
    """
    from engine.provenance.watermark import embed

    payload = ort_runner.identity.graph_payload
    assert payload is not None, "the export should carry its watermark in the graph"
    return np.stack([embed(image, payload) for image in images])


def assert_output_provenance(path: Path, *, watermark: bool = True, action: str | None = None) -> dict:
    """An image a writer made says so: the gan-studio record (watermark on or off as expected), IPTC's
    trainedAlgorithmicMedia, and content credentials that check out. Returns the gan-studio record."""
    from engine.provenance import credentials, metadata

    found = metadata.read_metadata(path)
    record = found["gan_studio"]
    assert record is not None, f"{path} has no gan-studio record"
    info = metadata.OutputInfo.from_dict(record)
    assert info.watermark is watermark, record
    assert found["digital_source_type"] == metadata.DIGITAL_SOURCE_TYPE
    if action is not None:
        assert record["action"] == action, record
    signed = credentials.read_credentials(path)
    assert signed.state in ("Trusted", "Valid"), (signed.state, signed.problems)
    assert "c2pa.created" in signed.actions
    return record


def watermark_payload_of(record: dict) -> int:
    """The 48-bit payload the watermark of an output with this gan-studio record carries."""
    from engine.provenance import identity, metadata

    info = metadata.OutputInfo.from_dict(record)
    return identity.pack(int(info.install_id), identity.model_id(info.model_card_id))
