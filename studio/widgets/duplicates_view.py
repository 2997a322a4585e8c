"""The Duplicates tab of the import report: each near-duplicate group as a row of thumbnails with the
file names and which one is kept, plus the button that re-imports with duplicates left out (or back in).

Thumbnails come from a ``thumbnail(path) -> uint8 HWC array | None`` callable supplied by the page and
are filled a few at a time from a zero-delay timer, so a long list never freezes the window.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from engine.data import ImportReport
from studio.widgets.images import array_to_qimage

ThumbnailFn = Callable[[str], "np.ndarray | None"]
THUMB = 72
GROUPS_PER_PAGE = 40
TILES_PER_GROUP = 12
_FILL_BUDGET_S = 0.015  # thumbnails decoded per timer tick: at most this long, so input stays smooth


class DuplicateTile(QFrame):
    """One file of a group: thumbnail, name, and whether the dataset keeps it."""

    def __init__(self, path: str, left_out_for: str | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.path, self.left_out_for = path, left_out_for
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.setSpacing(1)
        self.image = QLabel("…")
        self.image.setFixedSize(THUMB, THUMB)
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.name = QLabel()
        name = path.rsplit("/", 1)[-1]
        self.name.setText(self.name.fontMetrics().elidedText(name, Qt.TextElideMode.ElideMiddle, THUMB + 24))
        self.state = QLabel("left out" if left_out_for else "kept")
        self.state.setProperty("muted", bool(left_out_for))
        for label in (self.name, self.state):
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        for widget in (self.image, self.name, self.state):
            layout.addWidget(widget)
        verdict = f"left out: near duplicate of {left_out_for}" if left_out_for else "kept in the dataset"
        self.setToolTip(f"{path}\n{verdict}")

    def set_thumbnail(self, array: np.ndarray | None) -> None:
        """Show the image (scaled to the tile), or say it cannot be shown."""
        if array is None:
            self.image.setText("unreadable\nor moved")
            return
        pixmap = QPixmap.fromImage(array_to_qimage(array))
        self.image.setPixmap(
            pixmap.scaled(THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
        )

    def has_thumbnail(self) -> bool:
        """True once a picture is shown."""
        pixmap = self.image.pixmap()
        return pixmap is not None and not pixmap.isNull()


class DuplicatesView(QWidget):
    """Near-duplicate groups of a report, a page of groups at a time, with the leave-out switch."""

    sig_leave_out = Signal(bool)
    """The user asked to re-import with near duplicates left out (True) or kept again (False)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.report: ImportReport | None = None
        self.thumbnail: ThumbnailFn = lambda _path: None
        self.rows: list[QFrame] = []
        self.tiles: list[DuplicateTile] = []
        self._pending: list[DuplicateTile] = []
        self._busy = False
        self._timer = QTimer(self)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._fill_some)
        self._build()
        self.show_report(None)

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        top = QHBoxLayout()
        self.info = QLabel("")
        self.info.setWordWrap(True)
        self.leave_out_button = QPushButton("Leave duplicates out")
        self.leave_out_button.clicked.connect(self._on_button)
        top.addWidget(self.info, 1)
        top.addWidget(self.leave_out_button)
        layout.addLayout(top)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        holder = QWidget()
        self.list_layout = QVBoxLayout(holder)
        self.list_layout.setContentsMargins(0, 0, 0, 0)
        self.list_layout.addStretch(1)
        self.scroll.setWidget(holder)
        layout.addWidget(self.scroll, 1)
        self.more_button = QPushButton("")
        self.more_button.clicked.connect(self.show_more)
        layout.addWidget(self.more_button)

    # -- content ----------------------------------------------------------------------------------
    def show_report(self, report: ImportReport | None, thumbnail: ThumbnailFn | None = None) -> None:
        """Show the groups of ``report`` (None: nothing imported); ``thumbnail`` reads a file's picture."""
        self.report = report
        self.thumbnail = thumbnail or (lambda _path: None)
        self._clear()
        groups = report.duplicates if report is not None else []
        left_out = report.left_out_duplicates if report is not None else {}
        if report is None:
            self.info.setText("Import a folder to find near duplicates.")
        elif not groups:
            self.info.setText("No near duplicates: no two usable images look alike.")
        else:
            self.info.setText(
                report.duplicates_line()
                + (
                    " The left-out files are listed on the Skipped tab."
                    if left_out
                    else " Leaving them out keeps the largest image of each group."
                )
            )
        self.leave_out_button.setText("Keep all duplicates" if left_out else "Leave duplicates out")
        self.leave_out_button.setToolTip(
            "Import the folder again with every near duplicate kept"
            if left_out
            else "Import the folder again keeping only the largest image of each group; the others are "
            "skipped with the reason recorded in the report"
        )
        self.leave_out_button.setVisible(bool(groups))
        self._update_button()
        self.show_more()

    def set_busy(self, busy: bool) -> None:
        """Disable the switch while an import runs."""
        self._busy = busy
        self._update_button()

    def show_more(self) -> None:
        """Add the next page of groups."""
        groups = self.report.duplicates if self.report is not None else []
        start = len(self.rows)
        for number, group in enumerate(groups[start : start + GROUPS_PER_PAGE], start + 1):
            self._add_group(number, group)
        left = len(groups) - len(self.rows)
        self.more_button.setText(f"Show {min(left, GROUPS_PER_PAGE):,} more groups ({left:,} not shown)")
        self.more_button.setVisible(left > 0)
        if self._pending:
            self._timer.start()

    def pending(self) -> int:
        """Thumbnails still to be read."""
        return len(self._pending)

    def _add_group(self, number: int, group: list[str]) -> None:
        left_out = self.report.left_out_duplicates if self.report is not None else {}
        row = QFrame()
        row.setFrameShape(QFrame.Shape.StyledPanel)
        inner = QVBoxLayout(row)
        inner.setContentsMargins(6, 4, 6, 4)
        inner.addWidget(QLabel(f"Group {number}: {len(group)} files"))
        tiles_row = QHBoxLayout()
        for path in group[:TILES_PER_GROUP]:
            tile = DuplicateTile(path, left_out.get(path))
            tiles_row.addWidget(tile)
            self.tiles.append(tile)
            self._pending.append(tile)
        if len(group) > TILES_PER_GROUP:
            rest = group[TILES_PER_GROUP:]
            more = QLabel(f"+{len(rest)} more")
            more.setToolTip("\n".join(rest))
            tiles_row.addWidget(more)
        tiles_row.addStretch(1)
        inner.addLayout(tiles_row)
        self.list_layout.insertWidget(self.list_layout.count() - 1, row)
        self.rows.append(row)

    def _fill_some(self) -> None:
        deadline = time.monotonic() + _FILL_BUDGET_S
        while self._pending and time.monotonic() < deadline:
            tile = self._pending.pop(0)
            tile.set_thumbnail(self.thumbnail(tile.path))
        if not self._pending:
            self._timer.stop()

    def _clear(self) -> None:
        self._timer.stop()
        self._pending.clear()
        self.tiles.clear()
        for row in self.rows:
            row.setParent(None)
            row.deleteLater()
        self.rows.clear()

    def _update_button(self) -> None:
        self.leave_out_button.setEnabled(self.report is not None and bool(self.report.duplicates) and not self._busy)

    def _on_button(self) -> None:
        if self.report is not None:
            self.sig_leave_out.emit(not self.report.left_out_duplicates)
