"""Models page on real widgets: export a tiny trained run to ONNX (parity shown, files written), the
Generate page switching to onnxruntime, the PyTorch-vs-onnxruntime benchmark, and a failed export."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt

from studio.pages.generate import PAGE_SIZE

from .conftest import import_and_attest, make_tiny

LEFT = Qt.MouseButton.LeftButton


def _trained_run(window, qtbot, project, art_folder) -> Path:
    """A tiny finished run (trained through the Train page)."""
    train = window.train_page
    train.refresh_datasets(select=import_and_attest(project, art_folder))
    make_tiny(train)
    with qtbot.waitSignal(train.sig_run_finished, timeout=60_000):
        assert train.start()
    qtbot.waitUntil(lambda: not train.is_running(), timeout=30_000)
    return Path(train.run_dir)


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
    _click_and_wait(models, qtbot, models.export_button)
    onnx = sorted((run / "exports").glob("*.onnx"))
    assert len(onnx) == 1 and onnx[0].with_suffix(".json").is_file()
    assert "fp32 parity: max abs error" in models.export_label.text() and "PSNR" in models.export_label.text()
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


def test_failed_export_shows_the_numbers_and_writes_nothing(window, qtbot, project, art_folder, monkeypatch):
    import engine.export.onnx_export as onnx_export

    run = _trained_run(window, qtbot, project, art_folder)
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
    assert models.export_button.isEnabled()

    # Without a current export the benchmark says so in words.
    _click_and_wait(models, qtbot, models.bench_button)
    assert "export it to ONNX first" in models.bench_label.text()
    assert models.bench_table.rowCount() == 0
