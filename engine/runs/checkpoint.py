"""Checkpoint files of a run folder (checkpoints/step-NNNNNN.pt).

Checkpoints are written atomically (temp file + fsync + rename) so a run killed at any moment
leaves only complete files, and read with ``weights_only=True`` so opening one never executes code.
Only saving and loading need PyTorch, and they import it themselves: listing a run's checkpoints
(project scans, run lists) must not cost the studio's start-up the seconds torch takes to import.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

from engine.errors import CheckpointError
from engine.fsutil import atomic_open

CHECKPOINT_FORMAT = 1
CHECKPOINT_KIND = "gan-studio-checkpoint"
_STEP_RE = re.compile(r"^step-(\d+)\.pt$")


def checkpoint_dir(run_dir: Path) -> Path:
    """The folder holding a run's checkpoints."""
    return Path(run_dir) / "checkpoints"


def checkpoint_path(run_dir: Path, step: int) -> Path:
    """Path of the checkpoint for ``step``."""
    return checkpoint_dir(run_dir) / f"step-{step:06d}.pt"


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Checkpoints of a run, oldest first (by step number)."""
    folder = checkpoint_dir(run_dir)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _STEP_RE.match(p.name))]
    return [p for _, p in sorted(found)]


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Serialise ``state`` in memory, then write it atomically to ``path``."""
    state = {"kind": CHECKPOINT_KIND, "format_version": CHECKPOINT_FORMAT, **state}
    import torch  # on use: see the module docstring

    buffer = io.BytesIO()
    torch.save(state, buffer)
    with atomic_open(path, "wb") as handle:
        handle.write(buffer.getbuffer())


def load_checkpoint(path: Path, family: str | None = None) -> dict[str, Any]:
    """Read a checkpoint safely; refuse foreign, corrupt, newer-format or other-family files clearly."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    import torch  # on use: see the module docstring

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt or foreign files
        raise CheckpointError(
            f"{path} is not a readable GAN Studio checkpoint ({type(exc).__name__}); "
            "it may be damaged or from another program"
        ) from None
    if not isinstance(state, dict) or state.get("kind") != CHECKPOINT_KIND:
        raise CheckpointError(f"{path} is not a GAN Studio checkpoint")
    if int(state.get("format_version", 0)) > CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path} was written by a newer GAN Studio (checkpoint format "
            f"{state['format_version']}, this version reads up to {CHECKPOINT_FORMAT}); update GAN Studio"
        )
    if family is not None and state.get("family") != family:
        raise CheckpointError(
            f"{path} holds a '{state.get('family')}' model, not '{family}'; pick a checkpoint of a {family} run"
        )
    return state


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest checkpoint of a run, or None."""
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def prune_checkpoints(run_dir: Path, keep: int, protect: set[Path] | None = None) -> None:
    """Delete all but the newest ``keep`` checkpoints (never those in ``protect``)."""
    protect = protect or set()
    for path in list_checkpoints(run_dir)[:-keep]:
        if path not in protect:
            path.unlink(missing_ok=True)
