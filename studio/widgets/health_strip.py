"""The training doctor on the Train page: a strip of lights (one per detector) and the findings panel.

:class:`HealthStrip` shows each detector it is given (the page passes ``engine.training.health``'s
DETECTOR_LABELS: the widgets never import the training package, an import-linter contract) as a light
coloured by the detector's current level *and* drawn in a shape of its own (a circle with a tick for
ok, a diamond for a note, a triangle for a warning, an octagon for a problem) with the level in words
under its name, so the state never depends on telling colours apart; the tooltip is the latest message.

:class:`FindingsPanel` lists the findings that are still open (the latest finding of each detector whose
level is not ok), worst first: the sentence, the evidence (a small pyqtgraph chart of
``evidence["series"]``, the generated/training image pairs of a copying finding, the other numbers in a
line) and one button per suggested fix, which the page acts on (:attr:`FindingsPanel.sig_fix`).

Findings and fixes are the engine's ``Finding`` and ``Fix`` objects (read through :class:`FindingLike`).
Both are fed either live (``add_finding`` from the train worker's ``sig_health``) or from a run folder's
``health.jsonl`` (``set_findings(read_health(run_dir))``). Image paths in a finding are relative to the
run folder; one that is absolute or leads out of it (``..``, a link) is refused, never opened.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPaintEvent, QPen, QPixmap, QPolygonF
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QDialog,
    QDialogButtonBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

if TYPE_CHECKING:
    import pyqtgraph as pg


class FixLike(Protocol):
    """What the widgets read of an engine ``Fix``."""

    label: str
    settings: dict[str, Any]
    action: str


class FindingLike(Protocol):
    """What the widgets read of an engine ``Finding``."""

    detector: str
    level: str
    step: int
    message: str
    fixes: tuple[Any, ...]
    evidence: dict[str, Any]


LEVELS = ("ok", "note", "warning", "problem")
"""The engine's levels, mildest first (tests check they match engine.training.health.LEVELS)."""
LEVEL_COLORS = {"ok": "#3fb950", "note": "#58a6ff", "warning": "#e3a008", "problem": "#f85149"}
"""Readable on the dark and the light theme alike; the shape and the word carry the level too."""
LEVEL_WORDS = {"ok": "OK", "note": "Note", "warning": "Warning", "problem": "Problem"}
SERIES_NAMES = {
    "variety": "variety (1 = like the real images)",
    "d_acc_real": "D accuracy on real",
    "d_acc_fake": "D accuracy on fake",
    "d_confidence": "D confidence",
    "loss_g": "G loss",
    "loss_d": "D loss",
    "g_grad_norm": "G gradient size",
    "loss_g_spread": "G loss swing",
    "loss_d_spread": "D loss swing",
    "d_confidence_spread": "D confidence swing",
    "ada_rt": "D's certainty on real images (ADA rt)",
    "augment_p": "augmentation probability",
    "near_copies": "share of near-copies",
    "kid": "KD",
}
"""Words for the evidence series the detectors keep (a key without a name here is shown as it is)."""
CHART_HEIGHT = 110
CHART_COLUMNS = 5
CHART_COLORS = ("#7c9cff", "#ff9f6b", "#7fd49a", "#e07cd8", "#f0d36b", "#6bd5e0")
PAIR_SIZE = 72
EMPTY_TEXT = "No problems found so far"


def level_rank(level: str) -> int:
    """0 (ok) to 3 (problem); an unknown level counts as a note."""
    return LEVELS.index(level) if level in LEVELS else 1


def run_file(run_dir: Path | str | None, relative: Any) -> Path | None:
    """``relative`` inside ``run_dir`` (links followed), or None when it is absolute or leads out of it."""
    if run_dir is None or not isinstance(relative, str) or not relative or Path(relative).is_absolute():
        return None
    root = Path(run_dir).resolve()
    path = (root / relative).resolve()
    return path if path != root and path.is_relative_to(root) else None


