"""The Upscale page and its zoomable before/after view, driven with real widgets offscreen: a real image
file upscaled through a tiny model, a folder batch cancelled midway, a bad model file, the synced
zoom/pan of both sides, and Generate's "upscale on export"."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from studio.widgets.zoom_compare import ZoomCompareView
from tests.studio.test_translate_widgets import drag, grab_rgb, shown

LEFT = Qt.MouseButton.LeftButton


def wheel(widget, pos: QPointF, notches: float) -> None:
    """A real wheel event at ``pos`` (120 units per notch)."""
    event = QWheelEvent(
        pos,
        widget.mapToGlobal(pos),
        QPoint(0, 0),
        QPoint(0, int(120 * notches)),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(widget, event)


def pair(scale: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """A random before and an after that is its nearest-neighbour enlargement, inverted: each after pixel
    is known from the before pixel it came from, and the two sides never look alike."""
    before = np.random.default_rng(3).integers(0, 256, (12, 16, 3), dtype=np.uint8)
    after = 255 - np.repeat(np.repeat(before, scale, axis=0), scale, axis=1)
    return before, np.ascontiguousarray(after)


def sample_points(view: ZoomCompareView, scale: int, count: int = 40) -> list[tuple[int, int]]:
    """Widget points well inside one before pixel (away from pixel edges and the badges)."""
    points = []
    for y in range(36, view.height() - 36, 7):
        for x in range(12, view.width() - 12, 9):
            grid = view.widget_to_image(QPointF(x + 0.5, y + 0.5))
            fx, fy = grid.x() / scale % 1, grid.y() / scale % 1
            inside = 0 <= grid.x() < view.image_size().width() and 0 <= grid.y() < view.image_size().height()
            if inside and 0.25 < fx < 0.75 and 0.25 < fy < 0.75:
                points.append((x, y))
    assert len(points) >= count, f"only {len(points)} sample points on screen"
    return points


def assert_aligned(view: ZoomCompareView, before: np.ndarray, after: np.ndarray, scale: int) -> None:
    """With the split at the right edge the widget shows only the before, at the left edge only the after:
    at every sample point, each shows the pixel the view maps that point to, and they are the same place."""
    view.set_split(1.0)
    before_shot = grab_rgb(view)
    view.set_split(0.0)
    after_shot = grab_rgb(view)
    for x, y in sample_points(view, scale):
        centre = QPointF(x + 0.5, y + 0.5)
        grid, source = view.widget_to_image(centre), view.before_pixel(centre)
        bx, by = int(source.x()), int(source.y())
        assert (bx, by) == (int(grid.x()) // scale, int(grid.y()) // scale)
        assert np.array_equal(before_shot[y, x], before[by, bx]), (x, y)
        assert np.array_equal(after_shot[y, x], after[int(grid.y()), int(grid.x())]), (x, y)
        assert np.array_equal(after_shot[y, x], 255 - before_shot[y, x])  # one place, both sides


# -- ZoomCompareView ------------------------------------------------------------------------------
def test_zoom_and_pan_keep_both_sides_aligned(qtbot):
    view = shown(qtbot, ZoomCompareView(), 400, 300)
    before, after = pair(4)
    view.set_images(before, after)
    assert view.is_fit() and view.image_size().width() == 64 and view.image_size().height() == 48
    assert view.zoom() == pytest.approx(min(398 / 64, 298 / 48))
    assert_aligned(view, before, after, 4)

    cursor = QPointF(150.0, 120.0)
    under = view.widget_to_image(cursor)
    wheel(view, cursor, 3)  # zoom in around the cursor: the image point under it stays under it
    assert view.zoom() > 2.5 * min(398 / 64, 298 / 48) and not view.is_fit()
    moved = view.widget_to_image(cursor)
    assert (moved.x(), moved.y()) == (pytest.approx(under.x(), abs=1e-6), pytest.approx(under.y(), abs=1e-6))
    assert_aligned(view, before, after, 4)

    view.set_split(0.5)
    origin = view.image_to_widget(QPointF(0, 0))
    drag(qtbot, view, [QPoint(100, 150), QPoint(130, 160), QPoint(160, 170)])  # away from the handle: pans
    shifted = view.image_to_widget(QPointF(0, 0))
    assert (shifted.x() - origin.x(), shifted.y() - origin.y()) == (pytest.approx(60), pytest.approx(20))
    assert view.split() == 0.5, "a pan leaves the split where it is"
    assert_aligned(view, before, after, 4)

    wheel(view, QPointF(300, 80), -1)  # zoom out a notch elsewhere, then check again
    assert_aligned(view, before, after, 4)


def test_the_handle_drags_the_split_and_fit_and_actual_size_toggle(qtbot):
    view = shown(qtbot, ZoomCompareView(), 400, 300)
    before, after = pair(4)
    view.set_images(before, after)
    seen = []
    view.sig_split_changed.connect(seen.append)
    origin = view.image_to_widget(QPointF(0, 0))
    drag(qtbot, view, [QPoint(200, 150), QPoint(260, 150), QPoint(300, 150)])  # the handle sits at x = 200
    assert view.split() == pytest.approx(0.75, abs=0.01) and seen[-1] == view.split()
    assert view.image_to_widget(QPointF(0, 0)) == origin, "dragging the handle does not pan"
    view.toggle_fit()  # 100%: one after pixel per screen pixel, centred
    assert not view.is_fit() and view.zoom() == pytest.approx(view.actual_zoom())
    assert view.image_rect().center().x() == pytest.approx(200, abs=1)
    view.toggle_fit()
    assert view.is_fit() and view.zoom() == pytest.approx(view.fit_zoom())
    view.resize(600, 300)  # a fitted view refits
    qtbot.waitUntil(lambda: view.zoom() == pytest.approx(view.fit_zoom()))
    assert view.fit_zoom() == pytest.approx(298 / 48)


def test_a_large_result_zoomed_out_is_area_averaged_and_still_aligned(qtbot):
    view = shown(qtbot, ZoomCompareView(), 300, 200)
    # a fine checkerboard result: shrunk 8x by averaging it is mid-grey; a plain bilinear draw aliases it
    before = np.zeros((100, 150, 3), np.uint8)
    after = ((np.indices((800, 1200)).sum(0) % 2) * 255).astype(np.uint8)
    after = np.ascontiguousarray(np.repeat(after[:, :, None], 3, axis=2))
    view.set_images(before, after)
    assert view.zoom() < 0.5
    view.set_split(0.0)
    shot = grab_rgb(view)
    rect = view.image_rect()
    inner = shot[int(rect.top()) + 30 : int(rect.bottom()) - 30, int(rect.left()) + 10 : int(rect.right()) - 10]
    assert abs(inner.mean() - 127.5) < 12 and inner.std() < 20
    view.set_split(1.0)
    assert grab_rgb(view)[int(rect.center().y()), int(rect.center().x())].max() == 0  # before side: black
