"""Evaluate tab of the Models page on real widgets: a tiny trained run scored (KD/FD with EffLite0,
near-copy share, generated/nearest-training pairs), Cancel, and a missing dataset shown in words."""

from __future__ import annotations

import shutil
import time

from PySide6.QtCore import Qt

from studio.workers.evaluate_worker import CAVEAT

from .test_models import _trained_run

LEFT = Qt.MouseButton.LeftButton


def _evaluate_tab(window, samples: int = 8, real: int = 24):
    window.show_page("models")
    models = window.models_page
    models.show_evaluate()
    panel = models.evaluate_panel
    panel.samples_spin.setValue(samples)
    panel.real_spin.setValue(real)
    panel.pair_count = 6
    return models, panel


def test_check_quality_and_memorization_shows_scores_and_pairs(window, qtbot, project, art_folder):
    run = _trained_run(window, qtbot, project, art_folder)
    models, panel = _evaluate_tab(window)
    assert panel.run_dir == run and panel.check_button.isEnabled() and not panel.cancel_button.isEnabled()
    qtbot.mouseClick(panel.check_button, LEFT)
    assert panel.is_busy() and models.is_busy() and panel.cancel_button.isEnabled()
    assert not panel.check_button.isEnabled() and not models.export_button.isEnabled()
    with qtbot.waitSignal(panel.worker.sig_finished, timeout=120_000):
        pass
    qtbot.waitUntil(lambda: not panel.is_busy(), timeout=30_000)

    text = panel.scores_label.text()
    assert (
        "KD (EffLite0)" in text and "FD (EffLite0)" in text and "8 generated vs 20 training" in text
    )  # 20 images in the folder
    assert CAVEAT in panel.caveat_label.text() and panel.caveat_label.isVisible()
    assert "Near-copies:" in panel.memo_label.text() and "threshold" in panel.memo_label.text()
    result = panel.result
    assert result is not None and result.num_fake == 8 and result.num_real == 20
    assert len(panel.pair_cards) == 6
    distances = [card.pair.distance for card in panel.pair_cards]
    assert distances == sorted(distances)  # nearest first
    card = panel.pair_cards[0]
    assert card.isVisible()
    for label in (card.generated_label, card.training_label):
        assert not label.pixmap().isNull() and label.pixmap().width() > 0
    assert f"distance {card.pair.distance:.3g}" in card.distance_label.text()
    assert card.near_copy == ("near-copy" in card.distance_label.text())
    assert panel.check_button.isEnabled() and models.export_button.isEnabled()
    assert window.errors.last_dialog is None


def test_cancel_then_missing_dataset_in_words(window, qtbot, project, art_folder):
    _trained_run(window, qtbot, project, art_folder)
    models, panel = _evaluate_tab(window, samples=64, real=200)

    # Cancel: the worker stops at its next batch; nothing is shown, the window carries on.
    qtbot.mouseClick(panel.check_button, LEFT)
    worker = panel.worker
    with qtbot.waitSignal(worker.sig_cancelled, timeout=60_000):
        qtbot.mouseClick(panel.cancel_button, LEFT)
    qtbot.waitUntil(lambda: not panel.is_busy(), timeout=30_000)
    assert "cancelled" in panel.scores_label.text() and not panel.pair_cards and panel.result is None
    assert panel.check_button.isEnabled() and window.errors.last_dialog is None

    # The dataset folder removed: the reason in words, no traceback.
    for dataset in project.datasets():
        shutil.rmtree(dataset)
    qtbot.mouseClick(panel.check_button, LEFT)
    # The worker fails at its first check, possibly before a waitSignal could connect: wait on the
    # page's state instead of the signal.
    qtbot.waitUntil(lambda: panel.scores_label.text().startswith("Evaluation failed:"), timeout=60_000)
    qtbot.waitUntil(lambda: not panel.is_busy(), timeout=30_000)
    dialog = window.errors.last_dialog
    assert dialog is not None and not dialog.details
    assert "dataset" in dialog.message_label.text() and "Traceback" not in dialog.message_label.text()
    assert panel.scores_label.text().startswith("Evaluation failed:") and "does not exist" in panel.scores_label.text()
    started = time.monotonic()
    window.close()  # nothing left running
    assert time.monotonic() - started < 5
