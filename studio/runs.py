"""Formatting for the Train page. Reading a run folder is the engine's job (engine.runs.checkpoint
for the layout of checkpoints and previews, engine.runs.info for stats and summaries)."""

from __future__ import annotations


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
