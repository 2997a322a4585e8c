"""The consent dialog: the user's attestation of their rights to a dataset, recorded by the engine.

It shows what is recorded (rights basis, people, who, when, the dataset fingerprint it binds to) and
the full history, so earlier statements can be reviewed. The engine's ``attest`` writes the record;
training refuses to start until an attestation matches the dataset's current files.

When the import flagged images that may show a face, the dialog shows them (boxes drawn) and
"no identifiable person" can only be recorded after ticking that they were looked at; the engine
enforces the same rule, the dialog only makes it visible.
"""

from __future__ import annotations

import getpass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QRadioButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.consent import (
    PEOPLE,
    RIGHTS,
    Attestation,
    attest,
    attestation_history,
    current_attestation,
    flagged_faces,
    require_attestation,
)
from engine.data import dataset_fingerprint
from engine.data.duplicates import preview_file
from engine.data.manifest import read_manifest
from engine.errors import ConsentError, GanStudioError, gui_message
from studio.widgets.images import array_to_qimage

RIGHTS_TEXT = {
    "own": "I made these images myself (or own all rights to them).",
    "licensed": "A licence allows training on them (e.g. Apache-2.0, CC-BY, a written agreement).",
    "public-domain": "The images are in the public domain.",
}
PEOPLE_TEXT = {
    "none": "No identifiable person appears in these images.",
    "consented": "Identifiable people appear, and each of them agreed to this use.",
}
HISTORY_COLUMNS = ("When", "Rights", "People", "By", "Matches files", "Note")
FACE_THUMB = 112
MAX_FACE_THUMBS = 48  # the rest are named in the count; report.json lists them all


def default_attester() -> str:
    """The login name, as a starting value for "attested by"."""
    try:
        return getpass.getuser()
    except Exception:  # getuser raises various errors where no user name is set
        return ""


def consent_status(dataset_dir: Path | None) -> tuple[bool, str]:
    """(may train?, a sentence saying why) for the attestation state of ``dataset_dir``."""
    if dataset_dir is None:
        return False, "No dataset selected."
    try:
        record = current_attestation(dataset_dir)
    except GanStudioError as exc:
        return False, gui_message(exc)
    if record is None:
        return False, "No consent recorded yet: training needs your attestation."
    try:
        require_attestation(dataset_dir)  # the engine's own check decides; we only phrase it
    except ConsentError as exc:
        if "changed since" in str(exc):
            return False, f"The files changed since the consent of {record.created_label}: attest again."
        return False, gui_message(exc)
    except GanStudioError as exc:
        return False, gui_message(exc)
    return True, (
        f"Consent recorded: {record.rights}, people: {record.people}, by {record.attested_by} "
        f"on {record.created_label}."
    )


