"""Faces flagged at import, files whose credentials forbid training left out, personal EXIF left behind,
and the consent rule that a dataset with faces needs "people consented" (or a recorded review)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image

from engine.cli import main as cli_main
from engine.consent import attest, consent_path, flagged_faces, require_attestation
from engine.data import import_folder, load_dataset, read_report
from engine.data.decode import apply_alpha
from engine.data.faces import detect_faces
from engine.data.manifest import manifest_path
from engine.errors import ConsentError
from engine.provenance.credentials import sign_file
from engine.provenance.metadata import OutputInfo, xmp_packet

GPS_IFD, SERIAL, OWNER = 0x8825, 0xA431, 0xA430


@pytest.fixture(scope="module")
def lfw() -> np.ndarray:
    """scikit-image's offline LFW subset: 100 face crops then 100 non-face crops, 25x25 grey."""
    return (skimage.data.lfw_subset() * 255).round().astype(np.uint8)


def _on_white(path: Path) -> Image.Image:
    with Image.open(path) as image:
        return apply_alpha(image.convert("RGBA"), "white")


@pytest.mark.parametrize("side", [25, 160])  # as stored, and enlarged (soft) as a resized copy would be
def test_real_faces_are_flagged_and_non_faces_are_not(lfw: np.ndarray, side: int) -> None:
    def flagged(crops: np.ndarray) -> int:
        return sum(bool(detect_faces(Image.fromarray(c).resize((side, side), Image.Resampling.BICUBIC))) for c in crops)

    faces, non_faces = flagged(lfw[:100]), flagged(lfw[100:])
    assert faces >= 75, f"only {faces} of 100 LFW faces flagged at {side} px"
    assert non_faces <= 1, f"{non_faces} of 100 LFW non-faces flagged at {side} px"
    (box,) = detect_faces(Image.fromarray(skimage.data.astronaut()))
    centre = (box.x + box.w / 2, box.y + box.h / 2)
    assert 190 < centre[0] < 260 and 90 < centre[1] < 150 and 60 < box.w < 140  # her face, not her badge


def test_boxes_are_reported_in_the_original_pixels() -> None:
    astronaut = Image.fromarray(skimage.data.astronaut())
    (full,) = detect_faces(astronaut)
    (half,) = detect_faces(astronaut.resize((256, 256)), original_size=(512, 512))
    assert abs(full.x - half.x) <= 12 and abs(full.w - half.w) <= 16


def test_drawings_digits_and_photos_without_people_are_not_flagged(shared_datasets: Path) -> None:
    emoji = shared_datasets / "emoji-google-64"
    files = sorted((emoji / "smileys-emotion").glob("*.png"))  # cartoon faces: the hardest drawings
    files += sorted((emoji / "people-body").glob("*.png"))[::8]  # small drawn figures
    files += [f for f in sorted(emoji.rglob("*.png"))[::6] if f.parent.name not in ("smileys-emotion", "people-body")]
    files += sorted((shared_datasets / "mnist-5k").rglob("*.png"))[::10]
    files += sorted((shared_datasets / "photos-mate").glob("*.jpg"))
    flagged = [str(f.relative_to(shared_datasets)) for f in files if detect_faces(_on_white(f))]
    assert len(files) > 1000
    assert flagged == []


def _info() -> OutputInfo:
    return OutputInfo(
        action="generate",
        model_name="Someone else's",
        model_card_id="card-9",
        family="fastgan",
        dataset_fingerprint="ab" * 32,
        attestation_id="att-9",
        install_id=0x42,
        watermark=True,
    )


def _camera_exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "Camera maker"
    exif[OWNER] = "Anna Example"
    exif[SERIAL] = "SN-0012345"
    exif[GPS_IFD] = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0)}
    return exif


