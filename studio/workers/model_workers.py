"""ExportWorker, BenchmarkWorker and PlanWorker: the engine's ONNX export, the backend timing and the memory
planner's measurement on a worker thread.

Each runs one job, turns the engine's progress callback into ``sig_progress`` and ends with exactly one
of ``sig_finished`` / ``sig_failed``; neither touches a widget.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal

from engine.export import export_onnx
from engine.export.benchmark import benchmark_run
from engine.runs import TrainConfig
from studio.workers import ThreadWorker, limit_torch_threads, lower_thread_priority, run_guarded


class _JobWorker(ThreadWorker):
    """Runs ``self.job()`` and reports its result or its error as signals."""

    sig_progress = Signal(str)
    """A progress message in words (the engine's progress callback)."""
    sig_finished = Signal(object)
    """The job succeeded; carries its result."""
    sig_failed = Signal(str, str)
    """The job failed: message in words, and details (a traceback) for unexpected errors."""

    what = "The job"

    def job(self) -> Any:
        """The engine call; subclasses implement it."""
        raise NotImplementedError  # abstract hook: Qt's metaclass cannot mix with ABCMeta

    def run(self) -> None:
        """Run the job and emit exactly one ending signal."""
        limit_torch_threads()
        lower_thread_priority()
        ok, result = run_guarded(self.job, self.sig_failed, self.what)
        if ok:
            self.sig_finished.emit(result)


class ExportWorker(_JobWorker):
    """export_onnx(run_dir, out, fp16=...) with its progress messages; finishes with the ExportResult."""

    what = "The ONNX export"

    def __init__(self, run_dir: Path, out: Path, fp16: bool) -> None:
        super().__init__()
        self.run_dir, self.out, self.fp16 = Path(run_dir), Path(out), fp16

    def job(self) -> Any:
        """Export and prove parity (the engine raises ExportError with the numbers when it does not hold)."""
        return export_onnx(self.run_dir, self.out, fp16=self.fp16, progress=self.sig_progress.emit)


class BenchmarkWorker(_JobWorker):
    """Times PyTorch against onnxruntime for a run (engine.export.benchmark); finishes with its BenchRow list."""

    what = "The benchmark"

    def __init__(
        self,
        run_dir: Path,
        batches: tuple[int, ...] = (1, 8),
        runs: int = 15,
        timer: Callable[..., Any] = benchmark_run,
    ) -> None:
        super().__init__()
        self.run_dir, self.batches, self.runs, self.timer = Path(run_dir), batches, runs, timer

    def job(self) -> Any:
        """Median latencies per batch size on both backends (each row names the backends that ran)."""
        return self.timer(self.run_dir, batches=self.batches, runs=self.runs, progress=self.sig_progress.emit).rows


class PlanWorker(_JobWorker):
    """The memory planner measuring the model on the device (engine.training.planner); finishes with a MemoryPlan."""

    what = "Measuring the memory plan"

    def __init__(self, config: TrainConfig, world_size: int) -> None:
        super().__init__()
        self.config, self.world_size = config, world_size

    def job(self) -> Any:
        """plan_memory with probe: the model is built and one step's memory estimated."""
        from engine.device import select_device
        from engine.training.planner import plan_memory

        return plan_memory(self.config, select_device(self.config.device), world_size=self.world_size, probe=True)