class ConsentDialog(QDialog):
    """Review and record an attestation for ``dataset_dir``; ``attestation`` holds the new record."""

    def __init__(self, dataset_dir: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.dataset_dir = Path(dataset_dir)
        self.attestation: Attestation | None = None
        self.setWindowTitle(f"Consent for {self.dataset_dir.name}")
        self.setMinimumWidth(760)
        layout = QVBoxLayout(self)
        intro = QLabel(
            "Before training, state on what basis you may use these images. The statement is "
            "stored beside the dataset, bound to its exact files: if the files change, you "
            "attest again. Earlier statements stay in the history below."
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)
        self.rights = self._choices(layout, "Rights to the images", RIGHTS, RIGHTS_TEXT)
        self.people = self._choices(layout, "People in the images", PEOPLE, PEOPLE_TEXT)
        self.faces = self._load_faces()
        self.faces_reviewed = QCheckBox(
            "I looked at the flagged images: none shows a real, identifiable person (drawings, statues, false alarms)."
        )
        self.faces_reviewed.toggled.connect(self._update_button)
        if self.faces:
            layout.addWidget(self._faces_box())
        layout.addWidget(self._who_box())
        layout.addWidget(self._history_box())
        self.error_label = QLabel("")
        self.error_label.setObjectName("ConsentMissing")
        self.error_label.setWordWrap(True)
        layout.addWidget(self.error_label)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.record_button = self.buttons.addButton("Record attestation", QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.accepted.connect(self.record)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.confirm.toggled.connect(self._update_button)
        self._prefill()

    def _choices(self, layout: QVBoxLayout, title: str, values: tuple[str, ...], texts: dict[str, str]) -> QButtonGroup:
        box = QGroupBox(title)
        inner = QVBoxLayout(box)
        group = QButtonGroup(self)
        for i, value in enumerate(values):
            button = QRadioButton(f"{value}: {texts.get(value, '')}")
            button.setProperty("value", value)
            group.addButton(button, i)
            inner.addWidget(button)
        group.buttonToggled.connect(self._update_button)
        layout.addWidget(box)
        return group

    def _load_faces(self) -> dict[str, list[list[int]]]:
        try:
            return flagged_faces(self.dataset_dir)
        except GanStudioError:
            return {}  # _prefill reports an unusable dataset

    def _faces_box(self) -> QGroupBox:
        count = len(self.faces)
        box = QGroupBox(f"Images that may show a person ({count})")
        inner = QVBoxLayout(box)
        text = QLabel(
            f"The import found what looks like a face in {count} image{'s' if count != 1 else ''} (boxes drawn). "
            'Training on identifiable people needs their consent: choose "consented" once each of them agreed. '
            "If none of these shows a real person, tick the box below after looking at them."
        )
        text.setWordWrap(True)
        inner.addWidget(text)
        self.face_list = QListWidget()
        self.face_list.setObjectName("FlaggedFaces")
        self.face_list.setViewMode(QListWidget.ViewMode.IconMode)
        self.face_list.setIconSize(QSize(FACE_THUMB, FACE_THUMB))
        self.face_list.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.face_list.setMovement(QListWidget.Movement.Static)
        self.face_list.setFixedHeight(FACE_THUMB + 48)
        self.face_list.setFlow(QListWidget.Flow.LeftToRight)
        self.face_list.setWrapping(False)
        for rel, thumb in flagged_thumbnails(self.dataset_dir, self.faces, FACE_THUMB, MAX_FACE_THUMBS):
            item = QListWidgetItem(Path(rel).name)
            item.setToolTip(rel if thumb is not None else f"{rel} (the source file is no longer there)")
            if thumb is not None:
                item.setIcon(QIcon(QPixmap.fromImage(array_to_qimage(thumb))))
            self.face_list.addItem(item)
        inner.addWidget(self.face_list)
        if count > MAX_FACE_THUMBS:
            more = QLabel(f'… and {count - MAX_FACE_THUMBS:,} more, listed under "faces" in report.json.')
            more.setObjectName("Muted")
            inner.addWidget(more)
        inner.addWidget(self.faces_reviewed)
        return box

    def _who_box(self) -> QGroupBox:
        box = QGroupBox("Who attests")
        form = QFormLayout(box)
        self.attested_by = QLineEdit(default_attester())
        self.attested_by.setPlaceholderText("Your name")
        self.attested_by.textChanged.connect(self._update_button)
        self.note = QPlainTextEdit()
        self.note.setPlaceholderText("Optional: licence name, link, agreement reference...")
        self.note.setMinimumHeight(56)
        self.note.setMaximumHeight(80)
        self.fingerprint_label = QLabel("")
        self.fingerprint_label.setObjectName("Muted")
        self.fingerprint_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.confirm = QCheckBox("I confirm that the statements above are true for every image in this dataset.")
        form.addRow("Attested by", self.attested_by)
        form.addRow("Note", self.note)
        form.addRow("Dataset", self.fingerprint_label)
        form.addRow(self.confirm)
        return box

    def _history_box(self) -> QGroupBox:
        box = QGroupBox("Recorded attestations (newest first)")
        inner = QVBoxLayout(box)
        self.history = QTableWidget(0, len(HISTORY_COLUMNS))
        self.history.setHorizontalHeaderLabels(list(HISTORY_COLUMNS))
        self.history.horizontalHeader().setStretchLastSection(True)
        self.history.verticalHeader().setVisible(False)
        self.history.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.history.setFixedHeight(120)
        inner.addWidget(self.history)
        return box

    def _prefill(self) -> None:
        try:
            fingerprint = dataset_fingerprint(self.dataset_dir)
            records = attestation_history(self.dataset_dir)
        except GanStudioError as exc:
            self.error_label.setText(gui_message(exc))
            fingerprint, records = "", []
        self.fingerprint_label.setText(f"{self.dataset_dir}\nfingerprint {fingerprint[:16]}")
        self._fill_history(records, fingerprint)
        if records:  # start from the last statement: re-attesting after a re-import is one click
            last = records[-1]
            self._select(self.rights, last.rights)
            self._select(self.people, last.people)
            self.attested_by.setText(last.attested_by)
            self.note.setPlainText(last.note)
        self._update_button()

    def _fill_history(self, records: list[Attestation], fingerprint: str) -> None:
        self.history.setRowCount(len(records))
        for row, record in enumerate(reversed(records)):
            cells = (
                record.created_label,
                record.rights,
                record.people,
                record.attested_by,
                "yes" if record.fingerprint == fingerprint else "no (files changed)",
                record.note,
            )
            for column, text in enumerate(cells):
                self.history.setItem(row, column, QTableWidgetItem(text))
        self.history.resizeColumnsToContents()

    @staticmethod
    def _select(group: QButtonGroup, value: str) -> None:
        for button in group.buttons():
            button.setChecked(button.property("value") == value)

    @staticmethod
    def _value(group: QButtonGroup) -> str | None:
        button = group.checkedButton()
        return None if button is None else str(button.property("value"))

    def set_choices(self, rights: str, people: str, attested_by: str, note: str = "") -> None:
        """Fill the form (used by tests and the sample dataset); the confirmation box is ticked too."""
        self._select(self.rights, rights)
        self._select(self.people, people)
        self.attested_by.setText(attested_by)
        self.note.setPlainText(note)
        self.confirm.setChecked(True)

    @property
    def needs_face_review(self) -> bool:
        """True while "no identifiable person" is chosen for flagged images not yet ticked as looked at."""
        return bool(self.faces) and self._value(self.people) == "none" and not self.faces_reviewed.isChecked()

    def _update_button(self, *_: object) -> None:
        ready = (
            self._value(self.rights) is not None
            and self._value(self.people) is not None
            and bool(self.attested_by.text().strip())
            and self.confirm.isChecked()
            and not self.needs_face_review
        )
        self.faces_reviewed.setEnabled(self._value(self.people) != "consented")
        self.record_button.setEnabled(ready)

    def record(self) -> None:
        """Write the attestation through the engine and close; engine errors stay in the dialog."""
        try:
            self.attestation = attest(
                self.dataset_dir,
                rights=self._value(self.rights) or "",
                people=self._value(self.people) or "",
                attested_by=self.attested_by.text(),
                note=self.note.toPlainText(),
                faces_reviewed=bool(self.faces) and self.faces_reviewed.isChecked(),
            )
        except GanStudioError as exc:
            self.error_label.setText(gui_message(exc))
            return
        self.accept()


def flagged_thumbnails(
    dataset_dir: Path, faces: dict[str, list[list[int]]], size: int, limit: int
) -> list[tuple[str, np.ndarray | None]]:
    """(relative path, size x size RGB thumbnail with its face boxes drawn, or None when the source
    file is gone) for the first ``limit`` flagged images, read from the import's source folder."""
    try:
        manifest = read_manifest(dataset_dir)
    except GanStudioError:
        return []
    source = Path(manifest.get("source", ""))
    sizes = {e["path"]: (e.get("width") or 0, e.get("height") or 0) for e in manifest.get("files", [])}
    out: list[tuple[str, np.ndarray | None]] = []
    for rel, boxes in list(faces.items())[:limit]:
        thumb = preview_file(source / rel, size)
        width, height = sizes.get(rel, (0, 0))
        if thumb is not None and width and height:
            thumb = _draw_boxes(thumb, boxes, width, height)
        out.append((rel, thumb))
    return out


def _draw_boxes(thumb: np.ndarray, boxes: list[list[int]], width: int, height: int) -> np.ndarray:
    """Boxes in the original's pixels drawn onto its padded ``preview_file`` thumbnail."""
    size = thumb.shape[0]
    scale = size / max(width, height)
    dx, dy = (size - width * scale) / 2, (size - height * scale) / 2
    image = Image.fromarray(thumb)
    draw = ImageDraw.Draw(image)
    for x, y, w, h in boxes:
        left, top = dx + x * scale, dy + y * scale
        draw.rectangle((left, top, left + w * scale, top + h * scale), outline=(255, 196, 0), width=2)
    return np.asarray(image)
