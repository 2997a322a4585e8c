"""Models page on real widgets: export a tiny trained run to ONNX (parity shown, files written), the
Generate page switching to onnxruntime, the PyTorch-vs-onnxruntime benchmark (disabled until there is an
export to compare), a failed export whose "Failed:" line a later success clears, Export as… to a chosen
file, and Show in folder."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QFileDialog

from studio.pages.generate import PAGE_SIZE

from .conftest import train_tiny_run

LEFT = Qt.MouseButton.LeftButton


def _trained_run(window, qtbot, project, art_folder) -> Path:
    """A tiny finished run, trained by the engine (this file is about the Models page, not the Train page)."""
    run = train_tiny_run(
        project, art_folder, "dcgan-tiny", preview_every=2, preview_count=4, checkpoint_every=1000, conditional=True
    )
    window.models_page.refresh()
    window.generate_page.refresh_runs()
    return run


def _wait_loaded(gen, qtbot, backend: str) -> None:
    qtbot.waitUntil(
        lambda: gen.model is not None and gen.model["backend"] == backend and gen.gallery.count() == PAGE_SIZE,
        timeout=60_000,
    )


def _click_and_wait(page, qtbot, button) -> None:
    """Click, then wait until the page's worker has finished (the caller checks the outcome shown).

    Waiting on the page rather than on the worker's signal: a fast failure can be emitted before a
    waitSignal connected after the click would see it.
    """
    qtbot.mouseClick(button, LEFT)
    assert page.is_busy() and not page.export_button.isEnabled()
    qtbot.waitUntil(lambda: not page.is_busy(), timeout=120_000)


def test_export_then_generate_with_onnxruntime_and_benchmark(window, qtbot, project, art_folder):
    run = _trained_run(window, qtbot, project, art_folder)
    gen, models = window.generate_page, window.models_page

    # Before any export the Generate page runs PyTorch and says why.
    window.show_page("generate")
    _wait_loaded(gen, qtbot, "pytorch")
    assert "PyTorch" in gen.model_label.text() and "no ONNX export yet" in gen.model_label.text()

    # The Models page lists the run with its checkpoint; Export to ONNX runs on a worker.
    window.show_page("models")
    assert window.current_page() == "models"
    assert models.selected_run() == str(run)
    assert models.tree.topLevelItem(0).text(0) == run.name
    # Nothing to compare before an export: the benchmark is disabled and says why.
    assert not models.bench_button.isEnabled() and "export the run to ONNX first" in models.bench_button.toolTip()
    assert "Nothing to compare yet" in models.bench_label.text()
    _click_and_wait(models, qtbot, models.export_button)
    onnx = sorted((run / "exports").glob("*.onnx"))
    assert len(onnx) == 1 and onnx[0].with_suffix(".json").is_file()
    text = models.export_label.text()
    assert f"{onnx[0].name}: parity check Passed — max error " in text and "(bound 1e-04)" in text
    assert "fp32, PSNR" in text and models.bench_button.isEnabled()
    run_item = models.tree.topLevelItem(0)
    export_rows = [run_item.child(i) for i in range(run_item.childCount()) if run_item.child(i).text(0) == onnx[0].name]
    assert export_rows and export_rows[0].text(3) == "fp32" and float(export_rows[0].text(4)) <= 1e-4
    assert "used by Generate" in export_rows[0].text(1)

    # Generate now runs the export with onnxruntime and still makes images.
    window.show_page("generate")
    _wait_loaded(gen, qtbot, "onnxruntime")
    assert "onnxruntime" in gen.model_label.text() and "no ONNX export" not in gen.model_label.text()
    # A chosen checkpoint (not "newest") runs in PyTorch.
    gen.checkpoint_combo.setCurrentIndex(1)
    _wait_loaded(gen, qtbot, "pytorch")
    assert "PyTorch" in gen.model_label.text()

    # Benchmark: one row per batch size with two positive latencies and their ratio.
    window.show_page("models")
    models.bench_runs = 3
    _click_and_wait(models, qtbot, models.bench_button)
    assert models.bench_table.rowCount() == 2
    for row in range(2):
        torch_ms, ort_ms = (float(models.bench_table.item(row, c).text()) for c in (1, 2))
        assert torch_ms > 0 and ort_ms > 0
        assert models.bench_table.item(row, 3).text().endswith("×")
    assert [r.batch for r in models.bench_rows] == [1, 8]
    assert f"{run.name}: at batch 8" in models.bench_label.text()


def test_failed_export_then_export_as_and_show_in_folder(window, qtbot, project, art_folder, monkeypatch, tmp_path):
    import engine.export.onnx_export as onnx_export

    run = _trained_run(window, qtbot, project, art_folder)
    real_bound, real_parity = onnx_export.PARITY_BOUND, onnx_export._parity
    monkeypatch.setattr(onnx_export, "PARITY_BOUND", {"fp32": 0.0, "fp16": 0.0})
    monkeypatch.setattr(onnx_export, "_parity", lambda *a, **k: (0.5, 12.0))
    models = window.models_page
    window.show_page("models")
    _click_and_wait(models, qtbot, models.export_button)
    text = models.export_label.text()
    assert "parity" in text and "0.5" in text and "12.0 dB" in text
    dialog = window.errors.last_dialog
    assert dialog is not None and "parity" in dialog.message_label.text() and not dialog.details
    assert not list(run.glob("exports/*.onnx"))
    assert models.export_button.isEnabled() and not models.show_folder_button.isEnabled()
    # The failure stays with its run: re-reading the runs keeps it.
    models.refresh()
    assert models.export_label.text().startswith("Failed:")

    # Without a current export the benchmark is disabled; started anyway, it fails in words.
    assert not models.bench_button.isEnabled()
    assert models.start_benchmark()
    qtbot.waitUntil(lambda: not models.is_busy(), timeout=60_000)
    assert models.bench_label.text().startswith("Failed:") and "export" in models.bench_label.text()
    assert models.bench_table.rowCount() == 0

    # Export as…: the dialog offers the run's exports folder; the file goes where the user chose.
    monkeypatch.setattr(onnx_export, "PARITY_BOUND", real_bound)
    monkeypatch.setattr(onnx_export, "_parity", real_parity)
    offered = []
    chosen = tmp_path / "elsewhere" / "my-model"
    chosen.parent.mkdir()

    def fake_dialog(parent, caption, default, filters):
        offered.append(Path(default))
        return str(chosen), filters

    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(fake_dialog))
    _click_and_wait(models, qtbot, models.export_as_button)
    assert offered and offered[0].parent == run / "exports" and offered[0].suffix == ".onnx"
    written = chosen.with_name("my-model.onnx")
    assert written.is_file() and written.with_suffix(".json").is_file()
    assert not list(run.glob("exports/*.onnx"))
    text = models.export_label.text()
    assert "Failed:" not in text and "Failed:" not in models.bench_label.text()  # the success cleared both
    assert f"Exported to {written}: parity check Passed — max error" in text and "outside the run's exports" in text

    # Show in folder opens where the export went.
    opened = []
    monkeypatch.setattr(QDesktopServices, "openUrl", staticmethod(lambda url: opened.append(url) or True))
    assert models.show_folder_button.isEnabled()
    qtbot.mouseClick(models.show_folder_button, LEFT)
    assert opened == [QUrl.fromLocalFile(str(chosen.parent))]

    # A cancelled dialog starts nothing.
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: ("", "")))
    qtbot.mouseClick(models.export_as_button, LEFT)
    assert not models.is_busy()
