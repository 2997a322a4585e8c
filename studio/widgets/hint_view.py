"""An RGB image the user clicks on to place colour hints (for interactive colorization), with undo.

Hints are ``(x, y, (r, g, b))`` in IMAGE pixel coordinates, so they stay put however the widget is
sized. Every change to the hint list (add, remove, clear) is one undo step; loading a new image
starts a fresh list and a fresh history.
"""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import QWidget

from studio.widgets.compare_view import fit_rect, paint_backdrop
from studio.widgets.images import array_to_qimage

Rgb = tuple[int, int, int]
Hint = tuple[int, int, Rgb]

HINT_RADIUS = 6.0
"""Radius of a drawn hint, in widget pixels."""
REMOVE_DISTANCE = 12.0
"""A right click removes the nearest hint within this many widget pixels."""
HISTORY_LIMIT = 100


def contrast_color(rgb: Rgb) -> QColor:
    """Black for a light colour, white for a dark one (by perceived luminance)."""
    r, g, b = rgb
    luminance = 0.299 * r + 0.587 * g + 0.114 * b
    return QColor(0, 0, 0) if luminance >= 140 else QColor(255, 255, 255)


def _as_rgb(rgb: Rgb) -> Rgb:
    values = tuple(int(v) for v in rgb)
    if len(values) != 3:
        raise ValueError(f"a hint colour needs 3 channels, got {rgb!r}")
    r, g, b = (min(255, max(0, v)) for v in values)
    return r, g, b


