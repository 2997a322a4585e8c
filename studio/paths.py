"""Where the studio finds its bundled resources (style sheets, icons, the sample dataset)."""

from __future__ import annotations

import sys
from pathlib import Path


def _resources() -> Path:
    """resources/ of the frozen desktop bundle (packaging/), else beside the source tree (a checkout or
    editable install), else the installed copy."""
    bundle = getattr(sys, "_MEIPASS", None)  # PyInstaller's folder of the bundled files
    if getattr(sys, "frozen", False) and bundle:
        return Path(bundle) / "resources"
    source_tree = Path(__file__).resolve().parents[1] / "resources"
    installed = Path(sys.prefix) / "share" / "gan-studio" / "resources"
    return source_tree if source_tree.is_dir() or not installed.is_dir() else installed


RESOURCES = _resources()
SAMPLE_DATASET = RESOURCES / "sample"
STYLE_DIR = RESOURCES / "style"
ICON_DIR = RESOURCES / "icons"


def icon_path(name: str) -> Path:
    """The SVG file of the icon called ``name`` (e.g. ``"dataset"``)."""
    return ICON_DIR / f"{name}.svg"
