"""Consent attestations: the user's statement that they may train on a dataset, bound to its files.

An attestation records the rights basis and whether identifiable people appear (and consented), who
attested and when, and the dataset fingerprint at that moment. When the import flagged images that
may show a face (engine.data.faces), "no identifiable people" is accepted only from someone who
says they looked at those images (``faces_reviewed``); otherwise the dataset needs "consented".
The history lives beside the dataset in consent.json (oldest first), so earlier statements stay
reviewable. Training calls :func:`require_attestation`, which refuses when there is none, when the
files changed since, or when flagged faces were neither consented nor reviewed.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from engine.data import dataset_fingerprint
from engine.data.manifest import read_manifest
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
    faces: int = 0  # images the import flagged as possibly showing a face, when attested
    faces_reviewed: bool = False  # the attester looked at them: none shows a real, identifiable person
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
        return cls(
            **{name: data[name] for name in fields},
            note=str(data.get("note", "")),
            faces=int(data.get("faces", 0)),
            faces_reviewed=bool(data.get("faces_reviewed", False)),
            format_version=version,
        )

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


def flagged_faces(dataset_dir: Path | str) -> dict[str, list[list[int]]]:
    """The dataset's files that may show a face, with their boxes ([x, y, w, h] in the file's pixels).

    Read from dataset.json, which binds them to the fingerprint; {} for datasets imported before
    faces were looked for. Raises DataError when the folder is not a dataset.
    """
    files = read_manifest(dataset_dir).get("files", [])
    return {e["path"]: e["faces"] for e in files if e.get("status") == "kept" and e.get("faces")}


def _faces_problem(dataset_dir: Path | str, faces: dict[str, list[list[int]]]) -> ConsentError:
    examples = ", ".join(list(faces)[:3])
    problem = (
        f'{len(faces)} image(s) of {dataset_dir} may show a face (e.g. {examples}), so "no identifiable people" '
        "needs a look first"
    )
    cli = (
        f"{problem}: if identifiable people appear, attest with --people consented once each of them agreed; if "
        "none shows a real, identifiable person (drawings, statues, false alarms), attest with --faces-reviewed "
        "after looking at them; or remove them and import again"
    )
    gui = (
        f'{problem}: choose "consented" once each person agreed, or tick "I looked at the flagged images" '
        "if none shows a real, identifiable person; or remove them and import again"
    )
    return ConsentError(cli, gui=gui)


def attest(
    dataset_dir: Path | str,
    *,
    rights: str,
    people: str,
    attested_by: str,
    note: str = "",
    faces_reviewed: bool = False,
) -> Attestation:
    """Record that ``attested_by`` may train on the dataset's current files and return the record.

    ``rights`` is one of RIGHTS, ``people`` one of PEOPLE (ConfigError naming the allowed values
    otherwise). The dataset must be prepared (DataError otherwise). When the import flagged faces,
    people="none" raises ConsentError unless ``faces_reviewed`` says the attester looked at those
    images and none shows a real, identifiable person. Earlier attestations are kept.
    """
    _check_values(rights, people, attested_by, note)
    faces = flagged_faces(dataset_dir)
    if faces and people == "none" and not faces_reviewed:
        raise _faces_problem(dataset_dir, faces)
    record = Attestation(
        id=uuid.uuid4().hex,
        fingerprint=dataset_fingerprint(dataset_dir),
        rights=rights,
        people=people,
        attested_by=attested_by.strip(),
        note=note.strip(),
        faces=len(faces),
        faces_reviewed=bool(faces) and faces_reviewed,
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

    Raises ConsentError saying how to attest when there is none, when the dataset's fingerprint
    changed since (files added, removed or edited and re-imported), or when it says "no identifiable
    people" for flagged faces nobody reviewed.
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
    if record.people == "none" and not record.faces_reviewed:
        faces = flagged_faces(dataset_dir)
        if faces:  # an attestation made before the import looked for faces
            raise _faces_problem(dataset_dir, faces)
    return record
