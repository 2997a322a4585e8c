"""TrainWorker: the engine's Trainer on a QThread, its callbacks turned into Qt signals.

The worker adapts and never computes: it passes the trainer's stats, preview grids, checkpoints, log
lines and the training doctor's findings on as signals (steps at most every ``step_interval`` seconds,
so a fast model cannot flood the GUI thread's queue) and answers the trainer's polls from thread-safe
flags that stop(), pause() and resume() set from the GUI thread.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Signal

from engine.errors import GanStudioError, gui_message
from engine.runs import TrainConfig
from engine.training import Callbacks, Trainer
from engine.training.health import Finding
from studio.workers import ThreadWorker, limit_torch_threads, lower_thread_priority

TrainerFactory = Callable[[Callbacks], Trainer]


class TrainSignals(ThreadWorker):
    """The signals the Train page follows a run by: a TrainWorker's (in this process) and a
    ProcessTrainWorker's (a torchrun run followed through its folder) alike."""

    # object, not dict: PySide6 converts a dict signal argument through QVariantMap, which mangles
    # the reference count of None values (eta_seconds can be None) and crashes the interpreter.
    sig_step = Signal(object)
    """Stats dict of the newest step (step, losses, img_per_sec, eta_seconds, augment_p, ...)."""
    sig_preview = Signal(object, int)
    """A fixed-seed preview grid (uint8 HxWxC numpy) and its step."""
    sig_checkpoint = Signal(str)
    """A checkpoint file was written."""
    sig_log = Signal(str)
    """A line for the user (device, resume, pause, recoveries)."""
    sig_metric = Signal(object)
    """A quality measurement dict (step, kid, kid_std, kid_name) when the run measures KID."""
    sig_health = Signal(object)
    """The training doctor's level for a detector changed; carries the engine's Finding."""
    sig_finished = Signal(object)
    """The run ended (limit reached or stopped) with a checkpoint; carries the engine's RunResult."""
    sig_failed = Signal(str, str)
    """The run failed: message in words, and details (a traceback) for unexpected errors."""


class TrainWorker(TrainSignals):
    """Runs one training run (new or resumed) to its end, a stop, or an error."""

    can_pause = True
    """The run can hold after a step until resume() (a multi-process run cannot: ProcessTrainWorker)."""

    def __init__(self, make_trainer: TrainerFactory, run_dir: Path, *, step_interval: float = 0.05) -> None:
        super().__init__()
        self.make_trainer = make_trainer
        self.run_dir = Path(run_dir)
        self.step_interval = step_interval
        self._stop = threading.Event()
        self._pause = threading.Event()
        self._held: dict[str, Any] | None = None
        self._last_step_emit = 0.0

    @classmethod
    def new_run(cls, config: TrainConfig, run_dir: Path, **kwargs: Any) -> TrainWorker:
        """A worker that starts a new run of ``config`` in ``run_dir``."""
        return cls(lambda callbacks: Trainer(config, callbacks, run_dir=run_dir), run_dir, **kwargs)

    @classmethod
    def resume_run(
        cls, run_dir: Path, steps: int | None = None, settings: dict[str, Any] | None = None, **kwargs: Any
    ) -> TrainWorker:
        """A worker that continues ``run_dir`` from its newest checkpoint, up to ``steps`` in total; with
        ``settings`` (TrainConfig overrides, a training doctor's fix) the engine applies them from there on."""
        if settings:
            return cls(lambda cb: Trainer.resume(run_dir, cb, steps=steps, settings=settings), run_dir, **kwargs)
        return cls(lambda callbacks: Trainer.resume(run_dir, callbacks, steps=steps), run_dir, **kwargs)

    # -- control (GUI thread) ---------------------------------------------------------------------
    def stop(self) -> None:
        """Stop after the current step; the trainer writes a checkpoint first."""
        self._stop.set()

    def pause(self) -> None:
        """Hold training after the current step until resume() or stop()."""
        self._pause.set()

    def resume(self) -> None:
        """Continue a paused run."""
        self._pause.clear()

    @property
    def paused(self) -> bool:
        """True while a pause is requested."""
        return self._pause.is_set()

    @property
    def stopping(self) -> bool:
        """True once a stop is requested."""
        return self._stop.is_set()

    # -- the job (worker thread) ------------------------------------------------------------------
    def callbacks(self) -> Callbacks:
        """The engine callbacks that feed this worker's signals."""
        return Callbacks(
            on_step=self._on_step,
            on_preview=self._on_preview,
            on_checkpoint=self._on_checkpoint,
            on_log=self.sig_log.emit,
            on_metric=self.sig_metric.emit,
            on_health=self._on_health,
            should_stop=self._stop.is_set,
            should_pause=self._pause.is_set,
        )

    def run(self) -> None:
        """Train, then emit exactly one of sig_finished / sig_failed."""
        limit_torch_threads()
        lower_thread_priority()
        try:
            result = self.make_trainer(self.callbacks()).run()
        except GanStudioError as exc:
            self._flush()
            self.sig_failed.emit(gui_message(exc), "")
        except Exception as exc:  # a worker must never take the window down
            self._flush()
            self.sig_failed.emit(f"Training stopped because of an unexpected error: {exc}", traceback.format_exc())
        else:
            self._flush()
            self.sig_finished.emit(result)

    def _on_step(self, stats: dict[str, Any]) -> None:
        now = time.monotonic()
        if now - self._last_step_emit >= self.step_interval:
            self._last_step_emit = now
            self._held = None
            self.sig_step.emit(stats)
        else:
            self._held = stats  # sent later, or at the end, so the last step is never lost

    def _flush(self) -> None:
        if self._held is not None:
            self.sig_step.emit(self._held)
            self._held = None

    def _on_preview(self, grid: np.ndarray, step: int) -> None:
        self._flush()
        self.sig_preview.emit(grid, step)

    def _on_health(self, finding: Finding) -> None:
        self._flush()  # the finding's step is never ahead of the stats the page shows
        self.sig_health.emit(finding)

    def _on_checkpoint(self, path: Path) -> None:
        self.sig_checkpoint.emit(str(path))
