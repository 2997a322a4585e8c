"""Models page: the project's runs with their checkpoints and ONNX exports (precision and parity from
each model card), Export to ONNX (fp32 or fp16; to the run's exports folder or, with Export as…,
anywhere), Show in folder, and a PyTorch-vs-onnxruntime benchmark once there is an export to compare.

The two lines under the buttons always describe the selected run: its current export and its parity
read from the model card, or the last failure for that run until a later success replaces it.

Export and benchmark run on worker threads (ExportWorker, BenchmarkWorker); this page only starts
them and shows their progress and results, so the window never freezes.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QThread, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QFileDialog,
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

from engine.export.benchmark import BenchRow
from engine.runs.checkpoint import list_checkpoints
from engine.runs.config import read_run_config
from engine.runs.info import run_info, run_kind
from studio.errors import ErrorReporter
from studio.models import ExportInfo, export_path, list_exports, read_card
from studio.pages.evaluate import EvaluatePanel
from studio.project import Project
from studio.workers.model_workers import BenchmarkWorker, ExportWorker

RUN_ROLE = Qt.ItemDataRole.UserRole + 1
TREE_COLUMNS = ("Run / file", "Kind", "Step", "Precision", "Max abs error", "PSNR", "Exporter", "Saved")
BENCH_COLUMNS = ("Batch", "PyTorch ms", "onnxruntime ms", "Speed-up", "Backends")
BENCH_BATCHES = (1, 8)
BENCH_RUNS = 15
KIND_PAGE_TITLES = {"generate": "Generate", "translate": "Translate", "upscale": "Upscale"}
"""The page that uses each kind of run (its exports, and the "Open in …" button)."""


def page_title(run_dir: Path | str) -> str:
    """``Generate``, ``Translate`` or ``Upscale``: the page that uses this run's kind of model."""
    return KIND_PAGE_TITLES.get(run_kind(run_dir), "Generate")


def _saved(path: Path) -> str:
    return datetime.fromtimestamp(path.stat().st_mtime).strftime("%Y-%m-%d %H:%M")


def parity_verdict(max_abs_error: float, bound: float | None) -> str:
    """``Passed — max error 2.9e-06 (bound 1e-04)`` (or Failed when the error exceeds the bound)."""
    if bound is None:
        return f"max error {max_abs_error:.1e} (no bound recorded)"
    verdict = "Passed" if max_abs_error <= bound else "Failed"
    return f"{verdict} — max error {max_abs_error:.1e} (bound {bound:.0e})"


def parity_details(precision: str | None, psnr_db: float | None, exporter: str | None) -> str:
    """``fp32, PSNR 131.2 dB, dynamo exporter``: the rest of the parity numbers."""
    psnr = "inf" if psnr_db is None or psnr_db == float("inf") else f"{psnr_db:.1f}"
    return f"{precision or '?'}, PSNR {psnr} dB" + (f", {exporter} exporter" if exporter else "")