def paint_level_shape(painter: QPainter, rect: QRectF, level: str) -> None:
    """Draw ``level``'s shape in its colour inside ``rect``: tick circle, diamond, triangle with '!', octagon."""
    color = QColor(LEVEL_COLORS.get(level, LEVEL_COLORS["note"]))
    painter.save()
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(color)
    c, r = rect.center(), min(rect.width(), rect.height()) / 2
    if level == "ok":
        painter.drawEllipse(c, r, r)
        mark = [QPointF(c.x() - r * 0.45, c.y()), QPointF(c.x() - r * 0.1, c.y() + r * 0.38)]
        mark.append(QPointF(c.x() + r * 0.5, c.y() - r * 0.38))
    elif level == "warning":
        painter.drawPolygon(
            QPolygonF(
                [QPointF(c.x(), c.y() - r), QPointF(c.x() + r, c.y() + r * 0.8), QPointF(c.x() - r, c.y() + r * 0.8)]
            )
        )
        mark = []
    elif level == "problem":
        octagon = [
            QPointF(
                c.x() + r * math.cos(math.radians(22.5 + 45 * i)), c.y() + r * math.sin(math.radians(22.5 + 45 * i))
            )
            for i in range(8)
        ]
        painter.drawPolygon(QPolygonF(octagon))
        mark = []
    else:  # note
        painter.drawPolygon(
            QPolygonF(
                [
                    QPointF(c.x(), c.y() - r),
                    QPointF(c.x() + r, c.y()),
                    QPointF(c.x(), c.y() + r),
                    QPointF(c.x() - r, c.y()),
                ]
            )
        )
        mark = []
    ink = QPen(QColor("#15171c"), max(1.5, r * 0.22))
    ink.setCapStyle(Qt.PenCapStyle.RoundCap)
    painter.setPen(ink)
    painter.setBrush(Qt.BrushStyle.NoBrush)
    if mark:
        path = QPainterPath(mark[0])
        for point in mark[1:]:
            path.lineTo(point)
        painter.drawPath(path)
    elif level in ("warning", "problem"):  # an exclamation mark: a bar and a dot
        top = c.y() - r * (0.35 if level == "warning" else 0.5)
        painter.drawLine(QPointF(c.x(), top), QPointF(c.x(), c.y() + r * 0.15))
        painter.drawPoint(QPointF(c.x(), c.y() + r * (0.5 if level == "warning" else 0.45)))
    painter.restore()


class LevelIcon(QWidget):
    """A level's shape, drawn at a fixed size."""

    def __init__(self, level: str = "ok", size: int = 18, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.level = level
        self.setFixedSize(size, size)

    def set_level(self, level: str) -> None:
        """Show ``level``."""
        self.level = level
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt name)
        painter = QPainter(self)
        paint_level_shape(painter, QRectF(self.rect()).adjusted(1, 1, -1, -1), self.level)


class HealthLight(QFrame):
    """One detector: its shape and colour, its name, and its level in words; clicking it asks for its finding."""

    sig_clicked = Signal(str)
    """The user clicked the light; carries the detector name."""

    def __init__(self, detector: str, label: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.detector, self.label = detector, label
        self.level = "ok"
        self.message = ""
        self.setObjectName("HealthLight")
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.icon = LevelIcon("ok", 18)
        self.name_label = QLabel(label)
        self.name_label.setStyleSheet("font-weight: 600;")
        self.level_label = QLabel("")
        self.level_label.setObjectName("Muted")
        text = QVBoxLayout()
        text.setSpacing(0)
        text.addWidget(self.name_label)
        text.addWidget(self.level_label)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 3, 8, 3)
        layout.addWidget(self.icon)
        layout.addLayout(text)
        self.set_level("ok", "")

    def set_level(self, level: str, message: str, step: int | None = None) -> None:
        """Show ``level`` with ``message`` (the latest finding's sentence) as the tooltip."""
        self.level, self.message = level, message
        self.icon.set_level(level)
        word = LEVEL_WORDS.get(level, level)
        self.level_label.setText(word)
        self.level_label.setStyleSheet(f"color: {LEVEL_COLORS.get(level, LEVEL_COLORS['note'])};")
        name = self.label
        if message:
            at = f" (step {step:,})" if step is not None else ""
            self.setToolTip(f"{name}: {word}{at}\n{message}")
        else:
            self.setToolTip(f"{name}: nothing found so far")
        self.setAccessibleName(f"{name}: {word}")
        self.setAccessibleDescription(self.toolTip())

    def mousePressEvent(self, event: Any) -> None:  # noqa: N802 (Qt name)
        self.sig_clicked.emit(self.detector)
        super().mousePressEvent(event)


