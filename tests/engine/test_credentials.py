"""C2PA content credentials: the local CA + signer, signing PNG/JPEG outputs, reading Trusted / Valid /
Invalid / none, tampering, training permission from C2PA and XMP, and clear errors for bad files."""

from __future__ import annotations

import io
import os
import statistics
import struct
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from PIL import Image

from engine.errors import ConfigError, DataError
from engine.provenance.credentials import (
    CLAIM_GENERATOR,
    PROVENANCE_LABEL,
    read_credentials,
    sign_file,
    signing_identity,
    training_allowed,
)
from engine.provenance.metadata import DIGITAL_SOURCE_TYPE, OutputInfo, save_options, xmp_packet

FORMATS = [("PNG", "png"), ("JPEG", "jpg")]


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The user data folder for the test: never the real one."""
    folder = tmp_path / "home"
    monkeypatch.setenv("GAN_STUDIO_HOME", str(folder))
    return folder


@pytest.fixture
def photo(shared_datasets: Path) -> Image.Image:
    """A crop of a real camera photo."""
    with Image.open(shared_datasets / "photos-mate" / "LadyBird.jpg") as image:
        return image.convert("RGB").crop((200, 150, 360, 270))


def _info(**changes: object) -> OutputInfo:
    values: dict = dict(
        action="generate",
        model_name="Ladybirds",
        model_card_id="card-1234",
        family="fastgan",
        dataset_fingerprint="cd" * 32,
        attestation_id="att-0042",
        install_id=0x123456,
        watermark=True,
    )
    values.update(changes)
    return OutputInfo(**values)


def _write(image: Image.Image, path: Path, fmt: str, info: OutputInfo | None = None) -> Path:
    options = save_options(info, fmt) if info is not None else {}
    image.save(path, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}), **options)
    return path


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        chunks.append((data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]))
        pos += 12 + length
    return chunks


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def _jpeg_app11(data: bytes) -> bytes:
    """The APP11 segments (where C2PA keeps its manifest in a JPEG) of a JPEG file, as bytes."""
    segments, pos = b"", 2
    while pos + 4 <= len(data) and data[pos] == 0xFF and data[pos + 1] != 0xDA:
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if data[pos + 1] == 0xEB:
            segments += data[pos : pos + 2 + length]
        pos += 2 + length
    return segments


def _edit_pixels(path: Path) -> None:
    """Change a patch of pixels and keep the C2PA manifest (and other metadata) of the file, as an editor
    that preserves metadata would."""
    data = path.read_bytes()
    with Image.open(path) as image:
        pixels = np.array(image)
    pixels[10:30, 10:30] = 255 - pixels[10:30, 10:30]
    encoded = io.BytesIO()
    if data.startswith(b"\x89PNG"):
        Image.fromarray(pixels).save(encoded, format="PNG")
        new_idat = b"".join(
            _png_chunk(b"IDAT", body) for kind, body in _png_chunks(encoded.getvalue()) if kind == b"IDAT"
        )
        out, replaced = bytearray(data[:8]), False
        for kind, body in _png_chunks(data):
            if kind == b"IDAT":
                if not replaced:
                    out += new_idat
                    replaced = True
            else:
                out += _png_chunk(kind, body)
        path.write_bytes(bytes(out))
    else:
        manifest = _jpeg_app11(data)
        assert manifest, "the signed JPEG should carry APP11 segments"
        Image.fromarray(pixels).save(encoded, format="JPEG", quality=90)
        fresh = encoded.getvalue()
        path.write_bytes(fresh[:2] + manifest + fresh[2:])


def test_signing_identity_is_made_once_and_reused(tmp_path: Path, home: Path) -> None:
    ident = signing_identity()
    assert ident.folder == home / "credentials"
    names = {p.name for p in ident.folder.iterdir()}
    assert {"ca.pem", "ca.key", "signer.pem", "signer.key"} <= names
    if os.name != "nt":
        assert (ident.key.stat().st_mode & 0o777) == 0o600
        assert ((ident.folder / "ca.key").stat().st_mode & 0o777) == 0o600
    ca = x509.load_pem_x509_certificate(ident.ca_cert.read_bytes())
    leaf = x509.load_pem_x509_certificate(ident.cert.read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert leaf.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    assert ExtendedKeyUsageOID.EMAIL_PROTECTION in leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    leaf.verify_directly_issued_by(ca)

    before = {name: (ident.folder / name).read_bytes() for name in ("ca.pem", "ca.key", "signer.pem", "signer.key")}
    again = signing_identity()
    assert again == ident
    assert {name: (ident.folder / name).read_bytes() for name in before} == before  # reused, not remade

    ident.cert.unlink()  # a lost signing certificate is reissued by the same CA
    renewed = signing_identity()
    assert renewed.ca_cert.read_bytes() == before["ca.pem"]
    assert renewed.cert.read_bytes() != before["signer.pem"]
    x509.load_pem_x509_certificate(renewed.cert.read_bytes()).verify_directly_issued_by(ca)
    assert not [p for p in ident.folder.iterdir() if p.name.startswith(".")]  # no temp or lock files left

    other = signing_identity(tmp_path / "elsewhere")  # an explicit folder is used as given
    assert other.folder == tmp_path / "elsewhere" and other.ca_cert.read_bytes() != before["ca.pem"]


def test_signing_identity_made_once_by_concurrent_callers_and_after_a_stale_lock(tmp_path: Path) -> None:
    folder = tmp_path / "creds"
    with ThreadPoolExecutor(4) as pool:
        idents = list(pool.map(lambda _: signing_identity(folder), range(4)))
    assert len(set(idents)) == 1
    ca = x509.load_pem_x509_certificate(idents[0].ca_cert.read_bytes())
    x509.load_pem_x509_certificate(idents[0].cert.read_bytes()).verify_directly_issued_by(ca)

    lost = tmp_path / "killed"
    lost.mkdir()
    lock = lost / ".creating"  # left by a process killed while it made certificates
    lock.touch()
    os.utime(lock, (time.time() - 600, time.time() - 600))
    assert signing_identity(lost).cert.is_file() and not lock.exists()


@pytest.mark.parametrize(("fmt", "ext"), FORMATS)
def test_signed_output_reads_trusted_here_and_valid_elsewhere(
    tmp_path: Path, photo: Image.Image, fmt: str, ext: str
) -> None:
    info = _info()
    path = _write(photo, tmp_path / f"out.{ext}", fmt, info)
    with Image.open(path) as image:
        pixels_before = np.array(image)
    sign_file(path, info)

    with Image.open(path) as image:  # still the same picture, and still carrying its XMP
        assert np.array_equal(np.array(image), pixels_before)
        assert image.info.get("xmp")
    report = read_credentials(path)
    assert report.state == "Trusted", report.problems
    assert report.problems == [] and not report.tampered
    assert report.claim_generator == CLAIM_GENERATOR == "GAN Studio/0.1.0"
    assert report.actions == ["c2pa.created"] and report.digital_source_type == DIGITAL_SOURCE_TYPE
    assert report.issuer == "GAN Studio"
    provenance = report.assertions[PROVENANCE_LABEL]
    assert provenance["model_card_id"] == "card-1234" and provenance["attestation_id"] == "att-0042"
    assert provenance["dataset_fingerprint"] == "cd" * 32 and provenance["install_id_hex"] == "123456"
    entries = report.assertions["c2pa.training-mining"]["entries"]
    assert {key: value["use"] for key, value in entries.items()} == {
        "c2pa.ai_training": "notAllowed",
        "c2pa.ai_generative_training": "notAllowed",
        "c2pa.ai_inference": "notAllowed",
        "c2pa.data_mining": "notAllowed",
    }
    assert report.training_allowed is False and training_allowed(path) is False
    assert report.summary().startswith("Trusted content credentials")

    # On a machine that trusts another CA, the same file is intact but its signer unknown: Valid.
    stranger = signing_identity(tmp_path / "stranger")
    elsewhere = read_credentials(path, trust_anchors=stranger.ca_cert)
    assert elsewhere.state == "Valid" and elsewhere.codes == ["signingCredential.untrusted"]
    assert not elsewhere.tampered
    # ... and Trusted again once given this installation's ca.pem, as a reader elsewhere would be.
    assert read_credentials(path, trust_anchors=signing_identity().ca_cert).state == "Trusted"


def test_another_installations_ca_is_trusted_once_copied_into_trusted(tmp_path: Path, photo: Image.Image) -> None:
    friend = signing_identity(tmp_path / "friend")  # another installation's certificates
    path = _write(photo, tmp_path / "from-friend.png", "PNG")
    sign_file(path, _info(), identity=friend)
    assert read_credentials(path).state == "Valid"
    trusted = signing_identity().folder / "trusted"
    trusted.mkdir()
    (trusted / "stray.pem").write_text("not a certificate")  # ignored, not fatal
    (trusted / "friend.pem").write_bytes(friend.ca_cert.read_bytes())
    assert read_credentials(path).state == "Trusted"


@pytest.mark.parametrize(("fmt", "ext"), FORMATS)
def test_pixels_changed_after_signing_read_invalid(tmp_path: Path, photo: Image.Image, fmt: str, ext: str) -> None:
    path = _write(photo, tmp_path / f"out.{ext}", fmt, _info())
    sign_file(path, _info())
    _edit_pixels(path)
    report = read_credentials(path)
    assert report.state == "Invalid"
    assert report.tampered
    assert "assertion.dataHash.mismatch" in report.codes
    assert any(problem.startswith("assertion.dataHash.mismatch") for problem in report.problems)
    assert "changed after signing" in report.summary()
    assert training_allowed(path) is False  # a "not allowed" still counts from a broken manifest


def test_damaged_manifest_reads_invalid(tmp_path: Path, photo: Image.Image) -> None:
    path = _write(photo, tmp_path / "out.png", "PNG")
    sign_file(path, _info())
    data = bytearray(path.read_bytes())
    data[data.find(b"caBX") + 30] ^= 0xFF  # inside the manifest store
    path.write_bytes(bytes(data))
    report = read_credentials(path)
    assert report.state == "Invalid" and report.tampered and report.codes == ["manifest.damaged"]


def test_unsigned_files_have_no_credentials(tmp_path: Path, photo: Image.Image, shared_datasets: Path) -> None:
    camera = shared_datasets / "photos-mate" / "Garden.jpg"
    for path in (_write(photo, tmp_path / "plain.png", "PNG"), camera):
        report = read_credentials(path)
        assert report.state == "none" and report.summary() == "No content credentials"
        assert training_allowed(path) is None


def test_training_permission_from_c2pa_and_xmp(tmp_path: Path, photo: Image.Image) -> None:
    allowed = _write(photo, tmp_path / "allowed.png", "PNG")
    sign_file(allowed, _info(), training="allowed")
    assert read_credentials(allowed).training_allowed is True and training_allowed(allowed) is True

    constrained = _write(photo, tmp_path / "constrained.jpg", "JPEG")
    sign_file(constrained, _info(), training="constrained")
    assert training_allowed(constrained) is False  # constraints we cannot check are not assumed met

    # XMP alone (no C2PA): PLUS DataMining as photo agencies and editors write it
    prohibited = tmp_path / "agency.jpg"
    photo.save(prohibited, format="JPEG", xmp=xmp_packet(_info(), training="notAllowed").encode())
    assert b"DMI-PROHIBITED-AIMLTRAINING" in prohibited.read_bytes()
    assert read_credentials(prohibited).state == "none"
    assert training_allowed(prohibited) is False
    open_data = tmp_path / "open.jpg"
    photo.save(open_data, format="JPEG", xmp=xmp_packet(_info(), training="allowed").encode())
    assert training_allowed(open_data) is True

    # XMP that forbids wins over C2PA that allows
    mixed = _write(photo, tmp_path / "mixed.png", "PNG", _info())  # its XMP says DMI-PROHIBITED-AIMLTRAINING
    sign_file(mixed, _info(), training="allowed")
    assert read_credentials(mixed).training_allowed is True and training_allowed(mixed) is False

    # a BMP cannot carry credentials: nothing says no
    bmp = tmp_path / "plain.bmp"
    photo.save(bmp, format="BMP")
    assert training_allowed(bmp) is None

    with pytest.raises(ConfigError, match="maybe"):
        sign_file(allowed, _info(), training="maybe")


def test_bad_files_give_data_errors_naming_them(tmp_path: Path, photo: Image.Image) -> None:
    bmp = tmp_path / "picture.bmp"
    photo.save(bmp, format="BMP")
    with pytest.raises(DataError, match=r"picture\.bmp.*PNG, JPEG and WebP"):
        sign_file(bmp, _info())
    with pytest.raises(DataError, match=r"picture\.bmp.*cannot carry content credentials"):
        read_credentials(bmp)

    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    with pytest.raises(DataError, match=r"broken\.png"):
        sign_file(broken, _info())
    assert broken.read_bytes() == b"\x89PNG\r\n\x1a\n" + b"\x00" * 40  # left exactly as it was
    with pytest.raises(DataError, match=r"broken\.png"):
        read_credentials(broken)
    with pytest.raises(DataError, match=r"broken\.png"):
        training_allowed(broken)

    signed = _write(photo, tmp_path / "cut.png", "PNG")
    sign_file(signed, _info())
    signed.write_bytes(signed.read_bytes()[: signed.stat().st_size // 2])
    with pytest.raises(DataError, match=r"cut\.png"):
        read_credentials(signed)
    with pytest.raises(DataError, match=r"missing\.png"):
        read_credentials(tmp_path / "missing.png")
    with pytest.raises(DataError, match=r"missing\.png"):
        sign_file(tmp_path / "missing.png", _info())
    not_pem = tmp_path / "anchors.pem"
    not_pem.write_text("hello")
    with pytest.raises(DataError, match=r"anchors\.pem"):
        read_credentials(bmp, trust_anchors=not_pem)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_signing_is_quick_and_offline(tmp_path: Path, photo: Image.Image) -> None:
    """Signing uses no timestamp authority or other network service, and takes milliseconds per image."""
    info = _info()
    signing_identity()  # made once, outside the timing
    times = []
    for index in range(8):
        path = _write(photo, tmp_path / f"out{index}.png", "PNG", info)
        start = time.perf_counter()
        sign_file(path, info)
        times.append(time.perf_counter() - start)
    assert statistics.median(times) < 0.25, times
    assert read_credentials(tmp_path / "out7.png").state == "Trusted"
