"""Dark (default) and light themes: a Fusion palette, a style sheet from resources/style, chart colours."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from studio.paths import ICON_DIR, STYLE_DIR


@dataclass(frozen=True)
class Theme:
    """Colours the style sheet cannot reach: the palette basics and the charts."""

    name: str
    window: str
    base: str
    text: str
    muted: str
    accent: str
    chart_background: str
    chart_axis: str
    curve_colors: tuple[str, ...]


THEMES: dict[str, Theme] = {
    "dark": Theme(
        "dark",
        "#1b1d23",
        "#23262e",
        "#e3e6ec",
        "#9aa3b2",
        "#7c9cff",
        "#1f2128",
        "#9aa3b2",
        ("#7c9cff", "#ff9f6b", "#7fd49a", "#e07cd8", "#f0d36b"),
    ),
    "light": Theme(
        "light",
        "#f6f7f9",
        "#ffffff",
        "#1d2230",
        "#5d6678",
        "#3558d8",
        "#ffffff",
        "#5d6678",
        ("#3558d8", "#d9601a", "#1e8a45", "#a63aa0", "#a88700"),
    ),
}
DEFAULT_THEME = "dark"


def get_theme(name: str | None) -> Theme:
    """The theme called ``name``; the dark default for None or an unknown name."""
    return THEMES.get(name or DEFAULT_THEME, THEMES[DEFAULT_THEME])


def _palette(theme: Theme) -> QPalette:
    palette = QPalette()
    roles = {
        QPalette.ColorRole.Window: theme.window,
        QPalette.ColorRole.Base: theme.base,
        QPalette.ColorRole.AlternateBase: theme.window,
        QPalette.ColorRole.Button: theme.base,
        QPalette.ColorRole.WindowText: theme.text,
        QPalette.ColorRole.Text: theme.text,
        QPalette.ColorRole.ButtonText: theme.text,
        QPalette.ColorRole.ToolTipBase: theme.base,
        QPalette.ColorRole.ToolTipText: theme.text,
        QPalette.ColorRole.Highlight: theme.accent,
        QPalette.ColorRole.PlaceholderText: theme.muted,
        QPalette.ColorRole.Link: theme.accent,
    }
    for role, color in roles.items():
        palette.setColor(role, QColor(color))
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text, QColor(theme.muted))
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.WindowText, QColor(theme.muted))
    return palette


def apply_theme(app: QApplication, name: str | None) -> Theme:
    """Give the whole app the named theme (Fusion style, palette, style sheet); returns it."""
    theme = get_theme(name)
    app.setStyle("Fusion")
    app.setPalette(_palette(theme))
    app.setStyleSheet(style_sheet(theme.name))
    return theme


def style_sheet(name: str) -> str:
    """The theme's style sheet with ``@ICONS@`` replaced by the icon folder (Qt has no relative urls)."""
    qss = STYLE_DIR / f"{name}.qss"
    text = qss.read_text(encoding="utf-8") if qss.is_file() else ""
    return text.replace("@ICONS@", ICON_DIR.as_posix())