class HealthStrip(QWidget):
    """One light per detector, showing each detector's current level; feed it findings."""

    sig_detector_clicked = Signal(str)
    """A light was clicked; carries its detector name."""

    def __init__(self, labels: dict[str, str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.findings: list[FindingLike] = []
        self.lights: dict[str, HealthLight] = {}
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        caption = QLabel("Health")
        caption.setObjectName("Muted")
        caption.setToolTip(
            "The training doctor watches the run for the usual GAN failures; hover a light for its latest finding"
        )
        layout.addWidget(caption)
        for detector, label in labels.items():
            light = HealthLight(detector, label)
            light.sig_clicked.connect(self.sig_detector_clicked)
            self.lights[detector] = light
            layout.addWidget(light)
        layout.addStretch(1)

    def clear(self) -> None:
        """Every light back to ok with nothing found."""
        self.set_findings([])

    def set_findings(self, findings: list[FindingLike]) -> None:
        """Show the levels of ``findings`` (oldest first, e.g. read_health(run_dir))."""
        self.findings = list(findings)
        self._show()

    def add_finding(self, finding: FindingLike) -> None:
        """A new finding of a running run."""
        self.findings.append(finding)
        self._show()

    def levels(self) -> dict[str, str]:
        """Detector -> the level its light shows."""
        return {name: light.level for name, light in self.lights.items()}

    def _show(self) -> None:
        latest = {f.detector: f for f in self.findings}  # the newest finding of a detector is its level
        for name, light in self.lights.items():
            finding = latest.get(name)
            if finding is None:
                light.set_level("ok", "")
            else:
                light.set_level(finding.level, finding.message, finding.step)


def open_findings(findings: list[FindingLike]) -> list[FindingLike]:
    """The latest finding of each detector whose level is not ok, worst first (then newest first)."""
    latest: dict[str, FindingLike] = {}
    for finding in findings:
        latest[finding.detector] = finding
    still = [f for f in latest.values() if f.level != "ok"]
    return sorted(still, key=lambda f: (-level_rank(f.level), -f.step))


class FindingCard(QFrame):
    """One finding: level and detector, the sentence, its evidence and a button per fix."""

    sig_fix = Signal(object, object)
    """A fix button was clicked: (Finding, Fix)."""

    def __init__(
        self, finding: FindingLike, run_dir: Path | None, labels: dict[str, str], parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.finding, self.run_dir, self.labels = finding, run_dir, labels
        self.setObjectName("FindingCard")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        color = LEVEL_COLORS.get(finding.level, LEVEL_COLORS["note"])
        self.setStyleSheet(f"QFrame#FindingCard {{ border: 1px solid {color}; border-radius: 6px; }}")
        self.charts: dict[str, pg.PlotWidget] = {}
        self.pair_labels: list[tuple[QLabel, QLabel]] = []
        self.refused: list[str] = []
        self.fix_buttons: list[QPushButton] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        layout.addLayout(self._header())
        self.message_label = QLabel(finding.message)
        self.message_label.setWordWrap(True)
        self.message_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.message_label)
        if finding.fixes:  # the actions right under the sentence; the evidence follows
            layout.addLayout(self._fix_row())
        evidence = finding.evidence
        remedy = evidence.get("auto_remedy")
        if isinstance(remedy, dict) and remedy.get("label"):
            applied = QLabel(f"Applied automatically: {remedy['label']}.")
            applied.setObjectName("Muted")
            layout.addWidget(applied)
        series = evidence.get("series")
        if isinstance(series, dict) and any(series.values()):
            layout.addWidget(self._chart(series))
        pairs = evidence.get("pairs")
        if isinstance(pairs, list) and pairs:
            layout.addWidget(self._pairs(pairs))
        numbers = _numbers_line(evidence)
        if numbers:
            line = QLabel(numbers)
            line.setObjectName("Muted")
            line.setWordWrap(True)
            layout.addWidget(line)
        self.outcome_label = QLabel("")
        self.outcome_label.setWordWrap(True)
        self.outcome_label.setVisible(False)
        layout.addWidget(self.outcome_label)

    def _header(self) -> QHBoxLayout:
        row = QHBoxLayout()
        row.addWidget(LevelIcon(self.finding.level, 16))
        word = LEVEL_WORDS.get(self.finding.level, self.finding.level)
        name = self.labels.get(self.finding.detector, self.finding.detector)
        title = QLabel(f"{word}: {name}")
        title.setStyleSheet(f"font-weight: 600; color: {LEVEL_COLORS.get(self.finding.level, LEVEL_COLORS['note'])};")
        step = QLabel(f"at step {self.finding.step:,}")
        step.setObjectName("Muted")
        row.addWidget(title)
        row.addWidget(step)
        row.addStretch(1)
        return row

    def _chart(self, series: dict[str, Any]) -> QWidget:
        """One small chart per series, each on its own scale (accuracies near 1 beside a gradient size of
        20 would otherwise be flat lines), up to CHART_COLUMNS in a row."""
        import pyqtgraph as pg  # imported on first use (see studio/widgets/loss_chart.py)

        box = QWidget()
        grid = QGridLayout(box)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(4)
        palette = QApplication.palette()
        drawn = 0
        for name, points in series.items():
            xy = [(float(p[0]), float(p[1])) for p in points if _finite_point(p)] if isinstance(points, list) else []
            if not xy:
                continue
            xs, ys = zip(*xy, strict=True)
            plot = pg.PlotWidget()
            plot.setBackground(palette.base().color())
            axis_color = palette.placeholderText().color()
            for axis in ("left", "bottom"):
                plot.getAxis(axis).setPen(pg.mkPen(axis_color))
                plot.getAxis(axis).setTextPen(pg.mkPen(axis_color))
            plot.setTitle(SERIES_NAMES.get(name, name), color=palette.text().color(), size="8pt")
            plot.showGrid(x=True, y=True, alpha=0.15)
            plot.setMouseEnabled(x=False, y=False)
            plot.setMenuEnabled(False)
            plot.hideButtons()
            color = CHART_COLORS[drawn % len(CHART_COLORS)]
            plot.plot(list(xs), list(ys), pen=pg.mkPen(color, width=2), symbol="o" if len(xs) < 3 else None)
            plot.setFixedHeight(CHART_HEIGHT)
            grid.addWidget(plot, drawn // CHART_COLUMNS, drawn % CHART_COLUMNS)
            self.charts[name] = plot
            drawn += 1
        return box

    def _pairs(self, pairs: list[Any]) -> QWidget:
        box = QWidget()
        grid = QGridLayout(box)
        grid.setContentsMargins(0, 0, 0, 0)
        for column, caption in enumerate(("generated", "closest training image", "")):
            if caption:
                label = QLabel(caption)
                label.setObjectName("Muted")
                grid.addWidget(label, 0, column)
        for row, pair in enumerate(pairs, start=1):
            if not isinstance(pair, dict):
                continue
            images = []
            for column, key in enumerate(("generated", "neighbour")):
                label = QLabel()
                label.setFixedSize(QSize(PAIR_SIZE, PAIR_SIZE))
                label.setAlignment(Qt.AlignmentFlag.AlignCenter)
                path = run_file(self.run_dir, pair.get(key))
                pixmap = QPixmap(str(path)) if path is not None and path.is_file() else QPixmap()
                if path is None:
                    self.refused.append(str(pair.get(key)))
                    label.setText("refused:\noutside the\nrun folder")
                    label.setToolTip(f"{pair.get(key)!r} is not a file inside the run folder, so it is not opened")
                elif pixmap.isNull():
                    label.setText("missing")
                    label.setToolTip(str(path))
                else:
                    label.setPixmap(
                        pixmap.scaled(
                            PAIR_SIZE,
                            PAIR_SIZE,
                            Qt.AspectRatioMode.KeepAspectRatio,
                            Qt.TransformationMode.FastTransformation,
                        )
                    )
                    label.setToolTip(str(path))
                grid.addWidget(label, row, column)
                images.append(label)
            self.pair_labels.append((images[0], images[1]))
            distance = pair.get("distance")
            if isinstance(distance, (int, float)):
                text = QLabel(f"distance {distance:.4g}")
                text.setObjectName("Muted")
                grid.addWidget(text, row, 2)
        grid.setColumnStretch(3, 1)
        return box

    def _fix_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        try_label = QLabel("Try:")
        try_label.setObjectName("Muted")
        row.addWidget(try_label)
        for fix in self.finding.fixes:
            button = QPushButton(fix.label)
            button.setToolTip(fix_tooltip(fix))
            button.clicked.connect(lambda _=False, f=fix: self.sig_fix.emit(self.finding, f))
            row.addWidget(button)
            self.fix_buttons.append(button)
        row.addStretch(1)
        return row

    def show_outcome(self, text: str) -> None:
        """A line under the buttons saying what the fix did (e.g. which checkpoint to keep)."""
        self.outcome_label.setText(text)
        self.outcome_label.setVisible(bool(text))


def fix_tooltip(fix: FixLike) -> str:
    """What clicking a fix does, in words."""
    if fix.action == "stop":
        return "Stop the run (it saves a checkpoint) and say which checkpoint is the one to keep"
    if fix.action == "family":
        return f"Prefill a new run with the {fix.settings.get('family', '?')} family (you press Start training)"
    changes = ", ".join(f"{k} = {v}" for k, v in fix.settings.items())
    return f"Resume this run with {changes}; you see the changes before it starts"


def _finite_point(point: Any) -> bool:
    try:
        return len(point) == 2 and all(math.isfinite(float(v)) for v in point)
    except (TypeError, ValueError):
        return False


def _numbers_line(evidence: dict[str, Any]) -> str:
    """The plain numbers of the evidence, e.g. 'variety 0.012 · best_variety 0.31'."""
    parts = []
    for key, value in evidence.items():
        if key in ("series", "pairs", "auto_remedy") or isinstance(value, (dict, list, bool)) or value is None:
            continue
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        parts.append(f"{key.replace('_', ' ')} {shown}")
    return " · ".join(parts)


class FindingsPanel(QScrollArea):
    """The open findings of a run as cards, or "No problems found so far"."""

    sig_fix = Signal(object, object)
    """A fix button was clicked: (Finding, Fix)."""

    def __init__(self, labels: dict[str, str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.findings: list[FindingLike] = []
        self.run_dir: Path | None = None
        self.labels = labels
        self.cards: list[FindingCard] = []
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.body = QWidget()
        self.body_layout = QVBoxLayout(self.body)
        self.body_layout.setContentsMargins(0, 0, 0, 0)
        self.empty_label = QLabel(EMPTY_TEXT)
        self.empty_label.setObjectName("Muted")
        self.body_layout.addWidget(self.empty_label)
        self.body_layout.addStretch(1)
        self.setWidget(self.body)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)

    def clear(self, run_dir: Path | None = None) -> None:
        """No findings (a new run starts in ``run_dir``)."""
        self.set_findings([], run_dir)

    def set_findings(self, findings: list[FindingLike], run_dir: Path | None) -> None:
        """Show the open findings of ``findings`` (oldest first); images are looked up in ``run_dir``."""
        self.findings, self.run_dir = list(findings), Path(run_dir) if run_dir is not None else None
        self._rebuild()

    def add_finding(self, finding: FindingLike) -> None:
        """A new finding of the running run."""
        self.findings.append(finding)
        self._rebuild()

    def content_height(self) -> int:
        """The height the cards (or the empty line) want, for the page to size the panel."""
        if not self.cards:
            return self.empty_label.sizeHint().height() + 8
        spacing = max(0, self.body_layout.spacing())
        return sum(c.sizeHint().height() + spacing for c in self.cards) + 24  # wrapped text under-reports

    def card_for(self, detector: str) -> FindingCard | None:
        """The card of ``detector``'s open finding, if it has one."""
        return next((c for c in self.cards if c.finding.detector == detector), None)

    def show_detector(self, detector: str) -> None:
        """Scroll to ``detector``'s card."""
        card = self.card_for(detector)
        if card is not None:
            self.ensureWidgetVisible(card)

    def _rebuild(self) -> None:
        for card in self.cards:
            self.body_layout.removeWidget(card)
            card.hide()  # deleteLater waits for the event loop: until then a removed card still painted
            card.deleteLater()
        self.cards = []
        shown = open_findings(self.findings)
        cleared = len({f.detector for f in self.findings}) - len(shown)
        text = EMPTY_TEXT + (f" ({cleared} earlier finding{'s' * (cleared != 1)} cleared)" if cleared > 0 else "")
        self.empty_label.setText(text)
        self.empty_label.setVisible(not shown)
        for index, finding in enumerate(shown):
            card = FindingCard(finding, self.run_dir, self.labels)
            card.sig_fix.connect(self.sig_fix)
            self.body_layout.insertWidget(index, card)
            self.cards.append(card)


class FixDialog(QDialog):
    """Before a fix resumes a run: the settings it changes (old -> new) and the step it trains to; OK or Cancel."""

    def __init__(
        self,
        run_name: str,
        fix: FixLike,
        changes: list[tuple[str, Any, Any]],
        until: int | None,
        stops_first: bool,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.fix, self.changes = fix, changes
        self.setWindowTitle(fix.label)
        layout = QVBoxLayout(self)
        verb = "Stop and resume" if stops_first else "Resume"
        self.heading = QLabel(f"{verb} <b>{run_name}</b> with these settings:")
        self.heading.setWordWrap(True)
        layout.addWidget(self.heading)
        self.table = QTableWidget(len(changes), 3)
        self.table.setHorizontalHeaderLabels(("Setting", "Now", "After the fix"))
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for row, (label, old, new) in enumerate(changes):
            for column, value in enumerate((label, _setting_text(old), _setting_text(new))):
                self.table.setItem(row, column, QTableWidgetItem(value))
        self.table.setMaximumHeight(40 + 30 * max(1, len(changes)))
        layout.addWidget(self.table)
        if not changes:
            layout.addWidget(QLabel("The run already has these settings; it resumes unchanged."))
        self.until_spin: QSpinBox | None = None
        if until is not None:
            row = QHBoxLayout()
            row.addWidget(QLabel("Train until step"))
            self.until_spin = QSpinBox()
            self.until_spin.setRange(1, 10_000_000)
            self.until_spin.setSingleStep(100)
            self.until_spin.setValue(until)
            self.until_spin.setToolTip("The step the resumed run trains to")
            row.addWidget(self.until_spin)
            row.addStretch(1)
            layout.addLayout(row)
        note = QLabel(
            "The run continues from its newest checkpoint with these settings (recorded in its config.json)."
            + (" It saves a checkpoint and stops first." if stops_first else "")
        )
        note.setObjectName("Muted")
        note.setWordWrap(True)
        layout.addWidget(note)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.ok_button = buttons.addButton("Resume with these settings", QDialogButtonBox.ButtonRole.AcceptRole)
        self.ok_button.setProperty("primary", True)
        self.cancel_button = buttons.button(QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def until(self) -> int | None:
        """The step the resumed run trains to (None: the run keeps its time limit)."""
        return self.until_spin.value() if self.until_spin is not None else None


def _setting_text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if value == "":
        return "(off)"
    return str(value)
