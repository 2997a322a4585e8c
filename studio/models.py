"""What a run folder holds for the Models page (checkpoints, ONNX exports and their model cards), and
the PyTorch-vs-onnxruntime timing the page's Benchmark runs. Plain Python: no Qt here."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import CheckpointError
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
    paths = sorted(Path(run_dir).glob("exports/*.onnx"), key=lambda p: p.stat().st_mtime, reverse=True)
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


@dataclass
class BenchRow:
    """Median latencies of one batch size on both backends."""

    batch: int
    torch_ms: float
    ort_ms: float
    torch_backend: str
    ort_backend: str

    @property
    def speedup(self) -> float:
        """PyTorch time over onnxruntime time (above 1: onnxruntime is faster)."""
        return self.torch_ms / self.ort_ms if self.ort_ms > 0 else float("inf")


def benchmark_run(
    run_dir: Path,
    batches: tuple[int, ...] = (1, 8),
    runs: int = 15,
    warmup: int = 3,
    progress: Callable[[str], None] | None = None,
) -> list[BenchRow]:
    """Median ms per call of the run's newest checkpoint in PyTorch and its current export in onnxruntime.

    Calls alternate backend by backend so machine noise hits both alike (as bench/inference.py does).
    """
    say = progress or (lambda _msg: None)
    onnx = find_export(Path(run_dir))
    if onnx is None:
        raise CheckpointError(
            f"run {Path(run_dir).name} has no ONNX export as new as its newest checkpoint; export it to ONNX first"
        )
    say("Loading both runners")
    torch_call, ort_call, names = _bench_calls(Path(run_dir), onnx)
    rows = []
    for batch in batches:
        say(f"Timing batch {batch} ({runs} runs each after {warmup} warm-up)")
        t_ms, o_ms = _alternate(lambda b=batch: torch_call(b), lambda b=batch: ort_call(b), runs, warmup)
        rows.append(BenchRow(batch, t_ms, o_ms, *names))
    return rows


def _bench_calls(run_dir: Path, onnx: Path) -> tuple[Callable[[int], Any], Callable[[int], Any], tuple[str, str]]:
    """(PyTorch call, onnxruntime call, descriptions) taking a batch size: latents for generators, images
    at the training size for translators."""
    import torch

    from engine.export import OrtRunner, OrtTranslator
    from engine.inference import TorchRunner, TorchTranslator
    from engine.runs.info import run_kind

    rng, cache = np.random.default_rng(0), {}
    if run_kind(run_dir) == "translate":
        pt, ort = TorchTranslator(run_dir), OrtTranslator(onnx)
        shape = (pt.in_channels, pt.resolution, pt.resolution)

        def image(b: int) -> Any:  # the same input for both backends
            return cache.setdefault(b, torch.from_numpy(rng.uniform(-1, 1, (b, *shape)).astype(np.float32)))

        return (
            lambda b: pt.run_network(image(b)),
            lambda b: ort.run_network(image(b)),
            (pt.description, ort.description),
        )
    runner, ort_runner = TorchRunner(run_dir), OrtRunner(onnx)

    def latents(b: int) -> np.ndarray:
        return cache.setdefault(b, rng.standard_normal((b, runner.latent_dim)).astype(np.float32))

    return (
        lambda b: runner(latents(b)),
        lambda b: ort_runner(latents(b)),
        (runner.description, ort_runner.description),
    )


def _alternate(first: Callable[[], Any], second: Callable[[], Any], runs: int, warmup: int) -> tuple[float, float]:
    for _ in range(warmup):
        first()
        second()
    a, b = [], []
    for _ in range(runs):
        a.append(_ms(first))
        b.append(_ms(second))
    return statistics.median(a), statistics.median(b)


def _ms(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000
