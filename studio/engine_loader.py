"""Load the engine (PyTorch, onnxruntime, pyqtgraph and the pages built on them) after the window shows.

Why: importing them takes several seconds on a small machine, most of it PyTorch. The window frame
(sidebar, menus, status bar) needs none of it, so it shows first with "Loading the engine…" and the
heavy modules are imported on a background thread. Importing is safe off the GUI thread: nothing in
these modules creates a widget or another QObject at import time; the pages themselves are built on
the GUI thread once :attr:`EngineLoader.sig_ready` fires.

Modules are loaded once per process, so there is one loader per QApplication (:func:`engine_loader`);
every window asks it and the second window of a session finds the engine ready at once.
"""

from __future__ import annotations

import importlib
import traceback
from collections.abc import Sequence

from PySide6.QtCore import QCoreApplication, QObject, QThread, Signal

from engine.families import family_names
from studio import gc_guard
from studio.sysinfo import device_summary
from studio.workers import ThreadWorker

# What the pages need, heaviest first so the rest only adds its own share. pyqtgraph is imported
# here (not by studio.widgets.loss_chart at import) so building the Train page costs no extra pause.
HEAVY_MODULES = (
    "torch",
    "onnxruntime",
    "pyqtgraph",
    "studio.pages.dataset",
    "studio.pages.train",
    "studio.pages.generate",
    "studio.pages.translate",
    "studio.pages.models",
    "studio.pages.edit",
)
LOADING_TEXT = "Loading the engine…"


class _ImportWorker(ThreadWorker):
    """Imports the modules on its thread and reports the device; computes nothing else."""

    sig_done = Signal(str)
    """Every module is imported: the device summary for the status bar."""
    sig_failed = Signal(str, str)
    """An import failed: (message, traceback)."""

    def __init__(self, modules: Sequence[str]) -> None:
        super().__init__()
        self.modules = tuple(modules)

    def run(self) -> None:
        """Import each module and the model families, then ask for the device (CUDA starts here, off the
        GUI thread)."""
        # Normal priority on purpose: the GUI thread is idle meanwhile and gets the GIL every
        # millisecond (studio.app sets the switch interval), and a lowered priority would only let other
        # programs delay the moment the window becomes usable.
        try:
            for name in self.modules:
                importlib.import_module(name)
            family_names()  # imports and registers the built-in model families
            device = device_summary()
        except Exception as exc:  # a broken install must show in the window, not kill the thread silently
            self.sig_failed.emit(
                f"The engine could not be loaded ({type(exc).__name__}: {exc}). Reinstall GAN Studio "
                "and start it again.",
                traceback.format_exc(),
            )
            return
        self.sig_done.emit(device)


class EngineLoader(QObject):
    """Imports :data:`HEAVY_MODULES` on a QThread once :meth:`start` is called; lives on the GUI thread."""

    sig_ready = Signal()
    """The engine is imported: pages can be built (emitted on the GUI thread, once)."""
    sig_failed = Signal(str, str)
    """The engine could not be imported: (message, details) (emitted on the GUI thread, once)."""

    def __init__(self, parent: QObject | None = None, modules: Sequence[str] = HEAVY_MODULES) -> None:
        super().__init__(parent)
        self.modules = tuple(modules)
        self.device = ""
        self.error: tuple[str, str] | None = None
        self._state = "idle"  # idle -> loading -> ready | failed
        self._worker = _ImportWorker(self.modules)
        self._worker.sig_done.connect(self._on_done)
        self._worker.sig_failed.connect(self._on_failed)
        self._thread: QThread | None = None
        self._collector: gc_guard.MainThreadCollector | None = None

    def start(self) -> None:
        """Begin loading (idempotent: later calls do nothing)."""
        if self._state != "idle":
            return
        self._state = "loading"
        app = QCoreApplication.instance()
        self._collector = gc_guard.install(app) if app is not None else None
        if self._collector is not None:
            self._collector.hold()  # see MainThreadCollector.release
        self._thread = self._worker.start(self)

    def is_ready(self) -> bool:
        """True once every module is imported."""
        return self._state == "ready"

    def wait(self, timeout_ms: int = 120_000) -> bool:
        """Block until the loading thread has ended (at quit: a QThread must not outlive its owner)."""
        return self._thread is None or self._thread.wait(timeout_ms)

    def _release_collector(self) -> None:
        if self._collector is not None:
            self._collector.release(freeze=True)  # the imported modules live as long as the process

    def _on_done(self, device: str) -> None:
        self._release_collector()
        self.device = device
        self._state = "ready"
        self.sig_ready.emit()

    def _on_failed(self, message: str, details: str) -> None:
        self._release_collector()
        self.error = (message, details)
        self._state = "failed"
        self.sig_failed.emit(message, details)


def engine_loader() -> EngineLoader:
    """The application's loader (created on first use, owned by the QApplication)."""
    app = QCoreApplication.instance()
    if app is None:
        raise RuntimeError("create the QApplication before asking for the engine loader")
    existing = app.findChild(EngineLoader, "engine_loader")
    if existing is not None:
        return existing
    loader = EngineLoader(app)
    loader.setObjectName("engine_loader")
    app.aboutToQuit.connect(loader.wait)
    return loader
