"""The Upscale page and its zoomable before/after view, driven with real widgets offscreen: a real image
file upscaled through a tiny model, a folder batch cancelled midway, a bad model file, the synced
zoom/pan of both sides, and Generate's "upscale on export"."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QWheelEvent
from PySide6.QtWidgets import QApplication, QFileDialog

from engine.families import get_family
from studio.widgets.zoom_compare import ZoomCompareView
from tests.studio.conftest import import_and_attest, make_tiny, train_tiny_run
from tests.studio.test_translate_widgets import drag, grab_rgb, shown

LEFT = Qt.MouseButton.LeftButton


def wheel(widget, pos: QPointF, notches: float) -> None:
    """A real wheel event at ``pos`` (120 units per notch)."""
    event = QWheelEvent(
        pos,
        widget.mapToGlobal(pos),
        QPoint(0, 0),
        QPoint(0, int(120 * notches)),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(widget, event)


def pair(scale: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """A random before and an after that is its nearest-neighbour enlargement, inverted: each after pixel
    is known from the before pixel it came from, and the two sides never look alike."""
    before = np.random.default_rng(3).integers(0, 256, (12, 16, 3), dtype=np.uint8)
    after = 255 - np.repeat(np.repeat(before, scale, axis=0), scale, axis=1)
    return before, np.ascontiguousarray(after)


def sample_points(view: ZoomCompareView, scale: int, count: int = 40) -> list[tuple[int, int]]:
    """Widget points well inside one before pixel (away from pixel edges and the badges)."""
    points = []
    for y in range(36, view.height() - 36, 7):
        for x in range(12, view.width() - 12, 9):
            grid = view.widget_to_image(QPointF(x + 0.5, y + 0.5))
            fx, fy = grid.x() / scale % 1, grid.y() / scale % 1
            inside = 0 <= grid.x() < view.image_size().width() and 0 <= grid.y() < view.image_size().height()
            if inside and 0.25 < fx < 0.75 and 0.25 < fy < 0.75:
                points.append((x, y))
    assert len(points) >= count, f"only {len(points)} sample points on screen"
    return points


def assert_aligned(view: ZoomCompareView, before: np.ndarray, after: np.ndarray, scale: int) -> None:
    """With the split at the right edge the widget shows only the before, at the left edge only the after:
    at every sample point, each shows the pixel the view maps that point to, and they are the same place."""
    view.set_split(1.0)
    before_shot = grab_rgb(view)
    view.set_split(0.0)
    after_shot = grab_rgb(view)
    for x, y in sample_points(view, scale):
        centre = QPointF(x + 0.5, y + 0.5)
        grid, source = view.widget_to_image(centre), view.before_pixel(centre)
        bx, by = int(source.x()), int(source.y())
        assert (bx, by) == (int(grid.x()) // scale, int(grid.y()) // scale)
        assert np.array_equal(before_shot[y, x], before[by, bx]), (x, y)
        assert np.array_equal(after_shot[y, x], after[int(grid.y()), int(grid.x())]), (x, y)
        assert np.array_equal(after_shot[y, x], 255 - before_shot[y, x])  # one place, both sides


# -- ZoomCompareView ------------------------------------------------------------------------------
def test_zoom_and_pan_keep_both_sides_aligned(qtbot):
    view = shown(qtbot, ZoomCompareView(), 400, 300)
    before, after = pair(4)
    view.set_images(before, after)
    assert view.is_fit() and view.image_size().width() == 64 and view.image_size().height() == 48
    assert view.zoom() == pytest.approx(min(398 / 64, 298 / 48))
    assert_aligned(view, before, after, 4)

    cursor = QPointF(150.0, 120.0)
    under = view.widget_to_image(cursor)
    wheel(view, cursor, 3)  # zoom in around the cursor: the image point under it stays under it
    assert view.zoom() > 2.5 * min(398 / 64, 298 / 48) and not view.is_fit()
    moved = view.widget_to_image(cursor)
    assert (moved.x(), moved.y()) == (pytest.approx(under.x(), abs=1e-6), pytest.approx(under.y(), abs=1e-6))
    assert_aligned(view, before, after, 4)

    view.set_split(0.5)
    origin = view.image_to_widget(QPointF(0, 0))
    drag(qtbot, view, [QPoint(100, 150), QPoint(130, 160), QPoint(160, 170)])  # away from the handle: pans
    shifted = view.image_to_widget(QPointF(0, 0))
    assert (shifted.x() - origin.x(), shifted.y() - origin.y()) == (pytest.approx(60), pytest.approx(20))
    assert view.split() == 0.5, "a pan leaves the split where it is"
    assert_aligned(view, before, after, 4)

    wheel(view, QPointF(300, 80), -1)  # zoom out a notch elsewhere, then check again
    assert_aligned(view, before, after, 4)


def test_the_handle_drags_the_split_and_fit_and_actual_size_toggle(qtbot):
    view = shown(qtbot, ZoomCompareView(), 400, 300)
    before, after = pair(4)
    view.set_images(before, after)
    seen = []
    view.sig_split_changed.connect(seen.append)
    origin = view.image_to_widget(QPointF(0, 0))
    drag(qtbot, view, [QPoint(200, 150), QPoint(260, 150), QPoint(300, 150)])  # the handle sits at x = 200
    assert view.split() == pytest.approx(0.75, abs=0.01) and seen[-1] == view.split()
    assert view.image_to_widget(QPointF(0, 0)) == origin, "dragging the handle does not pan"
    view.toggle_fit()  # 100%: one after pixel per screen pixel, centred
    assert not view.is_fit() and view.zoom() == pytest.approx(view.actual_zoom())
    assert view.image_rect().center().x() == pytest.approx(200, abs=1)
    view.toggle_fit()
    assert view.is_fit() and view.zoom() == pytest.approx(view.fit_zoom())
    view.resize(600, 300)  # a fitted view refits
    qtbot.waitUntil(lambda: view.zoom() == pytest.approx(view.fit_zoom()))
    assert view.fit_zoom() == pytest.approx(298 / 48)


def test_a_large_result_zoomed_out_is_area_averaged_and_still_aligned(qtbot):
    view = shown(qtbot, ZoomCompareView(), 300, 200)
    # a fine checkerboard result: shrunk 8x by averaging it is mid-grey; a plain bilinear draw aliases it
    before = np.zeros((100, 150, 3), np.uint8)
    after = ((np.indices((800, 1200)).sum(0) % 2) * 255).astype(np.uint8)
    after = np.ascontiguousarray(np.repeat(after[:, :, None], 3, axis=2))
    view.set_images(before, after)
    assert view.zoom() < 0.5
    view.set_split(0.0)
    shot = grab_rgb(view)
    rect = view.image_rect()
    inner = shot[int(rect.top()) + 30 : int(rect.bottom()) - 30, int(rect.left()) + 10 : int(rect.right()) - 10]
    assert abs(inner.mean() - 127.5) < 12 and inner.std() < 20
    view.set_split(1.0)
    assert grab_rgb(view)[int(rect.center().y()), int(rect.center().x())].max() == 0  # before side: black


# -- the Upscale page -----------------------------------------------------------------------------
SR_SCALE = 2


def tiny_sr_run(project, source: Path, name: str = "sr-tiny", steps: int = 3) -> Path:
    """A tiny esrgan (x2) run trained for a few steps by the engine itself."""
    from engine.runs import TrainConfig
    from engine.training import Trainer

    options = dict(get_family("esrgan").tiny_options, scale=SR_SCALE)
    config = TrainConfig(
        dataset=str(import_and_attest(project, source)),
        family="esrgan",
        family_options=options,
        steps=steps,
        batch_size=4,
        resolution=16,
        log_every=1,
        preview_every=0,
        seed=1,
    )
    return Path(Trainer(config, run_dir=project.runs_dir / name).run().run_dir)


def write_photo(path: Path, height: int, width: int, seed: int = 0) -> Path:
    """A real PNG with smooth gradients and a few shapes (something an upscaler has to work on)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    image = np.stack([xx * 255 // max(1, width - 1), yy * 255 // max(1, height - 1), (xx + yy) % 256], 2)
    picture = Image.fromarray(image.astype(np.uint8))
    draw = ImageDraw.Draw(picture)
    for _ in range(4):
        x, y = int(rng.integers(0, width - 10)), int(rng.integers(0, height - 10))
        draw.ellipse([x, y, x + 12, y + 9], fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
    path.parent.mkdir(parents=True, exist_ok=True)
    picture.save(path)
    return path


@pytest.fixture
def page_for(qtbot):
    """An UpscalePage on a project, shown, with its error reporter; its worker thread is always ended."""
    from studio.errors import ErrorReporter
    from studio.pages.upscale import UpscalePage

    pages = []

    def make(project) -> UpscalePage:
        page = UpscalePage(project, ErrorReporter(None))
        qtbot.addWidget(page)
        page.resize(1100, 720)
        page.show()
        qtbot.waitExposed(page)
        pages.append(page)
        return page

    yield make
    for page in pages:
        page.shutdown()


def wait_model(qtbot, page) -> dict:
    qtbot.waitUntil(lambda: page.model is not None, timeout=60_000)
    return page.model


def drop(widget, paths: list[Path]) -> None:
    """A real drop of local files onto ``widget`` (enter, then drop)."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    centre = QPointF(widget.width() / 2, widget.height() / 2)
    action = Qt.DropAction.CopyAction
    enter = QDragEnterEvent(centre.toPoint(), action, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, enter)
    assert enter.isAccepted()
    event = QDropEvent(centre, action, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)


def test_the_page_upscales_a_dropped_image_through_a_tiny_esrgan_run(qtbot, project, art_folder, tmp_path, page_for):
    from engine.export.open import open_upscaler
    from engine.inference.upscale_files import read_source

    run = tiny_sr_run(project, art_folder)
    page = page_for(project)
    assert page.run_combo.currentData() == str(run)
    info = wait_model(qtbot, page)
    assert info["scale"] == SR_SCALE and "esrgan" in page.model_label.text() and "PyTorch" in page.model_label.text()
    assert not page.upscale_button.isEnabled()  # no image yet

    photo = write_photo(tmp_path / "in" / "photo.png", 150, 200)
    drop(page, [photo])
    qtbot.waitUntil(lambda: page.input_image is not None, timeout=30_000)
    assert page.input_label.text() == "photo.png: 200×150 px → 400×300 px"
    assert page.compare.image_size().width() == 200 and not page.compare.has_after()

    page.tile_combo.setCurrentIndex(page.tile_combo.findData(128))  # 2 x 2 tiles of the 200 x 150 image
    tiles: list[tuple[int, int]] = []
    page.worker.sig_tile.connect(lambda done, total: tiles.append((done, total)), Qt.ConnectionType.DirectConnection)
    qtbot.mouseClick(page.upscale_button, LEFT)
    assert page.busy() and page.cancel_button.isVisible() and not page.upscale_button.isEnabled()
    qtbot.waitUntil(lambda: page.result is not None, timeout=60_000)
    assert not page.busy() and not page.compare.is_busy()
    assert page.result.shape == (300, 400, 3) and page.result.dtype == np.uint8
    assert page.compare.has_after() and page.compare.image_size().width() == 400
    assert page.compare.image_size().height() == 300
    assert tiles and tiles[-1] == (4, 4), tiles  # progress per tile, to the last one
    assert "400×300 px" in page.time_label.text()
    # the page shows what the engine computes for that file (same model, same tiles)
    expected = open_upscaler(run, device="cpu").upscale_array(read_source(photo).pixels, tile=128)
    assert np.abs(page.result.astype(int) - expected.astype(int)).max() <= 1

    target = tmp_path / "out" / "big.png"
    saved = page.save_result(target)
    assert saved == target and Image.open(saved).size == (400, 300)
    again = page.save_result(target)  # never overwrites silently: the second save gets a new name
    assert again == tmp_path / "out" / "big-2.png" and Image.open(target).size == (400, 300)
    assert page.default_save_path().name == f"photo-x{SR_SCALE}.png"


def test_cancel_stops_a_folder_batch_and_the_summary_says_so(qtbot, project, art_folder, tmp_path, page_for):
    run = tiny_sr_run(project, art_folder)
    page = page_for(project)
    wait_model(qtbot, page)
    folder = tmp_path / "photos"
    (folder).mkdir()
    (folder / "a-broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")  # first in order: skipped
    for i in range(8):
        write_photo(folder / f"p{i}.png", 64, 80, seed=i)
    page.set_batch_inputs([folder])
    assert page.upscale_button.text() == "Upscale folder…" and "9 image(s)" in page.input_label.text()
    upscaler = page.worker.model
    forward = upscaler._forward

    def slow_forward(x):  # a model that takes a while per image, so Cancel lands mid-batch
        time.sleep(0.3)
        return forward(x)

    upscaler._forward = slow_forward
    out = tmp_path / "bigger"
    assert page.start_batch([folder], out)
    assert page.cancel_button.isVisible() and not page.upscale_button.isEnabled()
    qtbot.waitUntil(lambda: page.progress.value() >= 2, timeout=60_000)
    qtbot.mouseClick(page.cancel_button, LEFT)
    qtbot.waitUntil(lambda: not page.busy(), timeout=60_000)
    result = page.last_batch
    assert result["cancelled"]
    written = [Path(p) for p in result["written"]]
    assert 1 <= len(written) < 8 and sorted(out.iterdir()) == sorted(written)
    assert all(Image.open(p).size == (160, 128) for p in written) and written[0].name == f"p0-x{SR_SCALE}.png"
    assert [Path(s["path"]).name for s in result["skipped"]] == ["a-broken.png"]
    summary = page.summary_label.text()
    assert page.summary_label.isVisible() and f"Upscaled {len(written)} image(s) into {out} — cancelled." in summary
    assert "a-broken.png: " in summary and result["skipped"][0]["reason"] in summary
    assert run.is_dir() and not page.cancel_button.isVisible()


def test_a_model_file_shows_its_architecture_and_a_bad_one_the_engines_message(qtbot, project, tmp_path, page_for):
    import torch
    from safetensors.torch import save_file

    from engine.errors import GanStudioError, gui_message
    from engine.export.open import open_upscaler
    from tests.engine.test_upscale import compact_state_dict

    page = page_for(project)
    assert page.run_combo.count() == 0 and "No upscaler yet" in page.model_label.text()
    good = tmp_path / "models" / "realesr-tiny-x4.safetensors"
    good.parent.mkdir()
    save_file(compact_state_dict(scale=4), str(good))
    page.use_model_file(good)
    info = wait_model(qtbot, page)
    assert info["scale"] == 4 and info["architecture"]
    assert info["architecture"] in page.model_label.text() and "×4" in page.model_label.text()
    assert page.run_combo.currentText() == "realesr-tiny-x4.safetensors (file)"

    bad = tmp_path / "models" / "mystery.safetensors"
    save_file({"encoder.weight": torch.zeros(4, 4), "decoder.weight": torch.zeros(4, 4)}, str(bad))
    with pytest.raises(GanStudioError) as caught:
        open_upscaler(bad, device="cpu")
    expected = gui_message(caught.value)
    page.use_model_file(bad)
    qtbot.waitUntil(lambda: page.errors.last_dialog is not None, timeout=60_000)
    dialog = page.errors.last_dialog
    assert dialog.message_label.text() == expected and "mystery.safetensors" in expected
    assert dialog.details == "", "an engine error is words, never a traceback"
    assert page.model is None and page.model_label.text() == f"Could not load this model: {expected}"
    assert not page.upscale_button.isEnabled()
    page.run_combo.setCurrentIndex(page.run_combo.findData(str(good.resolve())))  # back to the good file
    assert wait_model(qtbot, page)["scale"] == 4


# -- the rest of the window: Train, Models and Generate with an upscaler ----------------------------
def test_train_an_upscaler_open_it_from_models_and_upscale_generate_exports(
    window, qtbot, project, art_folder, tmp_path, monkeypatch
):
    from engine.runs.info import run_kind

    train = window.train_page
    train.refresh_datasets(select=import_and_attest(project, art_folder))
    make_tiny(train, family="esrgan", steps=3, batch_size=4, resolution=16)
    assert train.scale_label.isVisibleTo(train) and train.scale_combo.count() == 2
    editors = train.train_form.editors
    for name in ("conditional", "class_balance"):  # an upscaler learns no classes: no class settings
        assert editors[name].isHidden() and train.train_form.labels[name].isHidden()
    assert not editors["steps"].isHidden() and not train.family_form.editors["scale"].isHidden()
    train.set_scale(SR_SCALE)
    assert train.build_config().family_options["scale"] == SR_SCALE
    with qtbot.waitSignal(train.sig_run_finished, timeout=120_000):
        assert train.start()
    qtbot.waitUntil(lambda: not train.is_running(), timeout=60_000)
    run = Path(train.run_dir)
    assert run_kind(run) == "upscale" and train.result is not None
    upscale = window.upscale_page
    assert upscale.run_combo.findData(str(run)) >= 0  # the finished run was routed to the Upscale page
    assert window.generate_page.run_combo.findData(str(run)) < 0  # and not to Generate

    models = window.models_page
    window.show_page("models")
    models.select_run(run)
    assert models.open_button.text() == "Open in Upscale" and models.open_button.isEnabled()
    qtbot.mouseClick(models.open_button, LEFT)
    assert window.current_page() == "upscale" and upscale.run_combo.currentData() == str(run)
    qtbot.waitUntil(lambda: upscale.model is not None, timeout=60_000)

    generator = train_tiny_run(project, art_folder, "dcgan-tiny")
    gen = window.generate_page
    gen.refresh_runs(select=generator)
    window.show_page("generate")
    qtbot.waitUntil(lambda: gen.model is not None and gen.gallery.count() > 0, timeout=60_000)
    assert gen.upscale_combo.findData(str(run)) >= 0 and gen.export_upscaler() == ""
    folders = iter([tmp_path / "plain", tmp_path / "upscaled"])
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(next(folders))))
    gen.count_spin.setValue(3)
    for expected in (32, 32 * SR_SCALE):
        if expected > 32:
            gen.set_export_upscaler(run)
            assert gen.export_upscaler() == str(run) and run.name in gen.size_label.text()
        assert gen.export_batch()
        qtbot.waitUntil(lambda: not gen.exporting, timeout=60_000)
        files = sorted(Path(gen.export_dir).glob("*.png"))
        assert len(files) == 3 and all(Image.open(f).size == (expected, expected) for f in files)
        assert f"{expected}×{expected} px each" in window.statusBar().currentMessage()

    # another request's failure answered mid-export (a gallery page, a load) does not end the export
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(tmp_path / "many")))
    gen.count_spin.setValue(5_000)
    assert gen.export_batch()
    gen.worker.sig_failed.emit("A gallery page failed.", "")
    assert gen.exporting and gen.cancel_button.isVisibleTo(gen) and not gen.export_button.isEnabled()
    gen.cancel_export()
    qtbot.waitUntil(lambda: not gen.exporting, timeout=60_000)
    assert "(cancelled)" in window.statusBar().currentMessage()
    assert len(list((tmp_path / "many").glob("*.png"))) < 5_000

    bad = tmp_path / "not-a-model.pth"
    bad.write_bytes(b"these bytes are not a model")
    gen.set_export_upscaler(bad)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(tmp_path / "never")))
    assert gen.export_batch()
    qtbot.waitUntil(lambda: not gen.exporting, timeout=60_000)  # ended by the export's own answer
    assert window.errors.last_dialog is not None and "not-a-model.pth" in window.errors.last_dialog.message_label.text()
    assert window.errors.last_dialog.details == ""
    assert not list((tmp_path / "never").glob("*.png")) and gen.export_button.isEnabled()
