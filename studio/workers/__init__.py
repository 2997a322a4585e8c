"""QObject workers moved to QThreads: they turn engine callbacks into Qt signals and never compute.

Every cross-thread signal is connected to a method of a GUI-thread QObject (never a lambda), so Qt
queues the call to the GUI thread; workers never touch a widget.
"""

from __future__ import annotations

import os
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, QThread, Slot

from engine.errors import GanStudioError, gui_message


def run_guarded(job: Callable[[], Any], failed: Any, what: str) -> tuple[bool, Any]:
    """(True, job()) or, after emitting ``failed(message, details)``, (False, None).

    Engine errors are the user's to fix: their message alone. Anything else is a bug: a message plus
    the traceback as details. A worker must never take the window down.
    """
    try:
        return True, job()
    except GanStudioError as exc:
        failed.emit(gui_message(exc), "")
    except Exception as exc:
        failed.emit(f"{what} failed unexpectedly: {exc}", traceback.format_exc())
    return False, None


def limit_torch_threads() -> int:
    """Leave one CPU core to the GUI thread: torch gets all cores but one (at least one); returns it."""
    import torch

    threads = max(1, (os.cpu_count() or 2) - 1)
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads


def lower_thread_priority(niceness: int = 5) -> None:
    """Make the calling thread yield the CPU to the GUI thread when they compete (Linux, best effort).

    On Linux a thread id passed to setpriority() sets the niceness of that one thread; elsewhere this
    does nothing. Threads the worker starts later (e.g. torch's) inherit it.
    """
    get_id = getattr(threading, "get_native_id", None)
    if get_id is None or not sys.platform.startswith("linux"):
        return
    try:
        os.setpriority(os.PRIO_PROCESS, get_id(), niceness)
    except (OSError, AttributeError):
        pass  # not permitted or not supported: the GUI still works, it may just stutter more


class ThreadWorker(QObject):
    """A worker that runs one job (:meth:`run`) on its own QThread, then hands itself back.

    ``start()`` creates the thread (child of ``parent``) and returns it; when run() returns, the worker
    moves back to the GUI thread and the thread's ``finished`` fires, which is when the page may drop
    its references.
    """

    def start(self, parent: QObject) -> QThread:
        """Move to a new QThread and run there; returns the (started) thread."""
        thread = QThread(parent)
        self.moveToThread(thread)
        thread.started.connect(self._main)
        thread.start()
        return thread

    @Slot()
    def _main(self) -> None:
        try:
            self.run()
        finally:
            app = QCoreApplication.instance()
            if app is not None:
                self.moveToThread(app.thread())
            current = QThread.currentThread()
            current.quit()  # before exec(): the thread's event loop returns at once and the thread ends

    def run(self) -> None:
        """The job; subclasses catch every exception and report it with signals."""
        raise NotImplementedError  # abstract hook: Qt's metaclass cannot mix with ABCMeta
