"""A project is a folder holding datasets/, runs/, exports/ and logs/; the app always has one open.

Plain Python (no Qt): the pages ask the project where things live and which datasets and runs exist.
The first start opens a default project in the user data folder, so nothing has to be chosen.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import platformdirs

from engine.data import is_dataset, read_report
from engine.errors import DataError, GanStudioError
from engine.runs.info import run_kind

PROJECT_FILE = "project.json"
PROJECT_KIND = "gan-studio-project"
PROJECT_FORMAT_VERSION = 1
SUBFOLDERS = ("datasets", "runs", "exports", "logs")


class ProjectError(GanStudioError):
    """A folder cannot be opened or created as a project."""


def default_project_dir() -> Path:
    """The project opened when the user has not chosen one: <user data>/GAN Studio/projects/Default."""
    return Path(platformdirs.user_data_dir("GAN Studio", appauthor=False)) / "projects" / "Default"


def _slug(text: str) -> str:
    """A folder-name-safe version of ``text`` (letters, digits, dot, dash, underscore)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "dataset"


@dataclass(frozen=True)
class Project:
    """An open project folder; create or open it with :meth:`create` / :meth:`open`."""

    root: Path

    @classmethod
    def create(cls, folder: Path | str) -> Project:
        """Make ``folder`` (new or empty) a project; ProjectError when it holds other files."""
        root = Path(folder).expanduser().resolve()
        if (root / PROJECT_FILE).is_file():
            return cls.open(root)
        if root.is_dir() and any(root.iterdir()):
            raise ProjectError(
                f"{root} already holds other files; choose a new or empty folder for the "
                "project, or open an existing project instead."
            )
        root.mkdir(parents=True, exist_ok=True)
        (root / PROJECT_FILE).write_text(
            json.dumps(
                {
                    "kind": PROJECT_KIND,
                    "format_version": PROJECT_FORMAT_VERSION,
                    "created": datetime.now().isoformat(timespec="seconds"),
                },
                indent=2,
            ),
            encoding="utf-8",
        )
        return cls._with_folders(root)

    @classmethod
    def open(cls, folder: Path | str) -> Project:
        """Open an existing project folder; ProjectError saying what to do when it is not one."""
        root = Path(folder).expanduser().resolve()
        if not (root / PROJECT_FILE).is_file():
            raise ProjectError(
                f"{root} is not a GAN Studio project (no {PROJECT_FILE}); use File > New Project to make one there."
            )
        return cls._with_folders(root)

    @classmethod
    def open_or_create(cls, folder: Path | str) -> Project:
        """Open ``folder`` as a project, creating it first when it does not exist yet."""
        root = Path(folder).expanduser()
        return cls.open(root) if (root / PROJECT_FILE).is_file() else cls.create(root)

    @classmethod
    def _with_folders(cls, root: Path) -> Project:
        for name in SUBFOLDERS:
            (root / name).mkdir(exist_ok=True)
        return cls(root)

    @property
    def name(self) -> str:
        """The folder name, shown in the window title."""
        return self.root.name

    @property
    def datasets_dir(self) -> Path:
        """Where imported datasets live."""
        return self.root / "datasets"

    @property
    def runs_dir(self) -> Path:
        """Where training runs live."""
        return self.root / "runs"

    @property
    def exports_dir(self) -> Path:
        """The default folder for exported images."""
        return self.root / "exports"

    @property
    def logs_dir(self) -> Path:
        """Where errors.log is written."""
        return self.root / "logs"

    def datasets(self) -> list[Path]:
        """Prepared datasets of the project, sorted by name."""
        if not self.datasets_dir.is_dir():
            return []
        return sorted(p for p in self.datasets_dir.iterdir() if p.is_dir() and is_dataset(p))

    def runs(self, kind: str | None = None) -> list[Path]:
        """Run folders (those with a config.json), newest first; only 'generate' or 'translate' runs if given."""
        if not self.runs_dir.is_dir():
            return []
        found = [p for p in self.runs_dir.iterdir() if (p / "config.json").is_file()]
        if kind is not None:
            found = [p for p in found if run_kind(p) == kind]
        return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)

    def dataset_dir_for(self, source: Path | str) -> Path:
        """The dataset folder an import of ``source`` goes to: the same one again for the same source."""
        source = Path(source).expanduser().resolve()
        base = _slug(source.name)
        for index in range(1, 1000):
            candidate = self.datasets_dir / (base if index == 1 else f"{base}-{index}")
            if not candidate.exists() or _source_of(candidate) == source:
                return candidate
        raise ProjectError(f"too many datasets named {base} in {self.datasets_dir}; rename some.")

    def new_run_dir(self, family: str) -> Path:
        """A fresh, not yet existing run folder named after the family and the time."""
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        return _unused(self.runs_dir / f"{_slug(family)}-{stamp}")

    def new_export_dir(self, run_dir: Path | str) -> Path:
        """A fresh export folder for images generated from ``run_dir``."""
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        return _unused(self.exports_dir / f"{Path(run_dir).name}-{stamp}")


def _unused(path: Path) -> Path:
    """``path``, or ``path-2``, ``path-3``... whichever does not exist yet."""
    candidate, index = path, 2
    while candidate.exists():
        candidate, index = path.with_name(f"{path.name}-{index}"), index + 1
    return candidate


def _source_of(dataset_dir: Path) -> Path | None:
    """The source folder recorded by the last import into ``dataset_dir`` (None when unknown)."""
    if not is_dataset(dataset_dir):
        return None
    try:
        return Path(read_report(dataset_dir).source).resolve()
    except DataError:
        return None