class ModelsPage(QWidget):
    """Runs, checkpoints and exports of the project; export to ONNX and benchmark the backends."""

    sig_job = Signal(str, int, int)
    """A running export or benchmark for the status bar: text ('' when idle), done, total (0: busy)."""
    sig_status = Signal(str)
    """A one-line message for the status bar."""
    sig_exported = Signal(str)
    """An export succeeded; carries the run folder (the Generate page reloads it)."""
    sig_open_run = Signal(str)
    """"Open in …": show this run on the page that uses its kind of model (the window routes it)."""

    def __init__(self, project: Project, errors: ErrorReporter, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.project, self.errors = project, errors
        self.worker: ExportWorker | BenchmarkWorker | None = None
        self.thread: QThread | None = None
        self.bench_runs = BENCH_RUNS
        self.bench_rows: list[BenchRow] = []
        self._job_run = ""
        # Per run, for this session: the last failure of each job ("export"/"bench"; cleared by any
        # later success), benchmark rows, and an export saved outside the run's exports folder.
        self.failures: dict[tuple[str, str], str] = {}
        self.bench_results: dict[str, list[BenchRow]] = {}
        self.outside_exports: dict[str, tuple[Path, str]] = {}
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
        self.export_button.setToolTip(
            "Export the selected run's newest checkpoint to ONNX in the run's exports folder and check parity"
        )
        self.export_button.clicked.connect(lambda: self.start_export())
        self.export_as_button = QPushButton("Export as…")
        self.export_as_button.setToolTip("Choose where the .onnx file (and its model card) goes, then export")
        self.export_as_button.clicked.connect(self.export_as)
        self.show_folder_button = QPushButton("Show in folder")
        self.show_folder_button.clicked.connect(self.show_in_folder)
        self.bench_button = QPushButton("Benchmark")
        self.bench_button.clicked.connect(self.start_benchmark)
        self.open_button = QPushButton("Open in Generate")
        self.open_button.setToolTip("Use the selected run on the page for its kind of model")
        self.open_button.clicked.connect(self.open_selected)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(lambda: self.refresh())
        self.progress_label = QLabel("")
        self.progress_label.setObjectName("Muted")
        for widget in (
            self.fp16_check,
            self.export_button,
            self.export_as_button,
            self.show_folder_button,
            self.bench_button,
            self.open_button,
            self.refresh_button,
        ):
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
        kind = {"translate": "image-to-image run", "upscale": "upscaler run"}.get(run_kind(run_dir), "run")
        item = QTreeWidgetItem([run_dir.name, f"{kind}: {len(checkpoints)} checkpoint(s), {len(exports)} export(s)"])
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
        page = page_title(run_dir)
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

    def open_selected(self) -> bool:
        """Show the selected run on the page for its kind (Generate, Translate, Upscale); False when none."""
        run = self.selected_run()
        if not run or not list_checkpoints(Path(run)):
            return False
        self.sig_open_run.emit(run)
        return True

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
        busy = self.is_busy()
        has_checkpoint = bool(run) and bool(list_checkpoints(Path(run)))
        exports = list_exports(Path(run)) if run else []
        current = next((info for info in exports if info.current), None)
        self.export_button.setEnabled(has_checkpoint and not busy)
        self.export_as_button.setEnabled(has_checkpoint and not busy)
        self.fp16_check.setEnabled(not busy)
        self.open_button.setEnabled(has_checkpoint)
        self.open_button.setText(f"Open in {page_title(run)}" if run else "Open in Generate")
        self.bench_button.setEnabled(current is not None and not busy)
        self.bench_button.setToolTip(
            f"Time PyTorch against onnxruntime on {current.path.name}"
            if current is not None
            else "Nothing to compare yet: export the run to ONNX first (an export as new as its newest checkpoint)"
        )
        folder = self.folder_to_show()
        self.show_folder_button.setEnabled(folder is not None)
        self.show_folder_button.setToolTip(f"Open {folder}" if folder else "No export of this run yet")
        if not busy:
            self._show_run_state(run, has_checkpoint, exports, current)
        if not self.evaluate_panel.is_busy():
            self.evaluate_panel.set_run(run)

    def _show_run_state(
        self, run: str | None, has_checkpoint: bool, exports: list[ExportInfo], current: ExportInfo | None
    ) -> None:
        """Both result lines and the benchmark table for ``run``, from its files and this session's jobs."""
        self.export_label.setText(
            self.failures.get((run or "", "export")) or _export_state(run, has_checkpoint, exports, current)
        )
        if run in self.outside_exports and not self.failures.get((run, "export")):
            self.export_label.setText(self.export_label.text() + "\n" + self.outside_exports[run][1])
        if run:
            self.export_label.setText(self.export_label.text() + "\n" + provenance_line(Path(run)))
        rows = self.bench_results.get(run or "", [])
        self.bench_label.setText(
            self.failures.get((run or "", "bench"))
            or (self._bench_summary(Path(run or ""), rows) if rows else _bench_hint(current))
        )
        self._fill_bench_table(rows)

    def folder_to_show(self) -> Path | None:
        """The folder Show in folder opens: where the selected run's last export went, else its exports folder."""
        run = self.selected_run()
        if not run:
            return None
        if run in self.outside_exports and self.outside_exports[run][0].parent.is_dir():
            return self.outside_exports[run][0].parent
        folder = Path(run) / "exports"
        return folder if folder.is_dir() and any(folder.glob("*.onnx")) else None

    def show_in_folder(self) -> bool:
        """Open the export folder in the system's file manager; False when there is none."""
        folder = self.folder_to_show()
        if folder is None:
            return False
        if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder))):
            self.sig_status.emit(f"Could not open {folder}; open it in your file manager.")
            return False
        return True

    # -- jobs -------------------------------------------------------------------------------------
    def export_as(self) -> bool:
        """Ask where the .onnx goes (default: the run's exports folder), then export there."""
        run = self.selected_run()
        if not run or self.is_busy():
            return False
        try:
            default = export_path(Path(run), self.fp16_check.isChecked(), on_note=self.sig_status.emit)
        except Exception as exc:  # noqa: BLE001 (engine errors are words, the rest gets details)
            self.errors.report_exception(exc)
            return False
        chosen, _ = QFileDialog.getSaveFileName(self, "Export to ONNX as", str(default), "ONNX models (*.onnx)")
        if not chosen:
            return False
        out = Path(chosen)
        return self.start_export(out if out.suffix.lower() == ".onnx" else out.with_name(out.name + ".onnx"))

    def start_export(self, out: Path | None = None) -> bool:
        """Export the selected run to ``out`` (default: run/exports/…) on a worker; False when nothing could start."""
        run = self.selected_run()
        if not run or self.is_busy():
            return False
        try:
            out = out or export_path(Path(run), self.fp16_check.isChecked(), on_note=self.sig_status.emit)
        except Exception as exc:  # noqa: BLE001 (engine errors are words, the rest gets details)
            self.errors.report_exception(exc)
            return False
        self.export_label.setText(f"Exporting {Path(run).name} to {out}…")
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
        run = self._job_run
        self._clear_failures(run)
        exports = (Path(run) / "exports").resolve()
        if Path(result.path).resolve().parent != exports:
            page = page_title(run)
            line = (
                f"Exported to {result.path}: parity check {parity_verdict(result.max_abs_error, result.bound)}; "
                f"{parity_details(result.precision, result.psnr_db, result.exporter)}. It is outside the run's "
                f"exports folder, so the {page} page does not use it."
            )
            self.outside_exports[run] = (Path(result.path), line)
        else:
            self.outside_exports.pop(run, None)
        self.refresh(select=run)
        graphs = getattr(result, "graphs", [])  # a StyleGAN export also writes its W-space graphs
        extra = f" (and {', '.join(g.path.name for g in graphs)})" if graphs else ""
        self.sig_status.emit(f"Exported {result.path.name}{extra}")
        self.sig_exported.emit(run)

    def _on_benchmarked(self, rows: list[BenchRow]) -> None:
        self.bench_rows = list(rows)
        self._clear_failures(self._job_run)
        self.bench_results[self._job_run] = list(rows)
        self._fill_bench_table(rows)
        self.bench_label.setText(self._bench_summary(Path(self._job_run), rows))

    def _bench_summary(self, run: Path, rows: list[BenchRow]) -> str:
        if not rows:
            return f"{run.name}: the benchmark returned no timings."
        best = rows[-1]
        faster = "onnxruntime" if best.speedup >= 1 else "PyTorch"
        ratio = best.speedup if best.speedup >= 1 else 1 / best.speedup
        return (
            f"{run.name}: at batch {best.batch} {faster} is {ratio:.2f}× faster ({self.bench_runs} runs per backend)."
        )

    def _fill_bench_table(self, rows: list[BenchRow]) -> None:
        self.bench_table.setRowCount(0)
        for row in rows:
            self._add_bench_row(row)

    def _clear_failures(self, run: str) -> None:
        """A success for ``run``: its old "Failed:" lines go (both jobs; the failure is no longer the news)."""
        for job in ("export", "bench"):
            self.failures.pop((run, job), None)

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
        job = "export" if isinstance(self.worker, ExportWorker) else "bench"
        self.failures[(self._job_run, job)] = f"Failed: {message}"
        (self.export_label if job == "export" else self.bench_label).setText(f"Failed: {message}")
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


