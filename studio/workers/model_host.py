"""ModelHost: the base of workers that keep one loaded model on a long-lived QThread and answer requests.

Shared by the Generate and Translate workers: turning failures into sig_failed (never a crash of the
window), throttled progress, a cancel flag the GUI thread sets, "latest request wins" ids, and the
key that says when a run folder's model must be reloaded (an export appeared or went stale).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from engine.export.open import find_export
from studio.workers import limit_torch_threads, lower_thread_priority, run_guarded

NO_EXPORT_NOTE = "no ONNX export yet — export it on the Models page for faster results"
OLD_EXPORT_NOTE = "the ONNX export is older than the newest checkpoint — export again on the Models page"


def backend_note(backend: str, source: str | None) -> str:
    """Why PyTorch runs a whole run folder (no current export); '' when onnxruntime runs or a checkpoint was chosen."""
    if backend == "onnxruntime" or source is None or not Path(source).is_dir():
        return ""
    return OLD_EXPORT_NOTE if any(Path(source).glob("exports/*.onnx")) else NO_EXPORT_NOTE


def source_key(source: str) -> tuple[str, str]:
    """A run folder is a new model once an export appears (or goes stale): key on the export used."""
    path = Path(source)
    export = find_export(path) if path.is_dir() else None
    return source, "" if export is None else f"{export}:{export.stat().st_mtime_ns}"


class ModelHost(QObject):
    """Holds one model (``self.model``); subclasses say how to open and describe it and add request slots.

    Every slot runs on the worker's thread, in request order.
    """

    sig_loaded = Signal(object)
    """A model was loaded: the dict of :meth:`describe` (family, step, backend, note...)."""
    sig_progress = Signal(int, int, str)
    """Batch progress: items done, items in total, the last item."""
    sig_failed = Signal(str, str)
    """A request failed: message in words, details (a traceback) for unexpected errors."""

    what = "The request"
    """Subject of the "... failed unexpectedly" message for bugs."""

    def __init__(self, progress_interval: float = 0.05) -> None:
        super().__init__()
        self.model: Any = None
        self.source: tuple[str, str] | None = None
        self.latest_request = 0
        self.progress_interval = progress_interval
        self._cancel = threading.Event()
        self._last_progress = 0.0

    def open_model(self, source: str) -> Any:
        """Open the model of ``source`` (run folder, checkpoint or .onnx file)."""
        raise NotImplementedError  # a hook of every concrete worker; ABCMeta does not mix with Qt's metaclass

    def describe(self, source: str) -> dict[str, Any]:
        """What the page shows about the loaded model."""
        raise NotImplementedError  # abstract hook: Qt's metaclass cannot mix with ABCMeta

    @Slot(str)
    def load(self, source: str) -> None:
        """Load ``source`` unless it is already loaded (a run whose export changed is reloaded), then describe it."""
        limit_torch_threads()
        lower_thread_priority()
        key: list[tuple[str, str]] = []
        if not self._guard(lambda: key.append(source_key(source))):
            return
        if key[0] != self.source or self.model is None:
            self.model, self.source = None, None
            if not self._guard(self._open, source, key[0]):
                return
        self.sig_loaded.emit(self.describe(source))

    def _open(self, source: str, key: tuple[str, str]) -> None:
        self.model, self.source = self.open_model(source), key

    def cancel(self) -> None:
        """Stop the running batch after the current item (safe from the GUI thread)."""
        self._cancel.set()

    def arm(self) -> None:
        """Clear an old cancel before a new batch is requested (GUI thread), so an early cancel counts."""
        self._cancel.clear()

    def _progress(self, done: int, total: int, name: str) -> None:
        now = time.monotonic()
        if done == total or now - self._last_progress >= self.progress_interval:
            self._last_progress = now
            self.sig_progress.emit(done, total, name)

    def _guard(self, job: Callable[..., Any], *args: Any) -> bool:
        """Run ``job``; turn any exception into sig_failed. True when it succeeded."""
        return run_guarded(lambda: job(*args), self.sig_failed, self.what)[0]
