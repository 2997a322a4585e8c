"""A zoomable before/after viewer for upscaling: the before image is shown at the after's size, both
sides share one view (mouse-wheel zoom around the cursor, drag to pan, a 100% / fit toggle), and a
vertical handle the user drags splits the view into before (left) and after (right).

One view transform for both images is what keeps them aligned: the widget maps a point to the after's
pixel grid, and the before is drawn over the same rect, stretched by the after/before size ratio. So
a pixel of the after and the before pixel it came from are always under the same widget point,
whatever the zoom and pan (tests/studio/test_upscale.py samples both halves to check it).
"""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, QSizeF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QImage,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPalette,
    QPen,
    QResizeEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import QWidget

from studio.widgets.compare_view import HANDLE_GRIP_RADIUS, CompareView, fit_rect, paint_backdrop, paint_badge
from studio.widgets.images import array_to_qimage

MAX_ZOOM = 32.0
"""Most screen pixels per after pixel: enough to see single pixels of a 4x result clearly."""
WHEEL_STEP = math.sqrt(2.0)
"""Zoom factor per wheel notch (120 units): two notches double the size."""
HANDLE_PICK = 8.0
"""A press within this many widget pixels of the split line drags the split; elsewhere it pans."""
PRESCALE_BELOW = 0.5
"""Below this zoom the images are shown from copies scaled with area averaging (a plain bilinear
draw of an image shrunk more than 2x aliases: fine detail turns into moiré the result does not have)."""