def provenance_line(run_dir: Path) -> str:
    """What the run's outputs will say about it: the consent attestation, the dataset and the watermark."""
    try:
        info = run_info(run_dir)
        watermark = read_run_config(run_dir).watermark
    except Exception:  # a run folder being written or damaged: the line is a courtesy, not a check
        return ""
    attestation = info.get("attestation_id") or "none recorded"
    fingerprint = (info.get("dataset_fingerprint") or "")[:12] or "unknown"
    mark = "on" if watermark else "off (turned off in the run's settings)"
    return f"Consent attestation {attestation} · dataset {fingerprint} · watermark on outputs {mark}"


def _export_state(run: str | None, has_checkpoint: bool, exports: list[ExportInfo], current: ExportInfo | None) -> str:
    """What the selected run's exports say, in one or two lines."""
    if not run:
        return "Select a run and export it: the parity check against PyTorch appears here."
    if not has_checkpoint:
        return f"{Path(run).name} has no checkpoint yet: train it first, then export it."
    if current is None:
        if exports:
            return "Its newest export is older than its newest checkpoint: export again to use onnxruntime."
        return (
            "No ONNX export yet: Export to ONNX writes one to the run's exports folder and checks it against PyTorch."
        )
    card = read_card(current.path)
    parity = card.get("parity", {})
    if current.max_abs_error is None:
        return f"{current.path.name}: no model card beside it, so its parity is unknown."
    notes = card.get("notes") or []
    return (
        f"{current.path.name}: parity check {parity_verdict(current.max_abs_error, parity.get('bound'))}; "
        f"{parity_details(current.precision, current.psnr_db, current.exporter)}."
        + ("\n" + "\n".join(str(n) for n in notes) if notes else "")
    )


def _bench_hint(current: ExportInfo | None) -> str:
    if current is None:
        return "Nothing to compare yet: the benchmark needs an ONNX export as new as the newest checkpoint."
    return f"Benchmark times PyTorch against onnxruntime on {current.path.name}."
