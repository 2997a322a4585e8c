"""Where the studio finds its bundled resources (style sheets, icons, the sample dataset)."""
from __future__ import annotations

from pathlib import Path

RESOURCES = Path(__file__).resolve().parents[1] / "resources"
SAMPLE_DATASET = RESOURCES / "sample"
STYLE_DIR = RESOURCES / "style"
ICON_DIR = RESOURCES / "icons"


def icon_path(name: str) -> Path:
    """The SVG file of the icon called ``name`` (e.g. ``"dataset"``)."""
    return ICON_DIR / f"{name}.svg"
