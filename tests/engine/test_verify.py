"""The image check (engine/provenance/verify.py) on real files written here: a marked, described and
signed PNG, the same re-saved as JPEG, one whose pixels changed after signing, one whose metadata names
another model, a 16-bit PNG, a plain photo, files that are not images; and ``gan-studio-cli verify``."""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from engine.cli import main
from engine.errors import DataError
from engine.provenance import credentials, identity, metadata, watermark
from engine.provenance.metadata import OutputInfo
from engine.provenance.verify import verify_image

CARD = "card-emoji-fastgan-0001"
NAME = "emoji-fastgan"


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    """This installation's identity, models and signing certificates live in tmp_path."""
    monkeypatch.setenv("GAN_STUDIO_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def photo(size: int = 192) -> np.ndarray:
    """A real photograph (scikit-image's astronaut), cropped to ``size`` px, uint8 RGB."""
    return np.ascontiguousarray(skdata.astronaut()[40 : 40 + size, 150 : 150 + size])


def output_info(card: str = CARD, name: str = NAME) -> OutputInfo:
    return OutputInfo(
        action="generate",
        model_name=name,
        model_card_id=card,
        family="fastgan",
        dataset_fingerprint="ab" * 32,
        attestation_id="att-0001",
        install_id=identity.install_id(),
        watermark=True,
    )


def write_output(path: Path, *, sign: bool = True, card: str = CARD, meta_card: str | None = None) -> Path:
    """What GAN Studio writes: watermarked pixels (payload: this install + ``card``'s model), metadata, C2PA."""
    identity.remember_model(card, NAME, "runs/fastgan-1")
    marked = watermark.embed(photo(), identity.pack(identity.install_id(), identity.model_id(card)))
    info = output_info(card=meta_card or card)
    Image.fromarray(marked).save(path, pnginfo=metadata.png_info(info))
    if sign:
        credentials.sign_file(path, info)
    return path


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks, at = [], 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        chunks.append((data[at + 4 : at + 8], data[at + 8 : at + 8 + length]))
        at += 12 + length
    return chunks


def png_bytes(chunks: list[tuple[bytes, bytes]]) -> bytes:
    out = [b"\x89PNG\r\n\x1a\n"]
    for kind, body in chunks:
        out.append(struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body)))
    return b"".join(out)


