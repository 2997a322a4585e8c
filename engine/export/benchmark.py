"""How fast a run's ONNX export is next to its PyTorch checkpoint: both backends timed side by side.

``benchmark_run(run_dir)`` loads the run's newest checkpoint in PyTorch and its current export in
onnxruntime, then times one call per batch size on each, alternating backend by backend so machine
noise (another process, a clock change) hits both alike, and reports the medians. The Models page and
``gan-studio-cli bench`` both show its :class:`BenchReport`.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import CheckpointError, ConfigError
from engine.export.open import find_export
from engine.export.ort_runner import OrtRunner, OrtTranslator
from engine.inference.torch_runner import TorchRunner
from engine.inference.translate import TorchTranslator
from engine.runs.checkpoint import latest_checkpoint
from engine.runs.config import read_run_config
from engine.runs.info import run_kind

DEFAULT_BATCHES = (1, 8)
DEFAULT_RUNS = 15
DEFAULT_WARMUP = 3

BatchCall = Callable[[int], Any]


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

    @property
    def torch_images_per_s(self) -> float:
        """Images per second in PyTorch at this batch size."""
        return self.batch * 1000 / self.torch_ms if self.torch_ms > 0 else float("inf")

    @property
    def ort_images_per_s(self) -> float:
        """Images per second in onnxruntime at this batch size."""
        return self.batch * 1000 / self.ort_ms if self.ort_ms > 0 else float("inf")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready numbers of this row (times in ms, rates in images/s)."""
        return {
            "batch": self.batch,
            "torch_ms": self.torch_ms,
            "ort_ms": self.ort_ms,
            "torch_images_per_s": self.torch_images_per_s,
            "ort_images_per_s": self.ort_images_per_s,
            "speedup": self.speedup,
        }


@dataclass
class BenchReport:
    """One benchmark: which files and backends were compared, how, and a row per batch size."""

    run_dir: Path
    checkpoint: Path
    onnx: Path
    runs: int
    warmup: int
    torch_backend: str
    ort_backend: str
    ort_provider: str
    """The onnxruntime execution provider that really ran (after any fallback)."""
    rows: list[BenchRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """onnxruntime's provider fallbacks, in words."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (paths as strings)."""
        return {
            "run": str(self.run_dir),
            "checkpoint": str(self.checkpoint),
            "onnx": str(self.onnx),
            "runs": self.runs,
            "warmup": self.warmup,
            "torch_backend": self.torch_backend,
            "ort_backend": self.ort_backend,
            "ort_provider": self.ort_provider,
            "rows": [row.to_dict() for row in self.rows],
            "notes": list(self.notes),
        }


def benchmark_run(
    run_dir: Path | str,
    batches: Sequence[int] = DEFAULT_BATCHES,
    runs: int = DEFAULT_RUNS,
    warmup: int = DEFAULT_WARMUP,
    device: str = "auto",
    progress: Callable[[str], None] | None = None,
) -> BenchReport:
    """Median ms per call of the run's newest checkpoint (PyTorch on ``device``) and its current export.

    ``batches`` are the batch sizes to time, ``runs`` the timed calls per backend and batch after
    ``warmup`` untimed ones. Generators get latents, translators images at the training size; both
    backends get the very same input. Raises CheckpointError when the run has no checkpoint or no export
    as new as its newest checkpoint, ConfigError for a batch size or run count below 1.
    """
    run_dir = Path(run_dir)
    _check_counts(batches, runs, warmup)
    onnx, checkpoint = _current_export(run_dir)
    say = progress or (lambda _message: None)
    say("Loading both runners")
    torch_call, ort_call, ort = _bench_calls(run_dir, onnx, device)
    report = BenchReport(
        run_dir, checkpoint, onnx, runs, warmup, ort["torch"], ort["description"], ort["provider"], notes=ort["notes"]
    )
    for batch in batches:
        say(f"Timing batch {batch} ({runs} runs each after {warmup} warm-up)")
        t_ms, o_ms = _alternate(partial(torch_call, batch), partial(ort_call, batch), runs, warmup)
        report.rows.append(BenchRow(batch, t_ms, o_ms, report.torch_backend, report.ort_backend))
    return report


def _check_counts(batches: Sequence[int], runs: int, warmup: int) -> None:
    if not batches or any(int(b) < 1 for b in batches):
        raise ConfigError(f"batch sizes must be at least 1 (got {', '.join(map(str, batches)) or 'none'})")
    if runs < 1:
        raise ConfigError(f"the benchmark needs at least 1 timed run per backend (got runs={runs})")
    if warmup < 0:
        raise ConfigError(f"warm-up runs cannot be negative (got warmup={warmup})")


def _current_export(run_dir: Path) -> tuple[Path, Path]:
    """(export, checkpoint) to compare, or CheckpointError saying what to do first."""
    read_run_config(run_dir)  # a folder that is no run at all is answered as such
    checkpoint = latest_checkpoint(run_dir)
    if checkpoint is None:
        raise CheckpointError(f"run {run_dir.name} has no checkpoint yet; train it before benchmarking")
    onnx = find_export(run_dir)
    if onnx is None:
        problem = f"run {run_dir.name} has no ONNX export as new as its newest checkpoint; export it to ONNX first"
        kind = "translator" if run_kind(run_dir) == "translate" else "generator"
        target = run_dir / "exports" / f"{kind}-{checkpoint.stem}.onnx"
        raise CheckpointError(
            f"{problem}: gan-studio-cli export {run_dir} --out {target}",
            gui=f"{problem}: select the run and click Export to ONNX",
        )
    return onnx, checkpoint


def _bench_calls(run_dir: Path, onnx: Path, device: str) -> tuple[BatchCall, BatchCall, dict[str, Any]]:
    """(PyTorch call, onnxruntime call, backend descriptions) each taking a batch size."""
    import torch

    rng = np.random.default_rng(0)
    cache: dict[int, Any] = {}
    if run_kind(run_dir) == "translate":
        pt, ort = TorchTranslator(run_dir, device=device), OrtTranslator(onnx)
        shape = (pt.in_channels, pt.resolution, pt.resolution)

        def image(b: int) -> Any:  # cached so both backends (and every run) see the same input
            return cache.setdefault(b, torch.from_numpy(rng.uniform(-1, 1, (b, *shape)).astype(np.float32)))

        return (
            lambda b: pt.run_network(image(b)),
            lambda b: ort.run_network(image(b)),
            _describe(pt.description, ort),
        )
    runner, ort_runner = TorchRunner(run_dir, device=device), OrtRunner(onnx)

    def latents(b: int) -> np.ndarray:
        return cache.setdefault(b, rng.standard_normal((b, runner.latent_dim)).astype(np.float32))

    return lambda b: runner(latents(b)), lambda b: ort_runner(latents(b)), _describe(runner.description, ort_runner)


def _describe(torch_description: str, ort: OrtRunner | OrtTranslator) -> dict[str, Any]:
    return {"torch": torch_description, "description": ort.description, "provider": ort.provider, "notes": ort.notes}


def _alternate(first: Callable[[], Any], second: Callable[[], Any], runs: int, warmup: int) -> tuple[float, float]:
    """Median ms of ``first`` and of ``second``, called in turn so slow moments hit both."""
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
