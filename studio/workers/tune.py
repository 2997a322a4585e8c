"""TuneWorker: engine.tune.tune ("Find good settings") on a QThread, its callbacks turned into signals.

Like the TrainWorker it adapts and never computes: every trial is an ordinary run trained by the
engine; the worker passes trial starts and ends, throttled step progress and the final TuneResult on,
and answers ``should_stop`` from a flag that cancel() sets from the GUI thread (the engine then stops
the current trial cleanly, with a checkpoint, and the tune can be resumed from its folder).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal

from studio.workers import ThreadWorker, limit_torch_threads, lower_thread_priority, run_guarded


class TuneWorker(ThreadWorker):
    """Runs one tune to its end, a cancel or an error."""

    sig_trial_started = Signal(object)
    """A trial starts training; carries the engine's TrialInfo (state 'running')."""
    sig_trial_ended = Signal(object)
    """A trial is complete, pruned, failed or interrupted; carries its TrialInfo."""
    sig_progress = Signal(object)
    """Step progress of the current trial: {'trial', 'trials', 'step', 'steps', 'seconds', 'kd'}."""
    sig_finished = Signal(object)
    """The tune ended (all trials, or cancelled after a clean stop); carries the engine's TuneResult."""
    sig_failed = Signal(str, str)
    """The tune could not run: message in words, and details (a traceback) for unexpected errors."""

    def __init__(
        self,
        dataset: Path | str,
        family: str,
        trials: int,
        minutes: float,
        runs_root: Path | str,
        *,
        settings: dict[str, Any] | None = None,
        name: str | None = None,
        progress_interval: float = 0.1,
    ) -> None:
        super().__init__()
        self.args = dict(dataset=dataset, family=family, trials=trials, minutes=minutes, runs_root=runs_root)
        self.settings, self.name = dict(settings or {}), name
        self.progress_interval = progress_interval
        self._cancel = threading.Event()
        self._last_progress = 0.0

    def cancel(self) -> None:
        """Stop the current trial cleanly (it keeps a checkpoint) and end the tune."""
        self._cancel.set()

    @property
    def cancelling(self) -> bool:
        """True once a cancel is requested."""
        return self._cancel.is_set()

    def run(self) -> None:
        """Tune, then emit exactly one of sig_finished / sig_failed."""
        from engine.tune import TuneCallbacks, tune  # optuna and torch load here, on the worker thread

        limit_torch_threads()
        lower_thread_priority()
        callbacks = TuneCallbacks(
            on_trial_start=self.sig_trial_started.emit,
            on_trial_end=self.sig_trial_ended.emit,
            on_progress=self._on_progress,
            should_stop=self._cancel.is_set,
        )
        ok, result = run_guarded(
            lambda: tune(**self.args, settings=self.settings, name=self.name, callbacks=callbacks),
            self.sig_failed,
            "Finding good settings",
        )
        if ok:
            self.sig_finished.emit(result)

    def _on_progress(self, record: dict[str, Any]) -> None:
        now = time.monotonic()
        if now - self._last_progress >= self.progress_interval:  # a fast tiny model must not flood the GUI
            self._last_progress = now
            self.sig_progress.emit(dict(record))