def replace_pixels(path: Path, pixels: np.ndarray) -> None:
    """Change the pixels of a PNG in place, keeping every other chunk (its metadata and C2PA manifest)."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    new_idat = [body for kind, body in png_chunks(buffer.getvalue()) if kind == b"IDAT"]
    chunks, spliced = [], False
    for kind, body in png_chunks(path.read_bytes()):
        if kind == b"IDAT":
            if not spliced:
                chunks += [(b"IDAT", b) for b in new_idat]
                spliced = True
            continue
        chunks.append((kind, body))
    path.write_bytes(png_bytes(chunks))


def test_a_signed_output_is_found_with_its_model_and_trusted_credentials(tmp_path):
    path = write_output(tmp_path / "out.png")
    report = verify_image(path)
    assert report.status == "found" and not report.tampered, report.lines()
    assert report.watermark.found and report.watermark.confidence > 0.5
    assert report.model_id == identity.model_id(CARD) and report.install_id == identity.install_id()
    assert report.this_install and report.model_name == NAME
    assert report.credentials.state in ("Trusted", "Valid")
    assert report.metadata["gan_studio"]["model_card_id"] == CARD
    assert report.verdict.startswith("AI-generated with GAN Studio: watermark found (confidence ")
    assert f"model '{NAME}' (id {identity.model_id(CARD):06x}) made on this computer" in report.verdict
    text = "\n".join(report.lines())
    assert f"Content credentials: {report.credentials.state} (signed by " in text
    assert "trainedAlgorithmicMedia" in text and "Metadata: AI-generated" in text
    assert "re-saved" not in text
    json.dumps(report.to_dict())  # JSON-ready as it is


def test_after_a_jpeg_resave_the_watermark_remains_and_the_verdict_says_resaved(tmp_path):
    signed = write_output(tmp_path / "out.png")
    jpeg = tmp_path / "resaved.jpg"
    Image.open(signed).convert("RGB").save(jpeg, quality=80)
    report = verify_image(jpeg)
    assert report.status == "found" and not report.tampered, report.lines()
    assert report.watermark.found and report.model_name == NAME
    assert report.credentials.state == "none" and report.metadata.get("gan_studio") is None
    assert any("probably re-saved or edited" in line for line in report.lines())
    assert "Content credentials: none" in report.lines()


def test_pixels_changed_after_signing_read_as_tampered(tmp_path):
    path = write_output(tmp_path / "out.png")
    pixels = np.array(Image.open(path).convert("RGB"))
    pixels[20:60, 20:60] = 255 - pixels[20:60, 20:60]  # paint over a patch, keep every other chunk
    replace_pixels(path, pixels)
    report = verify_image(path)
    assert report.credentials.state == "Invalid", report.credentials
    assert report.status == "tampered" and report.tampered
    assert report.verdict.startswith("Tampered: the pixels changed after the content credentials were signed")
    assert report.watermark.found  # a local edit leaves the mark: who made it is still known
    assert report.model_name == NAME


def test_metadata_naming_another_model_than_the_watermark_reads_as_tampered(tmp_path):
    path = write_output(tmp_path / "relabelled.png", sign=False, meta_card="card-someone-else")
    report = verify_image(path)
    assert report.tampered and report.status == "tampered"
    assert "the metadata names model" in report.verdict
    assert f"watermark says model id {identity.model_id(CARD):06x}" in report.verdict


def test_a_16_bit_png_is_checked_at_16_bits(tmp_path):
    pixels16 = photo().astype(np.uint16) * 257
    marked = watermark.embed(pixels16, identity.pack(identity.install_id(), identity.model_id(CARD)))
    assert marked.dtype == np.uint16
    path = tmp_path / "deep.png"
    assert cv2.imwrite(str(path), cv2.cvtColor(marked, cv2.COLOR_RGB2BGR))
    report = verify_image(path)
    assert report.image.bits == 16 and report.watermark.found, report.watermark
    assert report.model_id == identity.model_id(CARD)
    assert "not a model this computer has used" in report.verdict  # never remembered here


def test_a_plain_photo_has_no_marks(tmp_path, shared_datasets):
    report = verify_image(shared_datasets / "photos-mate" / "Garden.jpg")
    assert report.status == "not_found" and not report.tampered and not report.watermark.found
    assert report.verdict == "No GAN Studio watermark found (this does not prove the image is not AI-generated)"
    assert report.model_id is None and report.credentials.state == "none"


def test_files_that_are_not_images_raise_a_data_error_naming_them(tmp_path, monkeypatch):
    text = tmp_path / "notes.png"
    text.write_text("this is not an image")
    with pytest.raises(DataError, match=r"notes\.png is not an image"):
        verify_image(text)
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match=r"empty\.jpg is empty"):
        verify_image(empty)
    with pytest.raises(DataError, match=r"missing\.png"):
        verify_image(tmp_path / "missing.png")
    big = tmp_path / "big.png"
    Image.fromarray(photo(64)).save(big)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # the decompression-bomb guard, scaled down
    with pytest.raises(DataError, match=r"big\.png is too large to check"):
        verify_image(big)


def test_a_tiny_image_is_checked_without_a_watermark_attempt(tmp_path):
    path = tmp_path / "icon.png"
    Image.fromarray(photo(16)).save(path)
    report = verify_image(path)
    assert report.status == "not_found" and "too small" in report.watermark.detail


def test_cli_verify_checks_every_file_and_reports_the_unreadable_one(tmp_path, capsys):
    signed = write_output(tmp_path / "out.png")
    plain = tmp_path / "plain.png"
    Image.fromarray(photo()).save(plain)
    assert main(["verify", str(signed), str(plain)]) == 0
    out = capsys.readouterr().out
    assert f"{signed}:\n  AI-generated with GAN Studio: watermark found" in out
    assert f"{plain}:\n  No GAN Studio watermark found" in out

    broken = tmp_path / "broken.jpg"
    broken.write_text("not a jpeg")
    assert main(["verify", str(broken), str(signed), "--json"]) == 2
    summary = json.loads(capsys.readouterr().out)
    assert summary["checked"] == 1 and summary["unreadable"] == 1
    first, second = summary["images"]
    assert first["path"] == str(broken) and "broken.jpg" in first["error"]
    assert second["status"] == "found" and second["model_name"] == NAME
    assert second["model_id"] == f"{identity.model_id(CARD):06x}"

    assert main(["verify", str(broken)]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and captured.err.startswith("error: ") and "broken.jpg" in captured.err


def test_an_output_made_without_the_watermark_is_known_by_its_records(tmp_path):
    path = tmp_path / "unmarked.png"
    info = output_info()
    info = OutputInfo.from_dict({**info.to_dict(), "watermark": False})
    Image.fromarray(photo()).save(path, pnginfo=metadata.png_info(info))
    credentials.sign_file(path, info)
    report = verify_image(path)
    assert not report.watermark.found and report.status == "found" and not report.tampered
    assert report.verdict == (
        f"AI-generated with GAN Studio with model '{NAME}' (says its content credentials), "
        "but no watermark found: it was made with the watermark turned off"
    )
