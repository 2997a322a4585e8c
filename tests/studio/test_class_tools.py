"""Class folders in the studio, on real widgets: the Generate page's per-class export (class folders and
a manifest.json), and the Evaluate tab's class-frequency table."""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from .conftest import train_tiny_run

LEFT = Qt.MouseButton.LeftButton


def _runs(window, project, art_folder) -> tuple[Path, Path]:
    conditional = train_tiny_run(project, art_folder, "cond", conditional=True, checkpoint_every=1000)
    unconditional = train_tiny_run(project, art_folder, "uncond", conditional=False, checkpoint_every=1000)
    window.models_page.refresh()
    window.generate_page.refresh_runs()
    return conditional, unconditional


def _select(gen, qtbot, run: Path) -> None:
    gen.run_combo.setCurrentIndex(gen.run_combo.findData(str(run)))
    qtbot.waitUntil(
        lambda: gen.model is not None and Path(gen.model["checkpoint"]).parent.parent == run, timeout=60_000
    )


def test_generate_page_exports_every_class_into_class_folders(
    window, qtbot, project, art_folder, tmp_path, monkeypatch
):
    conditional, unconditional = _runs(window, project, art_folder)
    gen = window.generate_page
    window.show_page("generate")

    _select(gen, qtbot, unconditional)
    assert not gen.per_class_check.isEnabled() and not gen.per_class_check.isChecked()

    _select(gen, qtbot, conditional)
    assert gen.per_class_check.isEnabled()
    out = tmp_path / "synthetic"
    out.mkdir()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(out)))
    gen.count_spin.setValue(3)
    gen.seed_spin.setValue(5)
    gen.per_class_check.setChecked(True)
    qtbot.mouseClick(gen.export_button, LEFT)
    assert gen.exporting
    qtbot.waitUntil(lambda: not gen.exporting, timeout=60_000)
    for name in ("circles", "squares"):
        assert sorted(p.name for p in (out / name).iterdir()) == [f"seed-{s:06d}.png" for s in (5, 6, 7)]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["classes"] == {"circles": 3, "squares": 3} and manifest["complete"] is True
    assert "Wrote 6 images" in window.statusBar().currentMessage()
    assert window.errors.last_dialog is None


def test_evaluate_tab_shows_class_frequencies(window, qtbot, project, art_folder):
    conditional, _ = _runs(window, project, art_folder)
    window.show_page("models")
    models = window.models_page
    models.show_evaluate()
    panel = models.evaluate_panel
    panel.set_run(conditional)
    panel.samples_spin.setValue(8)
    panel.real_spin.setValue(24)
    panel.pair_count = 2
    qtbot.mouseClick(panel.check_button, LEFT)
    qtbot.waitUntil(lambda: panel.result is not None and not panel.is_busy(), timeout=120_000)
    report = panel.result.classes
    assert report is not None and [row["name"] for row in report["classes"]] == ["circles", "squares"]
    text = panel.classes_label.text()
    assert "Class frequencies" in text and "circles" in text and "squares" in text
    assert "looks like its class" in text  # a conditional model: asked-for vs looks-like
    assert f"{report['classes'][0]['data']:.1%}" in text and panel.classes_label.isVisible()
    assert window.errors.last_dialog is None
