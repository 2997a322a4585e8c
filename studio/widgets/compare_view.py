"""A before/after viewer: two images share one rect, split by a vertical handle the user drags.

The module also holds the small drawing helpers the image-editing widgets share: fitting an image
into a widget (aspect kept, centred) and the neutral checker backdrop painted around it.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, QSizeF, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QImage,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPaintEvent,
    QPalette,
    QPen,
    QPixmap,
    QPolygonF,
)
from PySide6.QtWidgets import QWidget

from studio.widgets.images import array_to_qimage

CHECKER_CELL = 8
"""Side of one backdrop checker square, in widget pixels."""
HANDLE_GRIP_RADIUS = 11.0


def fit_rect(image_size: QSize | QSizeF, area: QRectF) -> QRectF:
    """The largest rect of ``image_size``'s aspect ratio that fits ``area``, centred in it."""
    width, height = float(image_size.width()), float(image_size.height())
    if width <= 0 or height <= 0 or area.width() <= 0 or area.height() <= 0:
        return QRectF()
    scale = min(area.width() / width, area.height() / height)
    w, h = width * scale, height * scale
    return QRectF(area.left() + (area.width() - w) / 2, area.top() + (area.height() - h) / 2, w, h)


def checker_brush(palette: QPalette) -> QBrush:
    """A subtle two-tone checker brush made from the palette's window colour (light or dark theme)."""
    base = palette.color(QPalette.ColorRole.Window)
    # Nudge toward mid-grey so the pattern stays faint on both a near-white and a near-black theme.
    other = base.darker(108) if base.lightness() > 128 else base.lighter(125)
    tile = QPixmap(2 * CHECKER_CELL, 2 * CHECKER_CELL)
    tile.fill(base)
    painter = QPainter(tile)
    painter.fillRect(0, 0, CHECKER_CELL, CHECKER_CELL, other)
    painter.fillRect(CHECKER_CELL, CHECKER_CELL, CHECKER_CELL, CHECKER_CELL, other)
    painter.end()
    return QBrush(tile)


def paint_backdrop(painter: QPainter, widget: QWidget, image_rect: QRectF | None = None) -> None:
    """Fill ``widget`` with the checker and frame ``image_rect`` (if given) with a thin palette-mid line."""
    painter.fillRect(widget.rect(), checker_brush(widget.palette()))
    if image_rect is not None and not image_rect.isEmpty():
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        painter.setPen(QPen(widget.palette().color(QPalette.ColorRole.Mid), 1))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(image_rect.adjusted(-1, -1, 0, 0))
        painter.restore()


def paint_badge(painter: QPainter, widget: QWidget, text: str, anchor: QPointF, align: Qt.AlignmentFlag) -> None:
    """Draw ``text`` on a rounded, translucent palette-coloured badge next to ``anchor``."""
    metrics = painter.fontMetrics()
    w, h = metrics.horizontalAdvance(text) + 12, metrics.height() + 4
    x = anchor.x() - w if align & Qt.AlignmentFlag.AlignRight else anchor.x()
    y = anchor.y() - h if align & Qt.AlignmentFlag.AlignBottom else anchor.y()
    box = QRectF(x, y, w, h)
    background = widget.palette().color(QPalette.ColorRole.Window)
    background.setAlpha(200)
    painter.save()
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(background)
    painter.drawRoundedRect(box, 4, 4)
    painter.setPen(widget.palette().color(QPalette.ColorRole.WindowText))
    painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)
    painter.restore()


