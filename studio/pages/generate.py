"""Generate page: pick a run or checkpoint, page through a gallery of seeds, enlarge, copy seeds, choose
a class and truncation, save the selection or batch-export N images with progress and cancel; for a
class-conditional model, "Per class" exports N images of every class into class folders with a
manifest.json (a synthetic training set).

A GenerateWorker on a long-lived QThread holds the model; this page only sends requests (queued
signals) and shows the answers. Requests carry an id so a burst of page flips draws only the last.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSlider,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from engine.provenance.stamp import save_png
from engine.runs.checkpoint import list_checkpoints
from studio.errors import ErrorReporter
from studio.pages.model_page import ModelPage
from studio.project import Project
from studio.provenance import page_provenance
from studio.widgets.images import array_to_qimage
from studio.widgets.preview_view import ImageCanvas
from studio.workers.generate_worker import GenerateWorker

PAGE_SIZE = 24
GALLERY_ICON = 128
SEED_ROLE = Qt.ItemDataRole.UserRole + 1
ALL_CLASSES = -1  # combo data for "cycle through the classes"
MAX_SEED = 2**31 - 1
CHOOSE_UPSCALER_FILE = "<model file>"  # combo data of the "Model file…" entry of "Upscale on export"
UPSCALER_FILTER = "Upscaling models (*.pth *.pt *.ckpt *.safetensors *.onnx)"


def _gallery_pixmap(image: np.ndarray) -> QPixmap:
    """A gallery pixmap: small models' images enlarged by a whole factor (crisp) to about 128 px."""
    pixmap = QPixmap.fromImage(array_to_qimage(image))
    factor = max(1, GALLERY_ICON // max(1, pixmap.width()))
    if factor == 1:
        return pixmap
    return pixmap.scaled(
        pixmap.width() * factor,
        pixmap.height() * factor,
        Qt.AspectRatioMode.KeepAspectRatio,
        Qt.TransformationMode.FastTransformation,
    )


def model_line(info: dict[str, Any]) -> str:
    """The info line: family, step, size, classes, and the backend that runs it (with the fallback note)."""
    classes = info["classes"]
    text = f"{info['family']}, step {info['step']:,}, {info['resolution']} px" + (
        f", {len(classes)} classes" if classes else ""
    )
    backend = info.get("description", "")
    if info.get("backend_note"):
        backend = f"{backend} ({info['backend_note']})"
    line = f"{text} — {backend}" if backend else text
    # a PyTorch runner's notes say that a damaged newest checkpoint was set aside: show them, not only as a tooltip
    notes = info.get("notes") if info.get("backend") == "pytorch" else None
    return "\n".join([line, *notes]) if notes else line


def size_text(image: np.ndarray) -> str:
    """``64×64 px`` for an HxWxC image."""
    return f"{image.shape[1]}×{image.shape[0]} px"


class EnlargedImage(QDialog):
    """One generated image, large, with its seed and size, Copy seed and Save (the image at its own size)."""

    sig_status = Signal(str)
    """A one-line message for the status bar (what Save wrote)."""

    def __init__(
        self, image: np.ndarray, seed: int, save_dir: Path, parent: QWidget | None = None, provenance: Any = None
    ) -> None:
        super().__init__(parent)
        self.provenance = provenance  # engine.provenance.stamp.Provenance of what Save writes
        self.image, self.seed, self.save_dir = image, seed, save_dir
        self.saved: Path | None = None
        self.setWindowTitle(f"Seed {seed} · {size_text(image)}")
        canvas = ImageCanvas()
        canvas.set_image(array_to_qimage(image))
        canvas.setMinimumSize(QSize(420, 420))
        info = QLabel(f"Seed {seed} · {size_text(image)} (shown enlarged; Save writes it at this size)")
        info.setObjectName("Muted")
        copy = QPushButton(f"Copy seed {seed}")
        copy.clicked.connect(self.copy_seed)
        self.save_button = QPushButton("Save…")
        self.save_button.setToolTip(f"Write this image as a PNG file ({size_text(image)})")
        self.save_button.clicked.connect(self.save)
        close = QPushButton("Close")
        close.clicked.connect(self.accept)
        row = QHBoxLayout()
        row.addWidget(info, 1)
        row.addWidget(copy)
        row.addWidget(self.save_button)
        row.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(canvas, 1)
        layout.addLayout(row)

    def copy_seed(self) -> None:
        """Put the seed on the clipboard."""
        QApplication.clipboard().setText(str(self.seed))

    def save(self) -> Path | None:
        """Ask where, then write the image (atomically) as PNG at its own size; returns the file."""
        suggested = self.save_dir / f"seed-{self.seed:06d}.png"
        name, _ = QFileDialog.getSaveFileName(self, f"Save seed {self.seed}", str(suggested), "PNG image (*.png)")
        if not name:
            return None
        path = Path(name) if name.lower().endswith(".png") else Path(f"{name}.png")
        try:
            save_png(self.image, path, self.provenance)
        except OSError as exc:
            self.sig_status.emit(f"Could not write {path}: {exc.strerror or exc}; choose another folder.")
            return None
        self.saved = path
        self.sig_status.emit(f"Saved {path.name} ({size_text(self.image)}) to {path.parent}.")
        return path


class GeneratePage(ModelPage):
    """Browse and export images from the project's trained models."""

    sig_job = Signal(str, int, int)
    """Export progress for the status bar: text ('' when idle), done, total."""
    sig_status = Signal(str)
    """A one-line message for the status bar."""
    sig_request_page = Signal(object, object, float, int)
    """To the worker: seeds, class index or None, truncation, request id."""
    sig_request_export = Signal(object, str, object, float)
    """To the worker: seeds, output folder, class index or None, truncation."""
    sig_request_export_per_class = Signal(int, str, int, float)
    """To the worker: images per class, output folder, first seed, truncation."""
    sig_request_export_upscaler = Signal(str)
    """To the worker: the upscaler exports go through ('' for none); sent before each export."""

    def __init__(self, project: Project, errors: ErrorReporter, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.project, self.errors = project, errors
        self.model: dict[str, Any] | None = None
        self.request_id = 0
        self.exporting = False
        self.export_dir: Path | None = None
        self.enlarged: EnlargedImage | None = None
        self.images: dict[int, np.ndarray] = {}  # the gallery's images at their own size, by seed
        self.upscaler_files: list[str] = []  # model files chosen for "Upscale on export" this session
        self.exported_size: tuple[int, int] | None = None  # (width, height) of the last export's files
        self._regenerate_timer = QTimer(self)
        self._regenerate_timer.setSingleShot(True)
        self._regenerate_timer.setInterval(150)
        self._regenerate_timer.timeout.connect(self.request_page)
        self._build()
        self.refresh_runs()

    # -- layout -----------------------------------------------------------------------------------
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.addLayout(self._model_row())
        layout.addLayout(self._controls_row())
        self.body = QStackedWidget()
        empty = QLabel("No trained model yet. Train one on the Train page; its images appear here.")
        empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        empty.setObjectName("Muted")
        self.gallery = self._gallery()
        self.body.addWidget(empty)
        self.body.addWidget(self.gallery)
        layout.addWidget(self.body, 1)
        layout.addLayout(self._export_row())

    def _model_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        title = QLabel("Generate")
        title.setObjectName("Heading")
        self.run_combo = QComboBox()
        self.run_combo.setMinimumWidth(260)
        self.run_combo.setToolTip("Runs of this project that have a checkpoint")
        self.run_combo.currentIndexChanged.connect(self._on_run_changed)
        self.checkpoint_combo = QComboBox()
        self.checkpoint_combo.setToolTip("Which checkpoint of the run to use")
        self.checkpoint_combo.currentIndexChanged.connect(self._on_checkpoint_changed)
        self.model_label = QLabel("")
        self.model_label.setObjectName("Muted")
        self.model_label.setWordWrap(True)
        for widget in (title, QLabel("Run"), self.run_combo, QLabel("Checkpoint"), self.checkpoint_combo):
            row.addWidget(widget)
        row.addWidget(self.model_label, 1)
        return row

    def _controls_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.class_combo = QComboBox()
        self.class_combo.setToolTip("Class to generate (class-conditional models only)")
        self.class_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.class_combo.currentIndexChanged.connect(lambda _: self._schedule())
        self.truncation = QSlider(Qt.Orientation.Horizontal)
        self.truncation.setRange(10, 100)
        self.truncation.setValue(100)
        self.truncation.setMaximumWidth(160)
        self.truncation.setToolTip("Truncation: lower values give more typical, less varied images")
        self.truncation.valueChanged.connect(self._on_truncation)
        self.truncation_label = QLabel("1.00")
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, MAX_SEED)
        self.seed_spin.setToolTip("First seed of the page; the same seed always gives the same image")
        self.seed_spin.valueChanged.connect(lambda _: self._schedule())
        self.prev_button, self.next_button = QPushButton("◀ Previous"), QPushButton("Next ▶")
        self.prev_button.setToolTip(f"The {PAGE_SIZE} seeds before (PgUp)")
        self.next_button.setToolTip(f"The next {PAGE_SIZE} seeds (PgDown)")
        self.prev_button.setShortcut("PgUp")
        self.next_button.setShortcut("PgDown")
        self.prev_button.clicked.connect(lambda: self.page_by(-1))
        self.next_button.clicked.connect(lambda: self.page_by(1))
        for widget in (
            QLabel("Class"),
            self.class_combo,
            QLabel("Truncation"),
            self.truncation,
            self.truncation_label,
            QLabel("First seed"),
            self.seed_spin,
            self.prev_button,
            self.next_button,
        ):
            row.addWidget(widget)
        row.addStretch(1)
        return row

    def _gallery(self) -> QListWidget:
        gallery = QListWidget()
        gallery.setViewMode(QListWidget.ViewMode.IconMode)
        gallery.setMovement(QListWidget.Movement.Static)
        gallery.setResizeMode(QListWidget.ResizeMode.Adjust)
        gallery.setIconSize(QSize(GALLERY_ICON, GALLERY_ICON))
        gallery.setGridSize(QSize(144, 162))
        gallery.setUniformItemSizes(True)
        gallery.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        gallery.setToolTip("Double-click to enlarge; select several to save them")
        gallery.itemDoubleClicked.connect(self.enlarge)
        gallery.itemSelectionChanged.connect(self._update_buttons)
        return gallery

    def _export_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.copy_button = QPushButton("Copy seeds")
        self.copy_button.setToolTip("Copy the selected images' seeds (Ctrl+Shift+C)")
        self.copy_button.clicked.connect(self.copy_seeds)
        self.save_button = QPushButton("Save selected…")
        self.save_button.setToolTip("Write the selected images as PNG files to a folder")
        self.save_button.clicked.connect(self.save_selected)
        self.count_spin = QSpinBox()
        self.count_spin.setRange(1, 100_000)
        self.count_spin.setValue(64)
        self.count_spin.setToolTip("How many images to export, from the first seed on")
        self.per_class_check = QCheckBox("Per class")
        self.per_class_check.setToolTip(
            "Export this many images of every class, each class into its own folder, with a manifest.json "
            "listing every file's class and seed: a synthetic training set (class-conditional models only)"
        )
        self.per_class_check.toggled.connect(lambda _: self._update_buttons())
        self.upscale_combo = QComboBox()
        self.upscale_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.upscale_combo.setToolTip(
            "Upscale on export: exported and saved images go through an upscaler first (an upscale run of this "
            "project or a model file), so they are written larger than the model draws them"
        )
        self.upscale_combo.activated.connect(self._on_upscaler_chosen)
        self.export_button = QPushButton("Export…")
        self.export_button.setProperty("primary", True)
        self.export_button.setToolTip("Write this many images to a folder (Ctrl+E)")
        self.export_button.clicked.connect(self.export_batch)
        self.size_label = QLabel("")
        self.size_label.setObjectName("Muted")
        self.size_label.setToolTip("Exported files have the size the model was trained at")
        self.progress = QProgressBar()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel_export)
        for widget in (self.copy_button, self.save_button):
            row.addWidget(widget)
        row.addStretch(1)
        for widget in (
            QLabel("Images"),
            self.count_spin,
            self.per_class_check,
            QLabel("Upscale"),
            self.upscale_combo,
            self.size_label,
            self.export_button,
            self.progress,
            self.cancel_button,
        ):
            row.addWidget(widget)
        self._update_buttons()
        return row

    # -- worker -----------------------------------------------------------------------------------
    def make_worker(self) -> GenerateWorker:
        return GenerateWorker()

    def connect_worker(self, worker: GenerateWorker) -> None:
        self.sig_request_page.connect(worker.generate)
        self.sig_request_export.connect(worker.export)
        self.sig_request_export_per_class.connect(worker.export_per_class)
        self.sig_request_export_upscaler.connect(worker.set_export_upscaler)
        worker.sig_loaded.connect(self._on_loaded)
        worker.sig_images.connect(self._on_images)
        worker.sig_progress.connect(self._on_progress)
        worker.sig_exported.connect(self._on_exported)
        worker.sig_failed.connect(self._on_failed)

    # -- runs and models --------------------------------------------------------------------------
    def set_project(self, project: Project) -> None:
        """Show another project's runs."""
        self.project = project
        self.refresh_runs()

    def refresh_runs(self, select: Path | str | None = None) -> None:
        """List runs that have a checkpoint; keep or set the selection, then load its model.

        Without ``select``, a run that stays selected keeps its loaded model and gallery (a new run
        appearing in the list, e.g. one that just wrote its first checkpoint, changes nothing else).
        """
        before = self.run_combo.currentData()
        current = str(select) if select else before
        runs = [r for r in self.project.runs("generate") if list_checkpoints(r)]
        self.run_combo.blockSignals(True)
        self.run_combo.clear()
        for run_dir in runs:
            self.run_combo.addItem(run_dir.name, str(run_dir))
        index = self.run_combo.findData(current) if current else -1
        self.run_combo.setCurrentIndex(index if index >= 0 else (0 if runs else -1))
        self.run_combo.blockSignals(False)
        self.body.setCurrentIndex(1 if runs else 0)
        self.refresh_upscalers()
        if select is None and before is not None and self.run_combo.currentData() == before:
            return
        self._on_run_changed()

    # -- upscale on export ------------------------------------------------------------------------
    def refresh_upscalers(self, select: str | None = None) -> None:
        """List "none", the project's upscale runs and chosen model files for "Upscale on export"."""
        current = select if select is not None else self.upscale_combo.currentData()
        self.upscale_combo.blockSignals(True)
        self.upscale_combo.clear()
        self.upscale_combo.addItem("None (model size)", "")
        runs = [str(r) for r in self.project.runs("upscale") if list_checkpoints(r)]
        for source in runs + [f for f in self.upscaler_files if f not in runs]:
            self.upscale_combo.addItem(Path(source).name, source)
            self.upscale_combo.setItemData(self.upscale_combo.count() - 1, source, Qt.ItemDataRole.ToolTipRole)
        self.upscale_combo.addItem("Model file…", CHOOSE_UPSCALER_FILE)
        index = self.upscale_combo.findData(current) if current else 0
        self.upscale_combo.setCurrentIndex(max(0, index))
        self.upscale_combo.blockSignals(False)
        self._show_export_size()

    def _on_upscaler_chosen(self, *_: object) -> None:
        if self.upscale_combo.currentData() == CHOOSE_UPSCALER_FILE:
            path, _ = QFileDialog.getOpenFileName(self, "Upscale exports with", str(self.project.root), UPSCALER_FILTER)
            self.set_export_upscaler(path or "")
        else:
            self._show_export_size()

    def set_export_upscaler(self, source: Path | str) -> None:
        """Exports go through the upscaler ``source`` (run folder or model file); '' writes them at model size."""
        source = str(Path(source).resolve()) if source else ""
        if source and source not in self.upscaler_files and self.upscale_combo.findData(source) < 0:
            self.upscaler_files.append(source)
        self.refresh_upscalers(select=source)

    def export_upscaler(self) -> str:
        """The chosen "Upscale on export" source ('' for none)."""
        data = self.upscale_combo.currentData()
        return "" if not data or data == CHOOSE_UPSCALER_FILE else str(data)

    def _show_export_size(self) -> None:
        if not self.model:
            return
        upscaler = self.export_upscaler()
        then = f", then upscaled by {Path(upscaler).name}" if upscaler else ""
        self.size_label.setText(f"at {self.model_size_text()}{then}")

    def _on_run_changed(self, *_: object) -> None:
        run = self.run_combo.currentData()
        self.checkpoint_combo.blockSignals(True)
        self.checkpoint_combo.clear()
        if run:
            self.checkpoint_combo.addItem("newest", run)
            for path in reversed(list_checkpoints(Path(run))):
                self.checkpoint_combo.addItem(path.name, str(path))
        self.checkpoint_combo.blockSignals(False)
        self._on_checkpoint_changed()

    def _on_checkpoint_changed(self, *_: object) -> None:
        source = self.checkpoint_combo.currentData()
        self.model = None
        self.gallery.clear()
        self._update_buttons()
        self.load_model(source)

    def _on_loaded(self, info: dict[str, Any]) -> None:
        self.model = info
        classes = info["classes"]
        self.class_combo.blockSignals(True)
        self.class_combo.clear()
        self.class_combo.addItem("All classes (cycling)" if classes else "Unconditional model", ALL_CLASSES)
        for index, name in enumerate(classes):
            self.class_combo.addItem(name, index)
        self.class_combo.blockSignals(False)
        self.class_combo.setEnabled(bool(classes))
        self.truncation.setEnabled(info["supports_truncation"])
        self.model_label.setText(model_line(info))
        self._show_export_size()
        self.export_button.setToolTip(f"Write this many images, {self.model_size_text()} each, to a folder (Ctrl+E)")
        self.save_button.setToolTip(
            f"Write the selected images, {self.model_size_text()} each, as PNG files to a folder"
        )
        self.model_label.setToolTip("\n".join([info.get("checkpoint", ""), *info.get("notes", [])]))
        self._update_buttons()
        self.request_page()

    # -- gallery ----------------------------------------------------------------------------------
    def seeds(self) -> list[int]:
        """The seeds of the current gallery page."""
        first = self.seed_spin.value()
        return list(range(first, min(first + PAGE_SIZE, MAX_SEED + 1)))

    def class_index(self) -> int | None:
        """The chosen class, or None to cycle through all classes."""
        data = self.class_combo.currentData()
        return None if data is None or data == ALL_CLASSES else int(data)

    def truncation_value(self) -> float:
        """Truncation between 0.1 and 1.0 (1.0 when the model does not support it)."""
        return self.truncation.value() / 100 if self.truncation.isEnabled() else 1.0

    def page_by(self, pages: int) -> None:
        """Move the first seed by whole pages."""
        self.seed_spin.setValue(max(0, self.seed_spin.value() + pages * PAGE_SIZE))

    def _on_truncation(self, value: int) -> None:
        self.truncation_label.setText(f"{value / 100:.2f}")
        self._schedule()

    def _schedule(self) -> None:
        # Debounce: a dragged slider or a held arrow key asks for one page, not dozens.
        if self.model is not None:
            self._regenerate_timer.start()

    def request_page(self) -> None:
        """Ask the worker for the current page's images."""
        if self.model is None or self.worker is None:
            return
        self.request_id += 1
        self.worker.latest_request = self.request_id
        self.sig_request_page.emit(self.seeds(), self.class_index(), self.truncation_value(), self.request_id)

    def _on_images(self, images: np.ndarray, seeds: list[int], request_id: int) -> None:
        if request_id != self.request_id:
            return  # an older page; a newer one is on its way
        self.gallery.clear()
        self.images = {int(seed): image for image, seed in zip(images, seeds, strict=True)}
        for image, seed in zip(images, seeds, strict=True):
            item = QListWidgetItem(QIcon(_gallery_pixmap(image)), f"seed {seed}")
            item.setData(SEED_ROLE, int(seed))
            item.setToolTip(f"seed {seed}, {size_text(image)}: double-click to enlarge")
            self.gallery.addItem(item)
        self.sig_status.emit(f"Seeds {seeds[0]}–{seeds[-1]}" if seeds else "")
        self._update_buttons()

    def selected_seeds(self) -> list[int]:
        """Seeds of the selected gallery images, in gallery order."""
        items = sorted(self.gallery.selectedItems(), key=self.gallery.row)
        return [int(item.data(SEED_ROLE)) for item in items]

    def enlarge(self, item: QListWidgetItem) -> EnlargedImage:
        """Show one image large (double-click), with Save for that image at its own size."""
        seed = int(item.data(SEED_ROLE))
        self.enlarged = EnlargedImage(
            self.images[seed], seed, self.project.exports_dir, self, page_provenance(self.model, "generate")
        )
        self.enlarged.sig_status.connect(self.sig_status)
        self.enlarged.open()
        return self.enlarged

    def copy_seeds(self) -> None:
        """Put the selected seeds on the clipboard, comma-separated."""
        seeds = self.selected_seeds()
        if seeds:
            QApplication.clipboard().setText(", ".join(str(s) for s in seeds))
            self.sig_status.emit(f"Copied {len(seeds)} seed(s) to the clipboard.")

    # -- export -----------------------------------------------------------------------------------
    def ask_folder(self, title: str) -> Path | None:
        """Ask for an output folder, starting in the project's exports folder."""
        folder = QFileDialog.getExistingDirectory(self, title, str(self.project.exports_dir))
        return Path(folder) if folder else None

    def save_selected(self) -> bool:
        """Write the selected images to a chosen folder."""
        seeds = self.selected_seeds()
        if not seeds:
            self.sig_status.emit("Select one or more images first.")
            return False
        folder = self.ask_folder("Save the selected images to")
        return folder is not None and self.start_export(seeds, folder)

    def export_batch(self) -> bool:
        """Write ``count`` images, from the first seed on, to a chosen folder (per class: into class folders)."""
        if self.per_class_wanted():
            folder = self.ask_folder(f"Export {self.count_spin.value()} images of every class to")
            return folder is not None and self.start_per_class_export(folder)
        folder = self.ask_folder(f"Export {self.count_spin.value()} images to")
        if folder is None:
            return False
        first = self.seed_spin.value()
        return self.start_export(list(range(first, min(first + self.count_spin.value(), MAX_SEED + 1))), folder)

    def start_export(self, seeds: list[int], folder: Path) -> bool:
        """Send an export request to the worker; False when a model is missing or one is running."""
        if self.model is None or self.exporting or self.worker is None:
            return False
        self.exporting, self.export_dir = True, folder
        self.worker.arm()
        self.progress.setRange(0, len(seeds))
        self.progress.setValue(0)
        self._update_buttons()
        self.sig_job.emit(f"Exporting to {folder.name}", 0, len(seeds))
        self.sig_request_export_upscaler.emit(self.export_upscaler())
        self.sig_request_export.emit(seeds, str(folder), self.class_index(), self.truncation_value())
        return True

    def per_class_wanted(self) -> bool:
        """True when "Per class" is ticked and the loaded model has classes."""
        return bool(self.model and self.model["classes"]) and self.per_class_check.isChecked()

    def start_per_class_export(self, folder: Path) -> bool:
        """Ask the worker for ``count`` images of every class in ``folder/<class>/`` plus a manifest.json."""
        if self.model is None or self.exporting or self.worker is None or not self.model["classes"]:
            return False
        self.exporting, self.export_dir = True, folder
        self.worker.arm()
        total = self.count_spin.value() * len(self.model["classes"])
        self.progress.setRange(0, total)
        self.progress.setValue(0)
        self._update_buttons()
        self.sig_job.emit(f"Exporting to {folder.name}", 0, total)
        self.sig_request_export_upscaler.emit(self.export_upscaler())
        self.sig_request_export_per_class.emit(
            self.count_spin.value(), str(folder), self.seed_spin.value(), self.truncation_value()
        )
        return True

    def cancel_export(self) -> None:
        """Stop the running export after the current batch."""
        if self.worker is not None and self.exporting:
            self.worker.cancel()

    def _on_progress(self, done: int, total: int, name: str) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(done)
        self.sig_job.emit(f"Exporting {Path(name).name}", done, total)

    def _on_exported(self, paths: list[str], cancelled: bool) -> None:
        self.exporting = False
        self._update_buttons()
        self.sig_job.emit("", 0, 0)
        if not paths and not cancelled:
            return  # the export failed before writing anything: the error dialog and status line said why
        note = " (cancelled)" if cancelled else ""
        self.exported_size = _image_size(paths[0]) if paths else None
        if self.exported_size is not None:  # what was really written (an upscaler makes it larger)
            size = f", {self.exported_size[0]}×{self.exported_size[1]} px each,"
        else:
            size = f", {self.model_size_text()} each," if self.model else ""
        self.sig_status.emit(f"Wrote {len(paths)} images{size} to {self.export_dir}{note}.")

    def model_size_text(self) -> str:
        """``64×64 px``: the size the loaded model draws (and exports) its images at."""
        resolution = self.model["resolution"] if self.model else 0
        return f"{resolution}×{resolution} px"

    def _on_failed(self, message: str, details: str) -> None:
        # An export stays "running" until its own sig_exported (the worker sends one after a failed export
        # too): a failed gallery or load request answered meanwhile must not end an export still running.
        if self.model is None:
            self.model_label.setText("Could not load this model.")
        self._update_buttons()
        self.errors.report(message, details)

    def _update_buttons(self) -> None:
        has_model = self.model is not None
        selected = bool(self.gallery.selectedItems()) if hasattr(self, "gallery") else False
        self.export_button.setEnabled(has_model and not self.exporting)
        has_classes = bool(self.model and self.model["classes"])
        self.per_class_check.setEnabled(has_classes and not self.exporting)
        if not has_classes:
            self.per_class_check.setChecked(False)
        self.save_button.setEnabled(has_model and selected and not self.exporting)
        self.copy_button.setEnabled(selected)
        self.progress.setVisible(self.exporting)
        self.cancel_button.setVisible(self.exporting)
        for widget in (self.prev_button, self.next_button, self.seed_spin):
            widget.setEnabled(has_model)


def _image_size(path: str) -> tuple[int, int] | None:
    """(width, height) of an image file, from its header; None when it cannot be read."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.size
    except OSError:
        return None
