"""EvaluateWorker: quality scores (KD/FD with EffLite0) and the memorization check of one run.

The engine's ``evaluate()`` returns numbers only; the studio also shows each generated image beside
its nearest training image, so this worker runs the same steps itself (open_runner, real_statistics,
generate_samples, features, score_features, memorization, nearest_images) and keeps the images.
Everything runs on the worker thread; it ends with exactly one of sig_finished / sig_cancelled /
sig_failed and never touches a widget.
"""

from __future__ import annotations

import json
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal

from engine.errors import GanStudioError
from studio.workers import ThreadWorker, limit_torch_threads, lower_thread_priority

CAVEAT = "EffLite0 scores are not comparable with published Inception FID"


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


def run_dataset(run_dir: Path) -> tuple[Path, str | None]:
    """(dataset folder, fingerprint trained on) from the run's run.json; MetricsError in words otherwise."""
    from engine.metrics import MetricsError

    try:
        info = json.loads((Path(run_dir) / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        info = {}
    if not info.get("dataset"):
        raise MetricsError(
            f"cannot tell which dataset {Path(run_dir).name} was trained on "
            "(its run.json is missing or has no 'dataset' entry)"
        )
    return Path(info["dataset"]), info.get("dataset_fingerprint")


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

    def _progress(self, stage: str):
        def report(done: int, total: int, message: str) -> None:
            self.sig_progress.emit(int(done), int(total), f"{stage}: {message}" if message != stage else stage)

        return report

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
                self.sig_failed.emit(str(exc), "")
        except Exception as exc:  # a worker must never take the window down
            self.sig_failed.emit(f"The evaluation failed unexpectedly: {exc}", traceback.format_exc())
        else:
            if self.is_cancelled():
                self.sig_cancelled.emit()
            else:
                self.sig_finished.emit(result)

    def _check(self) -> None:
        from engine.metrics import MetricsCancelled

        if self.is_cancelled():
            raise MetricsCancelled("evaluation was cancelled")

    def evaluate(self) -> EvaluationResult:
        """The engine steps of evaluate(), keeping the generated and training images for the pairs."""
        from engine.data import load_dataset
        from engine.export import open_runner
        from engine.metrics import get_extractor, memorization, nearest_images, real_statistics
        from engine.metrics.evaluate import generate_samples, score_features

        started = time.perf_counter()
        cancel = self._cancel.is_set
        dataset, trained_fp = run_dataset(self.run_dir)
        if not dataset.is_dir():
            from engine.metrics import MetricsError

            raise MetricsError(
                f"the dataset this run was trained on is gone: {dataset} does not exist. "
                "Re-import the images into that folder to evaluate the run"
            )
        self.sig_progress.emit(0, 0, "loading the model and the feature extractor")
        runner = open_runner(self.run_dir, device="cpu")
        ext = get_extractor("efflite0", device="cpu")
        self._check()
        real = real_statistics(
            dataset,
            ext,
            runner.resolution,
            self.max_real,
            batch_size=self.batch_size,
            progress=self._progress("real images"),
            should_cancel=cancel,
        )
        self._check()
        images = generate_samples(
            runner, dataset, self.num_samples, self.seed, self._progress("generating"), cancel, self.batch_size
        )
        fake, logits = ext.features_and_logits(images, self.batch_size, self._progress("generated images"), cancel)
        self._check()
        self.sig_progress.emit(0, 0, "scoring")
        scores = score_features(real, fake, logits, ("kid", "fid"), seed=self.seed)
        report = memorization(fake, real.features, train_rows=real.indices)
        training = load_dataset(dataset, runner.resolution).images
        pairs = nearest_images(report, images, training, count=self.pair_count)
        notes = []
        if trained_fp and trained_fp != real.fingerprint:
            notes.append(
                "the images in the dataset changed since this model was trained; the scores compare "
                "with the current images"
            )
        return EvaluationResult(
            run_dir=self.run_dir,
            dataset=dataset,
            names={m: ext.metric_name(m) for m in ("kid", "fid")},
            label=ext.label,
            backend=runner.description,
            num_fake=len(fake),
            num_real=len(real.features),
            kid_mean=float(scores["kid"]["mean"]),
            kid_std=float(scores["kid"]["std"]),
            fid=float(scores["fid"]),
            near_copy_share=report.near_copy_share,
            near_copies=int(report.near_copy.sum()),
            threshold=report.threshold,
            typical_distance=report.typical_distance,
            training_share=report.training_share,
            pairs=pairs,
            notes=notes,
            seconds=time.perf_counter() - started,
        )