class ZoomCompareView(QWidget):
    """Before left of a draggable split, after right of it, over one zoomable and pannable view."""

    sig_split_changed = Signal(float)
    """The split moved; carries the new fraction of the widget's width (0: all after, 1: all before)."""
    sig_view_changed = Signal(float, bool)
    """The zoom or pan changed: the zoom (screen pixels per after pixel) and whether the view fits."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._before: QImage | None = None
        self._after: QImage | None = None
        self._split = 0.5
        self._zoom = 1.0
        self._origin = QPointF(0, 0)  # widget position of the shown image's top-left corner
        self._fit = True
        self._busy = ""
        self._placeholder = ""
        self._drag: str | None = None  # "split" or "pan" while a button is held
        self._last = QPointF()
        self._scaled: tuple[float, QImage | None, QImage | None] | None = None  # (zoom, before, after)
        self.setMinimumSize(QSize(160, 160))
        self.setMouseTracking(True)  # the cursor shows whether a press drags the split or pans
        self.setCursor(Qt.CursorShape.OpenHandCursor)

    # -- content -----------------------------------------------------------------------------------
    def set_images(self, before: np.ndarray | QImage | None, after: np.ndarray | QImage | None) -> None:
        """Show ``before`` and ``after`` (uint8 arrays or QImages) and fit them; ``after`` sets the view's grid.

        Without ``after`` the before is shown alone at its own size (the input before upscaling).
        """
        self._before = _qimage(before)
        self._after = _qimage(after)
        self._scaled = None
        self._fit = True
        self._apply_fit()
        self.update()

    def has_after(self) -> bool:
        """True when an ``after`` image is shown."""
        return self._after is not None

    def image_size(self) -> QSize:
        """Size of the view's pixel grid: the after's, else the before's (empty when neither)."""
        reference = self._reference()
        return QSize() if reference is None else reference.size()

    def set_placeholder(self, text: str) -> None:
        """Text shown centred while there are no images."""
        self._placeholder = text
        self.update()

    def placeholder(self) -> str:
        """The text shown while there are no images."""
        return self._placeholder

    def set_busy(self, text: str | bool) -> None:
        """Show a badge (True: "Working…", or the given text, e.g. "Tile 3 of 12"); False or '' hides it."""
        self._busy = "Working…" if text is True else (text or "")
        self.update()

    def is_busy(self) -> bool:
        """True while the busy badge is shown."""
        return bool(self._busy)

    # -- split -------------------------------------------------------------------------------------
    def set_split(self, fraction: float) -> None:
        """Move the split to ``fraction`` of the widget's width (clamped to 0..1)."""
        fraction = min(1.0, max(0.0, float(fraction)))
        if fraction == self._split:
            return
        self._split = fraction
        self.update()
        self.sig_split_changed.emit(fraction)

    def split(self) -> float:
        """The split position as a fraction of the widget's width."""
        return self._split

    def split_x(self) -> float:
        """The split line's x in widget coordinates."""
        return self._split * self.width()

    # -- view --------------------------------------------------------------------------------------
    def zoom(self) -> float:
        """Screen (widget) pixels per after pixel."""
        return self._zoom

    def is_fit(self) -> bool:
        """True while the whole image is fitted into the widget (it refits when the widget resizes)."""
        return self._fit

    def fit_zoom(self) -> float:
        """The zoom at which the whole image fits the widget."""
        size = self.image_size()
        if size.isEmpty():
            return 1.0
        return fit_rect(size, self._area()).width() / size.width()

    def actual_zoom(self) -> float:
        """The zoom of "100%": one after pixel per physical screen pixel."""
        return 1.0 / max(1e-6, self.devicePixelRatioF())

    def set_fit(self) -> None:
        """Fit the whole image into the widget."""
        self._fit = True
        self._apply_fit()
        self._view_changed()

    def set_actual_size(self, anchor: QPointF | None = None) -> None:
        """Show the image at 100%, keeping the image point under ``anchor`` (default: the centre) in place."""
        self.set_zoom(self.actual_zoom(), anchor)

    def toggle_fit(self) -> None:
        """Switch between fit and 100% (the toolbar button and a double-click)."""
        if self._fit:
            self.set_actual_size()
        else:
            self.set_fit()

    def set_zoom(self, zoom: float, anchor: QPointF | None = None) -> None:
        """Zoom to ``zoom`` keeping the image point under widget point ``anchor`` (default: the centre) fixed."""
        if self._reference() is None:
            return
        anchor = QPointF(self.width() / 2, self.height() / 2) if anchor is None else QPointF(anchor)
        low = min(self.fit_zoom(), self.actual_zoom()) / 2
        zoom = min(MAX_ZOOM, max(low, float(zoom)))
        point = self.widget_to_image(anchor)
        self._zoom, self._fit = zoom, False
        self._origin = QPointF(anchor.x() - point.x() * zoom, anchor.y() - point.y() * zoom)
        self._clamp()
        self._view_changed()

    def pan_by(self, dx: float, dy: float) -> None:
        """Move the image by (dx, dy) widget pixels (both sides together; kept on screen)."""
        if self._reference() is None:
            return
        self._origin = QPointF(self._origin.x() + dx, self._origin.y() + dy)
        self._fit = False
        self._clamp()
        self._view_changed()

    def image_rect(self) -> QRectF:
        """Where the whole image lies in widget coordinates (empty when there is none)."""
        size = self.image_size()
        if size.isEmpty():
            return QRectF()
        return QRectF(self._origin, QSizeF(size.width() * self._zoom, size.height() * self._zoom))

    def widget_to_image(self, point: QPointF) -> QPointF:
        """Widget point -> after pixel coordinates (the view's grid)."""
        return QPointF((point.x() - self._origin.x()) / self._zoom, (point.y() - self._origin.y()) / self._zoom)

    def image_to_widget(self, point: QPointF) -> QPointF:
        """After pixel coordinates -> widget point."""
        return QPointF(self._origin.x() + point.x() * self._zoom, self._origin.y() + point.y() * self._zoom)

    def before_pixel(self, point: QPointF) -> QPointF:
        """Widget point -> the before image's pixel coordinates (the before is stretched to the after's grid)."""
        grid = self.widget_to_image(point)
        sx, sy = self._before_ratio()
        return QPointF(grid.x() / sx, grid.y() / sy)

    def _reference(self) -> QImage | None:
        return self._after if self._after is not None else self._before

    def _before_ratio(self) -> tuple[float, float]:
        """After pixels per before pixel along x and y (1, 1 without an after)."""
        if self._before is None or self._after is None:
            return 1.0, 1.0
        return self._after.width() / self._before.width(), self._after.height() / self._before.height()

    def _area(self) -> QRectF:
        return QRectF(self.rect()).adjusted(1, 1, -1, -1)

    def _apply_fit(self) -> None:
        rect = fit_rect(self.image_size(), self._area()) if self._reference() is not None else QRectF()
        if rect.isEmpty():
            self._zoom, self._origin = 1.0, QPointF(0, 0)
            return
        self._zoom = rect.width() / self.image_size().width()
        self._origin = rect.topLeft()

    def _clamp(self) -> None:
        """Centre an axis the image does not fill; otherwise keep the widget covered (no empty margin)."""
        rect = self.image_rect()
        x, y = self._origin.x(), self._origin.y()
        if rect.width() <= self.width():
            x = (self.width() - rect.width()) / 2
        else:
            x = min(0.0, max(self.width() - rect.width(), x))
        if rect.height() <= self.height():
            y = (self.height() - rect.height()) / 2
        else:
            y = min(0.0, max(self.height() - rect.height(), y))
        self._origin = QPointF(x, y)

    def _view_changed(self) -> None:
        self.update()
        self.sig_view_changed.emit(self._zoom, self._fit)

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 (Qt name)
        """A fitted view refits; a zoomed one keeps its centre point."""
        super().resizeEvent(event)
        if self._fit:
            self._apply_fit()
        elif self._reference() is not None:
            old = event.oldSize()
            if old.isValid():
                centre = self.widget_to_image(QPointF(old.width() / 2, old.height() / 2))
                self._origin = QPointF(
                    self.width() / 2 - centre.x() * self._zoom, self.height() / 2 - centre.y() * self._zoom
                )
            self._clamp()

    # -- mouse -------------------------------------------------------------------------------------
    def _near_handle(self, x: float) -> bool:
        return self._before is not None and self._after is not None and abs(x - self.split_x()) <= HANDLE_PICK

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt name)
        """Left press on the handle drags the split; left (elsewhere) or middle press pans."""
        position = event.position()
        if event.button() == Qt.MouseButton.LeftButton and self._near_handle(position.x()):
            self._drag = "split"
        elif event.button() in (Qt.MouseButton.LeftButton, Qt.MouseButton.MiddleButton):
            self._drag = "pan"
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
        self._last = position
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt name)
        """Drag the split or pan the view; without a button, show which a press would do."""
        position = event.position()
        if self._drag == "split":
            self.set_split(position.x() / max(1, self.width()))
        elif self._drag == "pan":
            self.pan_by(position.x() - self._last.x(), position.y() - self._last.y())
        else:
            near = self._near_handle(position.x())
            self.setCursor(Qt.CursorShape.SplitHCursor if near else Qt.CursorShape.OpenHandCursor)
        self._last = position
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt name)
        """End a split drag or a pan."""
        self._drag = None
        near = self._near_handle(event.position().x())
        self.setCursor(Qt.CursorShape.SplitHCursor if near else Qt.CursorShape.OpenHandCursor)
        super().mouseReleaseEvent(event)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt name)
        """A double-click toggles fit and 100% around the clicked point."""
        if event.button() == Qt.MouseButton.LeftButton and not self._near_handle(event.position().x()):
            if self._fit:
                self.set_actual_size(event.position())
            else:
                self.set_fit()
        super().mouseDoubleClickEvent(event)

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 (Qt name)
        """The wheel zooms around the cursor (both sides together)."""
        steps = event.angleDelta().y() / 120.0
        if steps and self._reference() is not None:
            self.set_zoom(self._zoom * WHEEL_STEP**steps, event.position())
            event.accept()
        else:
            super().wheelEvent(event)

    # -- painting ----------------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt name)
        """Backdrop, the two sides, the handle, captions, the zoom and the busy badge."""
        painter = QPainter(self)
        rect = self.image_rect()
        paint_backdrop(painter, self, rect if not rect.isEmpty() else None)
        if rect.isEmpty():
            painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
            flags = Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap
            painter.drawText(self.rect().adjusted(16, 16, -16, -16), flags, self._placeholder)
        else:
            self._paint_images(painter)
        bottom_right = QPointF(self.width() - 8, self.height() - 8)
        bottom = Qt.AlignmentFlag.AlignBottom
        if self._busy:
            paint_badge(painter, self, self._busy, bottom_right, Qt.AlignmentFlag.AlignRight | bottom)
        if not rect.isEmpty():
            zoom = f"{self._zoom / self.actual_zoom() * 100:.0f}%" + (" (fit)" if self._fit else "")
            paint_badge(painter, self, zoom, QPointF(8, self.height() - 8), Qt.AlignmentFlag.AlignLeft | bottom)

    def _paint_images(self, painter: QPainter) -> None:
        shown = QRectF(self.rect()).intersected(self.image_rect())
        if shown.isEmpty():
            return
        if self._before is None or self._after is None:
            self._draw_side(painter, self._reference(), shown, shown, 1.0, 1.0)  # type: ignore[arg-type]
            return
        split_x = self.split_x()
        sx, sy = self._before_ratio()
        left = QRectF(shown.left(), shown.top(), max(0.0, split_x - shown.left()), shown.height())
        right = QRectF(split_x, shown.top(), max(0.0, shown.right() - split_x), shown.height())
        self._draw_side(painter, self._before, shown, left, sx, sy, before=True)
        self._draw_side(painter, self._after, shown, right, 1.0, 1.0)
        top = Qt.AlignmentFlag.AlignTop
        before_text = f"Before · {self._before.width()}×{self._before.height()}"
        after_text = f"After · {self._after.width()}×{self._after.height()}"
        paint_badge(painter, self, before_text, QPointF(8, 8), top | Qt.AlignmentFlag.AlignLeft)
        paint_badge(painter, self, after_text, QPointF(self.width() - 8, 8), top | Qt.AlignmentFlag.AlignRight)
        self._paint_handle(painter, split_x)

    def _draw_side(
        self,
        painter: QPainter,
        image: QImage,
        shown: QRectF,
        clip: QRectF,
        sx: float,
        sy: float,
        before: bool = False,
    ) -> None:
        """Draw the part of ``image`` under ``shown`` (widget coords), clipped to ``clip``.

        ``sx, sy``: after pixels per pixel of ``image`` (the before is stretched to the after's grid).
        """
        if clip.width() <= 0 or clip.height() <= 0:
            return
        grid = QRectF(self.widget_to_image(shown.topLeft()), self.widget_to_image(shown.bottomRight()))
        painter.save()
        painter.setClipRect(clip)
        scaled = self._prescaled(before) if self._zoom < PRESCALE_BELOW else None
        if scaled is not None:
            # the copy is the whole image at the current zoom: its pixel grid is the widget's, offset by origin
            source = QRectF(shown.topLeft() - self._origin, shown.size())
            painter.drawImage(shown, scaled, source)
        else:
            # Pixels larger than a screen pixel are drawn as crisp squares (what the file holds), not blurred.
            smooth = self._zoom * sx < 1.0
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, smooth)
            source = QRectF(grid.left() / sx, grid.top() / sy, grid.width() / sx, grid.height() / sy)
            painter.drawImage(shown, image, source)
        painter.restore()

    def _prescaled(self, before: bool) -> QImage | None:
        """The before or after scaled (area-averaged) to the image rect's size at the current zoom; cached."""
        if self._scaled is None or self._scaled[0] != self._zoom:
            size = self.image_rect().size().toSize()
            if size.isEmpty():
                return None
            mode = Qt.AspectRatioMode.IgnoreAspectRatio
            smooth = Qt.TransformationMode.SmoothTransformation
            # Both copies get exactly the same size, so their pixels stay aligned like the full images.
            self._scaled = (
                self._zoom,
                None if self._before is None else self._before.scaled(size, mode, smooth),
                None if self._after is None else self._after.scaled(size, mode, smooth),
            )
        if self._after is None:
            return self._scaled[1]
        return self._scaled[1] if before else self._scaled[2]

    def _paint_handle(self, painter: QPainter, x: float) -> None:
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        # A light line with a dark halo reads on any image content, dark or bright.
        painter.setPen(QPen(QColor(0, 0, 0, 110), 3))
        painter.drawLine(QPointF(x, 0), QPointF(x, self.height()))
        painter.setPen(QPen(QColor(255, 255, 255, 230), 1.2))
        painter.drawLine(QPointF(x, 0), QPointF(x, self.height()))
        centre = QPointF(x, self.height() / 2)
        painter.setPen(QPen(QColor(0, 0, 0, 140), 1))
        painter.setBrush(QColor(255, 255, 255, 235))
        painter.drawEllipse(centre, HANDLE_GRIP_RADIUS, HANDLE_GRIP_RADIUS)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(60, 60, 60))
        painter.drawPath(CompareView._grip_arrows(centre))
        painter.restore()


def _qimage(image: np.ndarray | QImage | None) -> QImage | None:
    if image is None or isinstance(image, QImage):
        return image
    return array_to_qimage(image)
