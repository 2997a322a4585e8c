"""Translate page on real widgets: a pix2pix sketch run trained through the Train page, drawn on with
the canvas and translated live; a colorize run answering colour hints; saving; batch translation of a
folder with a broken file; and the other pages keeping to their own kind of model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import Qt

from engine.families import get_family
from engine.runs import TrainConfig
from engine.training import Trainer

from .conftest import import_and_attest, make_tiny


def _sketch_run(window, qtbot, project, art_folder) -> Path:
    train = window.train_page
    train.refresh_datasets(select=import_and_attest(project, art_folder))
    make_tiny(train, family="pix2pix", task="sketch", steps=3, batch_size=4, conditional=False)
    assert train.task_combo.isVisibleTo(train) and train.task_combo.count() == 3
    assert train.build_config().family_options["task"] == "sketch"
    with qtbot.waitSignal(train.sig_run_finished, timeout=60_000):
        assert train.start()
    qtbot.waitUntil(lambda: not train.is_running(), timeout=30_000)
    return Path(train.run_dir)


def _colorize_run(project, art_folder) -> Path:
    dataset = import_and_attest(project, art_folder)
    options = dict(get_family("pix2pix").tiny_options, task="colorize")
    cfg = TrainConfig(
        dataset=str(dataset), family="pix2pix", family_options=options, batch_size=4, steps=2, preview_every=0, seed=3
    )
    return Trainer(cfg, run_dir=project.runs_dir / "colour-run").run().run_dir


def _wait_result(page, qtbot, after_request: int) -> np.ndarray:
    qtbot.waitUntil(
        lambda: page.request_id >= after_request and page.result is not None and not page.compare.is_busy(),
        timeout=60_000,
    )
    return page.result


def test_draw_a_sketch_and_see_it_translated_then_save_and_batch(window, qtbot, project, art_folder, tmp_path):
    run = _sketch_run(window, qtbot, project, art_folder)
    page = window.translate_page
    window.show_page("translate")
    qtbot.waitUntil(lambda: page.model is not None, timeout=60_000)
    assert page.run_combo.currentData() == str(run)
    assert page.inputs.currentIndex() == 0 and "sketch" in page.model_label.text()
    assert page.size_spin.value() == round(2 * 512 / 32)  # strokes scaled to the model's 32 px
    assert not window.generate_page.run_combo.count()  # a translation run is not a generator

    first = _wait_result(page, qtbot, 1)  # the blank page is translated on load
    before = page.request_id
    page.canvas.draw_stroke([(100, 100), (400, 120), (380, 400), (90, 380), (100, 100)])
    assert not page.canvas.is_blank() and page.undo_button.isEnabled()
    result = _wait_result(page, qtbot, before + 1)  # the debounced live update, no button pressed
    assert result.shape == (512, 512, 3) and result.dtype == np.uint8
    assert not np.array_equal(result, first), "the drawing did not change the output"
    assert page.compare.has_after() and "ms" in page.time_label.text()

    saved = page.save_result(tmp_path / "out" / "mine")
    assert saved.suffix == ".png" and Image.open(saved).size == (512, 512)

    folder = tmp_path / "drawings"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.full((40, 60), 255 - 40 * i, np.uint8)).save(folder / f"d{i}.png")
    (folder / "broken.png").write_bytes(b"\x89PNG not an image")
    out = tmp_path / "batch"
    assert page.start_batch([folder], out)
    assert not page.batch_button.isEnabled()
    qtbot.waitUntil(lambda: not page.batching, timeout=60_000)
    assert sorted(p.name for p in out.iterdir()) == ["d0.png", "d1.png", "d2.png"]
    assert [Path(s["path"]).name for s in page.last_batch["skipped"]] == ["broken.png"]
    assert Image.open(out / "d1.png").size == (60, 40)

    # "Trace a photo": the worker reads the file and the engine turns it into line art on the canvas
    photo = tmp_path / "photo.png"
    image = Image.new("RGB", (300, 200), (230, 220, 200))
    image.paste((40, 60, 160), (80, 50, 220, 150))
    image.save(photo)
    page.read_image(photo, trace=True, into_canvas=True)
    qtbot.waitUntil(lambda: page.canvas.image_size() == (512, 341), timeout=30_000)
    lines = page.canvas.to_array()
    assert 0.001 < (lines < 128).mean() < 0.2  # an outline of the rectangle, not a filled image
    page.canvas.undo()
    assert page.canvas.image_size() == (512, 512)

    page.read_image(folder / "broken.png", into_canvas=True)
    qtbot.waitUntil(lambda: window.errors.last_dialog is not None, timeout=30_000)
    assert "broken.png" in window.errors.last_dialog.message_label.text()


def test_colour_hints_change_the_colorized_image(window, qtbot, project, art_folder):
    run = _colorize_run(project, art_folder)
    page = window.translate_page
    window.show_page("translate")
    page.refresh_runs(select=run)
    qtbot.waitUntil(lambda: page.model is not None and page.task() == "colorize", timeout=60_000)
    assert page.inputs.currentIndex() == 1 and page.color_button.isVisibleTo(page)

    grey = np.tile(np.linspace(40, 220, 48, dtype=np.uint8), (48, 1))
    start = page.request_id
    page.set_input_image(grey)
    plain = _wait_result(page, qtbot, start + 1).copy()
    assert plain.shape == (48, 48, 3)
    start = page.request_id
    page.hint_view.add_hint(10, 20, (255, 0, 0))
    assert page.hint_view.can_undo() and page.hint_undo.isEnabled()
    hinted = _wait_result(page, qtbot, start + 1)
    assert not np.array_equal(hinted, plain), "a colour hint did not change the result"
    # the lightness is the input's: greyscale of the result follows the input ramp
    assert np.corrcoef(hinted.mean(2).ravel(), np.repeat(grey[..., None], 1, 2).ravel())[0, 1] > 0.95

    window.show_page("models")
    window.models_page.select_run(run)
    panel = window.models_page.evaluate_panel
    assert panel.translates() and not panel.check_button.isEnabled() and "Translate page" in panel.scores_label.text()


def test_models_page_exports_and_benchmarks_a_translator_then_translate_uses_onnxruntime(
    window, qtbot, project, art_folder
):
    run = _colorize_run(project, art_folder)
    models, page = window.models_page, window.translate_page
    window.show_page("models")
    models.select_run(run)
    qtbot.mouseClick(models.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not models.is_busy(), timeout=120_000)
    assert len(list(run.glob("exports/*.onnx"))) == 1 and "parity" in models.export_label.text()
    item = models.tree.topLevelItem(0)
    assert any("used by Translate" in item.child(i).text(1) for i in range(item.childCount()))
    models.bench_runs = 2
    qtbot.mouseClick(models.bench_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not models.is_busy(), timeout=120_000)
    assert [r.batch for r in models.bench_rows] == [1, 8] and all(r.ort_ms > 0 for r in models.bench_rows)

    window.show_page("translate")
    qtbot.waitUntil(lambda: page.model is not None and page.model["backend"] == "onnxruntime", timeout=60_000)
    assert "onnxruntime" in page.model_label.text()
