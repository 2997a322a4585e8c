"""Start-up: the window shows before the engine is loaded ("Loading the engine…"), then works as before.

The rule that keeps start-up fast is checked in fresh interpreters: importing the window imports no
PyTorch, onnxruntime or pyqtgraph, and a shown window reaches the loading state first and the ready
state after the background import. The in-process tests cover a second window of a session, an
engine that fails to load, and a window closed while it loads.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

from PySide6.QtWidgets import QApplication

from studio import gc_guard
from studio.engine_loader import LOADING_TEXT, EngineLoader
from studio.main_window import PAGES, MainWindow
from studio.settings import app_settings

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "torchvision", "onnxruntime", "pyqtgraph", "studio.pages.train", "studio.pages.generate")


def run_fresh(code: str, tmp_path: Path, *args: str) -> dict:
    """Run ``code`` in a new interpreter (offscreen, settings and user data in tmp_path); its last
    stdout line is JSON."""
    env = dict(
        os.environ,
        QT_QPA_PLATFORM="offscreen",
        GAN_STUDIO_SETTINGS=str(tmp_path / "settings.ini"),
        XDG_DATA_HOME=str(tmp_path / "data"),
    )
    done = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_importing_the_app_and_its_window_loads_no_heavy_module(tmp_path):
    code = (
        "import json, sys\nimport studio.app, studio.main_window, studio.widgets.loss_chart\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    assert run_fresh(code, tmp_path) == []


# Shows a window on a project whose settings say the Generate page was open last, reports what it
# shows before any event is processed, then again once sig_engine_ready has fired.
SHOW_AND_WAIT = r"""
import json, sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from studio.main_window import MainWindow
from studio.project import Project
from studio.settings import app_settings

app = QApplication([])
settings = app_settings()
settings.setValue("window/page", "generate")
window = MainWindow(Project.create(sys.argv[1]), settings)
window.show()

def state():
    try:
        window.train_page
        page_error = ""
    except RuntimeError as exc:
        page_error = str(exc)
    return {
        "ready": window.engine_ready(),
        "shows_loading": window.stack.currentWidget() is window.loading_panel,
        "loading_text": window.loading_panel.message.text(),
        "device": window.device_label.text(),
        "actions_enabled": [a.isEnabled() for a in window.engine_actions],
        "torch_loaded": "torch" in sys.modules,
        "page_error": page_error,
        "current": window.current_page(),
    }

report = {"before": state()}

def ready():
    report["after"] = state()
    key = window.current_page()
    report["after"]["shows_current_page"] = window.stack.currentWidget() is window.pages[key]
    window.show_page("train")
    report["after"]["switches"] = window.stack.currentWidget() is window.train_page
    report["after"]["families"] = window.train_page.family_combo.count()
    app.quit()

window.sig_engine_ready.connect(ready)
QTimer.singleShot(240_000, app.quit)
app.exec()
window.shutdown()
print(json.dumps(report))
"""


def test_window_shows_the_loading_state_then_the_pages(tmp_path):
    report = run_fresh(SHOW_AND_WAIT, tmp_path, str(tmp_path / "project"))
    before = report["before"]
    assert not before["ready"] and before["shows_loading"] and not before["torch_loaded"]
    assert before["loading_text"] == LOADING_TEXT and before["device"] == LOADING_TEXT
    assert before["actions_enabled"] and not any(before["actions_enabled"])
    assert "once the engine is loaded" in before["page_error"]
    assert before["current"] == "generate"  # the sidebar already follows the remembered page
    assert "after" in report, "sig_engine_ready never fired"
    after = report["after"]
    assert after["ready"] and not after["shows_loading"] and after["torch_loaded"]
    assert all(after["actions_enabled"]) and after["page_error"] == ""
    assert after["device"] not in ("", LOADING_TEXT)
    assert after["current"] == "generate" and after["shows_current_page"] and after["switches"]
    assert after["families"] >= 2


def test_a_later_window_has_its_pages_at_once(window, project):
    second = MainWindow(project, app_settings())
    try:
        assert second.engine_ready()  # the first window's loader already did the work
        assert all(action.isEnabled() for action in second.engine_actions)
        assert second.stack.currentWidget() is second.pages[second.current_page()]
        assert [second.stack.widget(i) for i in range(len(PAGES))] == [second.pages[k] for k, _ in PAGES]
    finally:
        second.shutdown()
        second.close()
        second.deleteLater()


def test_an_engine_that_cannot_load_is_reported_in_the_window(qtbot, project):
    loader = EngineLoader(QApplication.instance(), modules=("json", "gan_studio_no_such_module"))
    win = MainWindow(project, app_settings(), loader=loader)
    qtbot.addWidget(win)
    with qtbot.waitSignal(loader.sig_failed, timeout=30_000):
        win.show()
    qtbot.waitUntil(lambda: win.errors.last_dialog is not None, timeout=5_000)
    assert "could not be loaded" in win.loading_panel.message.text()
    assert "gan_studio_no_such_module" in win.loading_panel.message.text()
    assert win.stack.currentWidget() is win.loading_panel and not win.engine_ready()
    assert not any(action.isEnabled() for action in win.engine_actions)
    assert win.device_label.text() == "Engine not loaded"
    win.errors.last_dialog.close()
    loader.wait()


def test_a_window_closed_while_loading_never_builds_its_pages(qtbot, project):
    loader = EngineLoader(QApplication.instance(), modules=("json",))
    win = MainWindow(project, app_settings(), loader=loader)
    qtbot.addWidget(win)
    win.show()
    win.close()  # before the event loop ran: the loader starts afterwards and finishes
    with qtbot.waitSignal(loader.sig_ready, timeout=30_000):
        pass
    qtbot.wait(50)
    assert loader.is_ready() and not win.engine_ready() and win.pages == {}
    loader.wait()


def test_the_gui_thread_collector_waits_while_the_engine_loads(qtbot):
    collector = gc_guard.install(QApplication.instance())
    loader = EngineLoader(QApplication.instance(), modules=("json",))
    frozen = gc.get_freeze_count()
    loader.start()
    assert collector.held  # a full collection amid the imports would stall the window
    with qtbot.waitSignal(loader.sig_ready, timeout=30_000):
        pass
    assert not collector.held and gc.get_freeze_count() > frozen
    loader.wait()
