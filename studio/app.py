"""Start the GAN Studio window: ``gan-studio`` or ``python main.py``.

Options: ``--project FOLDER`` opens (or creates) that project; ``--theme dark|light``;
``--screenshot DIR`` drives every page with real content (sample import, a short training run,
a gallery), saves PNGs into DIR and exits.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from engine.errors import GanStudioError
from studio.paths import icon_path
from studio.project import Project, default_project_dir
from studio.qt_compat import install_refcount_guard
from studio.settings import APPLICATION, ORGANIZATION, app_settings, last_project
from studio.theme import DEFAULT_THEME, THEMES, apply_theme


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
        choices=["translate", "upscale", "consent-faces", "edit"],
        help="take only these screenshots (skips the sample import and training)",
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
    return app.exec()
