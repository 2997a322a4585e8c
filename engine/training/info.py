"""A summary of a run folder for `gan-studio-cli info` and the studio's run list."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.training.checkpoint import list_checkpoints
from engine.training.trainer import read_run_config


def run_info(run_dir: Path | str) -> dict[str, Any]:
    """Family, dataset, progress, checkpoints and last logged stats of a run folder."""
    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    meta_path = run_dir / "run.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
    checkpoints = list_checkpoints(run_dir)
    last = _last_stats(run_dir / "stats.jsonl")
    previews = sorted((run_dir / "previews").glob("step-*.png"))
    return {
        "run": str(run_dir), "family": config.family, "dataset": config.dataset,
        "resolution": (meta.get("spec") or {}).get("resolution"), "classes": meta.get("classes", []),
        "steps_target": config.steps, "step": int(last.get("step", 0)) if last else 0,
        "checkpoints": [p.name for p in checkpoints],
        "latest_preview": str(previews[-1]) if previews else None,
        "dataset_fingerprint": meta.get("dataset_fingerprint"), "attestation_id": meta.get("attestation_id"),
        "last_stats": last,
    }


def _last_stats(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    for line in reversed(path.read_text(encoding="utf-8").splitlines()):
        try:
            return json.loads(line)
        except json.JSONDecodeError:
            continue  # a hard kill can leave a half line at the end
    return {}


