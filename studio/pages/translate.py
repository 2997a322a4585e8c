"""Translate page: draw a sketch and watch it become an image, or colorize a greyscale image by clicking
colour hints; compare before and after, save the result, or translate a whole folder.

A TranslateWorker on a long-lived QThread holds the model (onnxruntime when the run has a current
export, PyTorch otherwise). The page sends a request when the drawing or the hints settle (debounced);
requests carry an id so a burst of strokes is translated once, with the newest drawing.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QColorDialog,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine.provenance.stamp import save_png
from engine.runs.checkpoint import list_checkpoints
from engine.tasks import get_task
from studio.errors import ErrorReporter
from studio.pages.model_page import ModelPage
from studio.project import Project
from studio.provenance import page_provenance
from studio.widgets.compare_view import CompareView
from studio.widgets.hint_view import HintImageView
from studio.widgets.sketch_canvas import SketchCanvas
from studio.workers.translate_worker import TranslateWorker

DEBOUNCE_MS = 250
FULL_SIZE_CAP = 2048  # "full size" of a large photo: beyond this a CPU takes many seconds per image
CANVAS_SIZE = 512
IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.webp *.bmp *.tif *.tiff *.gif)"


def model_line(info: dict[str, Any]) -> str:
    """Family, task, step and size, and the backend that runs the model (with the fallback note)."""
    text = f"{info['family']} ({info['task']}), step {info['step']:,}, trained at {info['resolution']} px"
    backend = info.get("description", "")
    if info.get("backend_note"):
        backend = f"{backend} ({info['backend_note']})"
    line = f"{text} — {backend}" if backend else text
    # a PyTorch runner's notes say that a damaged newest checkpoint was set aside: show them, not only as a tooltip
    notes = info.get("notes") if info.get("backend") == "pytorch" else None
    return "\n".join([line, *notes]) if notes else line


class TranslatePage(ModelPage):
    """Use the project's image-to-image models interactively and on folders."""

    sig_job = Signal(str, int, int)
    """Batch progress for the status bar: text ('' when idle), done, total."""
    sig_status = Signal(str)
    """A one-line message for the status bar."""
    sig_request_translate = Signal(object, object, object, int)
    """To the worker: image, hints, working size (None = training size), request id."""
    sig_request_read = Signal(str, bool)
    """To the worker: read this image file (True: trace its line art)."""
    sig_request_batch = Signal(object, str, object, object)
    """To the worker: input files/folders, output folder, hints, working size."""

    def __init__(self, project: Project, errors: ErrorReporter, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.project, self.errors = project, errors
        self.model: dict[str, Any] | None = None
        self.request_id = 0
        self.result: np.ndarray | None = None
        self.result_ms: float | None = None
        self.input_image: np.ndarray | None = None
        self.batching = False
        self.batch_dir: Path | None = None
        self.extra_sources: list[str] = []
        self.last_batch: dict[str, Any] | None = None
        self._into_canvas = False  # where the image being read goes: the sketch canvas or the image view
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(DEBOUNCE_MS)
        self._debounce.timeout.connect(self.request_translation)
        self._build()
        self.refresh_runs()

    # -- layout -----------------------------------------------------------------------------------
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.addLayout(self._model_row())
        self.help_label = QLabel("")
        self.help_label.setObjectName("Muted")
        layout.addWidget(self.help_label)
        self.body = QStackedWidget()
        empty = QLabel(
            "No image-to-image model yet. On the Train page choose the pix2pix family with the task "
            "“Sketch → image” or “Colorize” (it learns from your own images), or open an exported "
            ".onnx model with “Open model file…”."
        )
        empty.setWordWrap(True)
        empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        empty.setObjectName("Muted")
        self.body.addWidget(empty)
        self.body.addWidget(self._workspace())
        layout.addWidget(self.body, 1)
        layout.addLayout(self._action_row())
        self._update_buttons()

    def _model_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        title = QLabel("Translate")
        title.setObjectName("Heading")
        self.run_combo = QComboBox()
        self.run_combo.setMinimumWidth(260)
        self.run_combo.setToolTip("Image-to-image runs of this project, and model files you opened")
        self.run_combo.currentIndexChanged.connect(self._on_source_changed)
        self.open_model_button = QPushButton("Open model file…")
        self.open_model_button.setToolTip("Use an exported .onnx model or a checkpoint (.pt) from anywhere")
        self.open_model_button.clicked.connect(self.open_model_file)
        self.model_label = QLabel("")
        self.model_label.setObjectName("Muted")
        self.model_label.setWordWrap(True)
        for widget in (title, QLabel("Model"), self.run_combo, self.open_model_button):
            row.addWidget(widget)
        row.addWidget(self.model_label, 1)
        return row

    def _workspace(self) -> QSplitter:
        self.inputs = QStackedWidget()
        self.inputs.addWidget(self._sketch_panel())
        self.inputs.addWidget(self._image_panel())
        self.compare = CompareView()
        self.compare.set_placeholder("The result appears here")
        self.compare.setMinimumSize(256, 256)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.inputs)
        splitter.addWidget(self.compare)
        splitter.setSizes([600, 600])
        return splitter

    def _sketch_panel(self) -> QWidget:
        panel = QWidget()
        layout = QVBoxLayout(panel)
        layout.setContentsMargins(0, 0, 0, 0)
        tools = QHBoxLayout()
        self.pen_button, self.eraser_button = QToolButton(), QToolButton()
        self.tool_group = QButtonGroup(self)
        for button, name, tip in (
            (self.pen_button, "Pen", "Draw strokes (P)"),
            (self.eraser_button, "Eraser", "Erase strokes (E)"),
        ):
            button.setText(name)
            button.setCheckable(True)
            button.setProperty("tool", True)  # styled as a choice of tool (resources/style)
            button.setToolTip(tip)
            button.setShortcut(name[0])
            self.tool_group.addButton(button)
            tools.addWidget(button)
        self.pen_button.setChecked(True)
        self.tool_group.buttonClicked.connect(self._on_tool)
        self.size_spin = QSpinBox()
        self.size_spin.setRange(1, 64)
        self.size_spin.setSuffix(" px")
        self.size_spin.setToolTip("Stroke width in pixels of the drawing")
        self.size_spin.valueChanged.connect(lambda v: self.canvas.set_pen_size(v))
        self.undo_button, self.redo_button = QPushButton("Undo"), QPushButton("Redo")
        self.undo_button.setToolTip("Undo the last stroke (Ctrl+Z)")
        self.redo_button.setToolTip("Redo (Ctrl+Shift+Z)")
        self.clear_button = QPushButton("Clear")
        self.clear_button.setToolTip("Start a new drawing (undoable)")
        self.open_drawing_button = QPushButton("Open drawing…")
        self.open_drawing_button.setToolTip("Use a scanned or saved drawing (dark lines on light paper) as the sketch")
        self.trace_button = QPushButton("Trace a photo…")
        self.trace_button.setToolTip("Turn a photo or artwork into line art to start from")
        for widget in (QLabel("Size"), self.size_spin, self.undo_button, self.redo_button, self.clear_button):
            tools.addWidget(widget)
        tools.addStretch(1)
        tools.addWidget(self.open_drawing_button)
        tools.addWidget(self.trace_button)
        self.canvas = SketchCanvas(CANVAS_SIZE, CANVAS_SIZE)
        self.size_spin.setValue(self.canvas.pen_size())
        self.canvas.sig_changed.connect(self._on_input_changed)
        self.canvas.sig_history_changed.connect(self._on_canvas_history)
        self.undo_button.clicked.connect(self.canvas.undo)
        self.redo_button.clicked.connect(self.canvas.redo)
        self.clear_button.clicked.connect(self.canvas.clear)
        self.open_drawing_button.clicked.connect(lambda: self.open_image(trace=False, into_canvas=True))
        self.trace_button.clicked.connect(lambda: self.open_image(trace=True, into_canvas=True))
        self._on_canvas_history(False, False)
        layout.addLayout(tools)
        layout.addWidget(self.canvas, 1)
        return panel

    def _image_panel(self) -> QWidget:
        panel = QWidget()
        layout = QVBoxLayout(panel)
        layout.setContentsMargins(0, 0, 0, 0)
        tools = QHBoxLayout()
        self.open_image_button = QPushButton("Open image…")
        self.open_image_button.setToolTip(
            "The image to translate (for Colorize: any image; only its lightness is used)"
        )
        self.open_image_button.clicked.connect(lambda: self.open_image(trace=False, into_canvas=False))
        self.color_button = QPushButton("Hint colour")
        self.color_button.setToolTip("The colour the next click paints as a hint")
        self.color_button.clicked.connect(self.choose_hint_color)
        self.hint_undo, self.hint_redo = QPushButton("Undo hint"), QPushButton("Redo hint")
        self.hint_clear = QPushButton("Clear hints")
        self.hint_view = HintImageView()
        self.hint_view.set_placeholder("Open an image to start")
        self.hint_view.sig_hints_changed.connect(lambda _: self._on_input_changed())
        self.hint_view.sig_history_changed.connect(self._on_hint_history)
        self.hint_view.sig_color_picked.connect(lambda rgb: self._show_hint_color(rgb))
        self.hint_undo.clicked.connect(self.hint_view.undo)
        self.hint_redo.clicked.connect(self.hint_view.redo)
        self.hint_clear.clicked.connect(self.hint_view.clear_hints)
        self.hint_widgets = (self.color_button, self.hint_undo, self.hint_redo, self.hint_clear)
        for widget in (self.open_image_button, *self.hint_widgets):
            tools.addWidget(widget)
        tools.addStretch(1)
        self._show_hint_color(self.hint_view.hint_color())
        self._on_hint_history(False, False)
        layout.addLayout(tools)
        layout.addWidget(self.hint_view, 1)
        return panel

    def _action_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.detail_combo = QComboBox()
        self.detail_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.detail_combo.setToolTip(
            "Size the model works at: its training size is fastest and what it learned; "
            "larger sizes add detail the model may not have learned"
        )
        self.detail_combo.currentIndexChanged.connect(lambda _: self._on_input_changed())
        self.live_check = QCheckBox("Live")
        self.live_check.setChecked(True)
        self.live_check.setToolTip("Translate automatically whenever you pause drawing or change a hint")
        self.translate_button = QPushButton("Translate")
        self.translate_button.setProperty("primary", True)
        self.translate_button.setToolTip("Translate the current input now (Ctrl+T)")
        self.translate_button.setShortcut("Ctrl+T")
        self.translate_button.clicked.connect(self.request_translation)
        self.time_label = QLabel("")
        self.time_label.setObjectName("Muted")
        self.save_button = QPushButton("Save result…")
        self.save_button.setToolTip("Write the result as a PNG file (Ctrl+S)")
        self.save_button.setShortcut("Ctrl+S")
        self.save_button.clicked.connect(self.save_result_dialog)
        self.batch_button = QPushButton("Translate a folder…")
        self.batch_button.setToolTip("Translate every image of a folder into another folder (existing files are kept)")
        self.batch_button.clicked.connect(self.batch_dialog)
        self.progress = QProgressBar()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel_batch)
        for widget in (QLabel("Detail"), self.detail_combo, self.live_check, self.translate_button, self.time_label):
            row.addWidget(widget)
        row.addStretch(1)
        for widget in (self.save_button, self.batch_button, self.progress, self.cancel_button):
            row.addWidget(widget)
        return row

    # -- worker -----------------------------------------------------------------------------------
    def make_worker(self) -> TranslateWorker:
        return TranslateWorker()

    def connect_worker(self, worker: TranslateWorker) -> None:
        self.sig_request_translate.connect(worker.translate)
        self.sig_request_read.connect(worker.read)
        self.sig_request_batch.connect(worker.batch)
        worker.sig_loaded.connect(self._on_loaded)
        worker.sig_result.connect(self._on_result)
        worker.sig_image_read.connect(self._on_image_read)
        worker.sig_progress.connect(self._on_progress)
        worker.sig_batch_done.connect(self._on_batch_done)
        worker.sig_failed.connect(self._on_failed)

    def shutdown(self) -> None:
        """Stop the live-update timer, cancel a batch and end the worker thread (window closing)."""
        self._debounce.stop()
        super().shutdown()

    # -- models -----------------------------------------------------------------------------------
    def set_project(self, project: Project) -> None:
        """Show another project's runs."""
        self.project = project
        self.extra_sources = []
        self.refresh_runs()

    def refresh_runs(self, select: Path | str | None = None) -> None:
        """List image-to-image runs with a checkpoint (and opened model files); keep or set the selection."""
        current = str(select) if select else self.run_combo.currentData()
        runs = [str(r) for r in self.project.runs("translate") if list_checkpoints(r)]
        self.run_combo.blockSignals(True)
        self.run_combo.clear()
        for source in runs + [s for s in self.extra_sources if s not in runs]:
            self.run_combo.addItem(Path(source).name, source)
        index = self.run_combo.findData(current) if current else -1
        self.run_combo.setCurrentIndex(index if index >= 0 else (0 if self.run_combo.count() else -1))
        self.run_combo.blockSignals(False)
        self.body.setCurrentIndex(1 if self.run_combo.count() else 0)
        self._on_source_changed()

    def open_model_file(self) -> None:
        """Ask for a .onnx export or .pt checkpoint and use it."""
        path, _ = QFileDialog.getOpenFileName(
            self, "Open an image-to-image model", str(self.project.root), "Models (*.onnx *.pt)"
        )
        if path:
            self.use_model_file(path)

    def use_model_file(self, path: Path | str) -> None:
        """Add a model file to the list and load it."""
        source = str(Path(path).resolve())
        if source not in self.extra_sources:
            self.extra_sources.append(source)
        self.refresh_runs(select=source)

    def _on_source_changed(self, *_: object) -> None:
        source = self.run_combo.currentData()
        self.model = None
        self._update_buttons()
        self.load_model(source)

    def _on_loaded(self, info: dict[str, Any]) -> None:
        task_changed = self.model is None or self.model.get("task") != info["task"]
        self.model = info
        self.model_label.setText(model_line(info))
        self.model_label.setToolTip("\n".join([info.get("checkpoint", ""), *info.get("notes", [])]))
        task = get_task(info["task"])
        self.help_label.setText(task.usage)
        sketch = task.draws_input
        self.inputs.setCurrentIndex(0 if sketch else 1)
        for widget in self.hint_widgets:
            widget.setVisible(task.takes_hints)
        self._fill_detail(int(info["resolution"]))
        if sketch and task_changed:
            # strokes should look, at the model's size, like the 1-3 px lines it learned from
            self.size_spin.setValue(max(2, round(2 * CANVAS_SIZE / int(info["resolution"]))))
        self.result = None
        self._show_compare()
        self._update_buttons()
        self.request_translation()

    def _fill_detail(self, resolution: int) -> None:
        self.detail_combo.blockSignals(True)
        self.detail_combo.clear()
        self.detail_combo.addItem(f"Model size ({resolution} px)", None)
        self.detail_combo.addItem(f"Double ({2 * resolution} px)", 2 * resolution)
        self.detail_combo.addItem(f"Full size of the input (up to {FULL_SIZE_CAP} px)", 0)
        self.detail_combo.blockSignals(False)

    # -- input ------------------------------------------------------------------------------------
    def task(self) -> str | None:
        """The loaded model's task (sketch, colorize, paired, unpaired), or None."""
        return None if self.model is None else str(self.model["task"])

    def _draws(self) -> bool:
        """The loaded model takes a drawing (the canvas), not an opened image."""
        name = self.task()
        return name is not None and get_task(name).draws_input

    def _takes_hints(self) -> bool:
        name = self.task()
        return name is not None and get_task(name).takes_hints

    def current_input(self) -> np.ndarray | None:
        """The drawing (sketch models) or the opened image (others); None when there is nothing yet."""
        if self._draws():
            return self.canvas.to_array()
        return self.input_image

    def work_size(self) -> int | None:
        """Long side the network runs at: None = the model's training size."""
        value = self.detail_combo.currentData()
        image = self.current_input()
        if value == 0 and image is not None:
            return min(int(max(image.shape[:2])), FULL_SIZE_CAP)
        return value or None

    def hints(self) -> list:
        """Colour hints of the colorize view (empty for other tasks)."""
        return list(self.hint_view.hints()) if self._takes_hints() else []

    def open_image(self, trace: bool, into_canvas: bool) -> None:
        """Ask for an image file; the worker reads it (and traces it for the canvas when asked)."""
        title = "Trace a photo" if trace else ("Open a drawing" if into_canvas else "Open an image")
        path, _ = QFileDialog.getOpenFileName(self, title, str(self.project.root), IMAGE_FILTER)
        if path:
            self.read_image(path, trace=trace, into_canvas=into_canvas)

    def read_image(self, path: Path | str, trace: bool = False, into_canvas: bool | None = None) -> None:
        """Load an image file into the canvas (sketch models) or the image view, on the worker."""
        self._into_canvas = self._draws() if into_canvas is None else into_canvas
        self._ensure_worker()
        self.sig_request_read.emit(str(path), bool(trace))

    def _on_image_read(self, image: np.ndarray, path: str) -> None:
        if self._into_canvas:
            self.canvas.set_image(image)  # undoable, like a stroke
        else:
            self.set_input_image(image)
        self.sig_status.emit(f"Opened {Path(path).name}")

    def set_input_image(self, image: np.ndarray) -> None:
        """Show ``image`` (uint8 HxW or HxWxC) as the input of colorize/paired models."""
        self.input_image = np.ascontiguousarray(image)
        shown = image if image.ndim == 2 or image.shape[2] != 4 else image[:, :, :3]
        self.hint_view.set_image(shown)
        self.result = None
        self._show_compare()
        self._on_input_changed()

    def choose_hint_color(self) -> None:
        """Pick the colour of the next hints."""
        colour = QColorDialog.getColor(QColor(*self.hint_view.hint_color()), self, "Hint colour")
        if colour.isValid():
            self._show_hint_color((colour.red(), colour.green(), colour.blue()))

    def _show_hint_color(self, rgb: tuple[int, int, int]) -> None:
        self.hint_view.set_hint_color(tuple(rgb))
        r, g, b = rgb
        text = "#000" if 0.299 * r + 0.587 * g + 0.114 * b > 140 else "#fff"
        self.color_button.setStyleSheet(f"QPushButton {{ background: rgb({r},{g},{b}); color: {text}; }}")

    def _on_tool(self, button: QToolButton) -> None:
        self.canvas.set_tool("eraser" if button is self.eraser_button else "pen")

    def _on_canvas_history(self, can_undo: bool, can_redo: bool) -> None:
        self.undo_button.setEnabled(can_undo)
        self.redo_button.setEnabled(can_redo)

    def _on_hint_history(self, can_undo: bool, can_redo: bool) -> None:
        self.hint_undo.setEnabled(can_undo)
        self.hint_redo.setEnabled(can_redo)

    # -- translating ------------------------------------------------------------------------------
    def _on_input_changed(self) -> None:
        if self.model is not None and self.live_check.isChecked():
            self._debounce.start()  # restarts: one translation after the input settles

    def request_translation(self) -> bool:
        """Ask the worker to translate the current input; False when there is no model or input."""
        image = self.current_input()
        if self.model is None or self.worker is None or image is None:
            return False
        self.request_id += 1
        self.worker.latest_request = self.request_id
        self.compare.set_busy(True)
        self.sig_request_translate.emit(image, self.hints(), self.work_size(), self.request_id)
        return True

    def _on_result(self, image: np.ndarray, request_id: int, ms: float) -> None:
        if request_id != self.request_id:
            return  # an older input; the newest one is on its way
        self.result, self.result_ms = image, ms
        self.compare.set_busy(False)
        self._show_compare()
        backend = (self.model or {}).get("description", "")
        self.time_label.setText(f"{ms:.0f} ms · {backend}")
        self._update_buttons()

    def _show_compare(self) -> None:
        before = self.current_input()
        if before is not None and before.ndim == 3 and before.shape[2] == 4:
            before = before[:, :, :3]
        self.compare.set_images(before, self.result)
        if self.result is None:
            self.compare.set_busy(False)

    # -- saving and batches -----------------------------------------------------------------------
    def save_result_dialog(self) -> None:
        """Ask where to save the result."""
        if self.result is None:
            return
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        default = self.project.exports_dir / f"{self.task()}-{stamp}.png"
        path, _ = QFileDialog.getSaveFileName(self, "Save the result", str(default), "PNG image (*.png)")
        if path:
            self.save_result(path)

    def save_result(self, path: Path | str) -> Path | None:
        """Write the result as PNG (atomically); returns the path, or None when there is no result."""
        if self.result is None:
            return None
        target = Path(path)
        if target.suffix.lower() != ".png":
            target = target.with_suffix(".png")
        target.parent.mkdir(parents=True, exist_ok=True)
        image = self.result if self.result.ndim == 3 else self.result[:, :, None]
        save_png(image, target, page_provenance(self.model, "translate"))
        self.sig_status.emit(f"Saved {target}")
        return target

    def batch_dialog(self) -> None:
        """Ask for an input folder and an output folder, then translate every image."""
        source = QFileDialog.getExistingDirectory(self, "Folder of images to translate", str(self.project.root))
        if not source:
            return
        out = QFileDialog.getExistingDirectory(self, "Write the results to", str(self.project.exports_dir))
        if out:
            self.start_batch([Path(source)], Path(out))

    def start_batch(self, inputs: list[Path], out_dir: Path) -> bool:
        """Translate files/folders into ``out_dir`` on the worker; False when busy or no model."""
        if self.model is None or self.worker is None or self.batching:
            return False
        self.batching, self.batch_dir = True, out_dir
        self.worker.arm()
        self.progress.setRange(0, 0)
        self._update_buttons()
        self.sig_job.emit(f"Translating into {out_dir.name}", 0, 0)
        self.sig_request_batch.emit([str(p) for p in inputs], str(out_dir), self.hints(), self.work_size())
        return True

    def cancel_batch(self) -> None:
        """Stop the running batch after the current image."""
        if self.worker is not None and self.batching:
            self.worker.cancel()

    def _on_progress(self, done: int, total: int, name: str) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(done)
        self.sig_job.emit(f"Translating {Path(name).name}", done, total)

    def _on_batch_done(self, result: dict[str, Any]) -> None:
        self.batching = False
        self._update_buttons()
        self.sig_job.emit("", 0, 0)
        written, skipped = len(result["written"]), result["skipped"]
        note = " (cancelled)" if result["cancelled"] else ""
        text = f"Translated {written} image(s) into {self.batch_dir}{note}."
        if skipped:
            text += f" Skipped {len(skipped)}: " + "; ".join(
                f"{Path(s['path']).name}: {s['reason']}" for s in skipped[:3]
            )
        self.sig_status.emit(text)
        self.last_batch = result

    def _on_failed(self, message: str, details: str) -> None:
        if self.batching:
            self.batching = False
            self.sig_job.emit("", 0, 0)
        self.compare.set_busy(False)
        if self.model is None:
            self.model_label.setText("Could not load this model.")
        self._update_buttons()
        self.errors.report(message, details)

    def _update_buttons(self) -> None:
        has_model = self.model is not None
        self.translate_button.setEnabled(has_model)
        self.save_button.setEnabled(self.result is not None)
        self.batch_button.setEnabled(has_model and not self.batching)
        self.progress.setVisible(self.batching)
        self.cancel_button.setVisible(self.batching)
        self.detail_combo.setEnabled(has_model)
