"""``gan-studio --screenshot DIR``: drive each page with real content and save what the app shows.

Imports the bundled sample into a fresh project, records its attestation through the consent dialog,
trains a quick run (real previews and curves), fills the Generate gallery from it, exports it to ONNX
and benchmarks it on the Models page, evaluates it on the Models page's Evaluate tab, and grabs
loading.png (the window as it first shows, while the engine loads), dataset.png, consent.png,
train.png, generate.png, models.png, evaluate.png, duplicates.png (a copy of part of the sample with
smaller re-encoded copies of a few emoji, imported with duplicates left out), runs-training.png (the
runs list while a second run trains), train-stopped.png (that run after Stop), train-health.png (a run
whose generator cannot learn, so the training doctor flags it), tune-dialog.png and train-light.png.
Given trained models (``--screenshot-sketch-model``, ``--screenshot-colorize-model`` with
``--screenshot-colorize-image``), it also draws a sketch on the Translate page's canvas with scripted
strokes and colorizes the image with a few hint clicks: translate.png and translate-colorize.png.
Given an upscaler and an image (``--screenshot-upscale-model``, ``--screenshot-upscale-image``), it
upscales the image on the Upscale page and grabs the before/after view zoomed in on its most detailed
part: upscale.png. consent-faces.png: the consent dialog on a folder with photographed faces (astronaut
and LFW crops from scikit-image) among sample emoji, "no identifiable person" chosen but not yet
allowed because the flagged images were not ticked as looked at.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QEventLoop
from PySide6.QtWidgets import QApplication, QWidget

from studio.paths import SAMPLE_DATASET
from studio.settings import SETTINGS_ENV, app_settings
from studio.theme import apply_theme

WINDOW_SIZE = (1440, 900)


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Process events until ``condition()`` holds; RuntimeError naming ``what`` after ``timeout`` s."""
    app = QApplication.instance()
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)  # type: ignore[union-attr]
        time.sleep(0.01)


def settle(seconds: float = 0.4) -> None:
    """Let timers fire and widgets repaint for a moment."""
    end = time.monotonic() + seconds
    wait_until(lambda: time.monotonic() > end, seconds + 5, "the window to settle")


def grab(widget: QWidget, path: Path) -> Path:
    """Save what ``widget`` shows as a PNG."""
    settle()
    path.parent.mkdir(parents=True, exist_ok=True)
    if not widget.grab().save(str(path)):
        raise RuntimeError(f"could not write {path}")
    print(f"wrote {path}")
    return path


def take_screenshots(
    out_dir: Path,
    project_dir: Path | None = None,
    theme: str = "dark",
    steps: int | None = None,
    translate: dict[str, Path | None] | None = None,
    upscale: dict[str, Path | None] | None = None,
    only: str | None = None,
) -> int:
    """Produce the screenshots into ``out_dir``; returns 0 (an exit status)."""
    scratch = Path(tempfile.mkdtemp(prefix="gan-studio-shots-"))
    os.environ[SETTINGS_ENV] = str(scratch / "settings.ini")  # leave the user's settings alone
    from studio.main_window import MainWindow
    from studio.project import Project

    app = QApplication.instance()
    apply_theme(app, theme)  # type: ignore[arg-type]
    project = Project.create(project_dir or scratch / "Sample project")
    window = MainWindow(project, app_settings(), theme)
    window.resize(*WINDOW_SIZE)
    window.show()
    _loading_shot(window, Path(out_dir))
    wait_until(window.engine_ready, 300, "the engine to load")
    translate = translate or {}
    if only is None:
        dataset = _dataset_page(window, Path(out_dir))
        _train_page(window, Path(out_dir), dataset, steps)
        _generate_page(window, Path(out_dir))
        _models_page(window, Path(out_dir))
        _evaluate_tab(window, Path(out_dir))
        duplicates_shot(window, Path(out_dir), scratch)
        state_shots(window, Path(out_dir), dataset)
        health_shots(window, Path(out_dir), dataset)
        window.set_theme("light")
        window.show_page("train")
        grab(window, Path(out_dir) / "train-light.png")
        window.set_theme(theme)
    if only in (None, "consent-faces"):
        consent_faces_shot(window, Path(out_dir), scratch)
    if only in (None, "edit"):
        edit_shot(window, Path(out_dir), scratch, steps)
    if only in (None, "train-processes"):
        processes_shot(window, Path(out_dir))
    if translate.get("sketch"):
        _sketch_shot(window, Path(out_dir), Path(translate["sketch"]))
    if translate.get("colorize") and translate.get("image"):
        _colorize_shot(window, Path(out_dir), Path(translate["colorize"]), Path(translate["image"]))
    upscale = upscale or {}
    if upscale.get("model") and upscale.get("image"):
        upscale_shot(window, Path(out_dir), Path(upscale["model"]), Path(upscale["image"]))
    window.close()
    return 0


