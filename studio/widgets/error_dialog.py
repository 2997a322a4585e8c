"""A dialog that shows an error in words, with the technical details one click away."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QStyle,
    QVBoxLayout,
    QWidget,
)


class ErrorDialog(QDialog):
    """Message in words; for unexpected errors also the traceback, a Copy details button and the log path."""

    def __init__(
        self,
        message: str,
        details: str = "",
        log_path: str = "",
        parent: QWidget | None = None,
        title: str = "GAN Studio",
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setMinimumWidth(520)
        self.details = details
        layout = QVBoxLayout(self)
        layout.addLayout(self._message_row(message, bool(details)))
        if log_path:
            note = QLabel(f"The details were also written to {log_path}.")
            note.setObjectName("Muted")
            note.setWordWrap(True)
            layout.addWidget(note)
        self.details_view = QPlainTextEdit(details)
        self.details_view.setReadOnly(True)
        self.details_view.setVisible(False)
        self.details_view.setMinimumHeight(200)
        layout.addWidget(self.details_view)
        layout.addWidget(self._buttons())

    def _message_row(self, message: str, unexpected: bool) -> QHBoxLayout:
        row = QHBoxLayout()
        icon = QLabel()
        kind = QStyle.StandardPixmap.SP_MessageBoxCritical if unexpected else QStyle.StandardPixmap.SP_MessageBoxWarning
        icon.setPixmap(self.style().standardIcon(kind).pixmap(40, 40))
        row.addWidget(icon, 0)
        self.message_label = QLabel(message)
        self.message_label.setWordWrap(True)
        self.message_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        row.addWidget(self.message_label, 1)
        return row

    def _buttons(self) -> QDialogButtonBox:
        box = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        box.rejected.connect(self.reject)
        box.accepted.connect(self.accept)
        self.copy_button = QPushButton("Copy details")
        self.toggle_button = QPushButton("Show details")
        if self.details:  # user errors are words only; the buttons exist but stay out of the dialog
            for button in (self.copy_button, self.toggle_button):
                box.addButton(button, QDialogButtonBox.ButtonRole.ActionRole)
        self.copy_button.clicked.connect(self.copy_details)
        self.toggle_button.clicked.connect(self._toggle_details)
        return box

    def copy_details(self) -> None:
        """Put the message and the details on the clipboard, for a bug report."""
        QApplication.clipboard().setText(f"{self.message_label.text()}\n\n{self.details}")
        self.copy_button.setText("Copied")

    def _toggle_details(self) -> None:
        shown = not self.details_view.isVisible()
        self.details_view.setVisible(shown)
        self.toggle_button.setText("Hide details" if shown else "Show details")
        self.adjustSize()
