"""The Check image tool: a marked and signed file checked programmatically and through a drop, a plain
photo, a file that is not an image (the studio's error dialog), and the main window's menu action and
window-wide drop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication
from skimage import data as skdata

from engine.provenance import credentials, identity, metadata, watermark
from engine.provenance.metadata import OutputInfo
from studio.widgets.check_image import CheckImageDialog

CARD = "card-check-image-0001"
NAME = "emoji-fastgan"


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_STUDIO_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def photo(size: int = 192) -> np.ndarray:
    return np.ascontiguousarray(skdata.astronaut()[40 : 40 + size, 150 : 150 + size])


def write_marked(path: Path) -> Path:
    """A watermarked PNG with metadata and content credentials, as GAN Studio writes them."""
    identity.remember_model(CARD, NAME, "runs/fastgan-1")
    marked = watermark.embed(photo(), identity.pack(identity.install_id(), identity.model_id(CARD)))
    info = OutputInfo(
        action="generate",
        model_name=NAME,
        model_card_id=CARD,
        family="fastgan",
        dataset_fingerprint="cd" * 32,
        attestation_id="att-0001",
        install_id=identity.install_id(),
        watermark=True,
    )
    Image.fromarray(marked).save(path, pnginfo=metadata.png_info(info))
    credentials.sign_file(path, info)
    return path


def drop_files(widget, paths: list[Path]) -> bool:
    """A real drop of local files onto ``widget`` (enter, then drop when entering was accepted)."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    centre = QPointF(widget.width() / 2, widget.height() / 2)
    action, button, keys = Qt.DropAction.CopyAction, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    enter = QDragEnterEvent(centre.toPoint(), action, mime, button, keys)
    QApplication.sendEvent(widget, enter)
    if not enter.isAccepted():
        return False
    event = QDropEvent(centre, action, mime, button, keys)
    QApplication.sendEvent(widget, event)
    return event.isAccepted()


@pytest.fixture
def dialog(qtbot):
    dlg = CheckImageDialog()
    qtbot.addWidget(dlg)
    dlg.show()
    yield dlg
    dlg.shutdown()


def test_a_marked_file_shows_found_with_model_install_and_credentials(dialog, qtbot, tmp_path):
    path = write_marked(tmp_path / "marked.png")
    with qtbot.waitSignal(dialog.sig_checked, timeout=60_000):
        assert dialog.check(path)
    assert dialog.status() == "found"
    assert dialog.status_label.text() == "✔ GAN Studio marks found"
    verdict = dialog.verdict_label.text()
    assert verdict.startswith("AI-generated with GAN Studio: watermark found (confidence ")
    assert f"model '{NAME}'" in verdict and "made on this computer" in verdict
    fields = {name: label.text() for name, label in dialog.field_labels.items()}
    assert fields["Model"].startswith(f"{NAME} (id {identity.model_id(CARD):06x})")
    assert fields["Installation"] == f"this computer (install id {identity.install_id():06x})"
    assert fields["Watermark"].startswith("found, confidence ")
    assert fields["Credentials"].startswith(("Trusted", "Valid"))
    assert "GAN Studio: generate, model 'emoji-fastgan'" in fields["Metadata"]
    assert not dialog.drop_area.pixmap().isNull()  # the thumbnail
    assert dialog.drop_area.pixmap().width() <= 240


def test_a_dropped_file_is_checked_and_the_next_drop_replaces_it(dialog, qtbot, tmp_path):
    marked = write_marked(tmp_path / "marked.png")
    plain = tmp_path / "plain.jpg"
    Image.fromarray(photo()).save(plain, quality=90)
    with qtbot.waitSignal(dialog.sig_checked, timeout=60_000):
        assert drop_files(dialog.drop_area, [marked])
    assert dialog.status() == "found" and dialog.report.path == marked
    with qtbot.waitSignal(dialog.sig_checked, timeout=60_000):
        assert drop_files(dialog.drop_area, [plain])
    assert dialog.status() == "not_found"
    assert dialog.status_label.text() == "○ No GAN Studio marks"
    assert dialog.verdict_label.text().startswith("No GAN Studio watermark found (this does not prove")
    assert dialog.field_labels["Model"].text() == "—"


def test_a_file_that_is_not_an_image_is_reported_in_words(dialog, qtbot, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    dialog.check(bad)
    qtbot.waitUntil(lambda: not dialog.is_busy(), timeout=60_000)
    assert dialog.status() == "error"
    assert "notes.png is not an image" in dialog.verdict_label.text()
    shown = dialog.errors.last_dialog
    assert shown is not None and "notes.png is not an image" in shown.message_label.text()
    shown.close()


def test_the_window_opens_the_tool_from_its_menu_and_from_a_drop(window, qtbot, tmp_path):
    action = next(a for a in window.menus["&File"].actions() if a.text() == "Check Image…")
    assert action.isEnabled()
    action.trigger()
    assert window.check_dialog is not None and window.check_dialog.isVisible()
    path = write_marked(tmp_path / "marked.png")
    with qtbot.waitSignal(window.check_dialog.sig_checked, timeout=60_000):
        assert drop_files(window, [path])
    assert window.check_dialog.status() == "found"
    assert not drop_files(window, [tmp_path / "home"])  # a folder is not an image: left to the pages
