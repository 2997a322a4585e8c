"""Consent attestations: the user's statement that they may train on a dataset, bound to its files.

An attestation records the rights basis and whether identifiable people appear (and consented), who
attested and when, and the dataset fingerprint at that moment. It lives beside the dataset in
consent.json as a history (oldest first), so earlier statements stay reviewable. Training calls
:func:`require_attestation`, which refuses when there is none or when the files changed since.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from engine.data import dataset_fingerprint
from engine.errors import ConfigError, ConsentError
from engine.fsutil import atomic_write_json

RIGHTS: tuple[str, ...] = ("own", "licensed", "public-domain")
PEOPLE: tuple[str, ...] = ("none", "consented")
CONSENT_NAME = "consent.json"
CONSENT_FORMAT_VERSION = 1
_MAX_NOTE = 2000


def _attest_hint(dataset_dir: Path | str) -> str:
    return (
        f"gan-studio-cli attest {dataset_dir} --rights {'|'.join(RIGHTS)} "
        f"--people {'|'.join(PEOPLE)} (or the Dataset page's Consent button)"
    )


ATTEST_GUI_HINT = "click Consent… on the Dataset page (or on the Train page) and record it"
"""The GUI's words for :func:`_attest_hint`."""


@dataclass(frozen=True)
class Attestation:
    """One signed statement about a dataset at a given fingerprint."""

    id: str
    fingerprint: str
    rights: str
    people: str
    attested_by: str
    created_at: str
    note: str = ""
    format_version: int = CONSENT_FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        """Plain dict as stored in consent.json."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Attestation:
        """Rebuild from consent.json; ValueError when fields are missing or from a newer format."""
        version = int(data.get("format_version", 1))
        if version > CONSENT_FORMAT_VERSION:
            raise ValueError(f"attestation format {version} is newer than this GAN Studio reads")
        fields = ("id", "fingerprint", "rights", "people", "attested_by", "created_at")
        missing = [name for name in fields if not isinstance(data.get(name), str)]
        if missing:
            raise ValueError(f"attestation lacks {', '.join(missing)}")
        return cls(**{name: data[name] for name in fields}, note=str(data.get("note", "")), format_version=version)

    @property
    def created_label(self) -> str:
        """``created_at`` for messages, e.g. ``2025-11-24 02:42 UTC``."""
        try:
            moment = datetime.strptime(self.created_at, "%Y-%m-%dT%H:%M:%SZ")
        except ValueError:
            return self.created_at
        return moment.strftime("%Y-%m-%d %H:%M UTC")


def consent_path(dataset_dir: Path | str) -> Path:
    """Where the attestation history of ``dataset_dir`` is stored."""
    return Path(dataset_dir).expanduser() / CONSENT_NAME


def attestation_history(dataset_dir: Path | str) -> list[Attestation]:
    """All attestations of the dataset, oldest first ([] when none was made).

    Raises ConsentError naming consent.json when the file exists but cannot be read.
    """
    path = consent_path(dataset_dir)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise _unreadable(path, exc, dataset_dir) from None
    try:
        return [Attestation.from_dict(item) for item in data["attestations"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise _unreadable(path, exc, dataset_dir) from None


def _unreadable(path: Path, exc: Exception, dataset_dir: Path | str) -> ConsentError:
    problem = f"{path} cannot be read ({exc}); move it aside to keep it for review, then attest again"
    return ConsentError(f"{problem}: {_attest_hint(dataset_dir)}", gui=f"{problem}: {ATTEST_GUI_HINT}")


def current_attestation(dataset_dir: Path | str) -> Attestation | None:
    """The latest attestation, whether or not it still matches the files; None when there is none."""
    history = attestation_history(dataset_dir)
    return history[-1] if history else None


def attest(dataset_dir: Path | str, *, rights: str, people: str, attested_by: str, note: str = "") -> Attestation:
    """Record that ``attested_by`` may train on the dataset's current files and return the record.

    ``rights`` is one of RIGHTS, ``people`` one of PEOPLE (ConfigError naming the allowed values
    otherwise). The dataset must be prepared (DataError otherwise). Earlier attestations are kept.
    """
    _check_values(rights, people, attested_by, note)
    record = Attestation(
        id=uuid.uuid4().hex,
        fingerprint=dataset_fingerprint(dataset_dir),
        rights=rights,
        people=people,
        attested_by=attested_by.strip(),
        note=note.strip(),
        created_at=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    history = attestation_history(dataset_dir) + [record]
    atomic_write_json(
        consent_path(dataset_dir),
        {
            "format_version": CONSENT_FORMAT_VERSION,
            "attestations": [item.to_dict() for item in history],
        },
    )
    return record


def _check_values(rights: str, people: str, attested_by: str, note: str) -> None:
    if rights not in RIGHTS:
        raise ConfigError(
            f"rights must be one of {', '.join(RIGHTS)} (own: you made the images; "
            f"licensed: a licence allows training; public-domain); got {rights!r}."
        )
    if people not in PEOPLE:
        raise ConfigError(
            f"people must be one of {', '.join(PEOPLE)} (none: no identifiable people; "
            f"consented: identifiable people appear and agreed); got {people!r}."
        )
    if not isinstance(attested_by, str) or not attested_by.strip():
        raise ConfigError("attested_by must name the person making the attestation; it is empty.")
    if len(note) > _MAX_NOTE:
        raise ConfigError(f"note is {len(note)} characters long; keep it under {_MAX_NOTE}.")


def require_attestation(dataset_dir: Path | str) -> Attestation:
    """Return the latest attestation when it matches the dataset's current files.

    Raises ConsentError saying how to attest when there is none, or when the dataset's fingerprint
    changed since (files added, removed or edited and re-imported).
    """
    record = current_attestation(dataset_dir)
    if record is None:
        problem = (
            f"no consent attestation for the dataset {dataset_dir}; before training, confirm your rights to the images"
        )
        raise ConsentError(f"{problem}: {_attest_hint(dataset_dir)}", gui=f"{problem}: {ATTEST_GUI_HINT}")
    if record.fingerprint != dataset_fingerprint(dataset_dir):
        problem = (
            f"the files of {dataset_dir} changed since the attestation on {record.created_label}; "
            "review them and attest again"
        )
        raise ConsentError(f"{problem}: {_attest_hint(dataset_dir)}", gui=f"{problem}: {ATTEST_GUI_HINT}")
    return record
