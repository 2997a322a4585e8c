"""The live preview: only the newest grid is drawn (on a timer), and a slider scrubs earlier frames.

``push()`` may be called for every preview a run produces; it only keeps the newest array. A timer
converts that array to a QImage at most ``frame_ms`` apart, so a burst of previews costs one
conversion. Earlier frames are read back from the PNG files the trainer saved in the run folder.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import QRect, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QImage, QPainter, QPaintEvent
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSlider, QVBoxLayout, QWidget

from studio.widgets.images import array_to_qimage

PathForStep = Callable[[int], Path]


class ImageCanvas(QWidget):
    """Draws one QImage centred and scaled to fit; crisp whole-number zoom from 2x up, smooth otherwise."""

    def __init__(self, placeholder: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.image: QImage | None = None
        self.placeholder = placeholder
        self.setMinimumSize(QSize(200, 200))

    def set_image(self, image: QImage | None) -> None:
        """Show ``image`` (None: the placeholder text)."""
        self.image = image
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt name)
        """Paint the image, or the placeholder when there is none."""
        painter = QPainter(self)
        if self.image is None or self.image.isNull():
            painter.setPen(self.palette().placeholderText().color())
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.placeholder)
            return
        target = self._target_rect()
        whole = target.width() % self.image.width() == 0
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, not whole)
        painter.drawImage(target, self.image)

    def _target_rect(self) -> QRect:
        assert self.image is not None
        scale = min(self.width() / self.image.width(), self.height() / self.image.height())
        if scale >= 2:
            scale = int(scale)  # whole-number zoom keeps every pixel the same size (crisp pixel art)
        w, h = int(self.image.width() * scale), int(self.image.height() * scale)
        return QRect((self.width() - w) // 2, (self.height() - h) // 2, w, h)


class PreviewView(QWidget):
    """Newest preview grid of a run plus a slider over every earlier preview of it."""

    sig_frame_shown = Signal(int)
    """A preview frame was drawn; carries its training step."""

    def __init__(self, parent: QWidget | None = None, frame_ms: int = 100) -> None:
        super().__init__(parent)
        self.canvas = ImageCanvas("The fixed-seed preview appears here after the first training step.")
        self.steps: list[int] = []
        self.path_for: PathForStep | None = None
        self.latest: QImage | None = None
        self._pending: tuple[np.ndarray, int] | None = None
        self.frames_drawn = 0
        self._build(frame_ms)

    def _build(self, frame_ms: int) -> None:
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 0)
        self.slider.setEnabled(False)
        self.slider.setToolTip("Scrub through earlier previews of this run; drag to the right end to follow live")
        self.slider.valueChanged.connect(self._on_slider)
        self.step_label = QLabel("no preview yet")
        self.step_label.setObjectName("Muted")
        self.live_button = QPushButton("Live")
        self.live_button.setToolTip("Jump back to the newest preview")
        self.live_button.clicked.connect(self.follow_live)
        row = QHBoxLayout()
        row.addWidget(self.slider, 1)
        row.addWidget(self.step_label)
        row.addWidget(self.live_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.canvas, 1)
        layout.addLayout(row)
        self.timer = QTimer(self)
        self.timer.setInterval(frame_ms)
        self.timer.timeout.connect(self.flush)
        self.timer.start()

    # -- feeding ----------------------------------------------------------------------------------
    def clear(self) -> None:
        """Forget every frame (a new run starts)."""
        self.steps, self.latest, self._pending, self.path_for = [], None, None, None
        self.canvas.set_image(None)
        self._sync_slider()

    def set_history(self, steps: list[int], path_for: PathForStep) -> None:
        """Frames already on disk (a run opened from the list): show the newest, allow scrubbing."""
        self.clear()
        self.steps, self.path_for = sorted(steps), path_for
        self._sync_slider()
        if self.steps:
            self._show_index(len(self.steps) - 1)

    def set_path_for(self, path_for: PathForStep | None) -> None:
        """How to find the saved PNG of a step, for scrubbing a live run."""
        self.path_for = path_for

    def push(self, grid: np.ndarray, step: int) -> None:
        """A new preview arrived: remember its step (for scrubbing) and keep only the newest array."""
        if not self.steps or step > self.steps[-1]:
            self.steps.append(step)
        self._pending = (grid, step)

    def flush(self) -> None:
        """Draw the newest pending frame, if any (called by the timer)."""
        if self._pending is None:
            return
        grid, step = self._pending
        self._pending = None
        following = self.slider.value() >= self.slider.maximum()
        self.latest = array_to_qimage(grid)
        self._sync_slider(keep_value=not following)
        if following:
            self._draw(self.latest, step)

    # -- scrubbing --------------------------------------------------------------------------------
    def is_live(self) -> bool:
        """True when the view follows the newest frame (slider at the right end)."""
        return self.slider.value() >= self.slider.maximum()

    def follow_live(self) -> None:
        """Move the slider to the newest frame."""
        if self.steps:
            self.slider.setValue(len(self.steps) - 1)

    def _sync_slider(self, keep_value: bool = False) -> None:
        value = self.slider.value()
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(0, len(self.steps) - 1))
        self.slider.setValue(value if keep_value else max(0, len(self.steps) - 1))
        self.slider.blockSignals(False)
        self.slider.setEnabled(len(self.steps) > 1)

    def _on_slider(self, index: int) -> None:
        if 0 <= index < len(self.steps):
            self._show_index(index)

    def _show_index(self, index: int) -> None:
        step = self.steps[index]
        if index == len(self.steps) - 1 and self.latest is not None and self._pending is None:
            self._draw(self.latest, step)
            return
        path = self.path_for(step) if self.path_for else None
        image = QImage(str(path)) if path is not None and path.is_file() else QImage()
        if not image.isNull():
            self._draw(image, step)

    def _draw(self, image: QImage, step: int) -> None:
        self.canvas.set_image(image)
        self.frames_drawn += 1
        self.step_label.setText(f"step {step:,}" + ("" if self.is_live() else "  (earlier frame)"))
        self.sig_frame_shown.emit(step)
