"""Dataset page: import a folder (button or drag and drop), browse thumbnails by class, read the
import report, and record the consent attestation that training requires."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import QMimeData, Qt, QThread, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from engine.consent import attest
from engine.data import ALPHAS, FITS, ImportOptions, ImportReport, PreparedDataset, load_dataset, read_report
from engine.data.duplicates import preview_file
from engine.errors import GanStudioError, gui_message
from studio.errors import ErrorReporter
from studio.paths import SAMPLE_DATASET
from studio.project import Project
from studio.widgets.config_form import field_docs
from studio.widgets.consent_dialog import ConsentDialog, consent_status
from studio.widgets.duplicates_view import THUMB, DuplicatesView
from studio.widgets.image_grid import NO_CLASS, ImageGrid
from studio.workers.import_worker import ImportWorker

SIZES = (32, 64, 128, 256, 512)
DEFAULT_SIZE = 64
SAMPLE_ATTESTATION = {
    "rights": "licensed",
    "people": "none",
    "attested_by": "GAN Studio sample (Noto Emoji, Apache-2.0)",
    "note": "Bundled sample: Noto Emoji by Google, Apache License 2.0 (see resources/sample/LICENSE).",
}


def folder_from_mime(mime: QMimeData) -> Path | None:
    """The first local folder among dragged URLs, or None."""
    for url in mime.urls():
        path = Path(url.toLocalFile()) if url.isLocalFile() else None
        if path is not None and path.is_dir():
            return path
    return None


# Rows grow to fit wrapped text up to this many rows; longer tables keep one line per row (the
# tooltip still holds the whole text) because measuring every row on each resize gets slow.
WRAP_ROWS = 500
FIRST_COLUMN_MAX = 280  # px: a long path must not push the reason out of sight


def _table(headers: tuple[str, ...]) -> QTableWidget:
    table = QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels(list(headers))
    table.horizontalHeader().setStretchLastSection(True)
    table.verticalHeader().setVisible(False)
    table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    table.setAlternatingRowColors(True)
    table.setWordWrap(True)
    table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
    return table


def _fill_table(table: QTableWidget, rows: list[tuple[str, ...]]) -> None:
    """Fill ``table``; every cell carries its whole text as a tooltip and short tables wrap it."""
    table.setRowCount(len(rows))
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            item = QTableWidgetItem(text)
            item.setToolTip(text)
            table.setItem(r, c, item)
    table.resizeColumnToContents(0)
    table.setColumnWidth(0, min(table.columnWidth(0), FIRST_COLUMN_MAX))
    mode = QHeaderView.ResizeMode.ResizeToContents if len(rows) <= WRAP_ROWS else QHeaderView.ResizeMode.Interactive
    table.verticalHeader().setSectionResizeMode(mode)


class ReportView(QTabWidget):
    """The import report in tabs: summary, skipped files with reasons, duplicates, sizes, warnings."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.summary = QTextBrowser()
        self.skipped = _table(("File", "Why it was left out"))
        self.duplicates = DuplicatesView()
        self.sizes = _table(("Longer side (px)", "Images"))
        self.warnings = _table(("File", "Note"))
        for widget, title in (
            (self.summary, "Summary"),
            (self.skipped, "Skipped"),
            (self.duplicates, "Duplicates"),
            (self.sizes, "Sizes"),
            (self.warnings, "Warnings"),
        ):
            self.addTab(widget, title)
        self.show_report(None)

    def show_report(
        self, report: ImportReport | None, thumbnail: Callable[[str], np.ndarray | None] | None = None
    ) -> None:
        """Fill every tab from ``report`` (None: explain that nothing was imported yet); ``thumbnail``
        reads a file's picture for the Duplicates tab."""
        self.duplicates.show_report(report, thumbnail)
        if report is None:
            self.summary.setPlainText("Import a folder to see what was kept, what was skipped and why.")
            report = ImportReport(source="", dataset_dir="", options={})
        else:
            self.summary.setPlainText(report.summary())
        self._fill_tabs(report)

    def show_importing(self, source: Path) -> None:
        """Empty every tab while ``source`` is imported: nothing of the previous report stays in view."""
        self.duplicates.show_report(None)
        self.summary.setPlainText(
            f"Importing {source}…\n\nThe report appears here when the import is done. Until then the "
            "previous dataset stays on disk as it was; cancelling keeps it."
        )
        self._fill_tabs(ImportReport(source=str(source), dataset_dir="", options={}))

    def set_busy(self, busy: bool) -> None:
        """Disable the re-import switch while an import runs."""
        self.duplicates.set_busy(busy)

    def _fill_tabs(self, report: ImportReport) -> None:
        skipped = [(s.path, s.reason) for s in report.skipped]
        skipped += [(s.path, f"ignored: {s.reason}") for s in report.ignored]
        _fill_table(self.skipped, skipped)
        _fill_table(self.sizes, [(bucket, f"{count:,}") for bucket, count in report.resolution_histogram.items()])
        _fill_table(self.warnings, [(w.path or "(all)", w.message) for w in report.warnings])
        self.setTabText(1, f"Skipped ({len(report.skipped)})")
        self.setTabText(2, f"Duplicates ({len(report.duplicates)})")
        self.setTabText(4, f"Warnings ({len(report.warnings)})")


