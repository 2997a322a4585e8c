"""Upscale page: open an image or a folder (buttons or drag and drop), pick an upscaler (the project's
upscale runs, their ONNX exports, or a model file: .pth, .safetensors, .onnx), upscale on a worker
thread with progress per tile and Cancel, compare before and after in a zoomable view (synced zoom and
pan, a draggable split), save the result, or upscale a whole folder with a summary of what was written
and what was skipped, and why.

An UpscaleWorker on a long-lived QThread holds the model; this page only sends requests (queued
signals) and shows the answers, so the window never waits for the network.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from engine.inference.translate_files import free_path
from engine.inference.upscale_files import write_png
from engine.runs.checkpoint import list_checkpoints
from studio.errors import ErrorReporter
from studio.models import list_exports
from studio.pages.model_page import ModelPage
from studio.project import Project
from studio.provenance import page_provenance
from studio.widgets.zoom_compare import ZoomCompareView
from studio.workers.upscale_worker import UpscaleWorker

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")
IMAGE_FILTER = "Images (" + " ".join(f"*{s}" for s in IMAGE_SUFFIXES) + ")"
MODEL_SUFFIXES = (".pth", ".pt", ".ckpt", ".safetensors", ".onnx")
MODEL_FILTER = "Upscaling models (" + " ".join(f"*{s}" for s in MODEL_SUFFIXES) + ")"
TILE_CHOICES = (None, 128, 256, 512, 1024)
SKIPPED_SHOWN = 8
NO_MODEL_TEXT = (
    "No upscaler yet: train one on the Train page (family esrgan learns from your own high-resolution "
    "images), or open a model file you have (.pth, .safetensors or .onnx: Real-ESRGAN, SwinIR, HAT, DAT…) "
    "with Model file…"
)
PLACEHOLDER = "Open an image or a folder, or drop them here"


def model_line(info: dict[str, Any]) -> str:
    """``RealESRGAN Compact x4 from f.pth — ×4, colour — PyTorch (cpu)``, the backend note and the engine's notes."""
    name = info["name"]
    if info.get("architecture") and info["architecture"] not in name:
        name = f"{name} ({info['architecture']})"
    backend = info.get("backend", "")
    if info.get("backend_note"):
        backend = f"{backend} ({info['backend_note']})"
    channels = "grey" if info.get("channels") == 1 else "colour"
    what = f"{name} — ×{info['scale']}, {channels}"  # the factor always in the same words, whatever the name says
    line = f"{what} — {backend}" if backend else what
    return "\n".join([line, *info.get("notes", [])])


def pixels(width: int, height: int) -> str:
    """``1024×768 px``."""
    return f"{width}×{height} px"


def free_name(path: Path) -> Path:
    """``path`` or ``stem-2.png``, ``stem-3.png``… whichever does not exist yet."""
    return free_path(path, first=2)


