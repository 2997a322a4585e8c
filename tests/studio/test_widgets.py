"""Reusable widgets: the generated config form, presets, the lazy 10,000-image grid, the coalescing
preview view, and the loss chart's throttled redraw."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest
from PIL import Image

from engine.families import family_names, get_family
from engine.runs import TrainConfig
from studio.pages.train import FORM_EXCLUDE
from studio.presets import PRESETS, TIERS, WIDTH_FIELDS, device_tier, preset_settings
from studio.widgets.config_form import (
    ChoiceEditor,
    ConfigForm,
    FloatEditor,
    IntEditor,
    OptionalEditor,
    TriStateEditor,
    field_docs,
)
from studio.widgets.image_grid import ImageGrid
from studio.widgets.loss_chart import LossChart
from studio.widgets.preview_view import PreviewView


def test_config_form_is_generated_from_the_dataclass_with_docstring_tooltips(qtbot):
    form = ConfigForm(TrainConfig, exclude=FORM_EXCLUDE)
    qtbot.addWidget(form)
    expected = {f.name for f in dataclasses.fields(TrainConfig)} - set(FORM_EXCLUDE)
    assert set(form.editors) == expected
    assert "Images per step" in form.editors["batch_size"].toolTip()
    assert "(default: 32)" in form.labels["batch_size"].toolTip()
    assert isinstance(form.editors["resolution"], OptionalEditor)
    assert isinstance(form.editors["amp"], TriStateEditor)
    assert isinstance(form.editors["lr_g"], FloatEditor) and isinstance(form.editors["steps"], OptionalEditor)
    assert form.values()["resolution"] is None and form.changed_values() == {}
    form.set_values({"resolution": 32, "amp": False, "lr_g": 1e-4, "steps": None, "minutes": 2.5})
    assert form.changed_values() == {"resolution": 32, "amp": False, "lr_g": 1e-4, "steps": None, "minutes": 2.5}
    TrainConfig(dataset="x", **form.values()).validate()


@pytest.mark.parametrize("family", family_names())
def test_every_family_gets_a_model_form_with_its_docstrings(qtbot, family):
    config_cls = get_family(family).Config
    form = ConfigForm(config_cls)
    qtbot.addWidget(form)
    docs = field_docs(config_cls)
    assert docs and set(docs) == {f.name for f in dataclasses.fields(config_cls)}
    for name, editor in form.editors.items():
        assert docs[name] in editor.toolTip()
    if get_family(family).kind == "generate":
        assert isinstance(form.editors["latent_dim"], IntEditor)
    if "task" in form.editors:  # Literal fields get a drop-down of exactly the accepted values
        editor = form.editors["task"]
        assert isinstance(editor, ChoiceEditor)
        assert [editor.combo.itemData(i) for i in range(editor.combo.count())] == list(get_family(family).tasks)
    assert isinstance(form.editors["base_channels"], IntEditor)
    assert config_cls(**form.values()) == config_cls()


def test_presets_fit_the_device_and_every_family():
    assert device_tier(None) == "cpu" and device_tier(4 * 2**30) == "gpu-small"
    assert device_tier(80 * 2**30) == "gpu-large"
    for family in family_names():
        family_cls = get_family(family)
        for tier in TIERS:
            for name in PRESETS:
                settings = preset_settings(name, family_cls, tier, 64)
                assert family_cls.min_resolution <= settings["resolution"] <= family_cls.max_resolution
                TrainConfig(dataset="x", family=family, **settings).validate()
        quick_cpu = preset_settings("quick", family_cls, "cpu", 256)
        quick_gpu = preset_settings("quick", family_cls, "gpu-large", 256)
        assert quick_cpu["batch_size"] < quick_gpu["batch_size"] and quick_cpu["resolution"] <= quick_gpu["resolution"]


def test_presets_scale_width_fields_of_any_family_generically():
    @dataclasses.dataclass
    class Options:
        base_channels: int = 40
        """Width."""
        depth: int = 3
        """Not a width field."""

    class Fake:
        Config = Options
        min_resolution, max_resolution = 16, 128

        @classmethod
        def recommended_settings(cls, resolution: int, device_type: str) -> dict:
            return {}

    settings = preset_settings("quick", Fake, "cpu", 100)
    assert settings["family_options"] == {"base_channels": 20} and WIDTH_FIELDS == ("base_channels",)
    assert settings["resolution"] == 32  # capped for a CPU, and a power of two
    assert preset_settings("quality", Fake, "gpu-large", 100)["resolution"] == 64


def test_a_family_that_recommends_a_smaller_batch_keeps_it_and_the_preset_keeps_its_images_seen():
    @dataclasses.dataclass
    class Options:
        base_channels: int = 32
        """Width."""

    class SmallBatch:
        Config = Options
        min_resolution, max_resolution = 16, 128

        @classmethod
        def recommended_settings(cls, resolution: int, device_type: str) -> dict:
            return {"batch_size": 8} if device_type == "cpu" else {}

    for name, preset in PRESETS.items():
        cpu = preset_settings(name, SmallBatch, "cpu", 64)
        assert cpu["batch_size"] == 8
        assert cpu["steps"] * 8 >= preset.steps["cpu"] * preset.batch_size["cpu"] > (cpu["steps"] - 1) * 8
        gpu = preset_settings(name, SmallBatch, "gpu-large", 64)  # no recommendation there: the preset's own
        assert (gpu["batch_size"], gpu["steps"]) == (preset.batch_size["gpu-large"], preset.steps["gpu-large"])


def test_thumbnail_grid_stays_lazy_and_fast_with_10000_images(qtbot):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (10_000, 64, 64, 3), dtype=np.uint8)
    labels = np.arange(10_000) % 3
    grid = ImageGrid()
    qtbot.addWidget(grid)
    grid.resize(900, 600)
    grid.show()
    started = time.perf_counter()
    grid.thumbnails.set_images(images, labels, ["a", "b", "c"], [f"img{i}.png" for i in range(10_000)])
    qtbot.wait(50)
    grid.scrollToBottom()
    qtbot.wait(50)
    grid.scrollToTop()
    qtbot.wait(50)
    elapsed = time.perf_counter() - started
    made = grid.thumbnails.pixmaps_made
    assert 0 < made < 600, f"{made} thumbnails made for two screens of a 10,000-image grid"
    assert elapsed < 3.0
    grid.thumbnails.set_class_filter(1)
    assert grid.model().rowCount() == 3333
    index = grid.model().index(0, 0)
    assert grid.model().data(index, 3).startswith("img1.png")  # ToolTipRole names the file


def test_preview_view_draws_only_the_newest_frame_and_scrubs_saved_ones(qtbot, tmp_path):
    view = PreviewView(frame_ms=60_000)  # the timer never fires here; flush() stands in for it
    qtbot.addWidget(view)
    for step in range(1, 51):
        view.push(np.full((20, 20, 3), step, np.uint8), step)
    assert view.frames_drawn == 0
    view.flush()
    view.flush()
    assert view.frames_drawn == 1 and view.canvas.image.pixelColor(0, 0).red() == 50
    assert view.steps == list(range(1, 51)) and view.slider.maximum() == 49
    Image.new("RGB", (12, 12), (200, 10, 10)).save(tmp_path / "step-000003.png")
    view.set_path_for(lambda step: tmp_path / f"step-{step:06d}.png")
    view.slider.setValue(2)
    assert view.canvas.image.width() == 12 and "earlier" in view.step_label.text()
    view.push(np.zeros((20, 20, 3), np.uint8), 51)
    view.flush()
    assert view.canvas.image.width() == 12  # scrubbing: a new frame does not yank the view back
    view.follow_live()
    assert view.canvas.image.width() == 20


def test_loss_chart_redraws_on_its_timer_not_per_step(qtbot):
    chart = LossChart(redraw_ms=60_000)
    qtbot.addWidget(chart)
    for step in range(1, 501):
        chart.add({"step": step, "loss_d": 1.0 / step, "loss_g": 2.0, "img_per_sec": 5.0, "augment_p": 0.1})
    assert chart.redraws == 0 and set(chart.series) == {"loss_d", "loss_g"}
    chart.redraw()
    chart.redraw()
    assert chart.redraws == 1 and len(chart.curves["loss_d"].getData()[0]) == 500


def test_many_emits_and_slot_calls_cannot_kill_the_interpreter(qtbot):
    from PySide6.QtCore import QObject, Signal

    from studio.qt_compat import install_refcount_guard

    class Source(QObject):
        sig_ping = Signal()
        """Test signal."""

    install_refcount_guard()
    source, calls = Source(), []
    source.sig_ping.connect(lambda: calls.append(1))
    source.objectNameChanged.connect(lambda _: None)
    for i in range(30_000):  # PySide6 6.12.0 would abort long before this without the guard
        source.sig_ping.emit()
        source.setObjectName(str(i % 7))
    assert len(calls) == 30_000


def test_loss_chart_plots_kid_measurements_from_stats_and_metric_records(qtbot):
    chart = LossChart(redraw_ms=60_000)
    qtbot.addWidget(chart)
    chart.set_history(
        [
            {"step": 1, "loss_d": 1.0, "loss_g": 2.0},
            {"step": 2, "kid": 0.4, "kid_std": 0.01, "kid_name": "KD (EffLite0)"},
        ]
    )
    chart.add({"step": 4, "kid": 0.3, "kid_std": 0.01, "kid_name": "KD (EffLite0)"})
    chart.redraw()
    xs, _ = chart.raw_curves["kid"].getData()
    assert list(xs) == [2.0, 4.0]
    assert "kid_std" not in chart.series


def test_cycle_collection_runs_only_from_the_gui_thread_timer(qapp):
    import gc

    from studio import gc_guard

    collector = gc_guard.install(qapp)
    assert gc_guard.install(qapp) is collector  # idempotent
    assert not gc.isenabled(), "automatic collection could free widgets from a worker thread"

    class Node:
        pass

    for _ in range(collector.thresholds[0] + 10):  # garbage cycles that only the collector can free
        a, b = Node(), Node()
        a.other, b.other = b, a
    before = gc.get_count()[0]
    collector.collect()
    assert gc.get_count()[0] < before
    assert collector.timer.isActive()