def _loading_shot(window: object, out: Path) -> None:
    """loading.png: the window as it first shows, while the engine loads (none when it is loaded)."""
    end = time.monotonic() + 0.3  # long enough to paint, far shorter than loading the engine
    wait_until(lambda: time.monotonic() > end, 5, "the first paint")
    if window.engine_ready():  # type: ignore[attr-defined]
        print("the engine was already loaded: no loading.png")
        return
    out.mkdir(parents=True, exist_ok=True)
    if not window.grab().save(str(out / "loading.png")):  # type: ignore[attr-defined]
        raise RuntimeError(f"could not write {out / 'loading.png'}")
    print(f"wrote {out / 'loading.png'}")


# A smiling face drawn with the canvas's own stroke tool (image coordinates of the 512 px canvas).
def _circle(cx: float, cy: float, r: float, start: float = 0.0, end: float = 360.0, n: int = 48) -> list:
    import math

    return [
        (cx + r * math.cos(math.radians(a)), cy + r * math.sin(math.radians(a)))
        for a in (start + (end - start) * i / n for i in range(n + 1))
    ]


SMILEY = [_circle(256, 256, 200), _circle(185, 200, 22), _circle(327, 200, 22), _circle(256, 270, 110, 25, 155)]


def _load_translate_model(window: object, source: Path, task: str) -> object:
    page = window.translate_page  # type: ignore[attr-defined]
    window.show_page("translate")  # type: ignore[attr-defined]
    page.use_model_file(source)
    wait_until(lambda: page.model is not None and page.task() == task, 120, f"the {task} model")
    return page


def _sketch_shot(window: object, out: Path, model: Path) -> None:
    page = _load_translate_model(window, model, "sketch")
    for stroke in SMILEY:
        page.canvas.draw_stroke(stroke)
    wanted = page.request_id + 1
    wait_until(
        lambda: page.request_id >= wanted and page.result is not None and not page.compare.is_busy(),
        120,
        "the translated sketch",
    )
    page.compare.set_split(0.35)
    grab(window, out / "translate.png")  # type: ignore[arg-type]


