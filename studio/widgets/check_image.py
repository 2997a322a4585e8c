"""The "Check image" tool: drop an image (or open one) and see whether GAN Studio made it, with which
model, on which installation, and whether it was changed since.

The engine's ``verify_image`` does the work (watermark, metadata, content credentials; see
engine/provenance/verify.py) on a :class:`CheckWorker` thread (a 1-megapixel photo takes about half a
second), together with a thumbnail read by QImageReader (a QImage, which is safe off the GUI thread).
The dialog shows the thumbnail, a status badge whose colour *and* words say found / not found /
tampered, the verdict sentence, and one row each for the model, installation, watermark, metadata,
credentials, AI training and notes (problems included). Unreadable files are reported with the
studio's error dialog (studio/errors.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QMimeData, QSize, Qt, QThread, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QImage, QImageReader, QPixmap
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from studio.errors import ErrorReporter
from studio.workers import ThreadWorker, run_guarded

THUMBNAIL = 240
DROP_TEXT = "Drop an image here\nor click Open image…"
IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.webp *.tif *.tiff *.bmp *.gif);;All files (*)"
STATUS_STYLE = {
    # (badge words, background, text colour): readable on both themes; the words carry the state too
    "found": ("✔ GAN Studio marks found", "#1e8a45", "#ffffff"),
    "tampered": ("⚠ Tampered", "#c62828", "#ffffff"),
    "not_found": ("○ No GAN Studio marks", "#5d6678", "#ffffff"),
    "checking": ("… Checking", "#3558d8", "#ffffff"),
    "error": ("✖ Not checked", "#8a5a00", "#ffffff"),
}
FIELDS = ("Model", "Installation", "Watermark", "Metadata", "Credentials", "AI training", "Notes")


def local_files(mime: QMimeData) -> list[Path]:
    """The local files (not folders) in a drag's data."""
    if not mime.hasUrls():
        return []
    paths = [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()]
    return [path for path in paths if path.is_file()]


def read_thumbnail(path: Path, size: int = THUMBNAIL) -> QImage:
    """A QImage of ``path`` no larger than ``size`` px (null when Qt cannot read it); any thread."""
    reader = QImageReader(str(path))
    reader.setAutoTransform(True)  # shown the way viewers show it; the check itself reads stored pixels
    original = reader.size()
    if original.isValid() and (original.width() > size or original.height() > size):
        reader.setScaledSize(original.scaled(QSize(size, size), Qt.AspectRatioMode.KeepAspectRatio))
    image = reader.read()
    return image if not image.isNull() else QImage()