class HintImageView(QWidget):
    """Shows an image; left click adds a colour hint, right click removes the nearest, shift+click picks."""

    sig_hints_changed = Signal(object)
    """The hint list changed; carries a copy of it (list of (x, y, (r, g, b)))."""
    sig_history_changed = Signal(bool, bool)
    """Whether undo and redo are possible changed; carries (can_undo, can_redo)."""
    sig_color_picked = Signal(object)
    """Shift+click took the image colour under the cursor as the hint colour; carries (r, g, b)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._pixels: np.ndarray | None = None
        self._image: QImage | None = None
        self._hints: list[Hint] = []
        self._undo: list[list[Hint]] = []
        self._redo: list[list[Hint]] = []
        self._history_state = (False, False)
        self._color: Rgb = (220, 60, 50)
        self._placeholder = ""
        self.setMinimumSize(QSize(128, 128))
        self.setCursor(Qt.CursorShape.PointingHandCursor)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt name)
        """512 x 512 widget pixels."""
        return QSize(512, 512)

    # -- image and colour --------------------------------------------------------------------------
    def set_image(self, array: np.ndarray) -> None:
        """Show a uint8 (H, W) or (H, W, 3) image; the hints and their history are cleared."""
        data = np.asarray(array, dtype=np.uint8)
        pixels = np.repeat(data[:, :, None], 3, axis=2) if data.ndim == 2 else data[:, :, :3]
        self._pixels = np.ascontiguousarray(pixels)
        self._image = array_to_qimage(self._pixels)
        self._hints, self._undo, self._redo = [], [], []
        self.update()
        self.sig_hints_changed.emit([])
        self._emit_history()

    def image_size(self) -> tuple[int, int] | None:
        """(width, height) of the image, or None when there is none."""
        return None if self._image is None else (self._image.width(), self._image.height())

    def set_placeholder(self, text: str) -> None:
        """Text shown centred while there is no image."""
        self._placeholder = text
        self.update()

    def set_hint_color(self, rgb: Rgb) -> None:
        """The colour the next left click places."""
        self._color = _as_rgb(rgb)

    def hint_color(self) -> Rgb:
        """The colour the next left click places."""
        return self._color

    # -- hints -------------------------------------------------------------------------------------
    def hints(self) -> list[Hint]:
        """A copy of the hints, oldest first."""
        return list(self._hints)

    def add_hint(self, x: int, y: int, rgb: Rgb) -> None:
        """Add a hint at image pixel (x, y). Undoable; ValueError outside the image."""
        size = self.image_size()
        if size is None or not (0 <= x < size[0] and 0 <= y < size[1]):
            raise ValueError(f"({x}, {y}) is not a pixel of the image (size {size})")
        self._apply([*self._hints, (int(x), int(y), _as_rgb(rgb))])

    def remove_hint(self, index: int) -> None:
        """Remove the hint at ``index`` of ``hints()``. Undoable; IndexError when there is none."""
        if not 0 <= index < len(self._hints):
            raise IndexError(f"no hint {index}; there are {len(self._hints)}")
        self._apply(self._hints[:index] + self._hints[index + 1 :])

    def clear_hints(self) -> None:
        """Remove every hint. Undoable; does nothing when there are none."""
        if self._hints:
            self._apply([])

    def hint_near(self, point: QPointF, distance: float = REMOVE_DISTANCE) -> int | None:
        """Index of the hint drawn nearest to widget ``point`` within ``distance`` widget px, or None."""
        best, best_distance = None, distance
        for index, (x, y, _) in enumerate(self._hints):
            centre = self.image_to_widget(x, y)
            d = math.hypot(centre.x() - point.x(), centre.y() - point.y())
            if d <= best_distance:
                best, best_distance = index, d
        return best

    # -- history -----------------------------------------------------------------------------------
    def can_undo(self) -> bool:
        """True when there is a hint change to undo."""
        return bool(self._undo)

    def can_redo(self) -> bool:
        """True when there is an undone hint change to redo."""
        return bool(self._redo)

    def undo(self) -> None:
        """Go back one hint change."""
        if self._undo:
            self._redo.append(self._hints)
            self._show_hints(self._undo.pop())

    def redo(self) -> None:
        """Re-apply the last undone hint change."""
        if self._redo:
            self._undo.append(self._hints)
            self._show_hints(self._redo.pop())

    def _apply(self, hints: list[Hint]) -> None:
        self._undo.append(self._hints)
        del self._undo[:-HISTORY_LIMIT]
        self._redo.clear()
        self._show_hints(hints)

    def _show_hints(self, hints: list[Hint]) -> None:
        self._hints = hints
        self.update()
        self.sig_hints_changed.emit(list(hints))
        self._emit_history()

    def _emit_history(self) -> None:
        state = (self.can_undo(), self.can_redo())
        if state != self._history_state:
            self._history_state = state
            self.sig_history_changed.emit(*state)

    # -- geometry ----------------------------------------------------------------------------------
    def image_rect(self) -> QRectF:
        """Where the image is shown, in widget coordinates (empty without an image)."""
        if self._image is None:
            return QRectF()
        return fit_rect(self._image.size(), QRectF(self.rect()).adjusted(1, 1, -1, -1))

    def widget_to_image(self, point: QPointF) -> QPointF | None:
        """A widget position in image coordinates, or None outside the image."""
        rect = self.image_rect()
        if self._image is None or rect.isEmpty():
            return None
        scale = self._image.width() / rect.width()
        x, y = (point.x() - rect.left()) * scale, (point.y() - rect.top()) * scale
        if not (0 <= x < self._image.width() and 0 <= y < self._image.height()):
            return None
        return QPointF(x, y)

    def image_to_widget(self, x: float, y: float) -> QPointF:
        """The widget position of the centre of image pixel (x, y)."""
        rect = self.image_rect()
        scale = rect.width() / self._image.width() if self._image is not None and not rect.isEmpty() else 1.0
        return QPointF(rect.left() + (x + 0.5) * scale, rect.top() + (y + 0.5) * scale)

    # -- mouse -------------------------------------------------------------------------------------
    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt name)
        """Left: add a hint (with Shift: pick the colour); right: remove the nearest hint."""
        button, position = event.button(), event.position()
        if button == Qt.MouseButton.RightButton:
            index = self.hint_near(position)
            if index is not None:
                self.remove_hint(index)
            return
        if button != Qt.MouseButton.LeftButton:
            super().mousePressEvent(event)
            return
        pixel = self.widget_to_image(position)
        if pixel is None:
            return
        x, y = int(pixel.x()), int(pixel.y())
        if event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            self._pick_color(x, y)
        else:
            self.add_hint(x, y, self._color)

    def _pick_color(self, x: int, y: int) -> None:
        assert self._pixels is not None
        r, g, b = (int(v) for v in self._pixels[y, x])
        self._color = (r, g, b)
        self.sig_color_picked.emit(self._color)

    # -- painting ----------------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt name)
        """Backdrop, the image scaled to fit, then every hint as a ringed dot."""
        painter = QPainter(self)
        rect = self.image_rect()
        if self._image is None or rect.isEmpty():
            paint_backdrop(painter, self)
            painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
            flags = Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap
            painter.drawText(self.rect().adjusted(16, 16, -16, -16), flags, self._placeholder)
            return
        paint_backdrop(painter, self, rect)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.drawImage(rect, self._image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        for x, y, rgb in self._hints:
            self._paint_hint(painter, self.image_to_widget(x, y), rgb)

    @staticmethod
    def _paint_hint(painter: QPainter, centre: QPointF, rgb: Rgb) -> None:
        ring = contrast_color(rgb)
        # A faint halo of the opposite tone keeps a white ring visible on white paper (and black on black).
        halo = QColor(255 - ring.red(), 255 - ring.green(), 255 - ring.blue(), 150)
        painter.setPen(QPen(halo, 1))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawEllipse(centre, HINT_RADIUS + 1.5, HINT_RADIUS + 1.5)
        painter.setPen(QPen(ring, 2))
        painter.setBrush(QColor(*rgb))
        painter.drawEllipse(centre, HINT_RADIUS, HINT_RADIUS)