def _colourful_points(photo: object, count: int) -> list[tuple[int, int]]:
    """``count`` well-spread points of high saturation (a user clicks where colour matters)."""
    import numpy as np

    rgb = np.asarray(photo, dtype=np.float32)
    saturation = rgb.max(2) - rgb.min(2)
    h, w = saturation.shape
    points: list[tuple[int, int]] = []
    cells = int(np.ceil(np.sqrt(count * 2)))
    for cy in range(cells):
        for cx in range(cells):
            block = saturation[cy * h // cells : (cy + 1) * h // cells, cx * w // cells : (cx + 1) * w // cells]
            y, x = np.unravel_index(int(block.argmax()), block.shape)
            points.append((int(block[y, x]), cx * w // cells + int(x), cy * h // cells + int(y)))
    return [(x, y) for _, x, y in sorted(points, reverse=True)[:count]]


def _colorize_shot(window: object, out: Path, model: Path, image_path: Path) -> None:
    import numpy as np
    from PIL import Image

    page = _load_translate_model(window, model, "colorize")
    photo = np.asarray(Image.open(image_path).convert("RGB"))
    page.set_input_image(np.asarray(Image.fromarray(photo).convert("L")))
    for x, y in _colourful_points(photo, 6):  # clicks where the photo is most colourful, in its colours
        page.hint_view.add_hint(x, y, tuple(int(c) for c in photo[y, x]))
    wanted = page.request_id + 1
    wait_until(
        lambda: page.request_id >= wanted and page.result is not None and not page.compare.is_busy(),
        120,
        "the colorized image",
    )
    page.compare.set_split(0.4)
    grab(window, out / "translate-colorize.png")  # type: ignore[arg-type]


def _detailed_point(image: object) -> tuple[float, float]:
    """The centre (x, y), as fractions of the image, of its most detailed region (largest local gradient)."""
    import numpy as np

    grey = np.asarray(image, dtype=np.float32)
    grey = grey.mean(2) if grey.ndim == 3 else grey
    detail = np.abs(np.diff(grey, axis=0))[:, :-1] + np.abs(np.diff(grey, axis=1))[:-1]
    h, w = detail.shape
    cells = 6
    best = max(
        ((detail[r * h // cells : (r + 1) * h // cells, c * w // cells : (c + 1) * w // cells].mean(), r, c))
        for r in range(1, cells - 1)  # not at the border: the zoomed view should show around it
        for c in range(1, cells - 1)
    )
    return (best[2] + 0.5) / cells, (best[1] + 0.5) / cells


def upscale_shot(window: object, out: Path, model: Path, image: Path, zoom: float = 2.0) -> None:
    """upscale.png: ``image`` upscaled by ``model`` on the Upscale page, the split in the middle of the view
    zoomed ``zoom`` times the fitted size around the image's most detailed part."""
    from PySide6.QtCore import QPointF

    page = window.upscale_page  # type: ignore[attr-defined]
    window.show_page("upscale")  # type: ignore[attr-defined]
    page.use_model_file(model)
    wait_until(lambda: page.model is not None, 120, "the upscaler")
    page.open_image(image)
    wait_until(lambda: page.input_image is not None, 60, "the image to upscale")
    if not page.start_upscale():
        raise RuntimeError("the upscale did not start")
    wait_until(lambda: page.result is not None and not page.busy(), 900, "the upscaled image")
    view = page.compare
    fx, fy = _detailed_point(page.input_shown)
    size = view.image_size()
    point = view.image_to_widget(QPointF(fx * size.width(), fy * size.height()))
    view.set_zoom(view.fit_zoom() * zoom, point)
    view.pan_by(view.width() / 2 - point.x(), view.height() / 2 - point.y())  # that part in the middle
    view.set_split(0.5)
    grab(window, out / "upscale.png")  # type: ignore[arg-type]


def write_look_alikes(source: Path, target: Path, per_class: int = 16, copied: int = 6) -> Path:
    """A folder with real near duplicates: the first ``per_class`` images of each class folder of
    ``source``, plus smaller, re-encoded copies of ``copied`` of them (two copies of every third)."""
    from PIL import Image

    originals = []
    for folder in sorted(p for p in source.iterdir() if p.is_dir()):
        (target / folder.name).mkdir(parents=True, exist_ok=True)
        for path in sorted(folder.glob("*.png"))[:per_class]:
            (target / folder.name / path.name).write_bytes(path.read_bytes())
            originals.append(target / folder.name / path.name)
    step = max(1, len(originals) // copied)
    for index, path in enumerate(originals[::step][:copied]):
        image = Image.open(path).convert("RGBA")
        flat = Image.new("RGB", image.size, (255, 255, 255))
        flat.paste(image, mask=image.getchannel("A"))
        flat.resize((48, 48), Image.Resampling.BILINEAR).save(path.with_name(f"{path.stem} copy.jpg"), quality=80)
        if index % 3 == 0:
            flat.resize((40, 40), Image.Resampling.LANCZOS).save(path.with_name(f"{path.stem} small.webp"), quality=75)
    return target


def duplicates_shot(window: object, out: Path, scratch: Path) -> None:
    """duplicates.png: the Duplicates tab after leaving near duplicates out of a folder that has some."""
    page = window.dataset_page  # type: ignore[attr-defined]
    window.show_page("dataset")  # type: ignore[attr-defined]
    folder = write_look_alikes(SAMPLE_DATASET, scratch / "emoji with copies")
    page.start_import(folder)
    wait_until(lambda: not page.is_busy(), 120, "the look-alike import")
    if page.report is None or not page.report.duplicates:
        raise RuntimeError("the look-alike folder produced no near-duplicate groups")
    page.report_view.setCurrentIndex(2)
    if not page.leave_duplicates_out(True):
        raise RuntimeError("the re-import without duplicates did not start")
    wait_until(lambda: not page.is_busy(), 120, "the re-import without duplicates")
    view = page.report_view.duplicates
    wait_until(lambda: view.pending() == 0, 60, "the duplicate thumbnails")
    grab(window, out / "duplicates.png")  # type: ignore[arg-type]


def _style_run(window: object, scratch: Path, steps: int | None) -> Path:
    """A stylegan2 run on the bundled sample at 32 px with the family's CPU settings (trained here)."""
    from engine.consent import attest
    from engine.data import import_folder
    from engine.families import get_family
    from engine.runs import TrainConfig
    from engine.training import Trainer

    project = window.project  # type: ignore[attr-defined]
    dataset = project.dataset_dir_for(SAMPLE_DATASET)
    if not (dataset / "dataset.json").is_file():
        import_folder(SAMPLE_DATASET, dataset, size=32)
    attest(dataset, rights="licensed", people="none", attested_by="GAN Studio sample (Noto Emoji, Apache-2.0)")
    family = get_family("stylegan2")
    settings = dict(family.recommended_settings(32, "cpu"))
    options = settings.pop("family_options", {})
    known = {k: v for k, v in settings.items() if k in TrainConfig.__dataclass_fields__}
    config = TrainConfig(
        **{
            **known,
            "dataset": str(dataset),
            "family": "stylegan2",
            "family_options": options,
            "resolution": 32,
            "steps": steps or 600,
            "checkpoint_every": 10_000,
            "preview_every": 10_000,
            "seed": 3,
        }
    )
    return Path(Trainer(config, run_dir=project.runs_dir / "sample-stylegan2").run().run_dir)


def edit_shot(window: object, out: Path, scratch: Path, steps: int | None = None) -> None:
    """edit.png and edit-mixing.png: the Edit page on a stylegan2 run of the sample, SeFa sliders moved, three
    keyframes on the timeline; then its style-mixing grid."""
    run = _style_run(window, scratch, steps)
    page = window.edit_page  # type: ignore[attr-defined]
    window.show_page("edit")  # type: ignore[attr-defined]
    page.refresh_runs(select=run)
    wait_until(lambda: page.model is not None and page.image is not None, 120, "the Edit page's model")
    page.count_spin.setValue(6)
    page.find_directions()
    wait_until(lambda: len(page.sliders) == 6, 60, "the SeFa directions")
    for seed in (2, 5, 11):
        page.seed_spin.setValue(seed)
        settle(0.8)
        page.add_keyframe()
    page.sliders[0].setValue(30)
    page.sliders[2].setValue(-25)
    settle(1.0)
    grab(window, out / "edit.png")  # type: ignore[arg-type]
    page.request_grid()
    wait_until(lambda: page.grid_layout.count() == 25, 60, "the style-mixing grid")
    grab(window, out / "edit-mixing.png")  # type: ignore[arg-type]


def processes_shot(window: object, out: Path) -> None:
    """train-processes.png: the Train page following a two-process (gloo) run it started, its memory plan and
    the torchrun command in view."""
    from engine.consent import attest
    from engine.data import import_folder

    project = window.project  # type: ignore[attr-defined]
    dataset = project.dataset_dir_for(SAMPLE_DATASET)
    if not (dataset / "dataset.json").is_file():
        import_folder(SAMPLE_DATASET, dataset, size=32)
    attest(dataset, rights="licensed", people="none", attested_by="GAN Studio sample (Noto Emoji, Apache-2.0)")
    page = window.train_page  # type: ignore[attr-defined]
    window.show_page("train")  # type: ignore[attr-defined]
    page.refresh_datasets(select=dataset)
    page.set_preset("quick")
    page.train_form.set_values({"steps": 2000, "preview_every": 20, "batch_size": 16})
    page.cluster_button.setChecked(True)
    page.processes_spin.setValue(2)
    if not page.start_processes():
        raise RuntimeError("the two-process run did not start (see the error dialog)")
    wait_until(lambda: int(page.latest_stats.get("step", 0)) >= 120, 900, "the two-process run to train a while")
    page.settings_scroll.ensureWidgetVisible(page.cluster_box)
    settle(1.0)
    grab(window, out / "train-processes.png")  # type: ignore[arg-type]
    page.stop()
    wait_until(lambda: not page.is_running(), 300, "the two-process run to stop")


def consent_faces_shot(window: object, out: Path, scratch: Path) -> None:
    """consent-faces.png: the consent dialog showing the images the import flagged as faces."""
    import numpy as np
    import skimage.data
    from PIL import Image

    folder = scratch / "portraits and emoji"
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(skimage.data.astronaut()).save(folder / "astronaut.png")
    faces = (skimage.data.lfw_subset()[:6] * 255).round().astype(np.uint8)
    for k, crop in enumerate(faces):
        Image.fromarray(crop).resize((100, 100), Image.Resampling.BICUBIC).save(folder / f"portrait-{k}.png")
    for path in sorted(SAMPLE_DATASET.rglob("*.png"))[:12]:
        Image.open(path).save(folder / path.name)
    page = window.dataset_page  # type: ignore[attr-defined]
    window.show_page("dataset")  # type: ignore[attr-defined]
    page.start_import(folder)
    wait_until(lambda: not page.is_busy(), 120, "the import of portraits and emoji")
    if page.report is None or not page.report.faces:
        raise RuntimeError("the portraits were not flagged as faces")
    dialog = page.open_consent()
    dialog.set_choices("own", "none", "A. Artist")
    dialog.resize(860, dialog.sizeHint().height())
    grab(dialog, out / "consent-faces.png")
    dialog.reject()


def _dataset_page(window: object, out: Path) -> Path:
    page = window.dataset_page  # type: ignore[attr-defined]
    window.show_page("dataset")  # type: ignore[attr-defined]
    page.start_import(SAMPLE_DATASET)
    wait_until(lambda: not page.is_busy(), 120, "the sample import")
    dialog = page.open_consent()
    dialog.set_choices(
        "licensed",
        "none",
        "GAN Studio sample (Noto Emoji, Apache-2.0)",
        "Noto Emoji by Google, Apache License 2.0 (resources/sample/LICENSE)",
    )
    dialog.record()
    review = page.open_consent()  # reopened for review: the recorded statement and its history
    grab(review, out / "consent.png")
    review.reject()
    page.report_view.setCurrentIndex(0)
    grab(window, out / "dataset.png")  # type: ignore[arg-type]
    return page.dataset_dir


def _train_page(window: object, out: Path, dataset: Path, steps: int | None) -> None:
    page = window.train_page  # type: ignore[attr-defined]
    window.show_page("train")  # type: ignore[attr-defined]
    page.select_dataset(dataset)
    page.set_preset("quick")
    if steps:
        page.train_form.set_values({"steps": steps, "preview_every": max(1, steps // 30)})
    if not page.start():
        raise RuntimeError("training did not start (see the error dialog)")
    target = page.target_steps or 1
    wait_until(
        lambda: int(page.latest_stats.get("step", 0)) >= int(target * 0.85) or not page.is_running(),
        1800,
        "training to get near its end",
    )
    grab(window, out / "train.png")  # type: ignore[arg-type]
    wait_until(lambda: not page.is_running(), 600, "training to finish")


def state_shots(window: object, out: Path, dataset: Path, first: int = 120, second: int = 600) -> None:
    """runs-training.png: the runs list while a run trains (beside a finished one); then Stop, and
    train-stopped.png: where the run stopped, its checkpoint in the log, no time left."""
    page = window.train_page  # type: ignore[attr-defined]
    window.show_page("train")  # type: ignore[attr-defined]
    page.select_dataset(dataset)
    page.set_preset("quick")
    for steps in (first, second):
        page.train_form.set_values({"steps": steps, "preview_every": 10, "checkpoint_every": 100})
        if not page.start():
            raise RuntimeError("training did not start (see the error dialog)")
        if steps == first:
            wait_until(lambda: not page.is_running(), 900, "the first run to finish")
    wait_until(lambda: int(page.latest_stats.get("step", 0)) >= second // 3, 900, "the second run to get going")
    grab(window, out / "runs-training.png")  # type: ignore[arg-type]
    page.stop()
    wait_until(lambda: not page.is_running(), 300, "the stopped run's checkpoint")
    grab(window, out / "train-stopped.png")  # type: ignore[arg-type]


def health_shots(window: object, out: Path, dataset: Path, trials: int = 3, minutes: float = 0.25) -> None:
    """train-health.png: a quick run whose generator learns nothing (its learning rate 1e-12) until the
    training doctor flags the discriminator overpowering it, live; then tune-dialog.png: "Find good
    settings" after a short tune of the quick preset."""
    page = window.train_page  # type: ignore[attr-defined]
    window.show_page("train")  # type: ignore[attr-defined]
    page.select_dataset(dataset)
    page.set_preset("quick")
    page.train_form.set_values({"steps": 1000, "lr_g": 1e-12, "preview_every": 10, "checkpoint_every": 100})
    if not page.start():
        raise RuntimeError("training did not start (see the error dialog)")
    flagged = ("warning", "problem")  # a note comes first; the shot waits for the doctor to be sure
    wait_until(lambda: page.health_strip.levels()["overpowering"] in flagged, 900, "the doctor's finding")
    grab(window, out / "train-health.png")  # type: ignore[arg-type]
    page.stop()
    wait_until(lambda: not page.is_running(), 300, "the flagged run to stop")
    page.set_preset("quick")
    dialog = page.open_tune_dialog()
    if dialog is None:
        raise RuntimeError("Find good settings did not open (see the error dialog)")
    dialog.trials_spin.setValue(trials)
    dialog.minutes_spin.setValue(minutes)
    dialog.start()
    wait_until(lambda: not dialog.is_running(), 600 + trials * minutes * 120, "the tune")
    if dialog.result is None:
        raise RuntimeError(f"the tune failed: {dialog.progress_label.text()}")
    grab(dialog, out / "tune-dialog.png")
    dialog.use_best()


def _generate_page(window: object, out: Path) -> None:
    page = window.generate_page  # type: ignore[attr-defined]
    window.show_page("generate")  # type: ignore[attr-defined]
    page.refresh_runs()
    wait_until(lambda: page.gallery.count() > 0, 120, "the gallery")
    for row in (2, 5, 9):
        page.gallery.item(row).setSelected(True)
    grab(window, out / "generate.png")  # type: ignore[arg-type]


def _models_page(window: object, out: Path) -> None:
    page = window.models_page  # type: ignore[attr-defined]
    window.show_page("models")  # type: ignore[attr-defined]
    page.refresh()
    if not page.start_export():
        raise RuntimeError("the ONNX export did not start")
    wait_until(lambda: not page.is_busy(), 600, "the ONNX export")
    if not page.start_benchmark():
        raise RuntimeError("the benchmark did not start")
    wait_until(lambda: not page.is_busy(), 600, "the benchmark")
    if not page.bench_rows:
        raise RuntimeError(f"the benchmark failed: {page.bench_label.text()}")
    grab(window, out / "models.png")  # type: ignore[arg-type]


def _evaluate_tab(window: object, out: Path, samples: int = 64, real: int = 300) -> None:
    models = window.models_page  # type: ignore[attr-defined]
    window.show_page("models")  # type: ignore[attr-defined]
    models.show_evaluate()
    panel = models.evaluate_panel
    panel.samples_spin.setValue(samples)
    panel.real_spin.setValue(real)
    if not panel.start():
        raise RuntimeError("the evaluation did not start")
    wait_until(lambda: not panel.is_busy(), 900, "the evaluation")
    if panel.result is None:
        raise RuntimeError(f"the evaluation failed: {panel.scores_label.text()}")
    grab(window, out / "evaluate.png")  # type: ignore[arg-type]
    models.tabs.setCurrentIndex(0)
