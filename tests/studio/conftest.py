"""Studio test fixtures: settings and projects in tmp_path, a main window that is always shut down,
tiny image folders (with a broken file) and a tiny training configuration."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from engine.families import get_family
from studio.qt_compat import install_refcount_guard

install_refcount_guard()  # PySide6 6.12.0 drops references to None/True on every slot call and emit

TINY_STEPS = 6


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path, monkeypatch):
    """Every test gets its own QSettings file and its own user data folder."""
    monkeypatch.setenv("GAN_STUDIO_SETTINGS", str(tmp_path / "settings.ini"))
    monkeypatch.setattr("platformdirs.user_data_dir", lambda *a, **k: str(tmp_path / "user-data"))
    return tmp_path / "settings.ini"


@pytest.fixture
def project(tmp_path):
    from studio.project import Project

    return Project.create(tmp_path / "project")


@pytest.fixture
def window(qtbot, project):
    """A shown MainWindow on a fresh project; stopped and closed at the end whatever happened."""
    from studio.main_window import MainWindow
    from studio.settings import app_settings

    win = MainWindow(project, app_settings())
    win.show()
    qtbot.waitExposed(win)
    qtbot.waitUntil(win.engine_ready, timeout=120_000)  # the pages are built once the engine is loaded
    yield win
    win.shutdown()
    win.close()
    win.deleteLater()


def write_art_folder(folder: Path, per_class: int = 10, size: int = 40) -> Path:
    """Two class folders of real PNG shapes, one corrupt PNG and one text file."""
    rng = np.random.default_rng(0)
    for ci, name in enumerate(("circles", "squares")):
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img = Image.new("RGB", (size, size), tuple(int(v) for v in rng.integers(0, 255, 3)))
            draw = ImageDraw.Draw(img)
            a, b = int(rng.integers(2, size // 3)), int(rng.integers(2 * size // 3, size - 2))
            fill = tuple(int(v) for v in rng.integers(0, 255, 3))
            (draw.ellipse if ci == 0 else draw.rectangle)([a, a, b, b], fill=fill)
            img.save(folder / name / f"{i:03d}.png")
    (folder / "circles" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    (folder / "notes.txt").write_text("not an image")
    return folder


@pytest.fixture
def art_folder(tmp_path) -> Path:
    return write_art_folder(tmp_path / "art")


def import_and_attest(project, source: Path, attested: bool = True, size: int = 32) -> Path:
    """Engine-side set-up for tests that are about other pages: an imported (and attested) dataset."""
    from engine.consent import attest
    from engine.data import import_folder

    dataset = project.dataset_dir_for(source)
    import_folder(source, dataset, size=size)
    if attested:
        attest(dataset, rights="own", people="none", attested_by="test")
    return dataset


def train_tiny_run(project, source: Path, name: str, **overrides) -> Path:
    """A tiny dcgan run trained by the engine itself (for pages that need a run, not the Train page)."""
    from engine.runs import TrainConfig
    from engine.training import Trainer

    values = dict(
        dataset=str(import_and_attest(project, source)),
        family="dcgan",
        family_options=dict(get_family("dcgan").tiny_options),
        steps=TINY_STEPS,
        batch_size=8,
        resolution=32,
        log_every=1,
        seed=1,
    )
    values.update(overrides)
    return Path(Trainer(TrainConfig(**values), run_dir=project.runs_dir / name).run().run_dir)


def make_tiny(train_page, steps: int = TINY_STEPS, family: str = "dcgan", task: str | None = None, **overrides) -> None:
    """Point the Train page's real forms at a model small enough to train in well under a second."""
    index = train_page.family_combo.findData(family)
    train_page.family_combo.setCurrentIndex(index)
    if task is not None:
        train_page.set_task(task)
    train_page.family_form.set_values(dict(get_family(family).tiny_options))
    values = dict(
        steps=steps,
        batch_size=8,
        resolution=32,
        preview_every=2,
        preview_count=4,
        checkpoint_every=1000,
        log_every=1,
        seed=1,
        conditional=True,
    )
    values.update(overrides)
    train_page.train_form.set_values(values)
