"""Start the GAN Studio window: ``gan-studio`` or ``python main.py``.

Options: ``--project FOLDER`` opens (or creates) that project; ``--theme dark|light``;
``--screenshot DIR`` drives every page with real content (sample import, a short training run,
a gallery), saves PNGs into DIR and exits; ``--quit-after-load`` exits once the window is up and the
engine loaded, after a quick self-check it prints (the desktop bundle's smoke test, packaging/).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QSettings, QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from engine.errors import GanStudioError
from studio.paths import SAMPLE_DATASET, STYLE_DIR, icon_path
from studio.project import Project, default_project_dir
from studio.qt_compat import install_refcount_guard
from studio.settings import APPLICATION, ORGANIZATION, app_settings, last_project
from studio.theme import DEFAULT_THEME, THEMES, apply_theme

if TYPE_CHECKING:
    from studio.main_window import MainWindow


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """Our options, and whatever is left for Qt (e.g. -platform)."""
    parser = argparse.ArgumentParser(prog="gan-studio", description="GAN Studio desktop app")
    parser.add_argument("--project", type=Path, help="project folder to open (created when missing)")
    parser.add_argument("--theme", choices=sorted(THEMES), help=f"colour theme (default: {DEFAULT_THEME})")
    parser.add_argument(
        "--screenshot",
        type=Path,
        metavar="DIR",
        help="save a screenshot of each page with real content into DIR, then exit",
    )
    parser.add_argument(
        "--screenshot-steps", type=int, default=None, help="training steps for --screenshot (default: the quick preset)"
    )
    parser.add_argument(
        "--screenshot-sketch-model",
        type=Path,
        metavar="RUN_OR_ONNX",
        help="a trained sketch model for the Translate page screenshot",
    )
    parser.add_argument(
        "--screenshot-colorize-model",
        type=Path,
        metavar="RUN_OR_ONNX",
        help="a trained colorize model for the colorize screenshot",
    )
    parser.add_argument(
        "--screenshot-colorize-image", type=Path, metavar="IMAGE", help="the image to colorize in that screenshot"
    )
    parser.add_argument(
        "--screenshot-upscale-model",
        type=Path,
        metavar="RUN_OR_FILE",
        help="an upscaler (upscale run, .onnx or model file) for the Upscale page screenshot",
    )
    parser.add_argument(
        "--screenshot-upscale-image", type=Path, metavar="IMAGE", help="the image to upscale in that screenshot"
    )
    parser.add_argument(
        "--screenshot-only",
        choices=["translate", "upscale", "consent-faces", "edit", "train-processes"],
        help="take only these screenshots (skips the sample import and training)",
    )
    parser.add_argument(
        "--quit-after-load",
        action="store_true",
        help="exit once the window is up and the engine loaded, printing a self-check (the bundle's smoke test)",
    )
    return parser.parse_known_args(argv)


def initial_project(requested: Path | None, settings: QSettings) -> Project:
    """The project to open: the requested one, else the last one, else the default project."""
    if requested is not None:
        return Project.open_or_create(requested)
    last = last_project(settings)
    if last is not None:
        try:
            return Project.open(last)
        except GanStudioError:  # a damaged or moved project: fall back to the default, never fail to start
            pass
    return Project.open_or_create(default_project_dir())


# How long a thread may hold the GIL while another waits for it. Python's 5 ms default lets the
# training thread delay each of the GUI thread's many small Python calls (every pyqtgraph paint
# method, every slot) by up to 5 ms; 1 ms keeps repaints short for a small cost in training speed.
GIL_SWITCH_INTERVAL = 0.001


def make_app(argv: list[str]) -> QApplication:
    """The QApplication (reused when one exists) with the app's names, icon and thread settings."""
    install_refcount_guard()
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)
    app = QApplication.instance() or QApplication(argv)
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setWindowIcon(QIcon(str(icon_path("app"))))
    return app  # type: ignore[return-value]


def main(argv: list[str] | None = None) -> int:
    """Create the QApplication and the main window; returns the exit status."""
    args, qt_args = parse_args(sys.argv[1:] if argv is None else argv)
    app = make_app([sys.argv[0], *qt_args])
    if args.screenshot is not None:
        from studio.screenshots import take_screenshots

        translate = {
            "sketch": args.screenshot_sketch_model,
            "colorize": args.screenshot_colorize_model,
            "image": args.screenshot_colorize_image,
        }
        return take_screenshots(
            args.screenshot,
            project_dir=args.project,
            theme=args.theme or DEFAULT_THEME,
            steps=args.screenshot_steps,
            translate=translate,
            upscale={"model": args.screenshot_upscale_model, "image": args.screenshot_upscale_image},
            only=args.screenshot_only,
        )
    from studio.errors import install_excepthook
    from studio.main_window import MainWindow

    settings = app_settings()
    theme = args.theme or str(settings.value("theme", DEFAULT_THEME))
    apply_theme(app, theme)
    try:
        project = initial_project(args.project, settings)
    except GanStudioError as exc:
        print(f"gan-studio: {exc}", file=sys.stderr)
        return 2
    window = MainWindow(project, settings, theme)
    install_excepthook(window.errors)
    window.show()
    if args.quit_after_load:
        quit_after_load(app, window)
    return app.exec()


