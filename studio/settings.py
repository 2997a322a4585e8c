"""Persistent user settings (window state, theme, recent projects) in QSettings.

Tests and screenshot runs point ``GAN_STUDIO_SETTINGS`` at an ini file so they never touch the
user's real settings.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QSettings

SETTINGS_ENV = "GAN_STUDIO_SETTINGS"
ORGANIZATION = "GAN Studio"
APPLICATION = "GAN Studio"
MAX_RECENT = 8
_RECENT_KEY = "projects/recent"


def app_settings() -> QSettings:
    """The app's QSettings: the ini file named by $GAN_STUDIO_SETTINGS, else the platform default."""
    path = os.environ.get(SETTINGS_ENV)
    if path:
        return QSettings(path, QSettings.Format.IniFormat)
    return QSettings(ORGANIZATION, APPLICATION)


def _as_list(value: object) -> list[str]:
    # QSettings returns a str for one-element lists in ini files and None when unset.
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    return [str(v) for v in value]  # type: ignore[union-attr]


def recent_projects(settings: QSettings) -> list[Path]:
    """Recently opened project folders that still exist, newest first."""
    return [Path(p) for p in _as_list(settings.value(_RECENT_KEY)) if Path(p).is_dir()]


def add_recent_project(settings: QSettings, folder: Path) -> None:
    """Put ``folder`` first in the recent list (at most MAX_RECENT entries)."""
    folder = Path(folder).resolve()
    rest = [p for p in recent_projects(settings) if p.resolve() != folder]
    settings.setValue(_RECENT_KEY, [str(p) for p in [folder, *rest][:MAX_RECENT]])


def last_project(settings: QSettings) -> Path | None:
    """The project open when the app last closed, when it still exists."""
    recent = recent_projects(settings)
    return recent[0] if recent else None