class UpscalePage(ModelPage):
    """Upscale images and folders with the project's upscalers or the user's model files."""

    sig_job = Signal(str, int, int)
    """Progress for the status bar: text ('' when idle), done, total."""
    sig_status = Signal(str)
    """A one-line message for the status bar."""
    sig_request_load_on = Signal(str, str)
    """To the worker: load this run folder / model file on this device."""
    sig_request_read = Signal(str)
    """To the worker: read this image file."""
    sig_request_upscale = Signal(object, object, int)
    """To the worker: image, tile size (None: from free memory), request id."""
    sig_request_batch = Signal(object, str, object)
    """To the worker: input files/folders, output folder, tile size."""

    def __init__(self, project: Project, errors: ErrorReporter, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.project, self.errors = project, errors
        self.model: dict[str, Any] | None = None
        self.extra_sources: list[str] = []
        self.request_id = 0
        self.input_path: Path | None = None
        self.input_source: Any = None  # the engine's SourceImage: pixels plus ICC profile, EXIF, text
        self.input_image: np.ndarray | None = None  # as stored (uint8 or uint16)
        self.input_shown: np.ndarray | None = None  # uint8, for the view
        self.batch_inputs: list[Path] = []
        self.result: np.ndarray | None = None
        self.result_shown: np.ndarray | None = None
        self.result_ms: float | None = None
        self.result_notes: list[str] = []
        self.upscaling = False
        self.batching = False
        self.batch_dir: Path | None = None
        self.last_batch: dict[str, Any] | None = None
        self.last_saved: Path | None = None
        self.setAcceptDrops(True)
        self._build()
        self.refresh_runs()

    # -- layout -----------------------------------------------------------------------------------
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.addLayout(self._model_row())
        layout.addLayout(self._input_row())
        self.compare = ZoomCompareView()
        self.compare.set_placeholder(PLACEHOLDER)
        self.compare.setToolTip(
            "Drag the handle to compare; the mouse wheel zooms around the cursor and dragging pans both sides "
            "together; double-click switches between fit and 100%"
        )
        self.compare.sig_view_changed.connect(self._on_view_changed)
        layout.addWidget(self.compare, 1)
        self.summary_label = QLabel("")
        self.summary_label.setObjectName("Muted")
        self.summary_label.setWordWrap(True)
        self.summary_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.summary_label.setVisible(False)
        layout.addWidget(self.summary_label)
        layout.addLayout(self._action_row())
        self._update_buttons()

    def _model_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        title = QLabel("Upscale")
        title.setObjectName("Heading")
        self.run_combo = QComboBox()
        self.run_combo.setMinimumWidth(280)
        self.run_combo.setToolTip("The project's upscale runs, their ONNX exports, and model files you opened")
        self.run_combo.currentIndexChanged.connect(self._on_source_changed)
        self.open_model_button = QPushButton("Model file…")
        self.open_model_button.setToolTip(
            "Use an upscaling model you have: .pth or .safetensors (Real-ESRGAN, SwinIR, HAT, DAT and others "
            "spandrel reads, loaded without running any code from the file) or an exported .onnx"
        )
        self.open_model_button.clicked.connect(self.open_model_file)
        self.model_label = QLabel("")
        self.model_label.setObjectName("Muted")
        self.model_label.setWordWrap(True)
        self.model_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        for widget in (title, QLabel("Model"), self.run_combo, self.open_model_button):
            row.addWidget(widget)
        row.addWidget(self.model_label, 1)
        return row

    def _input_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.open_image_button = QPushButton("Open image…")
        self.open_image_button.setToolTip("The image to upscale (Ctrl+Shift+I); you can also drop it on the page")
        self.open_image_button.setShortcut("Ctrl+Shift+I")
        self.open_image_button.clicked.connect(self.open_image_dialog)
        self.open_folder_button = QPushButton("Open folder…")
        self.open_folder_button.setToolTip("Upscale every image of a folder into another folder")
        self.open_folder_button.clicked.connect(self.open_folder_dialog)
        self.input_label = QLabel("")
        self.input_label.setObjectName("Muted")
        self.input_label.setWordWrap(True)
        self.device_combo = QComboBox()
        self.device_combo.addItem("Auto", "auto")
        self.device_combo.addItem("CPU", "cpu")
        if _cuda_available():
            self.device_combo.addItem("GPU (CUDA)", "cuda")
        self.device_combo.setToolTip("Where the model runs; Auto uses the GPU when there is one")
        self.device_combo.currentIndexChanged.connect(lambda _: self._on_source_changed())
        self.tile_combo = QComboBox()
        for tile in TILE_CHOICES:
            self.tile_combo.addItem("Auto" if tile is None else f"{tile} px", tile)
        self.tile_combo.setToolTip(
            "Large images are upscaled in overlapping tiles, blended so no seam shows. Auto picks the tile size "
            "from the free memory and lowers it when memory runs out; a smaller tile uses less memory"
        )
        for widget in (self.open_image_button, self.open_folder_button):
            row.addWidget(widget)
        row.addWidget(self.input_label, 1)
        for widget in (QLabel("Device"), self.device_combo, QLabel("Tile"), self.tile_combo):
            row.addWidget(widget)
        return row

    def _action_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.upscale_button = QPushButton("Upscale")
        self.upscale_button.setProperty("primary", True)
        self.upscale_button.setShortcut("Ctrl+U")
        self.upscale_button.clicked.connect(self.upscale)
        self.progress = QProgressBar()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop upscaling (a folder stops after the current image)")
        self.cancel_button.clicked.connect(self.cancel)
        self.time_label = QLabel("")
        self.time_label.setObjectName("Muted")
        self.fit_button = QPushButton("100%")
        self.fit_button.setToolTip("Switch the view between fitting the window and 100% (one pixel per pixel)")
        self.fit_button.clicked.connect(self.compare.toggle_fit)
        self.save_button = QPushButton("Save…")
        self.save_button.setToolTip(
            "Write the upscaled image as a PNG file (Ctrl+S); an existing file is never replaced without asking"
        )
        self.save_button.setShortcut("Ctrl+S")
        self.save_button.clicked.connect(self.save_result_dialog)
        for widget in (self.upscale_button, self.progress, self.cancel_button, self.time_label):
            row.addWidget(widget)
        row.addStretch(1)
        row.addWidget(self.fit_button)
        row.addWidget(self.save_button)
        return row

    # -- worker -----------------------------------------------------------------------------------
    def make_worker(self) -> UpscaleWorker:
        return UpscaleWorker()

    def connect_worker(self, worker: UpscaleWorker) -> None:  # type: ignore[override]
        self.sig_request_load_on.connect(worker.load_on)
        self.sig_request_read.connect(worker.read)
        self.sig_request_upscale.connect(worker.upscale)
        self.sig_request_batch.connect(worker.batch)
        worker.sig_loaded.connect(self._on_loaded)
        worker.sig_image_read.connect(self._on_image_read)
        worker.sig_result.connect(self._on_result)
        worker.sig_tile.connect(self._on_tile)
        worker.sig_cancelled.connect(self._on_cancelled)
        worker.sig_progress.connect(self._on_progress)
        worker.sig_batch_done.connect(self._on_batch_done)
        worker.sig_failed.connect(self._on_failed)

    def load_model(self, source: str | None) -> None:
        """Load ``source`` on the chosen device now when the page is visible, else when it is first shown."""
        self._load_on_show = source if source and not self.isVisible() else None
        if source and self._load_on_show is None:
            self.model_label.setText("Loading model…")
            self._ensure_worker()
            self.sig_request_load_on.emit(str(source), self.device())
        elif not source:
            self.model_label.setText(NO_MODEL_TEXT)
        else:
            self.model_label.setText("")

    # -- models -----------------------------------------------------------------------------------
    def set_project(self, project: Project) -> None:
        """Show another project's upscalers."""
        self.project = project
        self.extra_sources = []
        self.refresh_runs()

    def sources(self) -> list[tuple[str, str]]:
        """(label, source) of every choice: upscale runs with a checkpoint, their exports, opened model files."""
        choices: list[tuple[str, str]] = []
        for run in self.project.runs("upscale"):
            if not list_checkpoints(run):
                continue
            choices.append((run.name, str(run)))
            for info in list_exports(run):
                note = "" if info.current else ", older than the newest checkpoint"
                choices.append((f"{run.name} · {info.path.name} (ONNX{note})", str(info.path)))
        known = {source for _, source in choices}
        for source in self.extra_sources:
            if source not in known:
                what = "run folder" if Path(source).is_dir() else "file"
                choices.append((f"{Path(source).name} ({what})", source))
        return choices

    def refresh_runs(self, select: Path | str | None = None) -> None:
        """Re-list the upscalers; keep (or set) the selection and load it."""
        before = self.run_combo.currentData()
        current = str(select) if select else before
        self.run_combo.blockSignals(True)
        self.run_combo.clear()
        for label, source in self.sources():
            self.run_combo.addItem(label, source)
            self.run_combo.setItemData(self.run_combo.count() - 1, source, Qt.ItemDataRole.ToolTipRole)
        index = self.run_combo.findData(current) if current else -1
        self.run_combo.setCurrentIndex(index if index >= 0 else (0 if self.run_combo.count() else -1))
        self.run_combo.blockSignals(False)
        # a run given again (it gained a checkpoint or an export) reloads: the worker reopens it only if changed
        if select is not None or self.run_combo.currentData() != before or self.model is None:
            self._on_source_changed()

    def open_model_file(self) -> None:
        """Ask for a model file (.pth, .safetensors, .onnx…) and use it."""
        path, _ = QFileDialog.getOpenFileName(self, "Open an upscaling model", str(self.project.root), MODEL_FILTER)
        if path:
            self.use_model_file(path)

    def use_model_file(self, path: Path | str) -> None:
        """Add a model file to the list and load it (the engine says what it is, or why it cannot be used)."""
        source = str(Path(path).resolve())
        if source not in self.extra_sources:
            self.extra_sources.append(source)
        self.refresh_runs(select=source)

    def device(self) -> str:
        """The chosen device: 'auto', 'cpu' or 'cuda'."""
        return str(self.device_combo.currentData() or "auto")

    def tile(self) -> int | None:
        """The chosen tile size (None: chosen from free memory)."""
        return self.tile_combo.currentData()

    def _on_source_changed(self, *_: object) -> None:
        self.model = None
        self._clear_result()
        self._update_buttons()
        self.load_model(self.run_combo.currentData())

    def _on_loaded(self, info: dict[str, Any]) -> None:
        if info.get("source") and info["source"] != self.run_combo.currentData():
            return  # an older choice finished loading; the current one is on its way
        scale_changed = self.model is None or self.model.get("scale") != info["scale"]
        self.model = info
        self.model_label.setText(model_line(info))
        self.model_label.setToolTip(info.get("source", ""))
        if scale_changed:
            self._clear_result()
        self._show_input_label()
        self._update_buttons()

    # -- input ------------------------------------------------------------------------------------
    def open_image_dialog(self) -> None:
        """Ask for an image file to upscale."""
        path, _ = QFileDialog.getOpenFileName(self, "Open an image to upscale", str(self.project.root), IMAGE_FILTER)
        if path:
            self.open_image(path)

    def open_folder_dialog(self) -> None:
        """Ask for a folder of images to upscale."""
        folder = QFileDialog.getExistingDirectory(self, "Folder of images to upscale", str(self.project.root))
        if folder:
            self.set_batch_inputs([Path(folder)])

    def open_image(self, path: Path | str) -> None:
        """Read ``path`` on the worker; it shows as the before image."""
        self._ensure_worker()
        self.sig_request_read.emit(str(path))

    def set_batch_inputs(self, inputs: list[Path]) -> None:
        """Upscale these files and folders together (Upscale asks where the results go)."""
        self.batch_inputs = [Path(p) for p in inputs]
        self.input_path, self.input_source, self.input_image, self.input_shown = None, None, None, None
        self._clear_result()
        self.compare.set_images(None, None)
        count = self._count_images()
        names = ", ".join(p.name for p in self.batch_inputs[:3]) + ("…" if len(self.batch_inputs) > 3 else "")
        self.compare.set_placeholder(
            f"{count} image(s) in {names}: Upscale writes them, upscaled, to a folder you choose "
            "(existing files are kept)."
        )
        self._show_input_label()
        self._update_buttons()

    def _count_images(self) -> int:
        count = 0
        for path in self.batch_inputs:
            if path.is_dir():
                count += sum(1 for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            elif path.is_file():
                count += 1
        return count

    def _on_image_read(self, source: Any, shown: np.ndarray, path: str) -> None:
        self.batch_inputs = []
        self.input_path, self.input_source, self.input_shown = Path(path), source, shown
        self.input_image = source.pixels
        self._clear_result()
        self.compare.set_placeholder(PLACEHOLDER)
        self.compare.set_images(shown, None)
        self._show_input_label()
        self._update_buttons()
        self.sig_status.emit(f"Opened {Path(path).name}")

    def _show_input_label(self) -> None:
        scale = int(self.model["scale"]) if self.model else None
        if self.input_image is not None and self.input_path is not None:
            h, w = self.input_image.shape[:2]
            depth = ", 16-bit" if self.input_image.dtype == np.uint16 else ""
            text = f"{self.input_path.name}: {pixels(w, h)}{depth}"
            if scale:
                text += f" → {pixels(w * scale, h * scale)}"
        elif self.batch_inputs:
            text = f"{self._count_images()} image(s) from {', '.join(p.name for p in self.batch_inputs[:3])}"
            if scale:
                text += f", each ×{scale}"
        else:
            text = ""
        self.input_label.setText(text)

    # drag and drop: a single image opens; folders or several files become a batch; a model file loads
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt name)
        """Accept local files and folders."""
        if _local_paths(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 (Qt name)
        """Open what was dropped."""
        paths = _local_paths(event.mimeData())
        if not paths:
            event.ignore()
            return
        event.acceptProposedAction()
        self.open_paths(paths)

    def open_paths(self, paths: list[Path]) -> None:
        """What a drop does: one model file loads, one image opens, anything else becomes a batch."""
        if self.busy():
            self.sig_status.emit("Upscaling is running: wait for it to finish, or Cancel it, then drop again.")
            return
        if len(paths) == 1 and paths[0].is_file() and paths[0].suffix.lower() in MODEL_SUFFIXES:
            self.use_model_file(paths[0])
        elif len(paths) == 1 and paths[0].is_file():
            self.open_image(paths[0])
        else:
            self.set_batch_inputs(paths)

    # -- upscaling --------------------------------------------------------------------------------
    def busy(self) -> bool:
        """True while an image or a folder is being upscaled."""
        return self.upscaling or self.batching

    def upscale(self) -> bool:
        """Upscale the open image, or (for a folder) ask where the results go and upscale it there."""
        if self.batch_inputs:
            return self.batch_dialog()
        return self.start_upscale()

    def start_upscale(self) -> bool:
        """Upscale the open image on the worker; False when there is no model, no image or a job runs."""
        if self.model is None or self.worker is None or self.input_image is None or self.busy():
            return False
        self.request_id += 1
        self.worker.latest_request = self.request_id
        self.worker.arm()
        self.upscaling = True
        self.progress.setRange(0, 0)
        self.compare.set_busy("Upscaling…")
        self.time_label.setText("")
        self._update_buttons()
        self.sig_job.emit("Upscaling", 0, 0)
        self.sig_request_upscale.emit(self.input_image, self.tile(), self.request_id)
        return True

    def _on_tile(self, done: int, total: int) -> None:
        if not self.upscaling:
            return
        self.progress.setRange(0, total)
        self.progress.setValue(done)
        self.compare.set_busy(f"Upscaling: tile {done} of {total}")
        self.sig_job.emit(f"Upscaling: tile {done} of {total}", done, total)

    def _on_result(self, image: np.ndarray, shown: np.ndarray, request_id: int, ms: float, notes: list) -> None:
        if request_id != self.request_id:
            return
        self.upscaling = False
        self.result, self.result_shown, self.result_ms = image, shown, ms
        self.result_notes = [str(n) for n in notes]
        self.compare.set_busy(False)
        self.compare.set_images(self.input_shown, shown)
        h, w = image.shape[:2]
        backend = (self.model or {}).get("backend", "")
        self.time_label.setText(f"{pixels(w, h)} in {ms / 1000:.1f} s · {backend}")
        self.time_label.setToolTip("\n".join(self.result_notes))  # e.g. the tile size chosen and why
        self.sig_job.emit("", 0, 0)
        self._update_buttons()

    def _on_cancelled(self, request_id: int) -> None:
        if request_id != self.request_id:
            return
        self.upscaling = False
        self.compare.set_busy(False)
        self.sig_job.emit("", 0, 0)
        self.sig_status.emit("Upscaling cancelled.")
        self._update_buttons()

    def cancel(self) -> None:
        """Stop upscaling: an image stops at the next tile, a folder after the current image."""
        if self.worker is not None and self.busy():
            self.worker.cancel()
            self.cancel_button.setEnabled(False)
            self.sig_status.emit("Cancelling…")

    def _clear_result(self) -> None:
        self.result, self.result_shown, self.result_ms, self.result_notes = None, None, None, []
        if hasattr(self, "compare"):
            self.compare.set_images(self.input_shown, None)
            self.time_label.setText("")

    # -- saving and batches -----------------------------------------------------------------------
    def default_save_path(self) -> Path:
        """``exports/<input stem>-x<scale>.png`` (or -2, -3…: never a file that exists)."""
        stem = self.input_path.stem if self.input_path else "upscaled"
        scale = int(self.model["scale"]) if self.model else 0
        return free_name(self.project.exports_dir / f"{stem}-x{scale}.png")

    def save_result_dialog(self) -> Path | None:
        """Ask where to save the result (the dialog asks before replacing a file)."""
        if self.result is None:
            return None
        path, _ = QFileDialog.getSaveFileName(
            self, "Save the upscaled image", str(self.default_save_path()), "PNG image (*.png)"
        )
        return self.save_result(path, overwrite=True) if path else None

    def save_result(self, path: Path | str, overwrite: bool = False) -> Path | None:
        """Write the result as PNG (atomically, 16-bit kept); an existing file is kept unless ``overwrite``
        (then the name gets -2, -3…). Returns the file written, or None when there is no result."""
        if self.result is None:
            return None
        target = Path(path)
        if target.suffix.lower() != ".png":
            target = target.with_name(target.name + ".png")
        if target.exists() and not overwrite:
            target = free_name(target)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            write_result(self.result, target, self.input_source, page_provenance(self.model, "upscale"))
        except OSError as exc:
            self.errors.report(f"Could not write {target}: {exc.strerror or exc}; choose another folder.")
            return None
        self.last_saved = target
        h, w = self.result.shape[:2]
        self.sig_status.emit(f"Saved {target.name} ({pixels(w, h)}) to {target.parent}.")
        return target

    def batch_dialog(self) -> bool:
        """Ask for the output folder of the current folder/files, then upscale them there."""
        if not self.batch_inputs or self.model is None:
            return False
        out = QFileDialog.getExistingDirectory(self, "Write the upscaled images to", str(self.project.exports_dir))
        return bool(out) and self.start_batch(self.batch_inputs, Path(out))

    def start_batch(self, inputs: list[Path], out_dir: Path) -> bool:
        """Upscale files/folders into ``out_dir`` on the worker; False when busy or no model."""
        if self.model is None or self.worker is None or self.busy():
            return False
        self.batching, self.batch_dir = True, Path(out_dir)
        self.worker.arm()
        self.progress.setRange(0, 0)
        self.summary_label.setVisible(False)
        self._update_buttons()
        self.sig_job.emit(f"Upscaling into {Path(out_dir).name}", 0, 0)
        self.sig_request_batch.emit([str(p) for p in inputs], str(out_dir), self.tile())
        return True

    def _on_progress(self, done: int, total: int, name: str) -> None:
        if not self.batching:
            return
        self.progress.setRange(0, total)
        self.progress.setValue(done)
        self.sig_job.emit(f"Upscaled {done} of {total}: {Path(name).name}", done, total)

    def _on_batch_done(self, result: dict[str, Any]) -> None:
        self.batching = False
        self.last_batch = result
        self.sig_job.emit("", 0, 0)
        self._update_buttons()
        text = batch_summary(result, self.batch_dir)
        self.summary_label.setText(text)
        self.summary_label.setVisible(True)
        self.sig_status.emit(text.splitlines()[0])

    def _on_failed(self, message: str, details: str) -> None:
        if self.batching or self.upscaling:
            self.batching = self.upscaling = False
            self.sig_job.emit("", 0, 0)
        self.compare.set_busy(False)
        if self.model is None and self.run_combo.currentData():
            self.model_label.setText(f"Could not load this model: {message}")
        self._update_buttons()
        self.errors.report(message, details)

    def _on_view_changed(self, zoom: float, fit: bool) -> None:
        self.fit_button.setText("100%" if fit else "Fit")

    def _update_buttons(self) -> None:
        has_model, busy = self.model is not None, self.busy()
        has_input = self.input_image is not None or bool(self.batch_inputs)
        self.upscale_button.setEnabled(has_model and has_input and not busy)
        if self.batch_inputs:
            self.upscale_button.setText("Upscale folder…")
            self.upscale_button.setToolTip("Choose where the upscaled images go, then upscale every image (Ctrl+U)")
        else:
            self.upscale_button.setText("Upscale")
            self.upscale_button.setToolTip("Upscale the open image (Ctrl+U)")
        self.save_button.setEnabled(self.result is not None and not busy)
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy)
        self.cancel_button.setEnabled(busy)
        for widget in (
            self.run_combo,
            self.open_model_button,
            self.device_combo,
            self.tile_combo,
            self.open_image_button,
            self.open_folder_button,
        ):
            widget.setEnabled(not busy)
        self.fit_button.setEnabled(self.compare.image_size().isValid() and not self.compare.image_size().isEmpty())


def batch_summary(result: dict[str, Any], out_dir: Path | None) -> str:
    """``Upscaled 3 image(s) into DIR.`` then each skipped input with its reason (the first few)."""
    written, skipped = result["written"], result["skipped"]
    lines = [f"Upscaled {len(written)} image(s) into {out_dir}" + (" — cancelled." if result["cancelled"] else ".")]
    if skipped:
        lines.append(f"Skipped {len(skipped)}:")
        lines += [f"  {Path(s['path']).name}: {s['reason']}" for s in skipped[:SKIPPED_SHOWN]]
        if len(skipped) > SKIPPED_SHOWN:
            lines.append(f"  …and {len(skipped) - SKIPPED_SHOWN} more")
    lines += [f"Note: {note}" for note in result.get("notes", [])[:SKIPPED_SHOWN]]
    return "\n".join(lines)


def write_result(image: np.ndarray, path: Path, source: Any = None, provenance: Any = None) -> None:
    """Write an upscaled image as PNG atomically, as upscale_files does: 16-bit kept (a float image as
    16 bits), the source's ICC profile, EXIF (minus personal fields) and text carried over, watermarked,
    described and signed per ``provenance``."""
    if image.dtype == np.float32:
        image = np.rint(np.clip(image, 0.0, 1.0) * 65535.0).astype(np.uint16)
    write_png(
        path,
        image,
        icc=getattr(source, "icc", None),
        exif=getattr(source, "exif", None),
        text=getattr(source, "text", None),
        provenance=provenance,
    )


def _local_paths(mime: Any) -> list[Path]:
    if not mime.hasUrls():
        return []
    return [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile() and url.toLocalFile()]


def _cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())