LOADED_MARK = "gan-studio: loaded "
"""Start of the line ``--quit-after-load`` prints, followed by :func:`self_check`'s result as JSON."""


def self_check() -> dict[str, object]:
    """What a started app must be able to do, checked quickly: PyTorch samples from a tiny model of a
    registered family, and the files read at run time are found (the app's resources, OpenCV's face
    cascades, the ffmpeg binary, the feature network's weights, the content-credentials library), a tiny
    ONNX export runs in onnxruntime, and the libraries imported by name load.
    A frozen bundle that misses a file fails here instead of in the user's hands."""
    import torch
    from PIL import Image

    from engine.data.faces import detect_faces
    from engine.families import family_names, get_family
    from engine.families.base import ModelSpec
    from engine.runs import TrainConfig

    result: dict[str, object] = {"torch": torch.__version__, "families": family_names()}
    errors: dict[str, str] = {}

    def check(name: str, probe: Callable[[], object]) -> None:
        try:
            result[name] = probe()
        except Exception as exc:  # every check runs; the result names each failure
            errors[name] = f"{type(exc).__name__}: {exc}"

    def sample() -> list[int]:
        name = next(n for n in family_names() if get_family(n).kind == "generate")
        cls = get_family(name)
        config = TrainConfig(dataset="unused", family=name, family_options=dict(cls.tiny_options), batch_size=1)
        torch.manual_seed(0)
        family = cls(ModelSpec(cls.min_resolution), config, torch.device("cpu"))
        with torch.no_grad():
            image = family.sample(torch.randn(1, family.latent_dim))
        if not bool(torch.isfinite(image).all()):
            raise ValueError(f"{name} sampled non-finite values")
        return [name, *image.shape]

    def resources() -> str:
        for path in (icon_path("app"), STYLE_DIR / f"{DEFAULT_THEME}.qss", SAMPLE_DATASET / "LICENSE"):
            if not path.is_file():
                raise FileNotFoundError(path)
        return str(SAMPLE_DATASET.parent)

    def ffmpeg() -> str:
        import imageio_ffmpeg

        exe = Path(imageio_ffmpeg.get_ffmpeg_exe())
        if not exe.is_file():
            raise FileNotFoundError(exe)
        return exe.name

    def weights() -> str:
        from engine.metrics.efflite0 import load_efflite0

        load_efflite0()
        return "efficientnet-lite0"

    def credentials() -> str:
        import c2pa

        return str(c2pa.sdk_version())

    def onnxruntime() -> list[str]:
        import onnxruntime

        return list(onnxruntime.get_available_providers())

    def onnx_export() -> float:  # the dynamo exporter (onnxscript reads its functions' source) and back
        import warnings

        import onnxruntime

        model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh()).eval()
        x = torch.randn(2, 4)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(model, (x,), dynamo=True, verbose=False)
        assert program is not None  # dynamo=True returns the program
        session = onnxruntime.InferenceSession(
            program.model_proto.SerializeToString(), providers=["CPUExecutionProvider"]
        )
        (y,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
        with torch.no_grad():
            return float(abs(y - model(x).numpy()).max())

    def libraries() -> dict[str, str]:
        import optuna
        import spandrel
        import torchmetrics
        import torchvision

        return {m.__name__: str(m.__version__) for m in (torchvision, torchmetrics, optuna, spandrel)}

    check("sample", sample)
    check("resources", resources)
    check("faces", lambda: len(detect_faces(Image.new("RGB", (64, 64)))))
    check("ffmpeg", ffmpeg)
    check("weights", weights)
    check("c2pa", credentials)
    check("onnxruntime", onnxruntime)
    check("onnx_export", onnx_export)
    check("libraries", libraries)
    result["errors"] = errors
    return result


def quit_after_load(app: QApplication, window: MainWindow) -> None:
    """Once the engine is loaded (or failed to load), print :data:`LOADED_MARK` and the self-check, then end
    the event loop: status 0 when everything passed, 1 otherwise."""

    def done() -> None:
        start = time.perf_counter()
        result = self_check() if window.engine_ready() else {"errors": {"engine": str(window.engine_loader.error)}}
        result["check_s"] = round(time.perf_counter() - start, 3)  # lets a timer of the whole run leave it out
        print(LOADED_MARK + json.dumps(result), flush=True)
        app.exit(1 if result["errors"] else 0)

    if window.engine_ready():
        QTimer.singleShot(0, done)
        return
    window.sig_engine_ready.connect(lambda: QTimer.singleShot(0, done))
    window.engine_loader.sig_failed.connect(lambda *_: QTimer.singleShot(0, done))
