"""What a run folder holds for the Models page (checkpoints, ONNX exports and their model cards), in
the page's words. Plain Python: no Qt here. The Benchmark's timing is the engine's
(engine/export/benchmark.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import CheckpointError
from engine.export.onnx_export import model_exports
from engine.export.open import find_export
from engine.runs.checkpoint import list_checkpoints, newest_verified_checkpoint
from engine.runs.info import run_kind


@dataclass
class ExportInfo:
    """One exports/*.onnx file and the parity numbers of its model card (None when the card is missing)."""

    path: Path
    precision: str | None
    max_abs_error: float | None
    psnr_db: float | None
    exporter: str | None
    step: int | None
    current: bool


def read_card(onnx_path: Path) -> dict[str, Any]:
    """The model card JSON beside an export, or {} when it is missing or damaged."""
    try:
        return json.loads(Path(onnx_path).with_suffix(".json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def list_exports(run_dir: Path) -> list[ExportInfo]:
    """The run's ONNX exports, newest first; ``current`` marks the one generation would use."""
    current = find_export(run_dir)
    # whole models only: a StyleGAN export's W-space graphs (X-mapping.onnx, X-synthesis.onnx) ride along with X
    paths = sorted(model_exports(Path(run_dir) / "exports"), key=lambda p: p.stat().st_mtime, reverse=True)
    infos = []
    for path in paths:
        card = read_card(path)
        parity = card.get("parity", {})
        infos.append(
            ExportInfo(
                path,
                parity.get("precision"),
                parity.get("max_abs_error"),
                parity.get("psnr_db"),
                card.get("exporter"),
                card.get("step"),
                path == current,
            )
        )
    return infos


def export_path(run_dir: Path, fp16: bool, on_note: Callable[[str], None] | None = None) -> Path:
    """Where the Models page writes a run's export: exports/{generator|translator}-step-NNNNNN[-fp16].onnx.

    Named after the newest checkpoint that verifies (the one the export will use); a damaged newer
    one is set aside and reported through ``on_note``.
    """
    if not list_checkpoints(Path(run_dir)):
        raise CheckpointError(f"run {Path(run_dir).name} has no checkpoint to export; train it first")
    stem = newest_verified_checkpoint(Path(run_dir), on_note).stem  # step-NNNNNN
    kind = "translator" if run_kind(run_dir) == "translate" else "generator"
    return Path(run_dir) / "exports" / f"{kind}-{stem}{'-fp16' if fp16 else ''}.onnx"


def parity_line(
    precision: str | None, max_abs_error: float | None, psnr_db: float | None, bound: float | None = None
) -> str:
    """``fp32 parity: max abs error 2.1e-07 (bound 1e-04), PSNR 131.2 dB``."""
    if max_abs_error is None:
        return "no model card"
    bound_text = f" (bound {bound:.0e})" if bound is not None else ""
    psnr = "inf" if psnr_db is None or psnr_db == float("inf") else f"{psnr_db:.1f}"
    return f"{precision} parity: max abs error {max_abs_error:.2e}{bound_text}, PSNR {psnr} dB"
