"""A drawing surface for line art: black pen and white eraser on a grayscale image, with undo.

The drawing lives in a ``Format_Grayscale8`` QImage at its own resolution; the widget shows it scaled
to fit (aspect kept, centred) and maps mouse positions back to image coordinates, so strokes land on
the same image pixels whatever the widget's size. Mouse strokes and ``draw_stroke()`` go through the
same begin/extend/end code, and each stroke is one undo step.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QEvent, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QEnterEvent,
    QImage,
    QKeyEvent,
    QKeySequence,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPaintEvent,
    QPen,
)
from PySide6.QtWidgets import QWidget

from studio.widgets.compare_view import fit_rect, paint_backdrop
from studio.widgets.images import array_to_qimage

HISTORY_LIMIT = 50
"""Most undo steps kept; the oldest is dropped beyond this."""
TOOLS = {"pen": 0, "eraser": 255}
"""Tool name -> the gray level it paints."""
MIN_PEN, MAX_PEN = 1, 64
WHITE = 255
_LUMA = np.array([0.299, 0.587, 0.114])


def to_grayscale(array: np.ndarray) -> np.ndarray:
    """A uint8 (H, W) drawing from (H, W), (H, W, 3) or (H, W, 4) uint8; alpha is composited on white."""
    data = np.asarray(array)
    if data.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {data.dtype}")
    if data.ndim == 2:
        return data.copy()
    if data.ndim != 3 or data.shape[2] not in (3, 4):
        raise ValueError(f"expected an (H, W), (H, W, 3) or (H, W, 4) image, got shape {data.shape}")
    gray = data[:, :, :3].astype(np.float64) @ _LUMA
    if data.shape[2] == 4:
        alpha = data[:, :, 3] / 255.0
        gray = gray * alpha + WHITE * (1.0 - alpha)
    return np.clip(np.rint(gray), 0, 255).astype(np.uint8)


def _blank(width: int, height: int) -> QImage:
    image = QImage(width, height, QImage.Format.Format_Grayscale8)
    image.fill(WHITE)
    return image


class SketchCanvas(QWidget):
    """Draw line art with the mouse; ``to_array()`` gives the drawing as uint8 (H, W), white background."""

    sig_changed = Signal()
    """The drawing changed (every stroke move, stroke end, undo, redo, clear, set_image)."""
    sig_stroke_finished = Signal()
    """A stroke ended (mouse release or the end of ``draw_stroke``)."""
    sig_history_changed = Signal(bool, bool)
    """Whether undo and redo are possible changed; carries (can_undo, can_redo)."""

    def __init__(self, width: int = 512, height: int = 512, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._image = _blank(width, height)
        self._undo: list[QImage] = []
        self._redo: list[QImage] = []
        self._history_state = (False, False)
        self._tool = "pen"
        self._pen_size = 4
        self._stroking = False
        self._last = QPointF()
        self._last_mid = QPointF()
        self._hover: QPointF | None = None
        self.setMinimumSize(QSize(128, 128))
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setCursor(Qt.CursorShape.CrossCursor)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt name)
        """512 x 512 widget pixels."""
        return QSize(512, 512)

    # -- tools -------------------------------------------------------------------------------------
    def set_tool(self, name: str) -> None:
        """Pick "pen" (draws black) or "eraser" (draws white)."""
        if name not in TOOLS:
            raise ValueError(f"unknown tool {name!r}; expected one of {sorted(TOOLS)}")
        self._tool = name

    def tool(self) -> str:
        """The current tool's name."""
        return self._tool

    def set_pen_size(self, px: int) -> None:
        """Stroke width in image pixels, clamped to 1..64."""
        self._pen_size = int(min(MAX_PEN, max(MIN_PEN, px)))
        self.update()

    def pen_size(self) -> int:
        """Stroke width in image pixels."""
        return self._pen_size

    # -- the drawing -------------------------------------------------------------------------------
    def image_size(self) -> tuple[int, int]:
        """(width, height) of the drawing in pixels."""
        return self._image.width(), self._image.height()

    def to_array(self) -> np.ndarray:
        """A uint8 (H, W) copy of the drawing."""
        width, height = self.image_size()
        stride = self._image.bytesPerLine()
        buffer = np.frombuffer(self._image.constBits(), np.uint8, count=stride * height)
        return buffer.reshape(height, stride)[:, :width].copy()

    def is_blank(self) -> bool:
        """True when every pixel is white."""
        return bool((self.to_array() == WHITE).all())

    def set_image(self, array: np.ndarray) -> None:
        """Load a drawing (gray, RGB or RGBA uint8); the canvas takes its size. Undoable."""
        image = array_to_qimage(to_grayscale(array))
        self._finish_stroke()
        self._push_undo()
        self._replace(image)

    def clear(self) -> None:
        """Fill the drawing with white. Undoable; does nothing on a blank drawing."""
        self._finish_stroke()
        if self.is_blank():
            return  # an undo step that changes nothing would only confuse
        self._push_undo()
        self._replace(_blank(*self.image_size()))

    def draw_stroke(self, points: list[tuple[float, float]]) -> None:
        """Draw one stroke through ``points`` (image coordinates) with the current tool: one undo step."""
        if not points:
            return
        self._finish_stroke()
        self._begin_stroke(QPointF(*points[0]))
        for x, y in points[1:]:
            self._extend_stroke(QPointF(x, y))
        self._end_stroke()

    # -- history -----------------------------------------------------------------------------------
    def can_undo(self) -> bool:
        """True when there is a step to undo."""
        return bool(self._undo)

    def can_redo(self) -> bool:
        """True when there is an undone step to redo."""
        return bool(self._redo)

    def undo(self) -> None:
        """Go back one step (a stroke, clear or set_image)."""
        self._finish_stroke()
        if self._undo:
            self._redo.append(self._image)
            self._replace(self._undo.pop())

    def redo(self) -> None:
        """Re-apply the last undone step."""
        self._finish_stroke()
        if self._redo:
            self._undo.append(self._image)
            self._replace(self._redo.pop())

    def _push_undo(self) -> None:
        self._undo.append(self._image.copy())
        del self._undo[:-HISTORY_LIMIT]
        self._redo.clear()
        self._emit_history()

    def _replace(self, image: QImage) -> None:
        self._image = image
        self.update()
        self.sig_changed.emit()
        self._emit_history()

    def _emit_history(self) -> None:
        state = (self.can_undo(), self.can_redo())
        if state != self._history_state:
            self._history_state = state
            self.sig_history_changed.emit(*state)

    # -- strokes (shared by the mouse and draw_stroke) ---------------------------------------------
    def _begin_stroke(self, point: QPointF) -> None:
        self._push_undo()
        self._stroking = True
        self._last = self._last_mid = QPointF(point)
        painter = self._stroke_painter()
        painter.drawPoint(point)  # a click without a move still leaves a round dot
        painter.end()
        self._stroke_changed()

    def _extend_stroke(self, point: QPointF) -> None:
        if point == self._last:
            return
        # Curve through midpoints with the sampled point as control: smooth even with sparse mouse events.
        mid = (self._last + point) / 2
        path = QPainterPath(self._last_mid)
        path.quadTo(self._last, mid)
        self._paint_path(path)
        self._last, self._last_mid = QPointF(point), mid
        self._stroke_changed()

    def _end_stroke(self) -> None:
        path = QPainterPath(self._last_mid)
        path.lineTo(self._last)
        self._paint_path(path)
        self._stroking = False
        self._stroke_changed()
        self.sig_stroke_finished.emit()

    def _finish_stroke(self) -> None:
        if self._stroking:
            self._end_stroke()

    def _stroke_painter(self) -> QPainter:
        painter = QPainter(self._image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        level = TOOLS[self._tool]
        painter.setPen(
            QPen(
                QColor(level, level, level),
                self._pen_size,
                Qt.PenStyle.SolidLine,
                Qt.PenCapStyle.RoundCap,
                Qt.PenJoinStyle.RoundJoin,
            )
        )
        painter.setBrush(Qt.BrushStyle.NoBrush)
        return painter

    def _paint_path(self, path: QPainterPath) -> None:
        painter = self._stroke_painter()
        painter.drawPath(path)
        painter.end()

    def _stroke_changed(self) -> None:
        self.update()
        self.sig_changed.emit()

    # -- geometry ----------------------------------------------------------------------------------
    def image_rect(self) -> QRectF:
        """Where the drawing is shown, in widget coordinates."""
        return fit_rect(self._image.size(), QRectF(self.rect()).adjusted(1, 1, -1, -1))

    def widget_to_image(self, point: QPointF) -> QPointF:
        """A widget position in image coordinates (may fall outside the image)."""
        rect = self.image_rect()
        if rect.isEmpty():
            return QPointF(point)
        scale = self._image.width() / rect.width()
        return QPointF((point.x() - rect.left()) * scale, (point.y() - rect.top()) * scale)

    def image_to_widget(self, point: QPointF) -> QPointF:
        """An image position in widget coordinates."""
        rect = self.image_rect()
        scale = rect.width() / self._image.width() if not rect.isEmpty() else 1.0
        return QPointF(rect.left() + point.x() * scale, rect.top() + point.y() * scale)

    # -- mouse and keyboard ------------------------------------------------------------------------
    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt name)
        """The left button starts a stroke."""
        if event.button() != Qt.MouseButton.LeftButton:
            super().mousePressEvent(event)
            return
        self._finish_stroke()
        self._hover = event.position()
        self._begin_stroke(self.widget_to_image(event.position()))

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt name)
        """Extend the stroke while the left button is held; always track the cursor circle."""
        self._hover = event.position()
        if self._stroking and event.buttons() & Qt.MouseButton.LeftButton:
            self._extend_stroke(self.widget_to_image(event.position()))
        else:
            self.update()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt name)
        """Releasing the left button ends the stroke."""
        if event.button() == Qt.MouseButton.LeftButton and self._stroking:
            self._extend_stroke(self.widget_to_image(event.position()))
            self._end_stroke()
        else:
            super().mouseReleaseEvent(event)

    def enterEvent(self, event: QEnterEvent) -> None:  # noqa: N802 (Qt name)
        """Show the cursor circle where the mouse came in."""
        self._hover = event.position()
        self.update()
        super().enterEvent(event)

    def leaveEvent(self, event: QEvent) -> None:  # noqa: N802 (Qt name)
        """Hide the cursor circle."""
        self._hover = None
        self.update()
        super().leaveEvent(event)

    def event(self, event: QEvent) -> bool:
        """Claim undo/redo keys before window shortcuts (an Edit menu) can take them while focused."""
        if event.type() == QEvent.Type.ShortcutOverride and self._history_action(event) is not None:
            event.accept()
            return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 (Qt name)
        """Ctrl+Z undoes; Ctrl+Shift+Z and Ctrl+Y redo."""
        action = self._history_action(event)
        if action is None:
            super().keyPressEvent(event)
            return
        action()
        event.accept()

    def _history_action(self, event: QKeyEvent) -> Callable[[], None] | None:
        mods = event.modifiers() & (
            Qt.KeyboardModifier.ControlModifier
            | Qt.KeyboardModifier.ShiftModifier
            | Qt.KeyboardModifier.AltModifier
            | Qt.KeyboardModifier.MetaModifier
        )
        ctrl, shift = Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.ShiftModifier
        key = event.key()
        if event.matches(QKeySequence.StandardKey.Undo) or (key == Qt.Key.Key_Z and mods == ctrl):
            return self.undo
        if (
            event.matches(QKeySequence.StandardKey.Redo)
            or (key == Qt.Key.Key_Z and mods == ctrl | shift)
            or (key == Qt.Key.Key_Y and mods == ctrl)
        ):
            return self.redo
        return None

    # -- painting ----------------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt name)
        """Backdrop, the drawing scaled to fit, and the pen-size circle at the cursor."""
        painter = QPainter(self)
        rect = self.image_rect()
        paint_backdrop(painter, self, rect)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.drawImage(rect, self._image)
        if self._hover is not None and not rect.isEmpty():
            self._paint_cursor(painter, rect)

    def _paint_cursor(self, painter: QPainter, rect: QRectF) -> None:
        radius = max(2.0, self._pen_size * rect.width() / self._image.width() / 2)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        # Dark ring inside a light ring: visible on black ink, white paper and the backdrop alike.
        painter.setPen(QPen(QColor(255, 255, 255, 200), 1))
        painter.drawEllipse(self._hover, radius + 1, radius + 1)
        painter.setPen(QPen(QColor(0, 0, 0, 200), 1))
        painter.drawEllipse(self._hover, radius, radius)
