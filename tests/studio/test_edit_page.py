"""The Edit page on a real (tiny, briefly trained) stylegan2 run: sliders from SeFa change the live preview,
style mixing and its grid, keyframes exported as an animation, inversion of an image with progress,
latents saved and reopened to the same image."""

from __future__ import annotations

import numpy as np
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from engine.editing import EditableModel

from .conftest import train_tiny_run

LEFT = Qt.MouseButton.LeftButton


def _wait_preview(qtbot, page, before=None):
    qtbot.waitUntil(
        lambda: page.image is not None and (before is None or not np.array_equal(page.image, before)), timeout=30_000
    )
    return page.image.copy()


def test_edit_page_sliders_mixing_animation_inversion_and_latents(
    window, qtbot, project, art_folder, tmp_path, monkeypatch
):
    from engine.families import get_family

    run = train_tiny_run(
        project, art_folder, "style", family="stylegan2", family_options=dict(get_family("stylegan2").tiny_options),
        resolution=16, steps=20, checkpoint_every=1000,
    )  # fmt: skip
    window.show_page("edit")
    page = window.edit_page
    page.refresh_runs(select=run)
    qtbot.waitUntil(lambda: page.model is not None, timeout=60_000)
    assert "W+" in page.model_label.text() and "PyTorch" in page.model_label.text()
    first = _wait_preview(qtbot, page)

    # SeFa sliders: one per direction; moving one changes the preview
    page.count_spin.setValue(3)
    qtbot.mouseClick(page.find_button, LEFT)
    qtbot.waitUntil(lambda: len(page.sliders) == 3, timeout=30_000)
    page.sliders[0].setValue(40)
    moved = _wait_preview(qtbot, page, first)
    assert np.abs(moved.astype(int) - first).mean() > 1
    page.reset_sliders()
    assert _wait_preview(qtbot, page, moved).tolist() == first.tolist()

    # style mixing changes the preview; the grid shows 4x4 mixes plus the sources
    page.mix_check.setChecked(True)
    mixed = _wait_preview(qtbot, page, first)
    page.mix_check.setChecked(False)
    _wait_preview(qtbot, page, mixed)
    qtbot.mouseClick(page.grid_button, LEFT)
    qtbot.waitUntil(lambda: page.grid_layout.count() == 25, timeout=30_000)

    # two keyframes -> an animation file with the frames asked for
    qtbot.mouseClick(page.add_key_button, LEFT)
    page.seed_spin.setValue(7)
    _wait_preview(qtbot, page, first)
    qtbot.mouseClick(page.add_key_button, LEFT)
    assert page.animate_button.isEnabled()
    page.frames_spin.setValue(6)
    page.size_spin.setValue(32)
    out = tmp_path / "walk.gif"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(out), "")))
    qtbot.mouseClick(page.animate_button, LEFT)  # the button asks where (the dialog answered above), then writes
    qtbot.waitUntil(lambda: not page.busy, timeout=60_000)
    with Image.open(out) as gif:
        assert gif.n_frames == 6 and gif.size == (32, 32)

    # save the latent, move away, reopen it: the same image
    shown = page.image.copy()
    latent_file = tmp_path / "mine.npz"
    page.save_current("npz", str(latent_file))
    qtbot.waitUntil(latent_file.exists, timeout=10_000)
    page.seed_spin.setValue(99)
    _wait_preview(qtbot, page, shown)
    page.open_latent(str(latent_file))
    qtbot.waitUntil(lambda: np.array_equal(page.image, shown), timeout=10_000)
    assert np.array_equal(EditableModel(run).render([EditableModel(run).load_latent(latent_file)])[0], shown)

    # open an image to edit it: inversion with progress, then the preview shows its latent
    target = tmp_path / "mine.png"
    Image.fromarray(np.full((40, 40, 3), (200, 60, 40), np.uint8)).save(target)
    page.steps_spin.setValue(15)
    page.noise_check.setChecked(True)  # a style-based model: the noise maps are fitted too
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (str(target), "")))
    qtbot.mouseClick(page.invert_button, LEFT)
    assert page.busy == "inversion"
    qtbot.waitUntil(lambda: not page.busy, timeout=60_000)
    qtbot.waitUntil(lambda: page.base_latent is not None, timeout=10_000)
    assert page.base_latent.noise is not None
    saved = tmp_path / "edit.png"
    page.save_current("png", str(saved))
    qtbot.waitUntil(saved.exists, timeout=10_000)
    with Image.open(saved) as image:
        assert image.size == (16, 16) and "gan-studio" in str(image.info) + str(image.text)
