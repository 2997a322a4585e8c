"""Render the app icon (resources/icons/app.svg) to the raster files a desktop bundle needs.

    python packaging/make_icons.py OUT_DIR

writes OUT_DIR/gan-studio.png (256 px: the Linux desktop entry's icon and the icon PyInstaller turns into
the Windows .ico or macOS .icns with Pillow), OUT_DIR/hicolor/<size>x<size>/apps/gan-studio.png for an
icon theme, and OUT_DIR/gan-studio.ico (Windows, several sizes in one file).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SVG = ROOT / "resources" / "icons" / "app.svg"
THEME_SIZES = (16, 32, 48, 64, 128, 256, 512)


def render(svg: Path, size: int, out: Path) -> None:
    """Rasterise ``svg`` to a transparent ``size`` x ``size`` PNG at ``out``."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"cannot read the icon {svg}")
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    out.parent.mkdir(parents=True, exist_ok=True)
    if not image.save(str(out), "PNG"):
        raise SystemExit(f"cannot write {out}")


def main(argv: list[str]) -> int:
    """Write the icons into the folder named on the command line."""
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(argv[0])
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PIL import Image
    from PySide6.QtGui import QGuiApplication

    app = QGuiApplication.instance() or QGuiApplication([sys.argv[0]])  # noqa: F841 (QPainter wants one)
    for size in THEME_SIZES:
        render(SVG, size, out / "hicolor" / f"{size}x{size}" / "apps" / "gan-studio.png")
    render(SVG, 256, out / "gan-studio.png")
    with Image.open(out / "gan-studio.png") as png:
        png.save(out / "gan-studio.ico", sizes=[(s, s) for s in (16, 24, 32, 48, 64, 128, 256)])
    print(out / "gan-studio.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
