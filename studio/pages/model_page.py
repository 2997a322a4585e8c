"""ModelPage: the base of pages that use one trained model through a ModelHost worker (Generate, Translate).

It owns the worker's long-lived QThread (created on first use, ended by :meth:`shutdown`) and loads the
selected model lazily: a page that is not visible loads nothing until it is first shown, so opening
the app never pays for a model nobody looks at.
"""

from __future__ import annotations

from PySide6.QtCore import QThread, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QLabel, QWidget

from studio.workers.model_host import ModelHost


class ModelPage(QWidget):
    """Subclasses create ``self.model_label`` and implement :meth:`make_worker` and :meth:`connect_worker`."""

    sig_request_load = Signal(str)
    """To the worker: load this run folder, checkpoint or model file."""

    model_label: QLabel

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.worker: ModelHost | None = None
        self.thread: QThread | None = None
        self._load_on_show: str | None = None

    def make_worker(self) -> ModelHost:
        """A new worker for this page's kind of model."""
        raise NotImplementedError  # a hook; ABCMeta does not mix with Qt's metaclass

    def connect_worker(self, worker: ModelHost) -> None:
        """Connect the page's request signals to the worker's slots and its answers to the page."""
        raise NotImplementedError  # abstract hook: Qt's metaclass cannot mix with ABCMeta

    def _ensure_worker(self) -> ModelHost:
        if self.worker is None:
            self.thread = QThread(self)
            self.worker = self.make_worker()
            self.worker.moveToThread(self.thread)
            self.sig_request_load.connect(self.worker.load)
            self.connect_worker(self.worker)
            self.thread.start()
        return self.worker

    def shutdown(self) -> None:
        """Cancel a running batch and end the worker thread (window closing)."""
        if self.worker is not None and self.thread is not None:
            self.worker.cancel()
            self.worker.latest_request = 2**62  # drop queued requests
            self.thread.quit()
            self.thread.wait(30_000)
            self.worker, self.thread = None, None

    def load_model(self, source: str | None) -> None:
        """Load ``source`` now when the page is visible, else when it is first shown; None clears."""
        self._load_on_show = source if source and not self.isVisible() else None
        if source and self._load_on_show is None:
            self.model_label.setText("Loading model…")
            self._ensure_worker()
            self.sig_request_load.emit(str(source))
        else:
            self.model_label.setText("")

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 (Qt name)
        """Load the selected model the first time the page is shown."""
        super().showEvent(event)
        if self._load_on_show:
            self.load_model(self._load_on_show)
