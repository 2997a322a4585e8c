"""GenerateWorker: a trained model on a long-lived QThread, answering gallery and export requests.

The page sends requests through queued signals; the worker opens the engine's runner once per source
(open_runner: onnxruntime for a run whose ONNX export is current, PyTorch otherwise and for a chosen
checkpoint), skips gallery requests that a newer one has replaced, and writes exports with the
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
from engine.export.ort_runner import find_export, open_runner
from engine.inference.export_images import save_images
from studio.workers import limit_torch_threads, lower_thread_priority


NO_EXPORT_NOTE = "no ONNX export yet — export it on the Models page for faster generation"
OLD_EXPORT_NOTE = "the ONNX export is older than the newest checkpoint — export again on the Models page"


def describe_runner(runner: Any, source: str | None = None) -> dict[str, Any]:
    """What the page needs to know about a loaded model, including which backend runs it and why."""
    backend = str(getattr(runner, "backend", "") or "")
    return {"checkpoint": str(runner.checkpoint), "family": runner.family_name, "step": runner.step,
            "resolution": runner.resolution, "classes": list(runner.classes), "latent_dim": runner.latent_dim,
            "supports_truncation": bool(getattr(runner, "supports_truncation", False)),
            "backend": backend, "description": str(getattr(runner, "description", backend)),
            "backend_note": _backend_note(backend, source), "notes": list(getattr(runner, "notes", []) or [])}


def _backend_note(backend: str, source: str | None) -> str:
    """Why PyTorch runs a whole run folder (no current export); '' when onnxruntime runs or a checkpoint was chosen."""
    if backend == "onnxruntime" or source is None or not Path(source).is_dir():
        return ""
    return OLD_EXPORT_NOTE if any(Path(source).glob("exports/*.onnx")) else NO_EXPORT_NOTE


def _source_key(source: str) -> tuple[str, str]:
    """A run folder is a new model once an export appears (or goes stale): key on the export used."""
    path = Path(source)
    export = find_export(path) if path.is_dir() else None
    return source, "" if export is None else f"{export}:{export.stat().st_mtime_ns}"


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
        self.source: tuple[str, str] | None = None
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
        key: list[tuple[str, str]] = []
        if not self._guard(lambda: key.append(_source_key(source))):
            return
        if key[0] == self.source and self.runner is not None:
            self.sig_loaded.emit(describe_runner(self.runner, source))
            return
        self.runner, self.source = None, None
        if self._guard(self._load, source, key[0]):
            self.sig_loaded.emit(describe_runner(self.runner, source))

    def _load(self, source: str, key: tuple[str, str]) -> None:
        # A run folder gets onnxruntime when its export is current; a chosen checkpoint file runs in PyTorch.
        self.runner, self.source = open_runner(source), key

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
