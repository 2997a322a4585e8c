""" "Find good settings": a dialog that runs engine.tune.tune on a TuneWorker and offers the best trial.

The Train page opens it with its dataset, family and current settings. The user chooses how many trials
and how many minutes each; the table fills live (trial, settings tried, KD, state), Stop ends the current
trial cleanly, and "Use these settings" hands the best trial's settings back to the page
(:attr:`TuneDialog.sig_use_settings`), which fills its form. Nothing here blocks the GUI thread: optuna
and the trials run on the worker's thread.
"""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from typing import Any

from PySide6.QtCore import QThread, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.runs import TrainConfig
from engine.tune import RESERVED, default_space
from studio.runs import format_seconds
from studio.workers.tune import TuneWorker

COLUMNS = ("Trial", "Settings tried", "KD", "State")
STATE_WORDS = {
    "running": "training…",
    "complete": "done",
    "pruned": "stopped early (worse than the others)",
    "failed": "failed",
    "interrupted": "stopped (resumable)",
}
DEFAULT_TRIALS = 8
DEFAULT_MINUTES = 5.0


def tune_settings(config: TrainConfig) -> dict[str, Any]:
    """The page's settings every trial starts from: all but the tune's own and the ones it searches."""
    searched = set(default_space(config))
    return {k: v for k, v in config.to_dict().items() if k not in RESERVED and k not in searched}


def describe_trial_settings(settings: dict[str, Any]) -> str:
    """'G lr 2.1e-04 · D lr 3e-05 · hinge loss · augment: translation · R1 0.5' for a trial's settings."""
    words = []
    for key, value in settings.items():
        if key == "lr_g":
            words.append(f"G lr {value:.2g}")
        elif key == "lr_d":
            words.append(f"D lr {value:.2g}")
        elif key == "loss":
            words.append(f"{value} loss")
        elif key == "augment":
            words.append(f"augment: {value or 'off'}")
        elif key == "r1_gamma":
            words.append(f"R1 {value:.3g}" if value else "R1 off")
        elif key != "family_options":
            words.append(f"{key} {value}")
    return " · ".join(words)


