"""ImportWorker: engine.data.import_folder on a worker thread, with throttled progress and cancel."""

from __future__ import annotations

import threading
import time
import traceback
from pathlib import Path

from PySide6.QtCore import Signal

from engine.data import ImportFailed, import_folder
from engine.errors import GanStudioError, ImportCancelled, gui_message
from studio.workers import ThreadWorker, lower_thread_priority


class ImportWorker(ThreadWorker):
    """Imports ``source`` into ``dataset_dir``; cancel() is safe to call from the GUI thread."""

    sig_progress = Signal(int, int, str)
    """Files done, files in total, and the file just prepared (at most every ``interval`` seconds)."""
    sig_finished = Signal(object)
    """The import succeeded; carries the engine's ImportReport."""
    sig_rejected = Signal(object)
    """No image could be used; carries the ImportReport that says why, file by file."""
    sig_cancelled = Signal()
    """The user cancelled; the previous dataset is untouched."""
    sig_failed = Signal(str, str)
    """The import failed: message in words, and details (a traceback) for unexpected errors."""

    def __init__(
        self,
        source: Path,
        dataset_dir: Path,
        *,
        size: int = 64,
        fit: str = "crop",
        alpha: str = "white",
        drop_duplicates: bool = False,
        interval: float = 0.05,
    ) -> None:
        super().__init__()
        self.source, self.dataset_dir = Path(source), Path(dataset_dir)
        self.options = {"size": size, "fit": fit, "alpha": alpha, "drop_duplicates": drop_duplicates}
        self.interval = interval
        self._cancel = threading.Event()
        self._last_progress = 0.0

    def cancel(self) -> None:
        """Ask the import to stop after the current file."""
        self._cancel.set()

    def run(self) -> None:
        """Run the import and report the outcome with exactly one of the ending signals."""
        lower_thread_priority()  # the engine's decoding pool inherits it: the window stays smooth
        try:
            report = import_folder(
                self.source,
                self.dataset_dir,
                **self.options,
                progress=self._progress,
                should_cancel=self._cancel.is_set,
            )
        except ImportCancelled:
            self.sig_cancelled.emit()
        except ImportFailed as exc:
            self.sig_rejected.emit(exc.report)
            self.sig_failed.emit(gui_message(exc), "")
        except GanStudioError as exc:
            self.sig_failed.emit(gui_message(exc), "")
        except Exception as exc:  # a worker must never take the window down
            self.sig_failed.emit(f"The import of {self.source} failed unexpectedly: {exc}", traceback.format_exc())
        else:
            self.sig_finished.emit(report)

    def _progress(self, done: int, total: int, name: str) -> None:
        now = time.monotonic()
        if done == total or now - self._last_progress >= self.interval:
            self._last_progress = now
            self.sig_progress.emit(done, total, name)
