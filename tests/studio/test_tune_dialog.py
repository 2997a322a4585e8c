""" "Find good settings" on the Train page: a real 2-trial tune of a tiny model on written images runs on
a worker thread with its table filling in, "Use these settings" fills the page's form with the best trial's
settings, and Stop ends the current trial cleanly with a checkpoint."""

from __future__ import annotations

import math

from PySide6.QtCore import Qt

from engine.families import get_family
from engine.runs import read_run_config
from engine.runs.checkpoint import latest_checkpoint
from engine.tune import read_tune
from studio.pages.tune_dialog import STATE_WORDS

from .conftest import import_and_attest, make_tiny

LEFT = Qt.MouseButton.LeftButton


def _open(window, project, art_folder, qtbot):
    page = window.train_page
    page.refresh_datasets(select=import_and_attest(project, art_folder))
    make_tiny(page, kid_samples=16, preview_every=0, checkpoint_every=1000, lr_g=0.5)
    assert page.tune_button.isEnabled()
    qtbot.mouseClick(page.tune_button, LEFT)
    dialog = page.tune_dialog
    assert dialog is not None and dialog.isVisible() and dialog.family_label.text() == "dcgan"
    return page, dialog


def test_a_tiny_tune_fills_its_table_and_use_these_settings_fills_the_form(window, qtbot, project, art_folder):
    page, dialog = _open(window, project, art_folder, qtbot)
    dialog.trials_spin.setValue(2)
    dialog.minutes_spin.setValue(0.05)  # 3 seconds of training per trial
    assert not dialog.use_button.isEnabled()
    with qtbot.waitSignal(dialog.sig_running_changed, timeout=300_000, check_params_cb=lambda running: not running):
        qtbot.mouseClick(dialog.start_button, LEFT)
        assert dialog.is_running() and not dialog.start_button.isEnabled()
        assert not page.start_button.isEnabled() and not page.tune_button.isEnabled()  # one job at a time

    result = dialog.result
    assert result is not None and not result.stopped and dialog.error is None
    assert [t.state for t in result.trials] == ["complete", "complete"]
    assert dialog.table.rowCount() == 2
    for row, trial in enumerate(result.trials):
        assert dialog.table.item(row, 0).text() == str(trial.trial)
        assert dialog.table.item(row, 2).text() == f"{trial.score:.4f}" and math.isfinite(trial.score)
        assert dialog.table.item(row, 3).text() == STATE_WORDS["complete"]
        config = read_run_config(trial.run_dir)  # an ordinary run with the page's settings and the trial's
        assert config.batch_size == 8 and config.family_options == dict(get_family("dcgan").tiny_options)
        assert config.lr_g == trial.settings["lr_g"] and config.kid_samples == 16
    assert read_tune(result.tune_dir)["best"]["trial"] == result.best.trial
    assert str(result.best.trial) in dialog.best_label.text() and dialog.progress_label.text().startswith("Done")
    assert page.start_button.isEnabled()

    assert dialog.use_button.isEnabled()
    statuses = []
    page.sig_status.connect(statuses.append)
    qtbot.mouseClick(dialog.use_button, LEFT)
    assert "Generator learning rate" in statuses[-1] and "lr_g" not in statuses[-1]  # the form's words
    values = page.train_form.values()
    assert {k: values[k] for k in result.best.settings} == result.best.settings
    assert values["lr_g"] != 0.5  # the page's own rate was replaced by the best trial's
    assert page.tune_dialog is None and page.tune_button.isEnabled()


def test_stop_ends_the_current_trial_cleanly(window, qtbot, project, art_folder):
    page, dialog = _open(window, project, art_folder, qtbot)
    dialog.trials_spin.setValue(2)
    dialog.minutes_spin.setValue(5.0)
    qtbot.mouseClick(dialog.start_button, LEFT)
    qtbot.waitUntil(lambda: int(dialog.current.get("step", 0)) >= 2, timeout=120_000)
    assert dialog.progress_label.text().startswith("Trial 1 of 2: step")
    with qtbot.waitSignal(dialog.sig_running_changed, timeout=120_000, check_params_cb=lambda running: not running):
        qtbot.mouseClick(dialog.stop_button, LEFT)

    result = dialog.result
    assert result.stopped and [t.state for t in result.trials] == ["interrupted"]
    assert latest_checkpoint(result.trials[0].run_dir) is not None  # stopped with a checkpoint: resumable
    assert dialog.table.item(0, 3).text() == STATE_WORDS["interrupted"]
    assert not dialog.use_button.isEnabled() and "No trial finished" in dialog.best_label.text()
    dialog.reject()
    assert page.tune_dialog is None