class CheckWorker(ThreadWorker):
    """Checks one image off the GUI thread; ends with sig_finished or sig_failed."""

    sig_finished = Signal(object, object)
    """The engine's VerifyReport and a thumbnail QImage (null when Qt cannot show the file)."""
    sig_failed = Signal(str, str)
    """Message in words, and details (a traceback) for unexpected errors."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = Path(path)

    def run(self) -> None:
        """verify_image, then the thumbnail."""

        def job() -> Any:
            from engine.provenance.verify import verify_image  # the watermark code is heavy: imported here

            return verify_image(self.path)

        ok, report = run_guarded(job, self.sig_failed, "Checking the image")
        if ok:
            self.sig_finished.emit(report, read_thumbnail(self.path))


class DropArea(QLabel):
    """The thumbnail, and where an image is dropped; a click opens the file dialog."""

    sig_dropped = Signal(str)
    """The first local file of a drop."""
    sig_clicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(DROP_TEXT, parent)
        self.setObjectName("CheckDropArea")
        self.setAcceptDrops(True)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setFixedSize(THUMBNAIL + 16, THUMBNAIL + 16)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setStyleSheet("#CheckDropArea { border: 2px dashed palette(mid); border-radius: 6px; }")
        self.setToolTip("Drop a PNG, JPEG or WebP file here to check it")

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt name)
        """Accept a drag that carries a local file."""
        if local_files(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 (Qt name)
        """Check the first file dropped."""
        files = local_files(event.mimeData())
        if not files:
            event.ignore()
            return
        event.acceptProposedAction()
        self.sig_dropped.emit(str(files[0]))

    def mouseReleaseEvent(self, event: Any) -> None:  # noqa: N802 (Qt name)
        """A click on the empty area opens an image."""
        self.sig_clicked.emit()
        super().mouseReleaseEvent(event)

    def show_image(self, image: QImage) -> None:
        """Show ``image`` scaled to fit, or the drop text when it is null."""
        if image.isNull():
            self.setPixmap(QPixmap())
            self.setText("(no preview)")
            return
        pixmap = QPixmap.fromImage(image)
        self.setPixmap(pixmap.scaled(THUMBNAIL, THUMBNAIL, Qt.AspectRatioMode.KeepAspectRatio))


class CheckImageDialog(QDialog):
    """Check images for GAN Studio's watermark, metadata and content credentials."""

    sig_checked = Signal(object)
    """A VerifyReport: a check finished (the dialog shows it)."""

    def __init__(self, errors: ErrorReporter | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Check image")
        self.setObjectName("CheckImageDialog")
        self.errors = errors or ErrorReporter(self)
        self.report: Any = None  # the VerifyReport shown
        self.path: Path | None = None
        self.worker: CheckWorker | None = None
        self.thread: QThread | None = None
        self._pending: Path | None = None  # a file dropped while another was being checked

        self.drop_area = DropArea()
        self.drop_area.sig_dropped.connect(self.check)
        self.drop_area.sig_clicked.connect(self.open_dialog)
        self.open_button = QPushButton("Open image…")
        self.open_button.clicked.connect(self.open_dialog)
        self.file_label = QLabel("")
        self.file_label.setObjectName("CheckFile")
        self.file_label.setWordWrap(True)
        self.file_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        left = QVBoxLayout()
        left.addWidget(self.drop_area)
        left.addWidget(self.open_button)
        left.addWidget(self.file_label)
        left.addStretch(1)

        self.status_label = QLabel("")
        self.status_label.setObjectName("CheckStatus")
        self.verdict_label = QLabel(
            "Is this image AI-generated by GAN Studio, and was it changed since? Drop it here to find out."
        )
        self.verdict_label.setObjectName("CheckVerdict")
        self.verdict_label.setWordWrap(True)
        font = self.verdict_label.font()
        font.setPointSizeF(font.pointSizeF() * 1.15)
        font.setBold(True)
        self.verdict_label.setFont(font)
        self.verdict_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.field_labels: dict[str, QLabel] = {}
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        for name in FIELDS:
            label = QLabel("—")
            label.setWordWrap(True)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            label.setMinimumWidth(360)
            self.field_labels[name] = label
            form.addRow(f"{name}:", label)
        note = QLabel(
            "The watermark survives re-saving and light edits; metadata and content credentials are removed "
            "by most editors. Not finding GAN Studio's marks does not prove an image is not AI-generated."
        )
        note.setWordWrap(True)
        note.setObjectName("CheckNote")
        note.setEnabled(False)  # muted
        right = QVBoxLayout()
        right.addWidget(self.status_label, 0, Qt.AlignmentFlag.AlignLeft)
        right.addWidget(self.verdict_label)
        right.addLayout(form)
        right.addStretch(1)
        right.addWidget(note)

        body = QHBoxLayout()
        body.addLayout(left)
        body.addLayout(right, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(body, 1)
        layout.addWidget(buttons)
        self._set_status("")
        self.resize(820, 440)

    # -- checking ---------------------------------------------------------------------------------
    def is_busy(self) -> bool:
        """True while a check runs."""
        return self.thread is not None

    def open_dialog(self) -> None:
        """Ask for an image file and check it."""
        start = str(self.path.parent) if self.path is not None else ""
        name, _ = QFileDialog.getOpenFileName(self, "Check an image", start, IMAGE_FILTER)
        if name:
            self.check(name)

    def check(self, path: Path | str) -> bool:
        """Check ``path`` on a worker thread (a file given while one is checked is checked next)."""
        path = Path(path)
        if self.is_busy():
            self._pending = path
            return False
        self.path, self.report = path, None
        self.file_label.setText(str(path))
        self.drop_area.setPixmap(QPixmap())
        self.drop_area.setText("Checking…")
        self._set_status("checking")
        self.verdict_label.setText(f"Checking {path.name}…")
        for label in self.field_labels.values():
            label.setText("—")
        worker = CheckWorker(path)
        self.worker = worker
        worker.sig_finished.connect(self._on_finished)
        worker.sig_failed.connect(self._on_failed)
        self.thread = worker.start(self)
        self.thread.finished.connect(self._on_thread_finished)
        return True

    def _on_finished(self, report: Any, thumbnail: QImage) -> None:
        self.show_report(report, thumbnail)
        self.sig_checked.emit(report)

    def _on_failed(self, message: str, details: str) -> None:
        self._set_status("error")
        self.verdict_label.setText(message.splitlines()[0] if message else "The image could not be checked")
        self.drop_area.setText(DROP_TEXT)
        self.errors.report(message, details)

    def _on_thread_finished(self) -> None:
        if self.thread is not None:
            self.thread.deleteLater()
        self.worker, self.thread = None, None
        if self._pending is not None:
            path, self._pending = self._pending, None
            self.check(path)

    def shutdown(self) -> None:
        """Wait for a running check (the window is closing)."""
        self._pending = None
        if self.thread is not None:
            self.thread.wait(60_000)
            self._on_thread_finished()

    def done(self, result: int) -> None:
        """Closing waits for a running check: its thread belongs to the dialog."""
        self.shutdown()
        super().done(result)

    # -- showing ----------------------------------------------------------------------------------
    def show_report(self, report: Any, thumbnail: QImage | None = None) -> None:
        """Show an engine VerifyReport."""
        self.report = report
        if thumbnail is not None:
            self.drop_area.show_image(thumbnail)
        self._set_status(report.status)
        self.verdict_label.setText(report.verdict)
        facts = report.image
        self.file_label.setText(f"{report.path}\n{facts.format}, {facts.width}×{facts.height}, {facts.bits}-bit")
        for name, text in field_texts(report).items():
            self.field_labels[name].setText(text)

    def _set_status(self, status: str) -> None:
        if status not in STATUS_STYLE:
            self.status_label.setVisible(False)
            return
        words, background, color = STATUS_STYLE[status]
        self.status_label.setText(words)
        self.status_label.setProperty("status", status)
        self.status_label.setStyleSheet(
            f"#CheckStatus {{ background: {background}; color: {color}; border-radius: 4px; "
            "padding: 3px 10px; font-weight: bold; }"
        )
        self.status_label.setVisible(True)

    def status(self) -> str:
        """The status shown: found, not_found, tampered, checking, error or '' (nothing checked yet)."""
        return str(self.status_label.property("status") or "") if self.status_label.isVisible() else ""


def field_texts(report: Any) -> dict[str, str]:
    """One line per FIELDS row for a VerifyReport."""
    mark = report.watermark
    if report.model_id is not None:
        name = report.model_name
        model = f"{name} (id {report.model_id:06x})" if name else f"id {report.model_id:06x}, not used on this computer"
        path = (report.model or {}).get("path")
        if path:
            model += f"\n{path}"
        install = (
            f"this computer (install id {report.install_id:06x})"
            if report.this_install
            else f"another GAN Studio installation (install id {report.install_id:06x})"
        )
    else:
        model, install = "—", "—"
    if mark.found:
        errors = f", {mark.bit_errors} bit error(s) corrected" if mark.bit_errors else ""
        watermark = f"found, confidence {mark.confidence:.2f}{errors}"
    else:
        watermark = f"not found{f' ({mark.detail})' if mark.detail else ''}"
    notes = list(report.notes)
    metadata = next((n.split(": ", 1)[1] for n in notes if n.startswith("Metadata:")), "—")
    credentials = next((n.split(": ", 1)[1] for n in notes if n.startswith("Content credentials:")), "—")
    allowed = report.credentials.training_allowed
    training = {False: "not allowed (its content credentials forbid it)", True: "allowed by its content credentials"}
    extra = [n for n in notes if not n.startswith(("Metadata:", "Content credentials:", "AI training:"))]
    problems = [p for p in report.problems if p not in report.verdict]  # the verdict says those already
    notes_text = "\n".join([*extra, *problems]) or "none"
    return {
        "Model": model,
        "Installation": install,
        "Watermark": watermark,
        "Metadata": metadata,
        "Credentials": credentials,
        "AI training": "not stated" if allowed is None else training[allowed],
        "Notes": notes_text,
    }
