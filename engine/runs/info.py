"""A summary of a run folder for `gan-studio-cli info` and the studio's run list."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.runs.checkpoint import DAMAGED_SUFFIX, checkpoint_dir, checkpoint_step, list_checkpoints
from engine.runs.config import read_run_config
from engine.runs.layout import preview_path, preview_steps


def run_info(run_dir: Path | str) -> dict[str, Any]:
    """Family, dataset, progress, checkpoints and last logged stats of a run folder."""
    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    meta_path = run_dir / "run.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
    checkpoints = list_checkpoints(run_dir)
    last = _last_stats(run_dir / "stats.jsonl")
    previews = preview_steps(run_dir)
    return {
        "run": str(run_dir),
        "family": config.family,
        "kind": meta.get("kind", "generate"),
        "task": meta.get("task"),
        "dataset": config.dataset,
        "resolution": (meta.get("spec") or {}).get("resolution"),
        "classes": meta.get("classes", []),
        "steps_target": config.steps,
        "step": int(last.get("step", 0)) if last else 0,
        "checkpoint_step": checkpoint_step(checkpoints[-1]) if checkpoints else None,
        "checkpoints": [p.name for p in checkpoints],
        # set aside by a reader that found them damaged; kept for the user to inspect or delete
        "damaged_checkpoints": sorted(p.name for p in checkpoint_dir(run_dir).glob(f"*{DAMAGED_SUFFIX}")),
        "latest_preview": str(preview_path(run_dir, previews[-1])) if previews else None,
        "dataset_fingerprint": meta.get("dataset_fingerprint"),
        "attestation_id": meta.get("attestation_id"),
        "last_stats": last,
    }


def read_stats(run_dir: Path | str, limit: int = 200_000) -> list[dict[str, Any]]:
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


def read_log(run_dir: Path | str, limit: int = 2000) -> list[str]:
    """The last ``limit`` lines of the run's log.txt (device, pauses, stops, recoveries); [] when there is none."""
    path = Path(run_dir) / "log.txt"
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()[-limit:]
    except OSError:
        return []


def run_kind(run_dir: Path | str) -> str:
    """'generate', 'translate' or 'upscale' (from run.json; runs written before kinds existed are 'generate')."""
    try:
        meta = json.loads((Path(run_dir) / "run.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return "generate"
    return str(meta.get("kind", "generate"))


def _last_stats(path: Path, tail_bytes: int = 65536) -> dict[str, Any]:
    """The last complete training-stats line (with losses) of stats.jsonl, reading only the file's tail."""
    if not path.is_file():
        return {}
    with open(path, "rb") as handle:
        handle.seek(max(0, path.stat().st_size - tail_bytes))
        lines = handle.read().decode("utf-8", errors="replace").splitlines()
    for line in reversed(lines):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a hard kill can leave a half line at the end; the first line may be cut by the seek
        if "loss_d" in record or "loss_g" in record:
            return record
    return {}
