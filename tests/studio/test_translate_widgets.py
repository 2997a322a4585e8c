"""The image-to-image widgets: the sketch canvas (strokes, tools, undo), the before/after compare view
and the colour-hint view, driven with real mouse and key events on real widgets."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QImage, QKeySequence, QMouseEvent, QShortcut
from PySide6.QtWidgets import QApplication, QVBoxLayout, QWidget

from studio.widgets.compare_view import CompareView
from studio.widgets.hint_view import HintImageView, contrast_color
from studio.widgets.sketch_canvas import HISTORY_LIMIT, SketchCanvas

LEFT = Qt.MouseButton.LeftButton


def shown(qtbot, widget: QWidget, width: int, height: int) -> QWidget:
    qtbot.addWidget(widget)
    widget.resize(width, height)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def move_with_left_held(widget: QWidget, pos: QPoint) -> None:
    """QTest's mouseMove carries no buttons, so a drag's moves are sent as real QMouseEvents."""
    event = QMouseEvent(
        QEvent.Type.MouseMove,
        QPointF(pos),
        QPointF(widget.mapToGlobal(pos)),
        Qt.MouseButton.NoButton,
        LEFT,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(widget, event)


def drag(qtbot, widget: QWidget, points: list[QPoint]) -> None:
    qtbot.mousePress(widget, LEFT, pos=points[0])
    for point in points[1:]:
        move_with_left_held(widget, point)
    qtbot.mouseRelease(widget, LEFT, pos=points[-1])


def qimage_rgb(image: QImage) -> np.ndarray:
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    stride = image.bytesPerLine()
    data = np.frombuffer(image.constBits(), np.uint8, count=stride * image.height())
    rows = data.reshape(image.height(), stride)[:, : image.width() * 3]
    return rows.reshape(image.height(), image.width(), 3).copy()  # the QImage's buffer dies with it


def grab_rgb(widget: QWidget) -> np.ndarray:
    return qimage_rgb(widget.grab().toImage()).astype(np.int32)


# -- SketchCanvas ---------------------------------------------------------------------------------
def test_mouse_stroke_lands_on_image_pixels_in_a_wide_widget(qtbot):
    canvas = shown(qtbot, SketchCanvas(100, 100), 400, 200)  # image shown 198 px wide, centred horizontally
    rect = canvas.image_rect()
    assert rect.width() == pytest.approx(198) and rect.left() == pytest.approx(101)
    centre = canvas.widget_to_image(QPointF(200, 100))
    assert (centre.x(), centre.y()) == (pytest.approx(50, abs=0.6), pytest.approx(50, abs=0.6))
    changed, finished, history = [], [], []
    canvas.sig_changed.connect(lambda: changed.append(1))
    canvas.sig_stroke_finished.connect(lambda: finished.append(1))
    canvas.sig_history_changed.connect(lambda u, r: history.append((u, r)))
    # Widget x 141..339 at y 100 is image x 20..80 at y 50 (1.98 widget px per image px).
    drag(qtbot, canvas, [QPoint(x, 100) for x in range(141, 260, 20)] + [QPoint(259, 100)])
    drawing = canvas.to_array()
    assert drawing.shape == (100, 100) and drawing.dtype == np.uint8
    assert (drawing[50, 21:79] < 60).all(), "the stroke's path is dark"
    assert (drawing[:40] == 255).all() and (drawing[60:] == 255).all() and (drawing[:, 85:] == 255).all()
    assert (drawing[:, :15] == 255).all()
    assert len(changed) >= 6 and finished == [1] and history == [(True, False)]
    assert canvas.can_undo() and not canvas.is_blank()


def test_mouse_mapping_in_a_tall_widget_matches_draw_stroke(qtbot):
    canvas = shown(qtbot, SketchCanvas(80, 40), 200, 400)  # image rect 198 x 99, centred vertically
    top_left = canvas.image_to_widget(QPointF(0, 0))
    assert top_left.x() == pytest.approx(1) and top_left.y() == pytest.approx(1 + (398 - 99) / 2)
    start, end = canvas.image_to_widget(QPointF(10, 30)), canvas.image_to_widget(QPointF(70, 30))
    drag(qtbot, canvas, [start.toPoint(), end.toPoint()])
    by_mouse = canvas.to_array()
    scripted = SketchCanvas(80, 40)
    qtbot.addWidget(scripted)
    scripted.draw_stroke([(10, 30), (70, 30)])
    assert np.abs(by_mouse.astype(int) - scripted.to_array()).max() < 100  # same line, up to sub-pixel rounding
    assert (by_mouse[30, 12:68] < 80).all() and (by_mouse[:25] == 255).all()


def test_a_click_without_a_move_leaves_a_dot(qtbot):
    canvas = shown(qtbot, SketchCanvas(64, 64), 128, 128)
    canvas.set_pen_size(8)
    qtbot.mouseClick(canvas, LEFT, pos=canvas.image_to_widget(QPointF(32, 32)).toPoint())
    dark = canvas.to_array() < 128
    assert dark[32, 32] and 30 <= dark.sum() <= 80 and canvas.can_undo()


def test_eraser_whitens_and_unknown_tools_are_refused(qtbot):
    canvas = SketchCanvas(60, 60)
    qtbot.addWidget(canvas)
    canvas.set_pen_size(20)
    canvas.draw_stroke([(5, 30), (55, 30)])
    assert (canvas.to_array()[25:35, 10:50] == 0).all()
    canvas.set_tool("eraser")
    assert canvas.tool() == "eraser"
    canvas.set_pen_size(6)
    canvas.draw_stroke([(30, 5), (30, 55)])
    drawing = canvas.to_array()
    assert (drawing[22:38, 29:32] == 255).all() and (drawing[25:35, 10:20] == 0).all()
    with pytest.raises(ValueError):
        canvas.set_tool("spray")
    assert canvas.tool() == "eraser"


def test_pen_size_sets_the_stroke_width(qtbot):
    def rows_dark(size: int) -> int:
        canvas = SketchCanvas(64, 64)
        qtbot.addWidget(canvas)
        canvas.set_pen_size(size)
        canvas.draw_stroke([(5, 32), (59, 32)])
        return int((canvas.to_array()[:, 32] < 128).sum())

    thin, thick = rows_dark(2), rows_dark(12)
    assert 1 <= thin <= 3 and 11 <= thick <= 13
    canvas = SketchCanvas()
    qtbot.addWidget(canvas)
    canvas.set_pen_size(0)
    assert canvas.pen_size() == 1
    canvas.set_pen_size(500)
    assert canvas.pen_size() == 64


def test_undo_and_redo_restore_exact_drawings(qtbot):
    canvas = SketchCanvas(50, 40)
    qtbot.addWidget(canvas)
    history = []
    canvas.sig_history_changed.connect(lambda u, r: history.append((u, r)))
    states = [canvas.to_array()]
    canvas.draw_stroke([(5, 5), (45, 35)])
    states.append(canvas.to_array())
    canvas.set_tool("eraser")
    canvas.draw_stroke([(5, 35), (45, 5), (45, 20)])
    states.append(canvas.to_array())
    assert not np.array_equal(states[1], states[2])
    canvas.undo()
    assert np.array_equal(canvas.to_array(), states[1])
    canvas.undo()
    assert np.array_equal(canvas.to_array(), states[0]) and not canvas.can_undo() and canvas.can_redo()
    canvas.undo()  # nothing left: no change
    assert np.array_equal(canvas.to_array(), states[0])
    canvas.redo()
    canvas.redo()
    assert np.array_equal(canvas.to_array(), states[2]) and not canvas.can_redo()
    assert history == [(True, False), (True, True), (False, True), (True, True), (True, False)]


def test_history_keeps_fifty_steps_and_a_new_stroke_drops_redo(qtbot):
    canvas = SketchCanvas(80, 20)
    qtbot.addWidget(canvas)
    snapshots = []
    for i in range(HISTORY_LIMIT + 5):
        canvas.draw_stroke([(i + 1, 10)])
        snapshots.append(canvas.to_array())
    undone = 0
    while canvas.can_undo():
        canvas.undo()
        undone += 1
    assert HISTORY_LIMIT == 50 and undone == 50
    assert np.array_equal(canvas.to_array(), snapshots[4])  # the five oldest steps fell off
    canvas.redo()
    canvas.redo()
    assert np.array_equal(canvas.to_array(), snapshots[6]) and canvas.can_redo()
    canvas.draw_stroke([(70, 3), (75, 3)])
    assert not canvas.can_redo()
    canvas.redo()
    assert canvas.to_array()[3, 72] < 128


def test_set_image_converts_to_gray_takes_its_size_and_undoes(qtbot):
    canvas = SketchCanvas(64, 64)
    qtbot.addWidget(canvas)
    canvas.draw_stroke([(0, 0), (63, 63)])
    before = canvas.to_array()
    rgb = np.zeros((30, 40, 3), np.uint8)
    rgb[:, :10] = (255, 0, 0)
    rgb[:, 10:20] = (0, 255, 0)
    rgb[:, 20:30] = (0, 0, 255)
    rgb[:, 30:] = (200, 200, 200)
    with qtbot.waitSignal(canvas.sig_changed, timeout=1000):
        canvas.set_image(rgb)
    drawing = canvas.to_array()
    assert canvas.image_size() == (40, 30) and drawing.shape == (30, 40)
    assert [int(drawing[0, x]) for x in (0, 10, 20, 30)] == [76, 150, 29, 200]
    rgba = np.zeros((10, 10, 4), np.uint8)
    rgba[:, :5, 3] = 255  # opaque black on the left, fully transparent black on the right
    canvas.set_image(rgba)
    assert (canvas.to_array()[:, :5] == 0).all() and (canvas.to_array()[:, 5:] == 255).all()
    canvas.undo()
    assert np.array_equal(canvas.to_array(), drawing)
    canvas.undo()
    assert canvas.image_size() == (64, 64) and np.array_equal(canvas.to_array(), before)
    gray = np.full((5, 7), 90, np.uint8)
    canvas.set_image(gray)
    gray[:] = 0  # the canvas keeps its own copy
    assert (canvas.to_array() == 90).all() and canvas.to_array().shape == (5, 7)


def test_clear_is_undoable_and_skipped_on_a_blank_drawing(qtbot):
    canvas = SketchCanvas(32, 32)
    qtbot.addWidget(canvas)
    assert canvas.is_blank()
    canvas.clear()
    assert not canvas.can_undo()
    canvas.draw_stroke([(2, 2), (30, 30)])
    drawn = canvas.to_array()
    with qtbot.waitSignal(canvas.sig_changed, timeout=1000):
        canvas.clear()
    assert canvas.is_blank()
    canvas.undo()
    assert np.array_equal(canvas.to_array(), drawn)


def test_keyboard_undo_redo_beats_a_window_shortcut(qtbot):
    window = QWidget()
    canvas = SketchCanvas(32, 32)
    QVBoxLayout(window).addWidget(canvas)
    fired = []
    # A window-wide Ctrl+Z (an Edit menu, say) must not steal the key while the canvas has focus.
    QShortcut(QKeySequence("Ctrl+Z"), window).activated.connect(lambda: fired.append(1))
    shown(qtbot, window, 200, 200)
    window.activateWindow()
    window.windowHandle().requestActivate()  # window shortcuts only fire in the active window
    qtbot.waitUntil(window.isActiveWindow, timeout=2000)
    canvas.setFocus()
    canvas.draw_stroke([(4, 4), (28, 28)])
    drawn = canvas.to_array()
    qtbot.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert canvas.is_blank() and canvas.can_redo() and fired == []
    ctrl_shift = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    qtbot.keyClick(canvas, Qt.Key.Key_Z, ctrl_shift)
    assert np.array_equal(canvas.to_array(), drawn)
    canvas.undo()
    qtbot.keyClick(canvas, Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)
    assert np.array_equal(canvas.to_array(), drawn)


def test_canvas_geometry_hints(qtbot):
    canvas = SketchCanvas()
    qtbot.addWidget(canvas)
    assert canvas.image_size() == (512, 512) and canvas.to_array().shape == (512, 512)
    assert (canvas.sizeHint().width(), canvas.sizeHint().height()) == (512, 512)
    assert (canvas.minimumWidth(), canvas.minimumHeight()) == (128, 128)


def test_the_widgets_load_without_torch_or_the_engine():
    code = (
        "import sys, studio.widgets.sketch_canvas, studio.widgets.compare_view, studio.widgets.hint_view; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'engine')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"


# -- CompareView ----------------------------------------------------------------------------------
def test_compare_view_shows_before_left_and_after_right_of_the_split(qtbot):
    view = shown(qtbot, CompareView(), 300, 200)
    assert not view.has_after()
    view.set_images(np.zeros((40, 40), np.uint8), np.full((10, 10, 3), 255, np.uint8))  # after is smaller
    assert view.has_after() and view.split() == 0.5
    rect = view.image_rect()
    pixels = grab_rgb(view)
    y = int(rect.top() + rect.height() * 0.8)  # below the grip, clear of the captions

    def at(fraction: float) -> np.ndarray:
        return pixels[y, int(rect.left() + rect.width() * fraction)]

    assert (at(0.1) < 30).all() and (at(0.4) < 30).all()
    assert (at(0.6) > 225).all() and (at(0.95) > 225).all()
    view.set_split(0.25)
    pixels = grab_rgb(view)
    assert (at(0.1) < 30).all() and (at(0.4) > 225).all()
    assert pixels[int(rect.top()) + 3, int(rect.left() + rect.width() * 0.9)].mean() > 100  # after fills to the top


def test_dragging_moves_the_split_and_it_clamps(qtbot):
    view = shown(qtbot, CompareView(), 400, 200)
    view.set_images(np.zeros((50, 100, 3), np.uint8), np.full((50, 100, 3), 255, np.uint8))
    rect = view.image_rect()
    seen = []
    view.sig_split_changed.connect(seen.append)
    y = int(rect.center().y())
    drag(
        qtbot,
        view,
        [QPoint(int(rect.left() + 0.2 * rect.width()), y), QPoint(int(rect.left() + 0.8 * rect.width()), y)],
    )
    assert view.split() == pytest.approx(0.8, abs=0.01)
    assert seen[0] == pytest.approx(0.2, abs=0.01) and seen[-1] == view.split()
    move_with_left_held(view, QPoint(view.width() - 2, y))  # past the image edge
    assert view.split() == 1.0
    view.set_split(-3)
    assert view.split() == 0.0
    view.set_split(7)
    assert view.split() == 1.0


def test_busy_badge_and_placeholder_paint_something(qtbot):
    view = shown(qtbot, CompareView(), 300, 200)
    empty = grab_rgb(view)
    view.set_placeholder("Draw a sketch to translate it.")
    with_text = grab_rgb(view)
    centre = (slice(80, 120), slice(20, 280))
    assert np.abs(with_text[centre] - empty[centre]).max() > 40
    view.set_images(np.full((20, 20), 128, np.uint8), None)
    idle = grab_rgb(view)
    view.set_busy(True)
    busy = grab_rgb(view)
    corner = (slice(160, 200), slice(200, 300))
    assert np.abs(busy[corner] - idle[corner]).max() > 40 and view.is_busy()
    view.set_busy(False)
    assert np.array_equal(grab_rgb(view), idle)


# -- HintImageView --------------------------------------------------------------------------------
def hint_view(qtbot, width: int = 300, height: int = 300) -> HintImageView:
    view = shown(qtbot, HintImageView(), width, height)
    image = np.full((20, 40, 3), 128, np.uint8)
    image[:, 20:] = (10, 200, 30)
    view.set_image(image)
    return view


def test_a_click_adds_a_hint_at_the_image_pixel_in_a_non_square_widget(qtbot):
    view = hint_view(qtbot)  # 40 x 20 image in 298 x 298: 7.45 px per pixel, top at 75.5
    view.set_hint_color((250, 240, 20))
    with qtbot.waitSignal(view.sig_hints_changed, timeout=1000) as blocker:
        qtbot.mouseClick(view, LEFT, pos=QPoint(79, 116))  # (1 + 7.45 * 10.5, 75.5 + 7.45 * 5.5)
    assert view.hints() == [(10, 5, (250, 240, 20))] and blocker.args == [[(10, 5, (250, 240, 20))]]
    qtbot.mouseClick(view, LEFT, pos=QPoint(150, 40))  # above the image
    qtbot.mouseClick(view, LEFT, pos=QPoint(150, 260))  # below it
    assert len(view.hints()) == 1 and view.widget_to_image(QPointF(150, 40)) is None
    qtbot.mouseClick(view, LEFT, pos=view.image_to_widget(39, 19).toPoint())
    assert view.hints()[-1][:2] == (39, 19)
    with pytest.raises(ValueError):
        view.add_hint(40, 0, (0, 0, 0))


def test_right_click_removes_the_nearest_hint_within_reach(qtbot):
    view = hint_view(qtbot)
    view.add_hint(5, 5, (255, 0, 0))
    view.add_hint(7, 5, (0, 255, 0))  # 14.9 widget px to the right
    view.add_hint(30, 15, (0, 0, 255))
    near_second = view.image_to_widget(7, 5) + QPointF(-4, 3)
    qtbot.mouseClick(view, Qt.MouseButton.RightButton, pos=near_second.toPoint())
    assert [h[2] for h in view.hints()] == [(255, 0, 0), (0, 0, 255)]
    far = view.image_to_widget(30, 15) + QPointF(13, 0)
    qtbot.mouseClick(view, Qt.MouseButton.RightButton, pos=far.toPoint())
    assert len(view.hints()) == 2
    view.remove_hint(0)
    assert view.hints() == [(30, 15, (0, 0, 255))]
    with pytest.raises(IndexError):
        view.remove_hint(5)


def test_hint_undo_redo_clear_and_a_new_image(qtbot):
    view = hint_view(qtbot)
    history = []
    view.sig_history_changed.connect(lambda u, r: history.append((u, r)))
    view.add_hint(1, 1, (1, 2, 3))
    view.add_hint(2, 2, (4, 5, 6))
    view.clear_hints()
    assert view.hints() == []
    view.undo()
    assert view.hints() == [(1, 1, (1, 2, 3)), (2, 2, (4, 5, 6))]
    view.undo()
    view.undo()
    assert view.hints() == [] and not view.can_undo()
    view.redo()
    assert view.hints() == [(1, 1, (1, 2, 3))] and view.can_redo()
    view.add_hint(3, 3, (7, 8, 9))
    assert not view.can_redo()
    view.set_image(np.zeros((8, 8), np.uint8))
    assert view.hints() == [] and not view.can_undo() and not view.can_redo()
    assert history == [(True, False), (True, True), (False, True), (True, True), (True, False), (False, False)]


def test_hint_outlines_contrast_with_their_colour(qtbot):
    assert contrast_color((250, 240, 20)).name() == "#000000"
    assert contrast_color((20, 20, 120)).name() == "#ffffff"
    view = hint_view(qtbot)
    view.add_hint(8, 10, (250, 240, 20))  # yellow on grey: a black ring
    view.add_hint(12, 10, (20, 20, 120))  # navy on grey: a white ring
    pixels = grab_rgb(view)

    def around(x: int, y: int) -> np.ndarray:
        centre = view.image_to_widget(x, y)
        cx, cy = int(centre.x()), int(centre.y())
        return pixels[cy - 8 : cy + 9, cx - 8 : cx + 9].reshape(-1, 3)

    yellow, navy = around(8, 10), around(12, 10)
    assert yellow.sum(axis=1).min() < 90 and (yellow == (250, 240, 20)).all(axis=1).any()  # black ring, yellow fill
    assert navy.min(axis=1).max() > 220  # some pixel is near white: the ring


def test_shift_click_picks_the_colour_under_the_cursor(qtbot):
    view = hint_view(qtbot)
    with qtbot.waitSignal(view.sig_color_picked, timeout=1000) as blocker:
        qtbot.mouseClick(view, LEFT, Qt.KeyboardModifier.ShiftModifier, view.image_to_widget(30, 3).toPoint())
    assert blocker.args == [(10, 200, 30)] and view.hint_color() == (10, 200, 30) and view.hints() == []
    qtbot.mouseClick(view, LEFT, pos=view.image_to_widget(2, 2).toPoint())
    assert view.hints() == [(2, 2, (10, 200, 30))]
