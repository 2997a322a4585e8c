"""Reading what a run folder already holds (logged stats, saved previews) for the Train page."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

_PREVIEW_RE = re.compile(r"^step-(\d+)\.png$")


def preview_path(run_dir: Path, step: int) -> Path:
    """Where the trainer saves the preview grid of ``step``."""
    return Path(run_dir) / "previews" / f"step-{step:06d}.png"


def preview_steps(run_dir: Path) -> list[int]:
    """Steps that have a saved preview, ascending."""
    folder = Path(run_dir) / "previews"
    if not folder.is_dir():
        return []
    return sorted(int(m.group(1)) for p in folder.iterdir() if (m := _PREVIEW_RE.match(p.name)))


def read_stats(run_dir: Path, limit: int = 200_000) -> list[dict[str, Any]]:
    """The records of stats.jsonl (at most the last ``limit``); damaged lines are skipped."""
    path = Path(run_dir) / "stats.jsonl"
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines()[-limit:]:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a hard kill can leave half a line at the end
    return records


def format_seconds(seconds: float | None) -> str:
    """``None`` -> ``-``; 75 -> ``1 min 15 s``; 4000 -> ``1 h 6 min``."""
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"
