"""dataset.json: the manifest that makes a folder a prepared dataset, and its fingerprint."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from engine.errors import DataError
from engine.fsutil import atomic_write_json

MANIFEST_NAME = "dataset.json"
MANIFEST_KIND = "gan-studio-dataset"
MANIFEST_FORMAT_VERSION = 1
IMPORT_HINT = "gan-studio-cli import FOLDER --out DATASET"
IMPORT_GUI_HINT = "click Import folder… on the Dataset page and choose the image folder"
"""The GUI's words for IMPORT_HINT."""


def compute_fingerprint(sha256s: Iterable[str]) -> str:
    """Hex sha256 over the sorted sha256 digests of the kept files (one per line).

    Only content counts: renaming or moving files between class folders keeps the fingerprint,
    changing, adding or removing a kept image changes it.
    """
    joined = "\n".join(sorted(sha256s))
    return hashlib.sha256(joined.encode("ascii")).hexdigest()


def manifest_path(dataset_dir: Path | str) -> Path:
    """Where the manifest of ``dataset_dir`` lives."""
    return Path(dataset_dir).expanduser() / MANIFEST_NAME


def read_manifest(dataset_dir: Path | str) -> dict[str, Any]:
    """Load and check dataset.json; DataError naming the folder and the fix when it is not usable."""
    path = manifest_path(dataset_dir)
    if not path.is_file():
        problem = (
            f"{Path(dataset_dir)} is not a prepared dataset (no {MANIFEST_NAME} in it); import a folder of images first"
        )
        raise DataError(f"{problem}: {IMPORT_HINT}", gui=f"{problem}: {IMPORT_GUI_HINT}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        problem = f"{path} cannot be read ({exc}); import the source folder again"
        raise DataError(f"{problem}: {IMPORT_HINT}", gui=f"{problem}: {IMPORT_GUI_HINT}") from None
    return _check_manifest(data, path)


def _check_manifest(data: Any, path: Path) -> dict[str, Any]:
    if not isinstance(data, dict) or data.get("kind") != MANIFEST_KIND:
        problem = f"{path} is not a GAN Studio dataset manifest; import the folder again"
        raise DataError(f"{problem}: {IMPORT_HINT}", gui=f"{problem}: {IMPORT_GUI_HINT}")
    version = data.get("format_version")
    if not isinstance(version, int) or version > MANIFEST_FORMAT_VERSION:
        raise DataError(
            f"{path} has format version {version!r}, newer than this GAN Studio reads "
            f"({MANIFEST_FORMAT_VERSION}); update GAN Studio or import the folder again."
        )
    return _migrate(data)


def _migrate(data: dict[str, Any]) -> dict[str, Any]:
    # Version 1 is the first format; future versions add their upgrade steps here, oldest first.
    return data


def write_manifest(dataset_dir: Path | str, manifest: dict[str, Any]) -> None:
    """Write dataset.json atomically; this is the commit point of an import or a cache build."""
    # One line: thousands of file entries; indenting makes json fall back to its slow encoder.
    atomic_write_json(manifest_path(dataset_dir), manifest, indent=None)


def is_dataset(path: Path | str) -> bool:
    """True when ``path`` is a folder holding a readable GAN Studio manifest."""
    try:
        read_manifest(path)
    except DataError:
        return False
    return True


def dataset_fingerprint(dataset_dir: Path | str) -> str:
    """The fingerprint recorded by the last import (raises DataError when not a dataset)."""
    return str(read_manifest(dataset_dir)["fingerprint"])
