"""The whole studio flow on real widgets: import (with bad files) -> attest -> train -> preview ->
stop -> generate -> export; and training refused without consent."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QFileDialog

from engine.runs.checkpoint import latest_checkpoint, load_checkpoint
from studio.pages.dataset import SIZES
from studio.pages.generate import PAGE_SIZE

from .conftest import make_tiny

LEFT = Qt.MouseButton.LeftButton


def _choose_folder(monkeypatch, folder: Path) -> None:
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(folder)))


def _import_with_button(window, qtbot, monkeypatch, source: Path) -> None:
    page = window.dataset_page
    page.size_combo.setCurrentIndex(SIZES.index(32))
    _choose_folder(monkeypatch, source)
    qtbot.mouseClick(page.import_button, LEFT)
    assert page.is_busy()
    qtbot.waitUntil(lambda: not page.is_busy(), timeout=30_000)


def test_import_attest_train_preview_stop_generate_export(window, qtbot, monkeypatch, art_folder, tmp_path):
    dataset_page, train, gen = window.dataset_page, window.train_page, window.generate_page
    _import_with_button(window, qtbot, monkeypatch, art_folder)

    # The report names the broken file with a reason; the grid shows the 20 good images, filterable by class.
    assert dataset_page.report.kept == 20
    skipped = {
        dataset_page.report_view.skipped.item(r, 0).text(): dataset_page.report_view.skipped.item(r, 1).text()
        for r in range(dataset_page.report_view.skipped.rowCount())
    }
    assert "circles/broken.png" in skipped and skipped["circles/broken.png"]
    assert dataset_page.grid.model().rowCount() == 20
    dataset_page.class_combo.setCurrentIndex(1)
    assert dataset_page.grid.model().rowCount() == 10
    assert not train.start_button.isEnabled()  # no consent yet

    # Consent through the dialog enables the Train page.
    qtbot.mouseClick(dataset_page.consent_button, LEFT)
    dialog = dataset_page.consent_dialog
    assert not dialog.record_button.isEnabled()
    dialog.set_choices("own", "none", "Test Artist", "drawn by me")
    with qtbot.waitSignal(dataset_page.sig_attested, timeout=5_000):
        qtbot.mouseClick(dialog.record_button, LEFT)
    assert "Test Artist" in dataset_page.consent_label.text()
    assert train.start_button.isEnabled()

    # Train a tiny model; a preview arrives and is drawn; stop writes a checkpoint.
    window.show_page("train")
    make_tiny(train, steps=100_000)
    with qtbot.waitSignal(train.preview.sig_frame_shown, timeout=30_000):
        qtbot.mouseClick(train.start_button, LEFT)
    assert train.is_running() and not train.start_button.isEnabled()
    assert train.preview.canvas.image is not None and not train.preview.canvas.image.isNull()
    with qtbot.waitSignal(train.sig_running_changed, timeout=30_000, check_params_cb=lambda running: not running):
        qtbot.mouseClick(train.stop_button, LEFT)
    assert train.result is not None and train.result.stopped
    state = load_checkpoint(latest_checkpoint(train.run_dir))
    assert state["step"] == train.result.step >= 1
    assert train.chart.series["loss_d"][0]  # curves received points
    assert train.runs_list.count() == 1

    # Generate: the finished run is offered; a gallery page, the next page, enlarge and copy a seed.
    window.show_page("generate")
    qtbot.waitUntil(lambda: gen.gallery.count() == PAGE_SIZE, timeout=30_000)
    assert gen.class_combo.count() == 3  # all classes + circles + squares
    qtbot.mouseClick(gen.next_button, LEFT)
    qtbot.waitUntil(
        lambda: gen.gallery.count() and gen.gallery.item(0).data(Qt.ItemDataRole.UserRole + 1) == PAGE_SIZE,
        timeout=30_000,
    )
    enlarged = gen.enlarge(gen.gallery.item(1))
    enlarged.copy_seed()
    assert QApplication.clipboard().text() == str(PAGE_SIZE + 1)
    enlarged.accept()

    # Batch export with progress to a chosen folder.
    out = tmp_path / "exported"
    out.mkdir()
    _choose_folder(monkeypatch, out)
    gen.count_spin.setValue(5)
    qtbot.mouseClick(gen.export_button, LEFT)
    assert gen.exporting and gen.progress.isVisible()
    qtbot.waitUntil(lambda: not gen.exporting, timeout=30_000)
    assert sorted(p.name for p in out.iterdir()) == [f"seed-{s:06d}.png" for s in range(PAGE_SIZE, PAGE_SIZE + 5)]

    # Save selected: exactly the selected seeds.
    picked = tmp_path / "picked"
    picked.mkdir()
    _choose_folder(monkeypatch, picked)
    gen.gallery.item(3).setSelected(True)
    gen.gallery.item(7).setSelected(True)
    qtbot.mouseClick(gen.save_button, LEFT)
    qtbot.waitUntil(lambda: not gen.exporting, timeout=30_000)
    assert sorted(p.name for p in picked.iterdir()) == [f"seed-{PAGE_SIZE + k:06d}.png" for k in (3, 7)]


def test_training_is_refused_without_consent(window, qtbot, monkeypatch, art_folder, project):
    _import_with_button(window, qtbot, monkeypatch, art_folder)
    train = window.train_page
    window.show_page("train")
    assert train.dataset_dir() is not None
    assert not train.start_button.isEnabled()
    assert "No consent" in train.consent_label.text()
    # Even when asked directly (shortcut, menu), nothing starts and the user is told why in words.
    window._start_training()
    assert not train.is_running()
    dialog = window.errors.last_dialog
    assert dialog is not None and "consent" in dialog.message_label.text().lower() and not dialog.details
    assert list(project.runs_dir.iterdir()) == []
    # The Consent… button on the Train page leads to the consent dialog of that dataset.
    qtbot.mouseClick(train.consent_button, LEFT)
    assert window.current_page() == "dataset"
    assert window.dataset_page.consent_dialog.dataset_dir == train.dataset_dir()
