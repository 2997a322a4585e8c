"""Models page: the project's runs with their checkpoints and ONNX exports (precision and parity from
each model card), Export to ONNX (fp32 or fp16) and a PyTorch-vs-onnxruntime benchmark.

Export and benchmark run on worker threads (ExportWorker, BenchmarkWorker); this page only starts
them and shows their progress and results, so the window never freezes.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QThread, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.runs.checkpoint import list_checkpoints
from engine.runs.info import run_kind
from studio.errors import ErrorReporter
from studio.models import BenchRow, export_path, list_exports, parity_line
from studio.pages.evaluate import EvaluatePanel
from studio.project import Project
from studio.workers.model_workers import BenchmarkWorker, ExportWorker

RUN_ROLE = Qt.ItemDataRole.UserRole + 1
TREE_COLUMNS = ("Run / file", "Kind", "Step", "Precision", "Max abs error", "PSNR", "Exporter", "Saved")
BENCH_COLUMNS = ("Batch", "PyTorch ms", "onnxruntime ms", "Speed-up", "Backends")
BENCH_BATCHES = (1, 8)
BENCH_RUNS = 15


def _saved(path: Path) -> str:
    return datetime.fromtimestamp(path.stat().st_mtime).strftime("%Y-%m-%d %H:%M")


class ModelsPage(QWidget):
    """Runs, checkpoints and exports of the project; export to ONNX and benchmark the backends."""

    sig_job = Signal(str, int, int)
    """A running export or benchmark for the status bar: text ('' when idle), done, total (0: busy)."""
    sig_status = Signal(str)
    """A one-line message for the status bar."""
    sig_exported = Signal(str)
    """An export succeeded; carries the run folder (the Generate page reloads it)."""

    def __init__(self, project: Project, errors: ErrorReporter, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.project, self.errors = project, errors
        self.worker: ExportWorker | BenchmarkWorker | None = None
        self.thread: QThread | None = None
        self.bench_runs = BENCH_RUNS
        self.bench_rows: list[BenchRow] = []
        self._job_run = ""
        self._build()
        self.refresh()

    # -- layout -----------------------------------------------------------------------------------
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        title = QLabel("Models")
        title.setObjectName("Heading")
        layout.addWidget(title)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(list(TREE_COLUMNS))
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.setAlternatingRowColors(True)
        self.tree.header().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.tree.itemSelectionChanged.connect(self._update_buttons)
        layout.addWidget(self.tree, 1)
        layout.addLayout(self._actions_row())
        self.tabs = QTabWidget()
        export_tab = QWidget()
        export_layout = QVBoxLayout(export_tab)
        self.evaluate_panel = EvaluatePanel(self.errors)
        self.evaluate_panel.sig_job.connect(self.sig_job)
        self.evaluate_panel.sig_status.connect(self.sig_status)
        self.evaluate_panel.sig_busy_changed.connect(self._on_evaluating)
        self.tabs.addTab(export_tab, "Export and benchmark")
        self.tabs.addTab(self.evaluate_panel, "Evaluate")
        self.tabs.setTabToolTip(1, "Quality scores (KD/FD with EffLite0) and the memorization check")
        layout.addWidget(self.tabs, 3)
        layout = export_layout
        self.export_label = QLabel("Select a run and export it: the parity check against PyTorch appears here.")
        bench_title = QLabel("Benchmark: median latency per call after warm-up, PyTorch vs onnxruntime")
        bench_title.setObjectName("Muted")
        self.bench_label = QLabel("")
        for label in (self.export_label, bench_title, self.bench_label):
            label.setWordWrap(True)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.export_label)
        layout.addWidget(bench_title)
        layout.addWidget(self.bench_label)
        self.bench_table = QTableWidget(0, len(BENCH_COLUMNS))
        self.bench_table.setHorizontalHeaderLabels(list(BENCH_COLUMNS))
        self.bench_table.verticalHeader().setVisible(False)
        self.bench_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.bench_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.bench_table.horizontalHeader().setStretchLastSection(True)
        layout.addWidget(self.bench_table, 1)

    def _actions_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.fp16_check = QCheckBox("fp16")
        self.fp16_check.setToolTip("Half-precision weights: smaller and faster on GPUs, parity bound 2e-2")
        self.export_button = QPushButton("Export to ONNX")
        self.export_button.setProperty("primary", True)
        self.export_button.setToolTip("Export the selected run's newest checkpoint to ONNX and check parity")
        self.export_button.clicked.connect(self.start_export)
        self.bench_button = QPushButton("Benchmark")
        self.bench_button.setToolTip("Time PyTorch against onnxruntime for the selected run (needs a current export)")
        self.bench_button.clicked.connect(self.start_benchmark)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(lambda: self.refresh())
        self.progress_label = QLabel("")
        self.progress_label.setObjectName("Muted")
        for widget in (self.fp16_check, self.export_button, self.bench_button, self.refresh_button):
            row.addWidget(widget)
        row.addWidget(self.progress_label, 1)
        return row

    # -- runs -------------------------------------------------------------------------------------
    def set_project(self, project: Project) -> None:
        """Show another project's runs."""
        self.project = project
        self.refresh()

    def refresh(self, select: Path | str | None = None) -> None:
        """Re-read every run folder; keep (or set) the selected run."""
        current = str(select) if select else self.selected_run()
        self.tree.clear()
        for run_dir in self.project.runs():
            item = self._run_item(run_dir)
            self.tree.addTopLevelItem(item)
            item.setExpanded(True)
            if current and str(run_dir) == str(current):
                self.tree.setCurrentItem(item)
        if self.tree.currentItem() is None and self.tree.topLevelItemCount():
            self.tree.setCurrentItem(self.tree.topLevelItem(0))
        self._update_buttons()

    def _run_item(self, run_dir: Path) -> QTreeWidgetItem:
        checkpoints, exports = list_checkpoints(run_dir), list_exports(run_dir)
        item = QTreeWidgetItem([run_dir.name, f"run: {len(checkpoints)} checkpoint(s), {len(exports)} export(s)"])
        item.setData(0, RUN_ROLE, str(run_dir))
        for info in exports:
            item.addChild(self._export_item(info, run_dir))
        for path in reversed(checkpoints):
            child = QTreeWidgetItem(
                [
                    path.name,
                    "checkpoint",
                    path.stem.removeprefix("step-").lstrip("0") or "0",
                    "",
                    "",
                    "",
                    "",
                    _saved(path),
                ]
            )
            child.setData(0, RUN_ROLE, str(run_dir))
            item.addChild(child)
        return item

    def _export_item(self, info: Any, run_dir: Path) -> QTreeWidgetItem:
        err = "" if info.max_abs_error is None else f"{info.max_abs_error:.2e}"
        psnr = "" if info.psnr_db is None else ("inf" if info.psnr_db == float("inf") else f"{info.psnr_db:.1f} dB")
        page = "Translate" if run_kind(run_dir) == "translate" else "Generate"
        kind = f"ONNX (used by {page})" if info.current else "ONNX (older than the newest checkpoint)"
        child = QTreeWidgetItem(
            [
                info.path.name,
                kind,
                "" if info.step is None else str(info.step),
                info.precision or "?",
                err,
                psnr,
                info.exporter or "",
                _saved(info.path),
            ]
        )
        child.setData(0, RUN_ROLE, str(run_dir))
        child.setToolTip(0, str(info.path))
        return child

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 (Qt name)
        """Re-read the run folders whenever the page is shown (training may have added checkpoints)."""
        super().showEvent(event)
        if not self.is_busy():
            self.refresh()

    def selected_run(self) -> str | None:
        """The run folder of the selected row (a run or one of its files), or None."""
        item = self.tree.currentItem()
        return None if item is None else item.data(0, RUN_ROLE)

    def select_run(self, run_dir: Path | str) -> None:
        """Select the row of ``run_dir``."""
        self.refresh(select=run_dir)

    def is_busy(self) -> bool:
        """True while an export, a benchmark or an evaluation runs."""
        return self.thread is not None or self.evaluate_panel.is_busy()

    def show_evaluate(self) -> None:
        """Show the Evaluate tab."""
        self.tabs.setCurrentWidget(self.evaluate_panel)

    def _on_evaluating(self, busy: bool) -> None:
        self._update_buttons()

    def _update_buttons(self) -> None:
        run = self.selected_run()
        can = bool(run) and not self.is_busy() and bool(list_checkpoints(Path(run)))
        self.export_button.setEnabled(can)
        self.bench_button.setEnabled(can)
        self.fp16_check.setEnabled(not self.is_busy())
        if not self.evaluate_panel.is_busy():
            self.evaluate_panel.set_run(run)

    # -- jobs -------------------------------------------------------------------------------------
    def start_export(self) -> bool:
        """Export the selected run to run/exports on a worker; False when nothing could start."""
        run = self.selected_run()
        if not run or self.is_busy():
            return False
        try:
            out = export_path(Path(run), self.fp16_check.isChecked())
        except Exception as exc:  # noqa: BLE001 (engine errors are words, the rest gets details)
            self.errors.report_exception(exc)
            return False
        self.export_label.setText(f"Exporting {Path(run).name} to {out.name}…")
        self._start(ExportWorker(Path(run), out, self.fp16_check.isChecked()), self._on_exported, "Exporting to ONNX")
        return True

    def start_benchmark(self) -> bool:
        """Time PyTorch against onnxruntime for the selected run on a worker."""
        run = self.selected_run()
        if not run or self.is_busy():
            return False
        self.bench_label.setText(f"Benchmarking {Path(run).name}…")
        self._start(BenchmarkWorker(Path(run), BENCH_BATCHES, self.bench_runs), self._on_benchmarked, "Benchmarking")
        return True

    def _start(self, worker: ExportWorker | BenchmarkWorker, on_finished: Any, job: str) -> None:
        self.worker, self._job_run = worker, str(worker.run_dir)
        worker.sig_progress.connect(self._on_progress)
        worker.sig_finished.connect(on_finished)
        worker.sig_failed.connect(self._on_failed)
        self.thread = worker.start(self)
        self.thread.finished.connect(self._on_thread_finished)
        self.sig_job.emit(job, 0, 0)
        self._update_buttons()

    def _on_progress(self, message: str) -> None:
        self.progress_label.setText(message)
        self.sig_job.emit(message, 0, 0)

    def _on_exported(self, result: Any) -> None:
        line = parity_line(result.precision, result.max_abs_error, result.psnr_db, result.bound)
        self.export_label.setText(
            f"Exported {result.path.name}: {line} ({result.exporter} exporter)."
            + ("\n" + "\n".join(result.notes) if result.notes else "")
        )
        run = str(result.path.parent.parent)
        self.refresh(select=run)
        self.sig_status.emit(f"Exported {result.path.name}")
        self.sig_exported.emit(run)

    def _on_benchmarked(self, rows: list[BenchRow]) -> None:
        self.bench_rows = list(rows)
        self.bench_table.setRowCount(0)
        for row in rows:
            self._add_bench_row(row)
        if rows:
            best = rows[-1]
            faster = "onnxruntime" if best.speedup >= 1 else "PyTorch"
            ratio = best.speedup if best.speedup >= 1 else 1 / best.speedup
            self.bench_label.setText(
                f"{Path(self._job_run).name}: at batch {best.batch} {faster} is "
                f"{ratio:.2f}× faster ({self.bench_runs} runs per backend)."
            )

    def _add_bench_row(self, row: BenchRow) -> None:
        index = self.bench_table.rowCount()
        self.bench_table.insertRow(index)
        cells = (
            str(row.batch),
            f"{row.torch_ms:.2f}",
            f"{row.ort_ms:.2f}",
            f"{row.speedup:.2f}×",
            f"{row.torch_backend} / {row.ort_backend}",
        )
        for column, text in enumerate(cells):
            cell = QTableWidgetItem(text)
            if column < 4:
                cell.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.bench_table.setItem(index, column, cell)

    def _on_failed(self, message: str, details: str) -> None:
        label = self.export_label if isinstance(self.worker, ExportWorker) else self.bench_label
        label.setText(f"Failed: {message}")
        self.errors.report(message, details)

    def _on_thread_finished(self) -> None:
        if self.thread is not None:
            self.thread.deleteLater()
        self.worker, self.thread = None, None
        self.progress_label.setText("")
        self.sig_job.emit("", 0, 0)
        self._update_buttons()

    def shutdown(self) -> None:
        """Cancel an evaluation; wait for a running export or benchmark (neither can be interrupted midway)."""
        self.evaluate_panel.shutdown()
        if self.thread is not None:
            self.thread.wait(120_000)
            self._on_thread_finished()
