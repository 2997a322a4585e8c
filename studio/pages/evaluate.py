"""Evaluate panel (a tab of the Models page): quality scores and the memorization check of a run.

"Check quality and memorization" starts an EvaluateWorker for the run selected on the Models page;
the panel shows its progress (with Cancel), then KD and FD (EffLite0) with their caveat, the share of
near-copies with the threshold, how often each class is generated compared with the data (when the
dataset has class folders), and each generated sample beside its nearest training image, nearest
first, near-copies outlined in red.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from PySide6.QtCore import Qt, QThread, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine.runs.checkpoint import list_checkpoints
from engine.runs.info import run_kind
from studio.errors import ErrorReporter
from studio.widgets.images import array_to_qimage
from studio.workers.evaluate_worker import CAVEAT, EvaluateWorker, EvaluationResult

PAIR_COLUMNS = 5
PROMPT = "Press “Check quality and memorization” to score the selected run."
TRANSLATE_NOTE = (
    "This run translates images; quality scores and the memorization check are for models that "
    "draw from noise. Try it on the Translate page."
)
THUMB = 96
NEAR_COPY_STYLE = "QFrame#PairCard { border: 2px solid #e5484d; border-radius: 6px; }"
PLAIN_STYLE = "QFrame#PairCard { border: 1px solid rgba(128, 128, 128, 90); border-radius: 6px; }"


def classes_text(report: dict) -> str:
    """Rich text: one table row per class with its share of the data and of the generated images (and,
    for a conditional model, how often a sample asked for the class looks like it)."""
    conditional = report.get("agreement") is not None
    head = "<tr><th align='left'>Class</th><th>in the data</th><th>generated</th>"
    head += "<th>looks like its class</th></tr>" if conditional else "</tr>"
    rows = []
    for row in report["classes"]:
        cells = f"<td>{escape(row['name'])}</td><td align='right'>{row['data']:.1%}</td>"
        cells += f"<td align='right'>{row['generated']:.1%}</td>"
        if conditional:
            agreement = row["agreement"]
            cells += f"<td align='right'>{'–' if agreement is None else f'{agreement:.0%}'}</td>"
        rows.append(f"<tr>{cells}</tr>")
    summary = (
        f"Class frequencies: generated and data shares differ by {report['distance']:.0%} (0 = the same)"
        + (f"; {report['agreement']:.0%} of samples look like the class asked for" if conditional else "")
        + f". The check puts {report['real_agreement']:.0%} of the training images in their own class."
    )
    return f"{escape(summary)}<table cellspacing='6'>{head}{''.join(rows)}</table>"


class PairCard(QFrame):
    """A generated sample beside its nearest training image, with the distance under them."""

    def __init__(self, pair, rank: int, seed: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("PairCard")
        self.pair, self.near_copy = pair, bool(pair.near_copy)
        self.setStyleSheet(NEAR_COPY_STYLE if self.near_copy else PLAIN_STYLE)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        images = QHBoxLayout()
        self.generated_label = self._image(pair.generated, f"generated, seed {seed}")
        self.training_label = self._image(pair.training, f"training image, row {pair.training_index}")
        images.addWidget(self.generated_label)
        images.addWidget(self.training_label)
        layout.addLayout(images)
        caption = f"#{rank}  distance {pair.distance:.3g}" + ("  · near-copy" if self.near_copy else "")
        self.distance_label = QLabel(caption)
        self.distance_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        if self.near_copy:
            self.distance_label.setStyleSheet("color: #e5484d; font-weight: 600;")
        self.distance_label.setToolTip(f"seed {seed} (left) and training image row {pair.training_index} (right)")
        layout.addWidget(self.distance_label)

    @staticmethod
    def _image(array, tip: str) -> QLabel:
        label = QLabel()
        pixmap = QPixmap.fromImage(array_to_qimage(array))
        mode = (
            Qt.TransformationMode.FastTransformation
            if pixmap.width() <= THUMB // 2
            else Qt.TransformationMode.SmoothTransformation
        )
        label.setPixmap(pixmap.scaled(THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio, mode))
        label.setFixedSize(THUMB, THUMB)
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        label.setToolTip(tip)
        return label


class EvaluatePanel(QWidget):
    """Run an evaluation of one run on a worker and show scores, near-copy share and nearest pairs."""

    sig_job = Signal(str, int, int)
    """The running evaluation for the status bar: text ('' when idle), done, total (0: busy)."""
    sig_status = Signal(str)
    """A one-line message for the status bar."""
    sig_busy_changed = Signal(bool)
    """An evaluation started (True) or ended (False)."""

    def __init__(self, errors: ErrorReporter, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.errors = errors
        self.run_dir: Path | None = None
        self.worker: EvaluateWorker | None = None
        self.thread: QThread | None = None
        self.result: EvaluationResult | None = None
        self.pair_cards: list[PairCard] = []
        self.pair_count = 10
        self._build()
        self._update_buttons()

    # -- layout -----------------------------------------------------------------------------------
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        controls = QHBoxLayout()
        self.run_label = QLabel("No run selected")
        self.samples_spin = QSpinBox()
        self.samples_spin.setRange(2, 5000)
        self.samples_spin.setValue(64)
        self.samples_spin.setPrefix("generated: ")
        self.samples_spin.setToolTip("Generated images to score (about 20 per second on a CPU)")
        self.real_spin = QSpinBox()
        self.real_spin.setRange(2, 50000)
        self.real_spin.setValue(500)
        self.real_spin.setPrefix("real: up to ")
        self.real_spin.setToolTip("Training images to compare with (their features are cached per dataset)")
        self.check_button = QPushButton("Check quality and memorization")
        self.check_button.setProperty("primary", True)
        self.check_button.setToolTip("Score the selected run's newest model against its training images")
        self.check_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        for widget in (self.run_label, self.samples_spin, self.real_spin, self.check_button, self.cancel_button):
            controls.addWidget(widget)
        controls.addStretch(1)
        layout.addLayout(controls)
        progress_row = QHBoxLayout()
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.progress.setMaximumWidth(260)
        self.progress_label = QLabel("")
        self.progress_label.setObjectName("Muted")
        progress_row.addWidget(self.progress)
        progress_row.addWidget(self.progress_label, 1)
        layout.addLayout(progress_row)
        self.scores_label = QLabel(PROMPT)
        self.memo_label = QLabel("")
        self.classes_label = QLabel("")
        self.classes_label.setTextFormat(Qt.TextFormat.RichText)
        self.classes_label.setToolTip(
            "Each generated image counts for the class most of its 5 nearest training images belong to "
            "(EffLite0 features, no classifier); the same check on the training images themselves says how "
            "far to trust it"
        )
        self.caveat_label = QLabel(f"{CAVEAT}: they compare your own runs with each other (lower is better).")
        self.caveat_label.setObjectName("Muted")
        for label in (self.scores_label, self.memo_label, self.classes_label, self.caveat_label):
            label.setWordWrap(True)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            layout.addWidget(label)
        pairs_title = QLabel("Generated sample (left) beside its nearest training image (right), nearest first")
        pairs_title.setObjectName("Muted")
        layout.addWidget(pairs_title)
        self.pairs_area = QScrollArea()
        self.pairs_area.setWidgetResizable(True)
        self.pairs_widget = QWidget()
        self.pairs_grid = QGridLayout(self.pairs_widget)
        self.pairs_grid.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.pairs_area.setWidget(self.pairs_widget)
        layout.addWidget(self.pairs_area, 1)

    # -- state ------------------------------------------------------------------------------------
    def set_run(self, run_dir: Path | str | None) -> None:
        """The run that the next evaluation scores (the Models page's selection)."""
        self.run_dir = Path(run_dir) if run_dir else None
        self.run_label.setText(f"Run: {self.run_dir.name}" if self.run_dir else "No run selected")
        if self.translates():
            self.scores_label.setText(TRANSLATE_NOTE)
        elif self.scores_label.text() == TRANSLATE_NOTE:
            self.scores_label.setText(PROMPT)
        self._update_buttons()

    def translates(self) -> bool:
        """True when the selected run is an image-to-image model (nothing to score here)."""
        return self.run_dir is not None and run_kind(self.run_dir) == "translate"

    def is_busy(self) -> bool:
        """True while an evaluation runs."""
        return self.thread is not None

    def _update_buttons(self) -> None:
        busy = self.is_busy()
        has_checkpoint = self.run_dir is not None and bool(list_checkpoints(self.run_dir))
        self.check_button.setEnabled(not busy and has_checkpoint and not self.translates())
        self.cancel_button.setEnabled(busy)
        self.samples_spin.setEnabled(not busy)
        self.real_spin.setEnabled(not busy)

    # -- job --------------------------------------------------------------------------------------
    def start(self) -> bool:
        """Evaluate the chosen run on a worker; False when nothing could start."""
        if self.run_dir is None or self.is_busy():
            return False
        worker = EvaluateWorker(self.run_dir, self.samples_spin.value(), self.real_spin.value(), self.pair_count)
        self.worker = worker
        worker.sig_progress.connect(self._on_progress)
        worker.sig_finished.connect(self._on_finished)
        worker.sig_cancelled.connect(self._on_cancelled)
        worker.sig_failed.connect(self._on_failed)
        self.scores_label.setText(f"Evaluating {self.run_dir.name}…")
        self.memo_label.setText("")
        self.classes_label.setText("")
        self.progress.setRange(0, 0)
        self.progress.setVisible(True)
        self.thread = worker.start(self)
        self.thread.finished.connect(self._on_thread_finished)
        self.sig_job.emit("Evaluating", 0, 0)
        self.sig_busy_changed.emit(True)
        self._update_buttons()
        return True

    def cancel(self) -> None:
        """Stop the running evaluation at its next batch."""
        if self.worker is not None:
            self.worker.cancel()
            self.progress_label.setText("Cancelling…")

    def _on_progress(self, done: int, total: int, message: str) -> None:
        self.progress.setRange(0, max(total, 0))
        self.progress.setValue(done)
        text = f"{message} ({done}/{total})" if total else message
        self.progress_label.setText(text)
        self.sig_job.emit(text, done, total)

    def _on_finished(self, result: EvaluationResult) -> None:
        self.result = result
        kd, fd = result.names["kid"], result.names["fid"]
        self.scores_label.setText(
            f"{result.run_dir.name}: {result.num_fake} generated vs {result.num_real} training images "
            f"({result.seconds:.0f} s, {result.backend})\n"
            f"{kd}: {result.kid_mean * 1e3:.2f} ×1e-3 (std {result.kid_std * 1e3:.2f})    "
            f"{fd}: {result.fid:.2f}    lower is better" + "".join(f"\nNote: {n}" for n in result.notes)
        )
        self.memo_label.setText(
            f"Near-copies: {result.near_copies} of {result.num_fake} samples ({result.near_copy_share:.1%}) are "
            f"closer to a training image than the threshold {result.threshold:.3g} "
            f"(half the typical distance {result.typical_distance:.3g} between training images). "
            f"Baseline: {result.training_share:.1%} of the training images are that close to another one."
        )
        self.classes_label.setText(classes_text(result.classes) if result.classes else "")
        self._show_pairs(result)
        self.sig_status.emit(
            f"Evaluated {result.run_dir.name}: {kd} {result.kid_mean * 1e3:.2f}×1e-3, "
            f"{result.near_copy_share:.1%} near-copies"
        )

    def _show_pairs(self, result: EvaluationResult) -> None:
        self._clear_pairs()
        for rank, pair in enumerate(result.pairs):
            card = PairCard(pair, rank + 1, pair.generated_index)  # seeds start at 0
            self.pair_cards.append(card)
            self.pairs_grid.addWidget(card, rank // PAIR_COLUMNS, rank % PAIR_COLUMNS)

    def _clear_pairs(self) -> None:
        for card in self.pair_cards:
            self.pairs_grid.removeWidget(card)
            card.deleteLater()
        self.pair_cards = []

    def _on_cancelled(self) -> None:
        self.scores_label.setText("Evaluation cancelled; nothing was scored.")
        self.sig_status.emit("Evaluation cancelled")

    def _on_failed(self, message: str, details: str) -> None:
        self.scores_label.setText(f"Evaluation failed: {message}")
        self.errors.report(message, details)

    def _on_thread_finished(self) -> None:
        if self.thread is not None:
            self.thread.deleteLater()
        self.worker, self.thread = None, None
        self.progress.setVisible(False)
        self.progress_label.setText("")
        self.sig_job.emit("", 0, 0)
        self.sig_busy_changed.emit(False)
        self._update_buttons()

    def shutdown(self) -> None:
        """Cancel and wait for a running evaluation (window closing)."""
        if self.thread is not None:
            if self.worker is not None:
                self.worker.cancel()
            self.thread.wait(120_000)
            self._on_thread_finished()
