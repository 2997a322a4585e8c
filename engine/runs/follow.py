"""Follow a run that another process is training (torchrun): what it wrote to its folder since the last look.

The main process of a multi-process run writes stats.jsonl, log.txt, previews, checkpoints and
health.jsonl as it goes (engine/training/trainer.py); a front end that launched it reads them back here
instead of receiving callbacks. Only whole lines are taken: a line still being written waits for the
next poll.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.runs.checkpoint import list_checkpoints
from engine.runs.layout import preview_steps


@dataclass
class RunUpdates:
    """What appeared in a run folder since the previous :meth:`RunFollower.poll`."""

    stats: list[dict[str, Any]] = field(default_factory=list)
    """New stats.jsonl records, oldest first (steps, and the quality measurements with a 'kid')."""
    log: list[str] = field(default_factory=list)
    """New log.txt lines, without their time stamps."""
    previews: list[int] = field(default_factory=list)
    """Steps of new preview grids (engine.runs.layout.preview_path gives their files)."""
    checkpoints: list[Path] = field(default_factory=list)
    """New checkpoint files."""
    findings: list[dict[str, Any]] = field(default_factory=list)
    """New health.jsonl entries (engine.training.health.Finding.from_dict reads each)."""


class RunFollower:
    """Reads a run folder incrementally; each poll() returns only what is new."""

    def __init__(self, run_dir: Path | str) -> None:
        self.run_dir = Path(run_dir)
        self._offsets: dict[str, int] = {}
        self._previews: set[int] = set()
        self._checkpoints: set[Path] = set()

    def poll(self) -> RunUpdates:
        """The records, lines, previews, checkpoints and findings written since the last poll."""
        updates = RunUpdates(
            stats=[r for r in map(_record, self._new_lines("stats.jsonl")) if r is not None],
            log=[_unstamped(line) for line in self._new_lines("log.txt")],
            findings=[r for r in map(_record, self._new_lines("health.jsonl")) if r is not None],
        )
        steps = set(preview_steps(self.run_dir))
        updates.previews = sorted(steps - self._previews)
        self._previews |= steps
        found = list_checkpoints(self.run_dir)
        updates.checkpoints = [p for p in found if p not in self._checkpoints]
        self._checkpoints |= set(found)
        return updates

    def _new_lines(self, name: str) -> list[str]:
        path = self.run_dir / name
        offset = self._offsets.get(name, 0)
        try:
            with open(path, "rb") as handle:
                handle.seek(offset)
                data = handle.read()
        except OSError:
            return []
        if len(data) == 0 and path.stat().st_size < offset:  # cut back by a resume: read it again from the start
            self._offsets[name] = 0
            return self._new_lines(name)
        whole = data[: data.rfind(b"\n") + 1]
        self._offsets[name] = offset + len(whole)
        return whole.decode("utf-8", errors="replace").splitlines()


def _record(line: str) -> dict[str, Any] | None:
    try:
        value = json.loads(line)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _unstamped(line: str) -> str:
    """'12:03:04 message' -> 'message' (the trainer's log stamp)."""
    stamp, _, rest = line.partition(" ")
    return rest if len(stamp) == 8 and stamp.count(":") == 2 else line