class DatasetPage(QWidget):
    """Import, browse and attest the project's datasets."""

    sig_dataset_changed = Signal(str)
    """The dataset shown on the page changed (selection or import); carries its folder ('' for none)."""
    sig_attested = Signal(str)
    """An attestation was recorded for the dataset in this folder."""
    sig_sample_ready = Signal(str)
    """The sample dataset was imported and attested; carries its folder."""
    sig_job = Signal(str, int, int)
    """Background job progress for the status bar: text ('' when idle), done, total (0: unknown)."""
    sig_status = Signal(str)
    """A one-line message for the status bar."""

    def __init__(self, project: Project, errors: ErrorReporter, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.project, self.errors = project, errors
        self.dataset_dir: Path | None = None
        self.dataset: PreparedDataset | None = None
        self.report: ImportReport | None = None
        self.worker: ImportWorker | None = None
        self.thread: QThread | None = None
        self.consent_dialog: ConsentDialog | None = None
        self._sample_pending = False
        self._rejected: ImportReport | None = None
        self.setAcceptDrops(True)
        self._build()
        self.refresh_datasets()

    # -- layout -----------------------------------------------------------------------------------
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.addLayout(self._header())
        layout.addLayout(self._options_row())
        layout.addLayout(self._progress_row())
        splitter = QSplitter(Qt.Orientation.Horizontal)
        self.body = QStackedWidget()
        self.body.addWidget(self._empty_state())
        self.body.addWidget(self._grid_panel())
        self.body.addWidget(self._importing_panel())
        splitter.addWidget(self.body)
        self.report_view = ReportView()
        self.report_view.duplicates.sig_leave_out.connect(self.leave_duplicates_out)
        splitter.addWidget(self.report_view)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        layout.addWidget(splitter, 1)

    def _header(self) -> QHBoxLayout:
        row = QHBoxLayout()
        title = QLabel("Dataset")
        title.setObjectName("Heading")
        self.dataset_combo = QComboBox()
        self.dataset_combo.setMinimumWidth(220)
        self.dataset_combo.setToolTip("Datasets imported into this project")
        self.dataset_combo.activated.connect(self._on_combo)
        self.import_button = QPushButton("Import folder…")
        self.import_button.setProperty("primary", True)
        self.import_button.setToolTip("Choose a folder of images to import (Ctrl+O); you can also drop a folder here")
        self.import_button.clicked.connect(self.choose_folder)
        self.sample_button = QPushButton("Try the sample dataset")
        self.sample_button.setToolTip(
            "Import 300 bundled emoji (Apache-2.0), attest them and start a quick training run"
        )
        self.sample_button.clicked.connect(self.try_sample)
        for widget in (title, self.dataset_combo):
            row.addWidget(widget)
        row.addStretch(1)
        row.addWidget(self.sample_button)
        row.addWidget(self.import_button)
        return row

    def _options_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.size_combo, self.fit_combo, self.alpha_combo = QComboBox(), QComboBox(), QComboBox()
        for size in SIZES:
            self.size_combo.addItem(f"{size} px", size)
        self.size_combo.setCurrentIndex(SIZES.index(DEFAULT_SIZE))
        self.size_combo.setToolTip("Size the images are prepared at for training (square)")
        self.fit_combo.addItems(list(FITS))
        self.fit_combo.setToolTip("crop: cut to a centred square; pad: keep everything, add borders; stretch: squash")
        self.alpha_combo.addItems(list(ALPHAS))
        self.alpha_combo.setToolTip("Transparent pixels: put on white or black, or keep the alpha channel")
        for text, combo in (("Size", self.size_combo), ("Fit", self.fit_combo), ("Transparency", self.alpha_combo)):
            row.addWidget(QLabel(text))
            row.addWidget(combo)
        self.drop_duplicates_check = QCheckBox("Leave out near duplicates")
        self.drop_duplicates_check.setToolTip(field_docs(ImportOptions).get("drop_duplicates", ""))
        row.addWidget(self.drop_duplicates_check)
        row.addStretch(1)
        self.consent_label = QLabel("")
        self.consent_label.setWordWrap(True)
        self.consent_button = QPushButton("Consent…")
        self.consent_button.setToolTip("Record or review your attestation of the rights to these images")
        self.consent_button.clicked.connect(lambda: self.open_consent())
        row.addWidget(self.consent_label, 2)
        row.addWidget(self.consent_button)
        return row

    def _progress_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.progress = QProgressBar()
        self.progress_label = QLabel("")
        self.progress_label.setObjectName("Muted")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the import; the previous dataset stays as it was (Esc)")
        self.cancel_button.setShortcut("Esc")
        self.cancel_button.clicked.connect(self.cancel_import)
        row.addWidget(self.progress, 1)
        row.addWidget(self.progress_label, 2)
        row.addWidget(self.cancel_button)
        self._progress_widgets = (self.progress, self.progress_label, self.cancel_button)
        for widget in self._progress_widgets:
            widget.setVisible(False)
        return row

    def _empty_state(self) -> QFrame:
        frame = QFrame()
        frame.setObjectName("EmptyState")
        inner = QVBoxLayout(frame)
        inner.addStretch(1)
        big = QLabel("Drop a folder of images here")
        big.setObjectName("Heading")
        big.setAlignment(Qt.AlignmentFlag.AlignCenter)
        text = QLabel(
            "Subfolders become classes. Every file is checked; anything that cannot be used is listed "
            "with the reason. Your originals are never changed."
        )
        text.setWordWrap(True)
        text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        text.setObjectName("Muted")
        buttons = QHBoxLayout()
        choose = QPushButton("Choose a folder…")
        choose.clicked.connect(self.choose_folder)
        sample = QPushButton("Try the sample dataset")
        sample.setProperty("primary", True)
        sample.setToolTip(self.sample_button.toolTip())
        sample.clicked.connect(self.try_sample)
        self.empty_sample_button = sample
        buttons.addStretch(1)
        buttons.addWidget(choose)
        buttons.addWidget(sample)
        buttons.addStretch(1)
        for widget in (big, text):
            inner.addWidget(widget)
        inner.addLayout(buttons)
        inner.addStretch(1)
        return frame

    def _importing_panel(self) -> QFrame:
        frame = QFrame()
        frame.setObjectName("EmptyState")
        inner = QVBoxLayout(frame)
        inner.addStretch(1)
        self.importing_label = QLabel("")
        self.importing_label.setObjectName("Heading")
        self.importing_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.importing_label.setWordWrap(True)
        note = QLabel("The images appear here when the import is done.")
        note.setObjectName("Muted")
        note.setAlignment(Qt.AlignmentFlag.AlignCenter)
        inner.addWidget(self.importing_label)
        inner.addWidget(note)
        inner.addStretch(1)
        return frame

    def _grid_panel(self) -> QWidget:
        panel = QWidget()
        inner = QVBoxLayout(panel)
        inner.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        self.class_combo = QComboBox()
        self.class_combo.setToolTip("Show one class folder only")
        self.class_combo.currentIndexChanged.connect(self._on_class_filter)
        self.count_label = QLabel("")
        self.count_label.setObjectName("Muted")
        row.addWidget(QLabel("Class"))
        row.addWidget(self.class_combo)
        row.addStretch(1)
        row.addWidget(self.count_label)
        inner.addLayout(row)
        self.grid = ImageGrid()
        inner.addWidget(self.grid, 1)
        return panel

    # -- project and selection --------------------------------------------------------------------
    def set_project(self, project: Project) -> None:
        """Show another project's datasets."""
        self.project = project
        self.show_dataset(None)
        self.refresh_datasets()

    def refresh_datasets(self, select: Path | None = None) -> None:
        """Re-list the project's datasets and show ``select`` (default: the current, else the first)."""
        datasets = self.project.datasets()
        self.dataset_combo.blockSignals(True)
        self.dataset_combo.clear()
        for path in datasets:
            self.dataset_combo.addItem(path.name, str(path))
        self.dataset_combo.blockSignals(False)
        wanted = select or self.dataset_dir or (datasets[0] if datasets else None)
        index = self.dataset_combo.findData(str(wanted)) if wanted else -1
        if index >= 0:
            self.dataset_combo.setCurrentIndex(index)
        self.show_dataset(Path(wanted) if index >= 0 else None)

    def _on_combo(self, index: int) -> None:
        data = self.dataset_combo.itemData(index)
        self.show_dataset(Path(data) if data else None)

    def show_dataset(self, dataset_dir: Path | None) -> None:
        """Open ``dataset_dir`` (memory-mapped) into the grid and report; None clears the page."""
        self._release_dataset()
        if dataset_dir is not None:
            try:
                self.dataset, self.report = load_dataset(dataset_dir), read_report(dataset_dir)
            except GanStudioError as exc:
                self.errors.report(gui_message(exc))
                dataset_dir = None
        self.dataset_dir = dataset_dir
        self._fill_grid()
        self.report_view.show_report(self.report, self._duplicate_thumbnail)
        self.refresh_consent()
        self.sig_dataset_changed.emit(str(dataset_dir or ""))

    def _release_dataset(self) -> None:
        # Drop the memory map before anything (an import) replaces the cache files under it.
        self.grid.thumbnails.set_images(None)
        self.dataset, self.report = None, None

    def _duplicate_thumbnail(self, path: str) -> np.ndarray | None:
        """The whole source image of ``path`` (what the import saw), else its training crop."""
        report, data = self.report, self.dataset
        if report is None:
            return None
        picture = preview_file(Path(report.source) / path, THUMB)
        if picture is None and data is not None and path in data.paths:
            picture = np.asarray(data.images[data.paths.index(path)][..., :3])  # the source moved
        return picture

    def _fill_grid(self) -> None:
        data = self.dataset
        self.body.setCurrentIndex(0 if data is None else 1)
        self.class_combo.blockSignals(True)
        self.class_combo.clear()
        if data is not None:
            self.grid.thumbnails.set_images(data.images, data.labels, data.classes, data.paths)
            self.class_combo.addItem(f"All classes ({len(data):,})", None)
            for index, name in enumerate(data.classes):
                self.class_combo.addItem(f"{name} ({int((data.labels == index).sum()):,})", index)
            if data.classes and (data.labels == NO_CLASS).any():
                self.class_combo.addItem(f"No class ({int((data.labels == NO_CLASS).sum()):,})", NO_CLASS)
        self.class_combo.blockSignals(False)
        self.class_combo.setEnabled(bool(data is not None and data.classes))
        self._update_count()

    def _on_class_filter(self, index: int) -> None:
        self.grid.thumbnails.set_class_filter(self.class_combo.itemData(index))
        self._update_count()

    def _update_count(self) -> None:
        if self.dataset is None:
            self.count_label.setText("")
            return
        size = self.dataset.size
        self.count_label.setText(f"{self.grid.thumbnails.rowCount():,} images shown, {size}x{size} px")

    # -- consent ----------------------------------------------------------------------------------
    def refresh_consent(self) -> None:
        """Update the consent line for the current dataset."""
        ok, text = consent_status(self.dataset_dir)
        self.consent_label.setText(text if self.dataset_dir else "")
        self.consent_label.setObjectName("ConsentOk" if ok else "ConsentMissing")
        self.consent_label.style().polish(self.consent_label)
        self.consent_button.setEnabled(self.dataset_dir is not None)

    def open_consent(self, dataset_dir: Path | None = None) -> ConsentDialog | None:
        """Open the consent dialog for ``dataset_dir`` (default: the dataset shown); returns it."""
        target = Path(dataset_dir) if dataset_dir else self.dataset_dir
        if target is None:
            self.sig_status.emit("Import or select a dataset first, then record its consent.")
            return None
        dialog = ConsentDialog(target, self)
        dialog.accepted.connect(self._on_consent_recorded)
        self.consent_dialog = dialog
        dialog.open()
        return dialog

    def _on_consent_recorded(self) -> None:
        dialog = self.consent_dialog
        if dialog is None or dialog.attestation is None:
            return
        self.refresh_consent()
        self.sig_status.emit(f"Consent recorded for {dialog.dataset_dir.name}.")
        self.sig_attested.emit(str(dialog.dataset_dir))

    # -- import -----------------------------------------------------------------------------------
    def is_busy(self) -> bool:
        """True while an import runs."""
        return self.thread is not None

    def choose_folder(self) -> None:
        """Ask for a folder and import it."""
        folder = QFileDialog.getExistingDirectory(self, "Choose a folder of images", str(Path.home()))
        if folder:
            self.start_import(Path(folder))

    def try_sample(self) -> None:
        """Import the bundled sample, attest it with its licence, then announce it (training starts)."""
        self._sample_pending = True
        self.start_import(SAMPLE_DATASET, size=DEFAULT_SIZE)

    def leave_duplicates_out(self, drop: bool) -> bool:
        """Import the shown dataset's source again with near duplicates left out (or kept again),
        at the dataset's own size, fit and transparency; False when it could not start."""
        report = self.report
        if report is None:
            return False
        self.drop_duplicates_check.setChecked(drop)
        opts = report.options
        return self.start_import(
            Path(report.source),
            size=opts.get("size"),
            fit=opts.get("fit"),
            alpha=opts.get("alpha"),
            drop_duplicates=drop,
        )

    def start_import(
        self,
        source: Path,
        size: int | None = None,
        *,
        fit: str | None = None,
        alpha: str | None = None,
        drop_duplicates: bool | None = None,
    ) -> bool:
        """Import ``source`` into the project on a worker thread; False when it could not start.

        Settings not given come from the page's controls.
        """
        if self.is_busy():
            self.sig_status.emit("An import is already running; wait for it or cancel it.")
            return False
        if not Path(source).is_dir():
            self.errors.report(f"{source} is not a folder; choose the folder that holds your images.")
            self._sample_pending = False
            return False
        destination = self.project.dataset_dir_for(source)
        self._release_dataset()
        self.worker = ImportWorker(
            Path(source),
            destination,
            size=size or self.size_combo.currentData(),
            fit=fit or self.fit_combo.currentText(),
            alpha=alpha or self.alpha_combo.currentText(),
            drop_duplicates=self.drop_duplicates_check.isChecked() if drop_duplicates is None else drop_duplicates,
        )
        self._connect_worker(self.worker)
        self.thread = self.worker.start(self)
        self.thread.finished.connect(self._on_thread_finished)
        self._show_importing(Path(source))
        self._show_progress(True)
        self.progress.setRange(0, 0)
        self.progress_label.setText(f"Scanning {source}…")
        self.sig_job.emit(f"Importing {Path(source).name}", 0, 0)
        return True

    def _connect_worker(self, worker: ImportWorker) -> None:
        worker.sig_progress.connect(self._on_progress)
        worker.sig_finished.connect(self._on_imported)
        worker.sig_rejected.connect(self._on_rejected)
        worker.sig_cancelled.connect(self._on_cancelled)
        worker.sig_failed.connect(self._on_failed)

    def cancel_import(self) -> None:
        """Ask the running import to stop."""
        if self.worker is not None:
            self.worker.cancel()
            self.progress_label.setText("Cancelling…")

    def _on_progress(self, done: int, total: int, name: str) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(done)
        self.progress_label.setText(f"{done:,} / {total:,}  {name}")
        self.sig_job.emit("Importing", done, total)

    def _on_imported(self, report: ImportReport) -> None:
        dataset_dir = Path(report.dataset_dir)
        self.refresh_datasets(select=dataset_dir)
        self.sig_status.emit(
            f"Imported {report.kept:,} of {report.total:,} files into {dataset_dir.name}"
            + (f"; {len(report.skipped)} skipped (see the Skipped tab)." if report.skipped else ".")
        )
        if self._sample_pending:
            self._finish_sample(dataset_dir)

    def _finish_sample(self, dataset_dir: Path) -> None:
        self._sample_pending = False
        ok, _ = consent_status(dataset_dir)
        if not ok:
            try:
                attest(dataset_dir, **SAMPLE_ATTESTATION)
            except GanStudioError as exc:
                self.errors.report(gui_message(exc))
                return
            self.refresh_consent()
            self.sig_attested.emit(str(dataset_dir))
        self.sig_sample_ready.emit(str(dataset_dir))

    def _on_rejected(self, report: ImportReport) -> None:
        self._rejected = report  # shown after sig_failed, which follows

    def _on_cancelled(self) -> None:
        self.sig_status.emit("Import cancelled; the dataset is as it was before.")
        self.refresh_datasets()

    def _on_failed(self, message: str, details: str) -> None:
        self._sample_pending = False
        self.errors.report(message, details)
        self.refresh_datasets()
        if self._rejected is not None:  # say file by file why nothing could be used
            self.report_view.show_report(self._rejected)
            self.report_view.setCurrentIndex(1)
            self._rejected = None

    def _on_thread_finished(self) -> None:
        if self.thread is not None:
            self.thread.deleteLater()
        self.worker, self.thread = None, None
        self._sample_pending = False
        self._show_progress(False)
        self.sig_job.emit("", 0, 0)

    def _show_importing(self, source: Path) -> None:
        """While importing, the grid, the report and the consent line show nothing of the previous
        dataset: it may be the one being replaced."""
        self.body.setCurrentIndex(2)
        self.importing_label.setText(f"Importing {source.name}…")
        self.class_combo.clear()
        self.count_label.setText("")
        self.report_view.show_importing(source)
        self.consent_label.setText("")

    def _show_progress(self, shown: bool) -> None:
        for widget in self._progress_widgets:
            widget.setVisible(shown)
        for button in (self.import_button, self.sample_button, self.empty_sample_button):
            button.setEnabled(not shown)
        self.dataset_combo.setEnabled(not shown)
        self.consent_button.setEnabled(not shown and self.dataset_dir is not None)
        self.report_view.set_busy(shown)

    def shutdown(self) -> None:
        """Cancel a running import and wait for its thread (window closing)."""
        if self.worker is not None and self.thread is not None:
            self.worker.cancel()
            self.thread.wait(30_000)
            self._on_thread_finished()

    # -- drag and drop ----------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt name)
        """Accept a dragged folder."""
        if folder_from_mime(event.mimeData()) is not None:
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 (Qt name)
        """Import the dropped folder."""
        folder = folder_from_mime(event.mimeData())
        if folder is not None:
            event.acceptProposedAction()
            self.start_import(folder)
