"""GenerateWorker: a trained model on a long-lived QThread, answering gallery and export requests.

The page sends requests through queued signals; the worker loads the engine's TorchRunner once per
checkpoint, skips gallery requests that a newer one has replaced, and writes exports with the
engine's save_images (progress throttled, cancel from the GUI thread).
"""
from __future__ import annotations

import threading
import time
import traceback
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from engine.errors import GanStudioError
from engine.inference import TorchRunner
from engine.inference.export_images import save_images
from studio.workers import limit_torch_threads, lower_thread_priority


def describe_runner(runner: Any) -> dict[str, Any]:
    """What the page needs to know about a loaded model."""
    return {"checkpoint": str(runner.checkpoint), "family": runner.family_name, "step": runner.step,
            "resolution": runner.resolution, "classes": list(runner.classes), "latent_dim": runner.latent_dim,
            "supports_truncation": bool(getattr(runner, "supports_truncation", False))}


class GenerateWorker(QObject):
    """Holds one runner; its slots run on the worker's thread in request order."""

    sig_loaded = Signal(object)
    """A model was loaded: dict of checkpoint, family, step, resolution, classes, supports_truncation."""
    sig_images = Signal(object, object, int)
    """Generated images (uint8 NHWC numpy), their seeds, and the id of the request they answer."""
    sig_progress = Signal(int, int, str)
    """Export progress: images written, images in total, the last file."""
    sig_exported = Signal(object, bool)
    """An export ended: the files written, and whether it was cancelled."""
    sig_failed = Signal(str, str)
    """A request failed: message in words, details (a traceback) for unexpected errors."""

    def __init__(self, progress_interval: float = 0.05) -> None:
        super().__init__()
        self.runner: Any = None
        self.source: str | None = None
        self.latest_request = 0
        self.progress_interval = progress_interval
        self._cancel = threading.Event()
        self._last_progress = 0.0

    def cancel(self) -> None:
        """Stop the running export after the current batch (safe from the GUI thread)."""
        self._cancel.set()

    def arm(self) -> None:
        """Clear an old cancel before a new export is requested (GUI thread), so an early cancel counts."""
        self._cancel.clear()

    @Slot(str)
    def load(self, source: str) -> None:
        """Load the model of a run folder or checkpoint file (no-op when it is already loaded)."""
        limit_torch_threads()
        lower_thread_priority()
        if source == self.source and self.runner is not None:
            self.sig_loaded.emit(describe_runner(self.runner))
            return
        self.runner, self.source = None, None
        if self._guard(self._load, source):
            self.sig_loaded.emit(describe_runner(self.runner))

    def _load(self, source: str) -> None:
        self.runner, self.source = TorchRunner(source), source

    @Slot(object, object, float, int)
    def generate(self, seeds: list[int], class_index: int | None, truncation: float, request_id: int) -> None:
        """Images for ``seeds``, unless a newer request (higher id) is already waiting."""
        if request_id < self.latest_request or self.runner is None:
            return
        result: list[Any] = []
        if self._guard(lambda: result.append(self.runner.generate(seeds, class_index=class_index,
                                                                  truncation=truncation))):
            self.sig_images.emit(result[0], list(seeds), request_id)

    @Slot(object, str, object, float)
    def export(self, seeds: list[int], out_dir: str, class_index: int | None, truncation: float) -> None:
        """Write ``seeds`` as PNG files into ``out_dir`` with progress; cancel() ends it early."""
        if self.runner is None:
            self.sig_failed.emit("Load a model before exporting images.", "")
            return
        written: list[Path] = []
        ok = self._guard(lambda: written.extend(save_images(
            self.runner, list(seeds), Path(out_dir), class_index=class_index, truncation=truncation,
            progress=self._progress, should_cancel=self._cancel.is_set)))
        if ok:
            self.sig_exported.emit([str(p) for p in written], self._cancel.is_set())

    def _progress(self, done: int, total: int, name: str) -> None:
        now = time.monotonic()
        if done == total or now - self._last_progress >= self.progress_interval:
            self._last_progress = now
            self.sig_progress.emit(done, total, name)

    def _guard(self, job: Any, *args: Any) -> bool:
        """Run ``job``; turn any exception into sig_failed. True when it succeeded."""
        try:
            job(*args)
        except GanStudioError as exc:
            self.sig_failed.emit(str(exc), "")
            return False
        except Exception as exc:  # a worker must never take the window down
            self.sig_failed.emit(f"Generating failed unexpectedly: {exc}", traceback.format_exc())
            return False
        return True
