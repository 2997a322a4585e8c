"""Train page control: closing during training checkpoints cleanly, pause/continue, resume from the
runs list, the sample dataset's one-click run, and engine errors reaching the user."""

from __future__ import annotations

import sys

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from engine.consent import current_attestation
from engine.runs.checkpoint import latest_checkpoint, load_checkpoint
from studio.errors import ERROR_LOG, install_excepthook
from studio.main_window import MainWindow

from .conftest import import_and_attest, make_tiny

LEFT = Qt.MouseButton.LeftButton


def _start_tiny(window, qtbot, project, art_folder, **tiny):
    dataset = import_and_attest(project, art_folder)
    train = window.train_page
    train.refresh_datasets(select=dataset)
    make_tiny(train, **tiny)
    assert train.start()
    return train


def test_closing_during_training_asks_then_leaves_a_valid_checkpoint(window, qtbot, project, art_folder, monkeypatch):
    answers = []
    monkeypatch.setattr(MainWindow, "confirm_stop_training", lambda self, action="": answers.append(action) or True)
    train = _start_tiny(window, qtbot, project, art_folder, steps=1_000_000)
    qtbot.waitUntil(lambda: train.latest_stats.get("step", 0) >= 2, timeout=30_000)
    run_dir = train.run_dir
    assert latest_checkpoint(run_dir) is None  # checkpoint_every is far away: only the stop writes one

    window.close()
    assert len(answers) == 1
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=60_000)
    assert not train.is_running()
    state = load_checkpoint(latest_checkpoint(run_dir))
    assert state["family"] == "dcgan" and state["step"] >= 2 and state["attestation_id"]


def test_declining_the_close_keeps_training(window, qtbot, project, art_folder, monkeypatch):
    monkeypatch.setattr(MainWindow, "confirm_stop_training", lambda self, action="": False)
    train = _start_tiny(window, qtbot, project, art_folder, steps=1_000_000)
    window.close()
    assert window.isVisible() and train.is_running()
    # Pause holds the run; Continue lets it go on.
    qtbot.mouseClick(train.pause_button, LEFT)
    assert train.worker.paused and train.pause_button.text() == "Continue"
    qtbot.waitUntil(lambda: "Paused" in train.log.toPlainText(), timeout=30_000)
    qtbot.mouseClick(train.pause_button, LEFT)
    assert not train.worker.paused
    train.stop()
    qtbot.waitUntil(lambda: not train.is_running(), timeout=30_000)


def test_resume_a_run_from_the_list(window, qtbot, project, art_folder):
    train = _start_tiny(window, qtbot, project, art_folder, steps=4)
    qtbot.waitUntil(lambda: not train.is_running(), timeout=30_000)
    assert train.result.step == 4 and not train.result.stopped
    train.runs_list.setCurrentRow(0)
    assert train.preview.steps == [1, 2, 4]  # the run's saved previews are scrubbable
    train.preview.slider.setValue(0)
    assert "earlier" in train.preview.step_label.text()
    train.until_spin.setValue(7)
    qtbot.mouseClick(train.resume_button, LEFT)
    qtbot.waitUntil(lambda: not train.is_running(), timeout=30_000)
    assert train.result.step == 7
    assert load_checkpoint(latest_checkpoint(train.run_dir))["step"] == 7
    assert "Resumed from step-000004.pt" in train.log.toPlainText()


def test_try_the_sample_dataset_imports_attests_and_starts_a_quick_run(window, qtbot):
    qtbot.mouseClick(window.dataset_page.empty_sample_button, LEFT)
    qtbot.waitUntil(lambda: window.train_page.is_running(), timeout=60_000)
    train = window.train_page
    assert window.current_page() == "train" and train.preset_combo.currentData() == "quick"
    record = current_attestation(train.dataset_dir())
    assert record.rights == "licensed" and record.people == "none" and "Noto Emoji" in record.attested_by
    assert window.dataset_page.report.kept == 300
    qtbot.waitUntil(lambda: train.latest_stats.get("step", 0) >= 1, timeout=60_000)
    train.stop()
    qtbot.waitUntil(lambda: not train.is_running(), timeout=60_000)
    assert latest_checkpoint(train.run_dir) is not None


def test_engine_errors_are_shown_in_words(window, qtbot, project, art_folder):
    dataset = import_and_attest(project, art_folder)
    train = window.train_page
    train.refresh_datasets(select=dataset)
    make_tiny(train, batch_size=0)
    assert not train.start()
    dialog = window.errors.last_dialog
    assert "batch_size" in dialog.message_label.text() and not dialog.details
    assert not dialog.copy_button.isVisible()
    assert "batch_size" in window.statusBar().currentMessage()


def test_a_crash_in_the_worker_shows_details_logs_it_and_keeps_the_window(
    window, qtbot, project, art_folder, monkeypatch
):
    def explode(self):
        raise RuntimeError("boom in the training loop")

    monkeypatch.setattr("engine.training.trainer.Trainer.run", explode)
    train = _start_tiny(window, qtbot, project, art_folder)
    qtbot.waitUntil(lambda: not train.is_running(), timeout=30_000)
    dialog = window.errors.last_dialog
    assert "boom in the training loop" in dialog.message_label.text()
    assert "RuntimeError: boom in the training loop" in dialog.details
    qtbot.mouseClick(dialog.copy_button, LEFT)
    assert "Traceback" in QApplication.clipboard().text()
    log = (project.logs_dir / ERROR_LOG).read_text()
    assert "boom in the training loop" in log and "Traceback" in log
    assert window.isVisible() and train.stat_labels["state"].text() == "failed"
    assert train.start_button.isEnabled()


def test_uncaught_exceptions_become_a_dialog(window, qtbot, monkeypatch):
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # restored after the test
    install_excepthook(window.errors)
    try:
        raise ValueError("escaped a slot")
    except ValueError as exc:
        sys.excepthook(type(exc), exc, exc.__traceback__)
    qtbot.waitUntil(lambda: window.errors.last_dialog is not None, timeout=5_000)
    assert "escaped a slot" in window.errors.last_dialog.details


def test_opening_another_project_during_training_asks_and_switches_after_the_checkpoint(
    window, qtbot, project, art_folder, tmp_path, monkeypatch
):
    from studio.project import Project

    monkeypatch.setattr(MainWindow, "confirm_stop_training", lambda self, action="": "project" in action)
    train = _start_tiny(window, qtbot, project, art_folder, steps=1_000_000)
    run_dir = train.run_dir
    other = Project.create(tmp_path / "other")
    assert window.open_project(other.root)
    assert window.project == project  # still the old one until the run has stopped
    qtbot.waitUntil(lambda: window.project == other, timeout=60_000)
    assert not train.is_running() and latest_checkpoint(run_dir) is not None
