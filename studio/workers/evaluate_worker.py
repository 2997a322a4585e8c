"""EvaluateWorker: quality scores (KD/FD with EffLite0) and the memorization check of one run.

The engine's ``evaluate_run()`` does every step, keeping the generated samples beside their nearest
training image; this worker only runs it on its thread, turns its progress callback into
``sig_progress`` and its cancel poll into ``cancel()``, and ends with exactly one of sig_finished /
sig_cancelled / sig_failed. It never touches a widget.
"""

from __future__ import annotations

import threading
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal

from engine.errors import GanStudioError, gui_message
from studio.workers import ThreadWorker, limit_torch_threads, lower_thread_priority

CAVEAT = "EffLite0 scores are not comparable with published Inception FID"
METRICS = ("kid", "fid", "memorization", "classes")


@dataclass
class EvaluationResult:
    """What the Evaluate panel shows: scores, the memorization summary and the nearest pairs."""

    run_dir: Path
    dataset: Path
    names: dict[str, str]
    label: str
    backend: str
    num_fake: int
    num_real: int
    kid_mean: float
    kid_std: float
    fid: float
    near_copy_share: float
    near_copies: int
    threshold: float
    typical_distance: float
    training_share: float
    pairs: list[Any] = field(default_factory=list)
    """engine.metrics.NearestPair, nearest first."""
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    classes: dict[str, Any] | None = None
    """engine.metrics.classes.class_frequencies: how often each class is generated vs the data (None
    without class folders)."""

    @classmethod
    def from_evaluation(cls, run_dir: Path, evaluation: Any) -> EvaluationResult:
        """The panel's view of an engine ``Evaluation`` (fields read as they are, nothing computed)."""
        r, memo = evaluation.result, evaluation.result["memorization"]
        return cls(
            run_dir=run_dir,
            dataset=Path(r["dataset"]),
            names=r["names"],
            label=r["label"],
            backend=r["backend"],
            num_fake=r["num_fake"],
            num_real=r["num_real"],
            kid_mean=r["kid"]["mean"],
            kid_std=r["kid"]["std"],
            fid=r["fid"],
            near_copy_share=memo["near_copy_share"],
            near_copies=memo["near_copies"],
            threshold=memo["threshold"],
            typical_distance=memo["typical_distance"],
            training_share=memo["training_share"],
            pairs=list(evaluation.pairs),
            notes=list(r["notes"]),
            seconds=r["seconds"],
            classes=r.get("classes"),
        )


class EvaluateWorker(ThreadWorker):
    """Scores ``num_samples`` generated images of a run against up to ``max_real`` training images."""

    sig_progress = Signal(int, int, str)
    """done, total (0: unknown) and the stage in words."""
    sig_finished = Signal(object)
    """An EvaluationResult."""
    sig_cancelled = Signal()
    """Cancel was pressed; nothing was shown or written (the real-feature cache keeps what was complete)."""
    sig_failed = Signal(str, str)
    """Message in words, and details (a traceback) for unexpected errors."""

    def __init__(
        self,
        run_dir: Path,
        num_samples: int = 64,
        max_real: int = 500,
        pairs: int = 12,
        seed: int = 0,
        batch_size: int = 32,
    ) -> None:
        super().__init__()
        self.run_dir = Path(run_dir)
        self.num_samples, self.max_real, self.pair_count = int(num_samples), int(max_real), int(pairs)
        self.seed, self.batch_size = seed, batch_size
        self._cancel = threading.Event()

    def cancel(self) -> None:
        """Ask the running evaluation to stop at the next batch (safe from any thread)."""
        self._cancel.set()

    def is_cancelled(self) -> bool:
        """True once cancel() was called."""
        return self._cancel.is_set()

    def run(self) -> None:
        """Evaluate and emit exactly one ending signal."""
        from engine.metrics import MetricsCancelled

        limit_torch_threads()
        lower_thread_priority()
        try:
            result = self.evaluate()
        except MetricsCancelled:
            self.sig_cancelled.emit()
        except GanStudioError as exc:
            if self.is_cancelled():
                self.sig_cancelled.emit()
            else:
                self.sig_failed.emit(gui_message(exc), "")
        except Exception as exc:  # a worker must never take the window down
            self.sig_failed.emit(f"The evaluation failed unexpectedly: {exc}", traceback.format_exc())
        else:
            if self.is_cancelled():
                self.sig_cancelled.emit()
            else:
                self.sig_finished.emit(result)

    def evaluate(self) -> EvaluationResult:
        """engine.metrics.evaluate.evaluate_run on CPU with EffLite0, progress and cancel wired to this worker."""
        from engine.metrics.evaluate import evaluate_run

        evaluation = evaluate_run(
            self.run_dir,
            metrics=METRICS,
            extractor="efflite0",
            num_samples=self.num_samples,
            max_real=self.max_real,
            device="cpu",
            batch_size=self.batch_size,
            seed=self.seed,
            pairs=self.pair_count,
            progress=self.sig_progress.emit,
            should_cancel=self._cancel.is_set,
        )
        return EvaluationResult.from_evaluation(self.run_dir, evaluation)
