"""Dataset page on real widgets: nothing of the previous dataset is shown while an import runs, the
Duplicates tab shows each near-duplicate group as thumbnails and re-imports with duplicates left out
(and back in), and skipped-file reasons are readable in full."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import Qt

LEFT = Qt.MouseButton.LeftButton


def write_look_alikes(root: Path) -> Path:
    """Four distinct pictures plus smaller re-encoded copies of two of them (real near duplicates)."""
    root.mkdir(parents=True)
    rng = np.random.default_rng(7)
    for name in ("a.png", "b.png", "c.png", "d.png"):
        blocks = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
        blocks.resize((64, 64), Image.Resampling.NEAREST).save(root / name)
    a, c = Image.open(root / "a.png"), Image.open(root / "c.png")
    a.resize((48, 48), Image.Resampling.BILINEAR).save(root / "a_small.jpg", quality=90)
    a.resize((40, 40), Image.Resampling.LANCZOS).save(root / "a_tiny.webp", quality=85)
    c.resize((56, 56), Image.Resampling.BICUBIC).save(root / "z_copy_of_c.jpg", quality=92)
    return root


def _import(page, qtbot, start) -> None:
    assert start()
    qtbot.waitUntil(lambda: not page.is_busy(), timeout=30_000)


def _tiles(view) -> dict[str, str]:
    return {tile.path: tile.state.text() for tile in view.tiles}


def test_duplicates_tab_shows_groups_and_leaves_them_out_and_back(window, qtbot, tmp_path):
    page = window.dataset_page
    source = write_look_alikes(tmp_path / "look-alikes")
    _import(page, qtbot, lambda: page.start_import(source, size=32))
    view = page.report_view.duplicates
    assert page.report.kept == 7 and page.report_view.tabText(2) == "Duplicates (2)"
    assert len(view.rows) == 2
    assert _tiles(view) == {p: "kept" for p in ("a.png", "a_small.jpg", "a_tiny.webp", "c.png", "z_copy_of_c.jpg")}
    qtbot.waitUntil(lambda: view.pending() == 0, timeout=10_000)
    assert all(tile.has_thumbnail() for tile in view.tiles)
    assert "all kept" in view.info.text() and view.leave_out_button.text() == "Leave duplicates out"

    # Leave duplicates out: a re-import that keeps the largest of each group, reusing the cache.
    page.report_view.setCurrentIndex(2)
    qtbot.mouseClick(view.leave_out_button, LEFT)
    assert page.is_busy() and not view.leave_out_button.isEnabled()
    qtbot.waitUntil(lambda: not page.is_busy(), timeout=30_000)
    report = page.report
    assert report.kept == 4 and report.decoded == 0 and page.grid.model().rowCount() == 4
    assert report.left_out_duplicates == {"a_small.jpg": "a.png", "a_tiny.webp": "a.png", "z_copy_of_c.jpg": "c.png"}
    assert page.drop_duplicates_check.isChecked() and page.report_view.currentIndex() == 2
    states = _tiles(view)
    assert states["a.png"] == "kept" and states["c.png"] == "kept" and states["a_small.jpg"] == "left out"
    qtbot.waitUntil(lambda: view.pending() == 0, timeout=10_000)
    assert all(tile.has_thumbnail() for tile in view.tiles)  # left-out files are read from the source
    skipped = page.report_view.skipped
    reasons = {skipped.item(r, 0).text(): skipped.item(r, 1).text() for r in range(skipped.rowCount())}
    assert reasons["z_copy_of_c.jpg"] == "near duplicate of c.png"
    manifest = json.loads((page.dataset_dir / "dataset.json").read_text())
    assert manifest["options"]["drop_duplicates"] is True
    assert "3 left out" in page.report_view.summary.toPlainText()

    # And back: every file is in the dataset again.
    assert view.leave_out_button.text() == "Keep all duplicates"
    qtbot.mouseClick(view.leave_out_button, LEFT)
    qtbot.waitUntil(lambda: not page.is_busy(), timeout=30_000)
    assert page.report.kept == 7 and not page.report.left_out_duplicates and not page.drop_duplicates_check.isChecked()
    assert page.report.fingerprint != report.fingerprint


def test_an_import_shows_nothing_of_the_previous_dataset(window, qtbot, art_folder, tmp_path):
    page = window.dataset_page
    _import(page, qtbot, lambda: page.start_import(art_folder, size=32))
    assert page.grid.model().rowCount() == 20 and page.report_view.skipped.rowCount() > 0
    second = write_look_alikes(tmp_path / "second")

    # Checked before the event loop runs again, so the worker's outcome cannot have arrived yet.
    assert page.start_import(second, size=32)
    assert page.grid.model().rowCount() == 0 and page.body.currentIndex() == 2
    assert "Importing second" in page.importing_label.text()
    summary = page.report_view.summary.toPlainText()
    assert summary.startswith(f"Importing {second}") and "art" not in summary.replace(str(second), "")
    assert page.report_view.skipped.rowCount() == 0 and page.report_view.tabText(1) == "Skipped (0)"
    assert not page.report_view.duplicates.rows and page.count_label.text() == ""
    assert page.consent_label.text() == "" and not page.dataset_combo.isEnabled()
    assert not page.consent_button.isEnabled()
    qtbot.waitUntil(lambda: not page.is_busy(), timeout=30_000)
    assert page.report.kept == 7 and page.grid.model().rowCount() == 7 and page.body.currentIndex() == 1
    assert page.dataset_combo.isEnabled()


def test_skipped_reasons_are_readable_in_full(window, qtbot, art_folder):
    page = window.dataset_page
    _import(page, qtbot, lambda: page.start_import(art_folder, size=32))
    table = page.report_view.skipped
    assert table.rowCount() >= 2  # the broken PNG and the text file
    for row in range(table.rowCount()):
        for column in range(2):
            item = table.item(row, column)
            assert item.toolTip() == item.text() and item.text()
    broken = next(r for r in range(table.rowCount()) if table.item(r, 0).text() == "circles/broken.png")
    reason = table.item(broken, 1).text()
    assert len(reason) > 30
    # A narrow table wraps the reason onto more lines instead of cutting it off.
    page.report_view.setCurrentIndex(1)
    table.setColumnWidth(0, 60)
    table.resize(220, 400)
    qtbot.waitUntil(lambda: table.rowHeight(broken) > 2 * table.fontMetrics().height(), timeout=5_000)
