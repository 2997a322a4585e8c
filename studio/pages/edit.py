"""Edit page: steer a trained noise-to-image model — a seed, a slider per direction with a live preview,
style mixing, a keyframe timeline exported as an animation, an image of the artist's own brought into the
model (inversion), and latents saved and reopened.

An EditWorker on a long-lived QThread holds the model (engine.editing); the page sends requests and
shows the answers. Slider moves are debounced and carry request ids, so only the newest is drawn; the
preview runs on onnxruntime when the run has a current export (W+ models: its synthesis graph).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSlider,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from engine.runs.checkpoint import list_checkpoints
from studio.errors import ErrorReporter
from studio.pages.model_page import ModelPage
from studio.project import Project
from studio.widgets.images import array_to_qimage
from studio.widgets.preview_view import ImageCanvas
from studio.workers.edit_worker import EditWorker

MAX_SEED = 2**31 - 1
SLIDER_STEPS = 50  # each slider runs -SLIDER_STEPS..SLIDER_STEPS
SLIDER_RANGE = 5.0  # ... for amounts -5..5 along a unit direction
KEYFRAME_ICON = 72
ANIMATION_FILTER = "Animations (*.mp4 *.gif *.webp)"


def _pixmap(image: np.ndarray, side: int) -> QPixmap:
    pixmap = QPixmap.fromImage(array_to_qimage(image))
    return pixmap.scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation)


class EditPage(ModelPage):
    """Latent editing of the project's noise-to-image runs."""

    sig_job = Signal(str, int, int)
    """Progress of a long job for the status bar: text ('' when idle), done, total."""
    sig_status = Signal(str)
    sig_request_preview = Signal(object, int)
    sig_request_directions = Signal(str, int)
    sig_request_save_directions = Signal(object, str)
    sig_request_load_directions = Signal(str)
    sig_request_grid = Signal(object, object, str, object)
    sig_request_animation = Signal(object, int, bool, float, int, str)
    sig_request_invert = Signal(str, int, object, bool)
    sig_request_save = Signal(object, str)
    sig_request_open_latent = Signal(str)

    def __init__(self, project: Project, errors: ErrorReporter, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.project, self.errors = project, errors
        self.model: dict[str, Any] | None = None
        self.request_id = 0
        self.directions: Any = None  # engine.editing.DirectionSet shown as sliders
        self.sliders: list[QSlider] = []
        self.base_latent: Any = None  # an inverted or reopened latent; None: the seed
        self.latent: Any = None  # the latent of the preview shown
        self.image: np.ndarray | None = None
        self.keyframes: list[Any] = []
        self.busy = ""  # "animation", "inversion" while one runs
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(60)
        self._debounce.timeout.connect(self.request_preview)
        self._build()
        self.refresh_runs()

    # -- layout -----------------------------------------------------------------------------------
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.addLayout(self._model_row())
        body = QHBoxLayout()
        controls = QScrollArea()  # scrolls on short windows, so the page never forces the window taller
        controls.setWidgetResizable(True)
        controls.setWidget(self._controls())
        controls.setMinimumWidth(400)
        controls.setMaximumWidth(420)
        controls.setFrameShape(QScrollArea.Shape.NoFrame)
        body.addWidget(controls, 0)
        self.tabs = QTabWidget()
        self.canvas = ImageCanvas("Choose a run to edit its images.")
        self.canvas.setMinimumSize(QSize(240, 200))
        self.tabs.addTab(self.canvas, "Preview")
        self.grid_widget = QWidget()
        self.grid_layout = QGridLayout(self.grid_widget)
        self.tabs.addTab(self.grid_widget, "Style mixing")
        body.addWidget(self.tabs, 1)
        layout.addLayout(body, 1)
        layout.addWidget(self._timeline())
        layout.addLayout(self._bottom_row())
        self._update_buttons()

    def _model_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        title = QLabel("Edit")
        title.setObjectName("Heading")
        self.run_combo = QComboBox()
        self.run_combo.setMinimumWidth(240)
        self.run_combo.setToolTip("Noise-to-image runs of this project that have a checkpoint")
        self.run_combo.currentIndexChanged.connect(self._on_run_changed)
        self.model_label = QLabel("")
        self.model_label.setObjectName("Muted")
        self.model_label.setWordWrap(True)
        for widget in (title, QLabel("Run"), self.run_combo):
            row.addWidget(widget)
        row.addWidget(self.model_label, 1)
        return row

    def _controls(self) -> QWidget:
        panel = QWidget()
        panel.setMaximumWidth(380)
        column = QVBoxLayout(panel)
        column.setContentsMargins(0, 0, 0, 0)
        seed_box = QGroupBox("Image")
        form = QFormLayout(seed_box)
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, MAX_SEED)
        self.seed_spin.setToolTip("The seed the edit starts from (the same seed as on the Generate page)")
        self.seed_spin.valueChanged.connect(self._on_seed)
        self.class_combo = QComboBox()
        self.class_combo.currentIndexChanged.connect(lambda _: self._schedule())
        self.truncation = QDoubleSpinBox()
        self.truncation.setRange(0.1, 1.0)
        self.truncation.setSingleStep(0.05)
        self.truncation.setValue(1.0)
        self.truncation.setToolTip("Lower: more typical, less varied images")
        self.truncation.valueChanged.connect(lambda _: self._schedule())
        form.addRow("Seed", self.seed_spin)
        form.addRow("Class", self.class_combo)
        form.addRow("Truncation", self.truncation)
        column.addWidget(seed_box)
        column.addWidget(self._directions_box(), 1)
        column.addWidget(self._mixing_box())
        return panel

    def _directions_box(self) -> QGroupBox:
        box = QGroupBox("Directions")
        inner = QVBoxLayout(box)
        row = QHBoxLayout()
        self.method_combo = QComboBox()
        self.method_combo.addItem("SeFa (closed form)", "sefa")
        self.method_combo.addItem("GANSpace (PCA)", "ganspace")
        self.count_spin = QSpinBox()
        self.count_spin.setRange(1, 32)
        self.count_spin.setValue(8)
        self.find_button = QPushButton("Find")
        self.find_button.setToolTip("Find the directions that change the images most, without labels")
        self.find_button.clicked.connect(self.find_directions)
        for widget in (self.method_combo, self.count_spin, self.find_button):
            row.addWidget(widget)
        inner.addLayout(row)
        self.slider_area = QScrollArea()
        self.slider_area.setWidgetResizable(True)
        self.slider_host = QWidget()
        self.slider_form = QFormLayout(self.slider_host)
        self.slider_area.setWidget(self.slider_host)
        inner.addWidget(self.slider_area, 1)
        library_row = QHBoxLayout()
        self.library_combo = QComboBox()
        self.library_combo.setToolTip("Direction sets saved for this run")
        self.library_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.library_combo.activated.connect(lambda _: self.load_directions())
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("name")
        self.name_edit.setMaximumWidth(90)
        self.save_directions_button = QPushButton("Save set")
        self.save_directions_button.clicked.connect(self.save_directions)
        self.reset_button = QPushButton("Reset")
        self.reset_button.clicked.connect(self.reset_sliders)
        for widget in (self.library_combo, self.name_edit, self.save_directions_button, self.reset_button):
            library_row.addWidget(widget)
        inner.addLayout(library_row)
        return box

    def _mixing_box(self) -> QGroupBox:
        self.mixing_box = QGroupBox("Style mixing (style-based models)")
        form = QFormLayout(self.mixing_box)
        self.mix_check = QCheckBox("Take another seed's styles")
        self.mix_check.toggled.connect(lambda _: self._schedule())
        self.mix_seed = QSpinBox()
        self.mix_seed.setRange(0, MAX_SEED)
        self.mix_seed.setValue(1)
        self.mix_seed.valueChanged.connect(lambda _: self._schedule())
        self.mix_layers = QComboBox()
        for name, text in (("coarse", "coarse: pose, shape"), ("middle", "middle: features"), ("fine", "fine: colour")):
            self.mix_layers.addItem(text, name)
        self.mix_layers.setCurrentIndex(2)
        self.mix_layers.currentIndexChanged.connect(lambda _: self._schedule())
        self.grid_button = QPushButton("Mixing grid")
        self.grid_button.setToolTip("Rows: this seed and the next 3; columns: the mix seed and the next 3")
        self.grid_button.clicked.connect(self.request_grid)
        form.addRow(self.mix_check)
        form.addRow("Styles of seed", self.mix_seed)
        form.addRow("Layers", self.mix_layers)
        form.addRow(self.grid_button)
        return self.mixing_box

    def _timeline(self) -> QGroupBox:
        box = QGroupBox("Keyframes")
        row = QHBoxLayout(box)
        self.timeline = QListWidget()
        self.timeline.setFlow(QListWidget.Flow.LeftToRight)
        self.timeline.setViewMode(QListWidget.ViewMode.IconMode)
        self.timeline.setIconSize(QSize(KEYFRAME_ICON, KEYFRAME_ICON))
        self.timeline.setFixedHeight(KEYFRAME_ICON + 36)
        self.timeline.setWrapping(False)
        self.timeline.setToolTip("The animation walks through these, left to right")
        self.add_key_button = QPushButton("Add current")
        self.add_key_button.clicked.connect(self.add_keyframe)
        self.remove_key_button = QPushButton("Remove")
        self.remove_key_button.clicked.connect(self.remove_keyframe)
        self.frames_spin = QSpinBox()
        self.frames_spin.setRange(2, 10_000)
        self.frames_spin.setValue(48)
        self.fps_spin = QSpinBox()
        self.fps_spin.setRange(1, 60)
        self.fps_spin.setValue(24)
        self.size_spin = QSpinBox()
        self.size_spin.setRange(16, 2048)
        self.size_spin.setValue(256)
        self.loop_check = QCheckBox("Loop")
        self.loop_check.setChecked(True)
        self.animate_button = QPushButton("Export animation…")
        self.animate_button.clicked.connect(lambda: self.export_animation())
        buttons = QGridLayout()
        cells = [
            (self.add_key_button, 0, 0, 1, 2),
            (self.remove_key_button, 0, 2, 1, 2),
            (self.loop_check, 0, 4, 1, 2),
            (QLabel("Frames"), 1, 0, 1, 1),
            (self.frames_spin, 1, 1, 1, 1),
            (QLabel("fps"), 1, 2, 1, 1),
            (self.fps_spin, 1, 3, 1, 1),
            (QLabel("Size px"), 1, 4, 1, 1),
            (self.size_spin, 1, 5, 1, 1),
            (self.animate_button, 2, 0, 1, 6),
        ]
        for widget, r, c, rows, cols in cells:
            buttons.addWidget(widget, r, c, rows, cols)
        row.addWidget(self.timeline, 1)
        row.addLayout(buttons)
        return box

    def _bottom_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.invert_button = QPushButton("Open an image to edit it…")
        self.invert_button.setToolTip("Find the latent that makes your image, then edit it like a seed")
        self.invert_button.clicked.connect(lambda: self.open_image())
        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(10, 5000)
        self.steps_spin.setValue(200)
        self.steps_spin.setToolTip("Inversion steps: more come closer, slower")
        self.noise_check = QCheckBox("Fit noise")
        self.noise_check.setToolTip("Style-based models: also fit the per-layer noise, for finer detail")
        self.open_latent_button = QPushButton("Open latent…")
        self.open_latent_button.clicked.connect(lambda: self.open_latent())
        self.save_latent_button = QPushButton("Save latent…")
        self.save_latent_button.clicked.connect(lambda: self.save_current("npz"))
        self.save_image_button = QPushButton("Save image…")
        self.save_image_button.setProperty("primary", True)
        self.save_image_button.clicked.connect(lambda: self.save_current("png"))
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(self.cancel)
        for widget in (self.invert_button, QLabel("Steps"), self.steps_spin, self.noise_check, self.open_latent_button):
            row.addWidget(widget)
        row.addStretch(1)
        for widget in (self.progress, self.cancel_button, self.save_latent_button, self.save_image_button):
            row.addWidget(widget)
        return row

    # -- worker -----------------------------------------------------------------------------------
    def make_worker(self) -> EditWorker:
        return EditWorker()

    def connect_worker(self, worker: EditWorker) -> None:  # type: ignore[override]
        self.sig_request_preview.connect(worker.preview)
        self.sig_request_directions.connect(worker.compute_directions)
        self.sig_request_save_directions.connect(worker.save_directions)
        self.sig_request_load_directions.connect(worker.load_directions)
        self.sig_request_grid.connect(worker.mix_grid)
        self.sig_request_animation.connect(worker.animate)
        self.sig_request_invert.connect(worker.invert)
        self.sig_request_save.connect(worker.save)
        self.sig_request_open_latent.connect(worker.open_latent)
        worker.sig_loaded.connect(self._on_loaded)
        worker.sig_preview.connect(self._on_preview)
        worker.sig_directions.connect(self._on_directions)
        worker.sig_library.connect(self._on_library)
        worker.sig_grid.connect(self._on_grid)
        worker.sig_done.connect(self._on_done)
        worker.sig_inverted.connect(self._on_inverted)
        worker.sig_progress.connect(self._on_progress)
        worker.sig_failed.connect(self._on_failed)

    def shutdown(self) -> None:
        """Stop the debounce timer, cancel a long job and end the worker thread."""
        self._debounce.stop()
        super().shutdown()

    # -- runs -------------------------------------------------------------------------------------
    def set_project(self, project: Project) -> None:
        """Show another project's runs."""
        self.project = project
        self.refresh_runs()

    def refresh_runs(self, select: Path | str | None = None) -> None:
        """List the noise-to-image runs with a checkpoint; keep or set the selection."""
        current = str(select) if select else self.run_combo.currentData()
        runs = [r for r in self.project.runs("generate") if list_checkpoints(r)]
        self.run_combo.blockSignals(True)
        self.run_combo.clear()
        for run_dir in runs:
            self.run_combo.addItem(run_dir.name, str(run_dir))
        index = self.run_combo.findData(current) if current else -1
        self.run_combo.setCurrentIndex(index if index >= 0 else (0 if runs else -1))
        self.run_combo.blockSignals(False)
        if self.run_combo.currentData() != (self.model or {}).get("source"):
            self._on_run_changed()

    def _on_run_changed(self, *_: object) -> None:
        source = self.run_combo.currentData()
        self.model, self.directions, self.base_latent, self.latent = None, None, None, None
        self.keyframes.clear()
        self.timeline.clear()
        self._set_sliders([])
        self._update_buttons()
        self.load_model(source)

    def _on_loaded(self, info: dict[str, Any]) -> None:
        info["source"] = self.run_combo.currentData()
        self.model = info
        space = "W+ (style-based)" if info["space"] == "w" else "z"
        self.model_label.setText(
            f"{info['family']}, step {info['step']:,}, {info['resolution']} px, edited in {space}; "
            f"previews on {info['preview']}"
        )
        self.class_combo.blockSignals(True)
        self.class_combo.clear()
        for i, name in enumerate(info["classes"]):
            self.class_combo.addItem(name, i)
        self.class_combo.setEnabled(bool(info["classes"]))
        self.class_combo.blockSignals(False)
        self.mixing_box.setEnabled(info["space"] == "w")
        self.noise_check.setEnabled(info["space"] == "w")
        self._on_library_names(info.get("library", []))
        self._update_buttons()
        self.request_preview()

    # -- preview ------------------------------------------------------------------------------------
    def _class_index(self) -> int | None:
        return self.class_combo.currentData() if self.model and self.model["classes"] else None

    def amounts(self) -> list[float]:
        """The sliders' amounts along their directions."""
        return [slider.value() / SLIDER_STEPS * SLIDER_RANGE for slider in self.sliders]

    def spec(self) -> dict[str, Any]:
        """What the preview shows, for the worker's build_latent."""
        moves = []
        if self.directions is not None:
            moves = [(self.directions.vectors[i], a) for i, a in enumerate(self.amounts()) if a]
        mixing = self.model is not None and self.model["space"] == "w" and self.mix_check.isChecked()
        return {
            "base": self.base_latent,
            "seed": self.seed_spin.value(),
            "class_index": self._class_index(),
            "truncation": self.truncation.value(),
            "moves": moves,
            "mix_seed": self.mix_seed.value() if mixing else None,
            "mix_layers": self.mix_layers.currentData(),
        }

    def _schedule(self) -> None:
        if self.model is not None:
            self._debounce.start()

    def _on_seed(self, _value: int) -> None:
        self.base_latent = None  # a new seed replaces an inverted or reopened image
        self._schedule()

    def request_preview(self) -> None:
        """Ask for the current latent's image; only the newest request is drawn."""
        if self.model is None or self.worker is None:
            return
        self.request_id += 1
        self.worker.latest_request = self.request_id
        self.sig_request_preview.emit(self.spec(), self.request_id)

    def _on_preview(self, image: np.ndarray, latent: Any, request_id: int) -> None:
        if request_id == -1:  # a reopened latent becomes the base
            self.base_latent = latent
            self.reset_sliders()
        elif request_id != self.request_id:
            return
        self.image, self.latent = image, latent
        self.canvas.set_image(array_to_qimage(image))
        self._update_buttons()

    # -- directions -------------------------------------------------------------------------------
    def find_directions(self) -> None:
        """Compute the chosen method's directions for the model."""
        if self.model is not None and self.worker is not None:
            self.sig_status.emit("Finding directions…")
            self.sig_request_directions.emit(self.method_combo.currentData(), self.count_spin.value())

    def _on_directions(self, directions: Any) -> None:
        self.directions = directions
        self._set_sliders(directions.names)
        self.sig_status.emit(
            f"{len(directions)} {directions.method} directions: move a slider to see what each changes."
        )
        self._schedule()

    def _set_sliders(self, names: list[str]) -> None:
        while self.slider_form.rowCount():
            self.slider_form.removeRow(0)
        self.sliders = []
        for name in names:
            slider = QSlider(Qt.Orientation.Horizontal)
            slider.setRange(-SLIDER_STEPS, SLIDER_STEPS)
            slider.setToolTip(f"{name}: -{SLIDER_RANGE:g} to +{SLIDER_RANGE:g} along this direction")
            slider.valueChanged.connect(lambda _: self._schedule())
            self.sliders.append(slider)
            self.slider_form.addRow(name, slider)
        self._update_buttons()

    def reset_sliders(self) -> None:
        """Every slider back to 0."""
        for slider in self.sliders:
            slider.blockSignals(True)
            slider.setValue(0)
            slider.blockSignals(False)
        self._schedule()

    def save_directions(self) -> None:
        """Save the shown directions in the run's library under the typed name."""
        name = self.name_edit.text().strip() or (self.directions.method if self.directions else "")
        if self.directions is not None and name:
            self.sig_request_save_directions.emit(self.directions, name)

    def load_directions(self) -> None:
        """Show the direction set chosen in the library list."""
        name = self.library_combo.currentData()
        if name:
            self.sig_request_load_directions.emit(name)

    def _on_library(self, sets: dict[str, Any]) -> None:
        self._on_library_names(sorted(sets))

    def _on_library_names(self, names: list[str]) -> None:
        self.library_combo.clear()
        self.library_combo.addItem("Saved sets…" if names else "No saved sets", "")
        for name in names:
            self.library_combo.addItem(name, name)

    # -- style mixing grid ------------------------------------------------------------------------
    def request_grid(self) -> None:
        """The mixing grid of four seeds from the current one against four from the mix seed."""
        if self.model is None or self.model["space"] != "w":
            return
        seed, other = self.seed_spin.value(), self.mix_seed.value()
        rows, cols = [seed + i for i in range(4)], [other + i for i in range(4)]
        self.sig_request_grid.emit(rows, cols, self.mix_layers.currentData(), self._class_index())

    def _on_grid(self, grid: np.ndarray) -> None:
        while self.grid_layout.count():
            item = self.grid_layout.takeAt(0)
            if item.widget():
                item.widget().deleteLater()
        side = 96
        for r, row in enumerate(grid):
            for c, image in enumerate(row):
                label = QLabel()
                if r or c:
                    label.setPixmap(_pixmap(image, side))
                self.grid_layout.addWidget(label, r, c)
        self.tabs.setCurrentWidget(self.grid_widget)

    # -- keyframes and animation -------------------------------------------------------------------
    def add_keyframe(self) -> None:
        """Append the current latent to the timeline."""
        if self.latent is None or self.image is None:
            return
        self.keyframes.append(self.latent)
        item = QListWidgetItem(QIcon(_pixmap(self.image, KEYFRAME_ICON)), f"{len(self.keyframes)}")
        self.timeline.addItem(item)
        self._update_buttons()

    def remove_keyframe(self) -> None:
        """Remove the selected keyframe (the last one when none is selected)."""
        row = self.timeline.currentRow() if self.timeline.currentRow() >= 0 else len(self.keyframes) - 1
        if 0 <= row < len(self.keyframes):
            del self.keyframes[row]
            self.timeline.takeItem(row)
        self._update_buttons()

    def export_animation(self, path: str | None = None) -> None:
        """Ask where, then write the walk through the keyframes (progress; Cancel stops it)."""
        if len(self.keyframes) < 2 or self.busy:
            return
        if path is None:
            path, _ = QFileDialog.getSaveFileName(
                self, "Export animation", str(self.project.root / "walk.mp4"), ANIMATION_FILTER
            )
        if not path:
            return
        self._start_job("animation", "Rendering the animation")
        self.sig_request_animation.emit(
            list(self.keyframes),
            self.frames_spin.value(),
            self.loop_check.isChecked(),
            float(self.fps_spin.value()),
            self.size_spin.value(),
            str(path),
        )

    # -- inversion, latents, saving -----------------------------------------------------------------
    def open_image(self, path: str | None = None) -> None:
        """Ask for an image, then find its latent (progress; Cancel keeps the closest so far)."""
        if self.model is None or self.busy:
            return
        if path is None:
            path, _ = QFileDialog.getOpenFileName(
                self, "Open an image to edit", "", "Images (*.png *.jpg *.jpeg *.webp)"
            )
        if not path:
            return
        self._start_job("inversion", f"Inverting {Path(path).name}")
        noise = self.noise_check.isChecked() and self.model["space"] == "w"
        self.sig_request_invert.emit(str(path), self.steps_spin.value(), self._class_index(), noise)

    def _on_inverted(self, latent: Any, result: Any) -> None:
        self.base_latent = latent
        self.reset_sliders()
        self.request_preview()

    def open_latent(self, path: str | None = None) -> None:
        """Reopen a saved latent of this model as the image to edit."""
        if self.model is None:
            return
        if path is None:
            path, _ = QFileDialog.getOpenFileName(self, "Open latent", str(self.project.root), "Latents (*.npz)")
        if path:
            self.sig_request_open_latent.emit(str(path))

    def save_current(self, kind: str, path: str | None = None) -> None:
        """Save the shown image (.png, watermarked and signed) or its latent (.npz)."""
        if self.latent is None:
            return
        if path is None:
            filters = "PNG image (*.png)" if kind == "png" else "Latent (*.npz)"
            suggested = self.project.root / f"edit-{self.seed_spin.value():06d}.{kind}"
            path, _ = QFileDialog.getSaveFileName(self, "Save", str(suggested), filters)
        if not path:
            return
        if not str(path).lower().endswith(f".{kind}"):
            path = f"{path}.{kind}"
        self.sig_request_save.emit(self.latent, str(path))

    # -- jobs ---------------------------------------------------------------------------------------
    def _start_job(self, kind: str, text: str) -> None:
        assert self.worker is not None
        self.worker.arm()
        self.busy = kind
        self.progress.setRange(0, 0)
        self.progress.setVisible(True)
        self.cancel_button.setVisible(True)
        self.sig_job.emit(text, 0, 0)
        self._update_buttons()

    def cancel(self) -> None:
        """Stop the running animation or inversion."""
        if self.worker is not None:
            self.worker.cancel()

    def _on_progress(self, done: int, total: int, _name: str) -> None:
        if self.busy:
            self.progress.setRange(0, total)
            self.progress.setValue(done)
            self.sig_job.emit("Rendering the animation" if self.busy == "animation" else "Inverting", done, total)

    def _on_done(self, kind: str, message: str) -> None:
        if kind == self.busy:
            self._end_job()
        self.sig_status.emit(message)

    def _end_job(self) -> None:
        self.busy = ""
        self.progress.setVisible(False)
        self.cancel_button.setVisible(False)
        self.sig_job.emit("", 0, 0)
        self._update_buttons()

    def _on_failed(self, message: str, details: str) -> None:
        if self.busy:
            self._end_job()
        if self.model is None:
            self.model_label.setText("Could not load this model.")
        self.errors.report(message, details)

    def _update_buttons(self) -> None:
        ready = self.model is not None and not self.busy
        for widget in (self.find_button, self.invert_button, self.open_latent_button):
            widget.setEnabled(ready)
        self.save_image_button.setEnabled(ready and self.latent is not None)
        self.save_latent_button.setEnabled(ready and self.latent is not None)
        self.add_key_button.setEnabled(ready and self.latent is not None)
        self.remove_key_button.setEnabled(bool(self.keyframes))
        self.animate_button.setEnabled(ready and len(self.keyframes) >= 2)
        self.save_directions_button.setEnabled(ready and self.directions is not None)
        self.reset_button.setEnabled(bool(self.sliders))
