"""How errors reach the user: engine errors as words, anything else as a dialog with details and a log.

Workers catch everything and send ``(message, details)``; details is empty for the engine's own
GanStudioError (the message already names the file or setting) and holds the traceback otherwise.
``install_excepthook`` routes exceptions that escape a slot or a thread here, so nothing closes the
window.
"""

from __future__ import annotations

import sys
import threading
import traceback
from datetime import datetime
from pathlib import Path
from types import TracebackType

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QWidget

from engine.errors import GanStudioError, gui_message
from studio.widgets.error_dialog import ErrorDialog

ERROR_LOG = "errors.log"


def split_exception(exc: BaseException) -> tuple[str, str]:
    """(message, details) for an exception: words only for engine errors, a traceback for the rest."""
    if isinstance(exc, GanStudioError):
        return gui_message(exc), ""
    details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return f"Something went wrong that GAN Studio did not expect: {type(exc).__name__}: {exc}", details


class ErrorReporter(QObject):
    """Shows errors on the GUI thread and appends unexpected ones to <project>/logs/errors.log."""

    sig_reported = Signal(str)
    """An error message was shown to the user (the status bar repeats it)."""
    sig_exception = Signal(str, str)
    """Internal: an uncaught exception's (message, details), delivered to the GUI thread."""

    def __init__(self, parent_widget: QWidget | None, log_dir: Path | None = None) -> None:
        super().__init__(parent_widget)
        self.parent_widget = parent_widget
        self.log_dir = log_dir
        self.last_dialog: ErrorDialog | None = None
        self.sig_exception.connect(self.report)

    def report(self, message: str, details: str = "") -> ErrorDialog:
        """Show ``message``; with ``details`` it is an unexpected error: log it and offer Copy details."""
        log_path = self._write_log(message, details) if details else None
        dialog = ErrorDialog(message, details, str(log_path or ""), self.parent_widget)
        self.last_dialog = dialog
        dialog.open()
        self.sig_reported.emit(message)
        return dialog

    def report_exception(self, exc: BaseException) -> ErrorDialog:
        """Show an exception caught on the GUI thread."""
        return self.report(*split_exception(exc))

    def _write_log(self, message: str, details: str) -> Path | None:
        if self.log_dir is None:
            return None
        try:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            path = self.log_dir / ERROR_LOG
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(f"--- {datetime.now().isoformat(timespec='seconds')}\n{message}\n{details}\n")
            return path
        except OSError:
            return None  # a log we cannot write must not hide the error itself


def install_excepthook(reporter: ErrorReporter) -> None:
    """Send uncaught exceptions (GUI thread and other threads) to ``reporter`` instead of exiting."""

    def hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, exc, tb)
            return
        exc.__traceback__ = tb
        # Emitting is thread-safe: the connection queues the call to the reporter's (GUI) thread.
        reporter.sig_exception.emit(*split_exception(exc))

    sys.excepthook = hook
    threading.excepthook = lambda args: hook(args.exc_type, args.exc_value, args.exc_traceback)
