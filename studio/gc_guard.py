"""Run Python's cycle collector on the GUI thread only.

Why: the cycle collector runs in whichever thread happens to allocate when a threshold is crossed. If
that is a worker thread (an ONNX export parses hundreds of functions, training allocates tensors), it
may free the Python wrappers of widgets left over from closed dialogs, so ``~QObject`` runs in the
worker while the GUI thread destroys widgets too: each holds what the other waits for (a Qt mutex
against the GIL) and the app freezes. This was seen in the GUI tests with a native stack. Turning
automatic collection off and collecting from a GUI-thread timer keeps every such deletion on the GUI
thread; reference counting still frees everything that is not in a cycle immediately.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer

_INTERVAL_MS = 500


class MainThreadCollector(QObject):
    """Disables automatic gc and runs gc.collect() (by generation thresholds) from a GUI-thread timer."""

    def __init__(self, parent: QObject) -> None:
        super().__init__(parent)
        self.thresholds = gc.get_threshold()
        self.held = False  # set while the engine loads (see hold)
        gc.disable()
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.collect)
        self.timer.start(_INTERVAL_MS)

    def collect(self) -> None:
        """Collect the generations whose allocation counts passed their thresholds."""
        if self.held:
            return
        counts = gc.get_count()
        if counts[0] <= self.thresholds[0]:
            return
        generation = 2 if counts[2] > self.thresholds[2] else 1 if counts[1] > self.thresholds[1] else 0
        gc.collect(generation)

    def hold(self) -> None:
        """Stop collecting until :meth:`release` (while the engine's modules are imported)."""
        self.held = True

    def release(self, freeze: bool = False) -> None:
        """Collect again; with ``freeze`` move every object alive now out of future collections.

        Why: importing PyTorch and the pages creates hundreds of thousands of objects that live as
        long as the process. Collecting them while they are made only stalls the GUI thread (up to
        0.8 s per full collection on 2 cores), and walking them in every later full collection is
        wasted work too; ``gc.freeze()`` leaves them out.
        """
        if freeze:
            gc.freeze()
        self.held = False


def install(app: QObject) -> MainThreadCollector:
    """Install the collector on ``app`` once (idempotent); returns it."""
    existing = app.findChild(MainThreadCollector)
    return existing if existing is not None else MainThreadCollector(app)