@pytest.fixture
def folder(tmp_path: Path, shared_datasets: Path, lfw: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Source images: two with faces, three photos without people (one with GPS and serial number
    EXIF), one whose XMP forbids AI training and one whose C2PA credentials do."""
    monkeypatch.setenv("GAN_STUDIO_HOME", str(tmp_path / "home"))
    src = tmp_path / "src"
    src.mkdir()
    Image.fromarray(skimage.data.astronaut()).save(src / "astronaut.png")
    Image.fromarray(lfw[3]).resize((64, 64), Image.Resampling.BICUBIC).save(src / "lfw-face.png")
    photos = sorted((shared_datasets / "photos-mate").glob("*.jpg"))
    crops = []
    for k, path in enumerate(photos[:5]):
        with Image.open(path) as image:
            crops.append(image.convert("RGB").resize((160, 120)))
        if k < 3:
            crops[-1].save(src / f"photo{k}.jpg", quality=92, **({"exif": _camera_exif()} if k == 0 else {}))
    crops[3].save(src / "agency.jpg", quality=92, xmp=xmp_packet(_info(), training="notAllowed").encode())
    crops[4].save(src / "signed.png")
    sign_file(src / "signed.png", _info(), training="notAllowed")
    return src


def test_import_flags_faces_leaves_out_forbidden_files_and_strips_personal_exif(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "dataset"
    report = import_folder(folder, out, size=32)
    assert sorted(report.faces) == ["astronaut.png", "lfw-face.png"]
    x, y, w, h = report.faces["astronaut.png"][0]
    assert 0 <= x < 512 and 0 <= y < 512 and w > 50  # in the original's pixels, not the 32 px training size
    assert report.not_allowed == ["agency.jpg", "signed.png"]
    reasons = dict(report.skipped)
    assert "must not be used to train" in reasons["agency.jpg"] and "must not be used to train" in reasons["signed.png"]
    assert report.kept == 5
    assert set(report.private_metadata) == {"photo0.jpg"}
    assert {"GPSInfo", "BodySerialNumber", "CameraOwnerName"} <= set(report.private_metadata["photo0.jpg"])
    summary = report.summary()
    assert "Faces: 2 images may show a person" in summary
    assert "whose content credentials forbid training, e.g. agency.jpg" in summary
    assert "GPSInfo (1 file)" in summary

    # what was stripped travels in report.json; the prepared dataset is pixels only
    assert read_report(out).faces == report.faces and read_report(out).private_metadata == report.private_metadata
    dataset = load_dataset(out)
    assert len(dataset) == 5
    everything = b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file() and p.name != "report.json")
    assert b"Anna Example" not in everything and b"SN-0012345" not in everything

    # a re-import reuses every file, verdicts included
    again = import_folder(folder, out, size=32)
    assert again.decoded == 0 and again.faces == report.faces and again.not_allowed == report.not_allowed
    assert again.private_metadata == report.private_metadata


def test_files_prepared_before_faces_were_looked_for_are_examined_again(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "dataset"
    import_folder(folder, out, size=32)
    manifest = json.loads(manifest_path(out).read_text())
    for entry in manifest["files"]:
        for key in ("faces", "faces_version", "private"):
            entry.pop(key, None)
    manifest_path(out).write_text(json.dumps(manifest))
    again = import_folder(folder, out, size=32)
    assert again.decoded == 5 and sorted(again.faces) == ["astronaut.png", "lfw-face.png"]


def test_a_dataset_with_faces_needs_people_consented_or_a_recorded_review(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "dataset"
    import_folder(folder, out, size=32)
    assert sorted(flagged_faces(out)) == ["astronaut.png", "lfw-face.png"]
    with pytest.raises(ConsentError, match=r"2 image\(s\) .* may show a face .*--people consented") as caught:
        attest(out, rights="own", people="none", attested_by="tester")
    assert "tick" in caught.value.gui and "--faces-reviewed" not in caught.value.gui
    assert not consent_path(out).exists()  # nothing recorded

    consented = attest(out, rights="own", people="consented", attested_by="tester")
    assert require_attestation(out).id == consented.id and consented.faces == 2

    reviewed = attest(out, rights="own", people="none", attested_by="tester", faces_reviewed=True)
    assert reviewed.faces == 2 and reviewed.faces_reviewed
    assert require_attestation(out).id == reviewed.id

    # an attestation written before faces were checked ("none", no review) no longer lets training start
    data = json.loads(consent_path(out).read_text())
    data["attestations"][-1].pop("faces_reviewed")
    consent_path(out).write_text(json.dumps(data))
    with pytest.raises(ConsentError, match="may show a face"):
        require_attestation(out)


def test_cli_attest_takes_faces_reviewed(folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "dataset"
    assert cli_main(["import", str(folder), "--out", str(out), "--size", "32"]) == 0
    assert "--people consented" in capsys.readouterr().out  # the suggested next step
    assert cli_main(["attest", str(out), "--rights", "own", "--people", "none"]) != 0
    assert "may show a face" in capsys.readouterr().err
    assert cli_main(["attest", str(out), "--rights", "own", "--people", "none", "--faces-reviewed", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["faces"] == 2 and record["faces_reviewed"] is True