class TuneDialog(QDialog):
    """Short trials over learning rates, loss, augmentation and R1, scored by KD; the best fills the form."""

    sig_use_settings = Signal(object)
    """The user chose the best trial's settings: a dict of TrainConfig overrides."""
    sig_running_changed = Signal(bool)
    """A tune started (True) or its thread ended (False)."""

    def __init__(
        self,
        dataset: Path,
        config: TrainConfig,
        runs_root: Path,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.dataset, self.family, self.runs_root = Path(dataset), config.family, Path(runs_root)
        self.settings = tune_settings(config)
        self.worker: TuneWorker | None = None
        self.thread: QThread | None = None
        self.result: Any = None
        self.error: str | None = None
        self.current: dict[str, Any] = {}
        self.rows: dict[int, int] = {}  # trial number -> table row
        self._close_when_done = False
        self.setWindowTitle("Find good settings")
        self.resize(900, 520)
        self._build()
        self._update_buttons()

    # -- layout -----------------------------------------------------------------------------------
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        intro = QLabel(
            f"Short trial runs of <b>{self.family}</b> on <b>{self.dataset.name}</b> try learning rates, the loss, "
            "augmentation and the gradient penalty (R1), chosen by optuna's TPE. Each trial is scored by KD "
            "(lower is better); trials clearly worse than the others at the same step stop early. The other "
            "settings come from the Train page."
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)
        form = QFormLayout()
        self.trials_spin = QSpinBox()
        self.trials_spin.setRange(1, 500)
        self.trials_spin.setValue(DEFAULT_TRIALS)
        self.trials_spin.setToolTip("How many settings to try (more trials find better settings, slower)")
        self.minutes_spin = QDoubleSpinBox()
        self.minutes_spin.setRange(0.05, 600.0)
        self.minutes_spin.setDecimals(2)
        self.minutes_spin.setSingleStep(1.0)
        self.minutes_spin.setValue(DEFAULT_MINUTES)
        self.minutes_spin.setSuffix(" min")
        self.minutes_spin.setToolTip("Training time of each trial (KD measurements come on top)")
        self.family_label = QLabel(self.family)
        self.family_label.setToolTip("The family chosen on the Train page")
        self.total_label = QLabel("")
        self.total_label.setObjectName("Muted")
        for spin in (self.trials_spin, self.minutes_spin):
            spin.valueChanged.connect(self._show_total)
            spin.setMaximumWidth(140)
        form.addRow("Family", self.family_label)
        form.addRow("Trials", self.trials_spin)
        form.addRow("Minutes per trial", self.minutes_spin)
        form.addRow("", self.total_label)
        layout.addLayout(form)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.horizontalHeaderItem(2).setToolTip("Kernel distance to your images: lower is better")
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.ResizeToContents)
        layout.addWidget(self.table, 1)
        self.progress_label = QLabel("Press Start to begin.")
        self.progress = QProgressBar()
        self.progress.setTextVisible(False)
        self.best_label = QLabel("")
        self.best_label.setWordWrap(True)
        layout.addWidget(self.progress_label)
        layout.addWidget(self.progress)
        layout.addWidget(self.best_label)
        buttons = QHBoxLayout()
        self.start_button = QPushButton("Start")
        self.start_button.setProperty("primary", True)
        self.start_button.clicked.connect(self.start)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop the current trial cleanly (it keeps a checkpoint) and end the search")
        self.stop_button.clicked.connect(self.cancel)
        self.use_button = QPushButton("Use these settings")
        self.use_button.setToolTip("Fill the Train page's settings with the best trial's")
        self.use_button.clicked.connect(self.use_best)
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.reject)
        for button in (self.start_button, self.stop_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.use_button)
        buttons.addWidget(self.close_button)
        layout.addLayout(buttons)
        self._show_total()

    def _show_total(self) -> None:
        total = self.trials_spin.value() * self.minutes_spin.value() * 60
        self.total_label.setText(f"At most about {format_seconds(total)} of training in all, plus the KD measurements.")

    # -- the tune ---------------------------------------------------------------------------------
    def is_running(self) -> bool:
        """True from Start until the worker's thread has ended."""
        return self.thread is not None

    def start(self) -> bool:
        """Start the tune on a worker thread; False when one is already running."""
        if self.is_running():
            return False
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        self.worker = TuneWorker(
            self.dataset,
            self.family,
            self.trials_spin.value(),
            float(self.minutes_spin.value()),
            self.runs_root,
            settings=self.settings,
            name=f"{self.dataset.name}-{self.family}-{stamp}",
        )
        self.result, self.error, self.current, self.rows = None, None, {}, {}
        self.table.setRowCount(0)
        self.best_label.setText("")
        for signal, slot in (
            (self.worker.sig_trial_started, self._on_trial),
            (self.worker.sig_trial_ended, self._on_trial),
            (self.worker.sig_progress, self._on_progress),
            (self.worker.sig_finished, self._on_finished),
            (self.worker.sig_failed, self._on_failed),
        ):
            signal.connect(slot)
        self.thread = self.worker.start(self)
        self.thread.finished.connect(self._on_thread_finished)
        self.progress_label.setText("Starting the first trial…")
        self.progress.setRange(0, 0)  # busy until the first step arrives
        self._update_buttons()
        self.sig_running_changed.emit(True)
        return True

    def cancel(self) -> None:
        """Stop the current trial cleanly and end the tune (the dialog stays open)."""
        if self.worker is not None:
            self.worker.cancel()
            self.progress_label.setText("Stopping the current trial (saving its checkpoint)…")
            self._update_buttons()

    def use_best(self) -> bool:
        """Hand the best trial's settings to the page; False when no trial completed."""
        best = getattr(self.result, "best", None)
        if best is None:
            return False
        self.sig_use_settings.emit(dict(best.settings))
        self.accept()
        return True

    def reject(self) -> None:
        """Close; a running tune is stopped first and the dialog closes when its trial has stopped."""
        if self.is_running():
            self._close_when_done = True
            self.cancel()
            return
        super().reject()

    def shutdown(self, timeout_ms: int = 120_000) -> bool:
        """Stop a running tune and wait for its thread (the window closes); True when it ended."""
        if self.worker is None or self.thread is None:
            return True
        self.worker.cancel()
        return self.thread.wait(timeout_ms)

    # -- worker signals (GUI thread) --------------------------------------------------------------
    def _on_trial(self, info: Any) -> None:
        row = self.rows.get(info.trial)
        if row is None:
            row = self.table.rowCount()
            self.table.insertRow(row)
            self.rows[info.trial] = row
        kd = info.score if info.score is not None else (info.scores[-1][1] if info.scores else None)
        state = STATE_WORDS.get(info.state, info.state)
        cells = (f"{info.trial}", describe_trial_settings(info.settings), _kd_text(kd), state)
        for column, text in enumerate(cells):
            item = QTableWidgetItem(text)
            if column == 3 and info.error:
                item.setToolTip(info.error)
            self.table.setItem(row, column, item)
        self.table.scrollToItem(self.table.item(row, 0))

    def _on_progress(self, record: dict[str, Any]) -> None:
        self.current = record
        total = float(self.minutes_spin.value()) * 60
        seconds = float(record.get("seconds") or 0.0)
        self.progress.setRange(0, 1000)
        self.progress.setValue(int(1000 * min(1.0, seconds / total)) if total > 0 else 0)
        kd = record.get("kd")
        latest = f", latest KD {kd:.4f}" if isinstance(kd, float) and math.isfinite(kd) else ""
        self.progress_label.setText(
            f"Trial {record['trial']} of {record['trials']}: step {int(record['step']):,}, "
            f"{format_seconds(seconds)} of {format_seconds(total)}{latest}"
        )
        row = self.rows.get(int(record["trial"]))
        if row is not None and kd is not None:
            self.table.setItem(row, 2, QTableWidgetItem(_kd_text(kd)))

    def _on_finished(self, result: Any) -> None:
        self.result = result
        for info in result.trials:  # the summary's final word on every trial
            self._on_trial(info)
        best = result.best
        if best is None:
            self.best_label.setText("No trial finished, so there are no settings to offer yet.")
        else:
            row = self.rows.get(best.trial)
            if row is not None:
                for column in range(len(COLUMNS)):
                    item = self.table.item(row, column)
                    if item is not None:
                        font = QFont(item.font())
                        font.setBold(True)
                        item.setFont(font)
            self.best_label.setText(
                f"Best: trial {best.trial}, {result.metric} {best.score:.4f} — "
                f"{describe_trial_settings(best.settings)}. The trials are in {result.tune_dir.name}/ "
                "in the project's runs folder."
            )
        word = "Stopped" if result.stopped else "Done"
        self.progress_label.setText(f"{word}: {len(result.trials)} trial{'s' * (len(result.trials) != 1)}.")

    def _on_failed(self, message: str, details: str) -> None:
        self.error = message
        self.progress_label.setText(f"Could not find settings: {message}")
        self.best_label.setText(details.splitlines()[-1] if details else "")

    def _on_thread_finished(self) -> None:
        if self.thread is None:
            return
        self.thread.deleteLater()
        self.worker, self.thread = None, None
        self.progress.setRange(0, 1)
        self.progress.setValue(1 if self.result is not None else 0)
        self._update_buttons()
        self.sig_running_changed.emit(False)
        if self._close_when_done:
            self._close_when_done = False
            super().reject()

    def _update_buttons(self) -> None:
        running = self.is_running()
        cancelling = bool(self.worker and self.worker.cancelling)
        self.start_button.setEnabled(not running)
        self.stop_button.setEnabled(running and not cancelling)
        self.use_button.setEnabled(not running and getattr(self.result, "best", None) is not None)
        for spin in (self.trials_spin, self.minutes_spin):
            spin.setEnabled(not running)


def _kd_text(kd: Any) -> str:
    return f"{kd:.4f}" if isinstance(kd, (int, float)) and math.isfinite(kd) else "–"
