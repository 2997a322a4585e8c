"""Where things live in a run folder, beside the checkpoints (see engine/runs/checkpoint.py).

A run folder holds config.json, run.json, stats.jsonl, log.txt, health.jsonl (the training doctor's
findings) with health/ (their images), checkpoints/step-NNNNNN.pt, previews/step-NNNNNN.png and exports/.
"""

from __future__ import annotations

import re
from pathlib import Path

_PREVIEW_RE = re.compile(r"^step-(\d+)\.png$")


def preview_path(run_dir: Path | str, step: int) -> Path:
    """Where the trainer saves the preview grid of ``step``."""
    return Path(run_dir) / "previews" / f"step-{step:06d}.png"


def preview_steps(run_dir: Path | str) -> list[int]:
    """Steps that have a saved preview, ascending."""
    folder = Path(run_dir) / "previews"
    if not folder.is_dir():
        return []
    return sorted(int(m.group(1)) for p in folder.iterdir() if (m := _PREVIEW_RE.match(p.name)))


def health_path(run_dir: Path | str) -> Path:
    """The training doctor's findings, one JSON line each (engine/training/health.py reads and writes it)."""
    return Path(run_dir) / "health.jsonl"


def health_dir(run_dir: Path | str) -> Path:
    """Folder of the images a finding shows (memorization's generated/training pairs)."""
    return Path(run_dir) / "health"