class CompareView(QWidget):
    """Shows ``before`` left of a draggable split line and ``after`` right of it, over one image rect."""

    sig_split_changed = Signal(float)
    """The split moved; carries the new fraction (0: all after, 1: all before)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._before: QImage | None = None
        self._after: QImage | None = None
        self._split = 0.5
        self._busy = False
        self._placeholder = ""
        self.setMinimumSize(QSize(128, 128))
        self.setCursor(Qt.CursorShape.SplitHCursor)

    # -- content -----------------------------------------------------------------------------------
    def set_images(self, before: np.ndarray | None, after: np.ndarray | None) -> None:
        """Show two uint8 images; ``after`` is stretched over ``before``'s rect when their sizes differ."""
        self._before = None if before is None else array_to_qimage(before)
        self._after = None if after is None else array_to_qimage(after)
        self.update()

    def has_after(self) -> bool:
        """True when an ``after`` image is shown."""
        return self._after is not None

    def set_placeholder(self, text: str) -> None:
        """Text shown centred while there are no images."""
        self._placeholder = text
        self.update()

    def placeholder(self) -> str:
        """The text shown while there are no images."""
        return self._placeholder

    def set_busy(self, busy: bool) -> None:
        """Show (True) or hide the "Working…" badge."""
        self._busy = bool(busy)
        self.update()

    def is_busy(self) -> bool:
        """True while the "Working…" badge is shown."""
        return self._busy

    # -- split -------------------------------------------------------------------------------------
    def set_split(self, fraction: float) -> None:
        """Move the split to ``fraction`` of the image width (clamped to 0..1)."""
        fraction = min(1.0, max(0.0, float(fraction)))
        if fraction == self._split:
            return
        self._split = fraction
        self.update()
        self.sig_split_changed.emit(fraction)

    def split(self) -> float:
        """The split position as a fraction of the image width."""
        return self._split

    def image_rect(self) -> QRectF:
        """Where the images are drawn, in widget coordinates (empty when there are none)."""
        reference = self._before if self._before is not None else self._after
        if reference is None:
            return QRectF()
        return fit_rect(reference.size(), QRectF(self.rect()).adjusted(1, 1, -1, -1))

    # -- mouse -------------------------------------------------------------------------------------
    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt name)
        """A left press anywhere puts the split under the cursor."""
        if event.button() == Qt.MouseButton.LeftButton:
            self._split_at(event.position().x())
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt name)
        """Dragging with the left button moves the split."""
        if event.buttons() & Qt.MouseButton.LeftButton:
            self._split_at(event.position().x())
        super().mouseMoveEvent(event)

    def _split_at(self, x: float) -> None:
        rect = self.image_rect()
        if rect.width() > 0:
            self.set_split((x - rect.left()) / rect.width())

    # -- painting ----------------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt name)
        """Backdrop, the two halves, the handle, captions and the busy badge."""
        painter = QPainter(self)
        rect = self.image_rect()
        paint_backdrop(painter, self, rect if not rect.isEmpty() else None)
        if rect.isEmpty():
            self._paint_placeholder(painter)
        else:
            self._paint_images(painter, rect)
        if self._busy:
            corner = QPointF(self.width() - 8, self.height() - 8)
            paint_badge(painter, self, "Working…", corner, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignBottom)

    def _paint_placeholder(self, painter: QPainter) -> None:
        painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
        flags = Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap
        painter.drawText(self.rect().adjusted(16, 16, -16, -16), flags, self._placeholder)

    def _paint_images(self, painter: QPainter, rect: QRectF) -> None:
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        if self._after is None or self._before is None:
            painter.drawImage(rect, self._before if self._before is not None else self._after)
            return
        split_x = rect.left() + self._split * rect.width()
        left = QRectF(rect.left(), rect.top(), split_x - rect.left(), rect.height())
        right = QRectF(split_x, rect.top(), rect.right() - split_x, rect.height())
        self._draw_clipped(painter, self._before, rect, left)
        self._draw_clipped(painter, self._after, rect, right)
        caption_top = Qt.AlignmentFlag.AlignTop
        paint_badge(painter, self, "Before", rect.topLeft() + QPointF(6, 6), caption_top | Qt.AlignmentFlag.AlignLeft)
        paint_badge(painter, self, "After", rect.topRight() + QPointF(-6, 6), caption_top | Qt.AlignmentFlag.AlignRight)
        self._paint_handle(painter, split_x, rect)

    @staticmethod
    def _draw_clipped(painter: QPainter, image: QImage, rect: QRectF, clip: QRectF) -> None:
        if clip.width() <= 0:
            return
        painter.save()
        painter.setClipRect(clip)
        painter.drawImage(rect, image)
        painter.restore()

    def _paint_handle(self, painter: QPainter, x: float, rect: QRectF) -> None:
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        # A light line with a dark halo reads on any image content, dark or bright.
        painter.setPen(QPen(QColor(0, 0, 0, 110), 3))
        painter.drawLine(QPointF(x, rect.top()), QPointF(x, rect.bottom()))
        painter.setPen(QPen(QColor(255, 255, 255, 230), 1.2))
        painter.drawLine(QPointF(x, rect.top()), QPointF(x, rect.bottom()))
        centre = QPointF(x, rect.center().y())
        painter.setPen(QPen(QColor(0, 0, 0, 140), 1))
        painter.setBrush(QColor(255, 255, 255, 235))
        painter.drawEllipse(centre, HANDLE_GRIP_RADIUS, HANDLE_GRIP_RADIUS)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(60, 60, 60))
        painter.drawPath(self._grip_arrows(centre))
        painter.restore()

    @staticmethod
    def _grip_arrows(centre: QPointF) -> QPainterPath:
        path = QPainterPath()
        for sign in (-1, 1):
            tip = centre + QPointF(sign * 7, 0)
            base = centre.x() + sign * 2
            path.addPolygon(QPolygonF([tip, QPointF(base, centre.y() - 4), QPointF(base, centre.y() + 4)]))
        return path
