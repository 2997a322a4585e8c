"""Who made an image: this installation's id, a model's id, and the 48-bit watermark payload built from them.

The install id is a random 24-bit number created on first use and kept in ``identity.json`` in the user's
data folder (``GAN_STUDIO_HOME`` overrides the folder, which the tests use). A model id is 24 bits of the
SHA-256 of its model card id, so the same model always marks with the same id. ``models.jsonl`` in the data
folder remembers which model ids this installation has used, so checking an image on this machine can name
the model; on another machine the ids are still reported, as numbers.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from engine.fsutil import atomic_write_json

ID_BITS = 24
PAYLOAD_BITS = 2 * ID_BITS
_MASK = (1 << ID_BITS) - 1
IDENTITY_NAME = "identity.json"
MODELS_NAME = "models.jsonl"


def data_dir() -> Path:
    """The user's GAN Studio data folder (``GAN_STUDIO_HOME`` when set), created when missing."""
    override = os.environ.get("GAN_STUDIO_HOME")
    if override:
        folder = Path(override)
    else:
        import platformdirs

        folder = Path(platformdirs.user_data_dir("GAN Studio", appauthor=False))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def install_id() -> int:
    """This installation's 24-bit id, created (at random) and stored on first use."""
    path = data_dir() / IDENTITY_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        value = int(data["install_id"], 16)
        if 0 <= value <= _MASK:
            return value
    except (OSError, ValueError, KeyError, TypeError):
        pass  # missing or unreadable: make a new one (the old one cannot be recovered anyway)
    value = secrets.randbits(ID_BITS)
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    atomic_write_json(path, {"install_id": f"{value:06x}", "created_at": created})
    return value


def model_id(card_id: str) -> int:
    """The 24-bit id a model marks its images with: the first 24 bits of SHA-256 of its card id."""
    digest = hashlib.sha256(card_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:3], "big")


def pack(install: int, model: int) -> int:
    """The 48-bit payload: install id in the high 24 bits, model id in the low 24."""
    if not (0 <= install <= _MASK and 0 <= model <= _MASK):
        raise ValueError(f"ids must be 24-bit numbers, got install={install}, model={model}")
    return (install << ID_BITS) | model


def unpack(payload: int) -> tuple[int, int]:
    """(install id, model id) from a 48-bit payload."""
    return (payload >> ID_BITS) & _MASK, payload & _MASK


def remember_model(card_id: str, name: str, path: Path | str = "") -> None:
    """Note that this installation made images with the model ``card_id`` (once per model)."""
    if lookup_model(model_id(card_id)) is not None:
        return
    record = {"model_id": f"{model_id(card_id):06x}", "card_id": card_id, "name": name, "path": str(path)}
    record["first_used"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    # An append of one short line is atomic enough here: a torn last line is skipped by lookup_model.
    with open(data_dir() / MODELS_NAME, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def lookup_model(model: int) -> dict[str, Any] | None:
    """What this installation knows about the model id ``model`` (card id, name, path), or None."""
    path = data_dir() / MODELS_NAME
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    wanted = f"{model:06x}"
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("model_id") == wanted:
            return record
    return None
