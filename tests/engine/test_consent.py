"""Consent attestations: bound to the dataset fingerprint, refused when missing or stale, kept as history."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.consent import (
    PEOPLE,
    RIGHTS,
    Attestation,
    attest,
    attestation_history,
    current_attestation,
    require_attestation,
)
from engine.data import dataset_fingerprint, import_folder
from engine.errors import ConfigError, ConsentError, DataError


def write_images(folder: Path, count: int = 4) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


@pytest.fixture()
def dataset(tmp_path: Path) -> Path:
    import_folder(write_images(tmp_path / "images"), tmp_path / "dataset", size=16)
    return tmp_path / "dataset"


def test_attest_then_require(dataset):
    record = attest(dataset, rights="own", people="none", attested_by="Ada", note="my sketches")
    assert require_attestation(dataset) == record == current_attestation(dataset)
    assert record.fingerprint == dataset_fingerprint(dataset) and len(record.id) == 32
    assert record.created_at.endswith("Z") and record.note == "my sketches"
    stored = json.loads((dataset / "consent.json").read_text())
    assert stored["attestations"][0] == record.to_dict()
    assert Attestation.from_dict(record.to_dict()) == record


def test_missing_attestation_says_how_to_attest(dataset):
    assert current_attestation(dataset) is None and attestation_history(dataset) == []
    with pytest.raises(ConsentError, match="gan-studio-cli attest") as info:
        require_attestation(dataset)
    assert "--rights own|licensed|public-domain --people none|consented" in str(info.value)


@pytest.mark.parametrize("field, value", [("rights", "mine"), ("people", "some")])
def test_bad_values_raise_config_error_naming_the_choices(dataset, field, value):
    values = {"rights": "own", "people": "none", field: value}
    allowed = RIGHTS if field == "rights" else PEOPLE
    with pytest.raises(ConfigError, match=", ".join(allowed)):
        attest(dataset, attested_by="Ada", **values)
    with pytest.raises(ConfigError, match="attested_by"):
        attest(dataset, rights="own", people="none", attested_by="  ")
    assert not (dataset / "consent.json").exists()


def test_changed_files_invalidate_the_attestation_and_history_keeps_both(dataset, tmp_path):
    first = attest(dataset, rights="licensed", people="consented", attested_by="Ada")
    Image.new("RGB", (24, 24), (200, 10, 10)).save(tmp_path / "images" / "new.png")
    import_folder(tmp_path / "images", dataset, size=16)
    with pytest.raises(ConsentError, match="changed since the attestation on .* attest again"):
        require_attestation(dataset)
    assert current_attestation(dataset) == first  # the latest one is returned even when stale
    second = attest(dataset, rights="own", people="none", attested_by="Ada")
    assert require_attestation(dataset) == second
    assert attestation_history(dataset) == [first, second]


def test_attest_requires_a_prepared_dataset(tmp_path):
    with pytest.raises(DataError, match="not a prepared dataset"):
        attest(tmp_path, rights="own", people="none", attested_by="Ada")


def test_unreadable_consent_file_is_reported(dataset):
    (dataset / "consent.json").write_text("{ not json")
    with pytest.raises(ConsentError, match="consent.json cannot be read"):
        require_attestation(dataset)
