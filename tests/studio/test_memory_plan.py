"""The Train page's memory plan: the planner's choices for the device shown, the user's own settings named as
theirs, and Measure estimating the model's memory on a worker thread."""

from __future__ import annotations

from PySide6.QtCore import Qt

from .conftest import import_and_attest, make_tiny

LEFT = Qt.MouseButton.LeftButton


def test_the_plan_follows_the_settings_and_measure_estimates_the_peak(window, qtbot, project, art_folder):
    train = window.train_page
    train.refresh_datasets(select=import_and_attest(project, art_folder))
    make_tiny(train, device="cpu")
    train.refresh_plan()
    text = train.plan_label.text()
    assert "8 images, in 1 micro-batch of 8" in text and "Mixed precision off" in text and "on cpu" in text
    assert "Planned for this device" in text and train.plan.chosen["accumulate"]

    train.train_form.editors["accumulate"].set_value(4)  # the user's own choice, through the real editor
    train.train_form.editors["accumulate"].sig_changed.emit()
    assert "in 4 micro-batches of 2" in train.plan_label.text() and "Yours: accumulate" in train.plan_label.text()

    train.processes_spin.setValue(2)  # two processes share each step
    assert "8 images, 4 per process, in 4 micro-batches of 1" in train.plan_label.text()
    train.processes_spin.setValue(1)

    qtbot.mouseClick(train.measure_button, LEFT)
    assert not train.measure_button.isEnabled()
    qtbot.waitUntil(lambda: train.plan_thread is None, timeout=60_000)
    assert train.plan.estimated_peak_bytes and train.plan.estimated_peak_bytes > 0
    assert "Estimated peak" in train.plan_label.text() and train.measure_button.isEnabled()
