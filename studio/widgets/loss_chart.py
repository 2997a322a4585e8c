"""Loss curves with pyqtgraph, redrawn at most every ``redraw_ms`` however fast steps arrive.

Axis ranges change in jumps (x doubles, y gets a margin) rather than on every point: pyqtgraph
re-renders an axis whenever its range moves, which costs more than drawing the curves themselves
and would make every redraw a visible pause of the event loop while training runs.

pyqtgraph is imported when the first chart is built, not with this module: importing it takes up to
a second, which the window's start-up should not wait for (studio.engine_loader imports it on a
background thread before the Train page is built).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QTimer
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QVBoxLayout, QWidget

from studio.theme import Theme, get_theme

if TYPE_CHECKING:
    import pyqtgraph as pg

# Stats plotted as curves: every "loss_*" key, plus these auxiliary losses when a family reports them.
EXTRA_CURVES = ("recon", "r1", "kid")
SMOOTHING = 0.9
"""Weight of the running average in the smoothed curve (raw points are drawn faintly underneath)."""
NAMES = {
    "loss_d": "D loss",
    "loss_g": "G loss",
    "recon": "D reconstruction",
    "r1": "R1 penalty",
    "kid": "KD (EffLite0)",
}


def is_curve_key(key: str) -> bool:
    """True for the stats the chart draws."""
    return key.startswith("loss_") or key in EXTRA_CURVES


class LossChart(QWidget):
    """One plot with a curve per loss over training steps; feed it with :meth:`add`."""

    def __init__(self, parent: QWidget | None = None, redraw_ms: int = 250) -> None:
        super().__init__(parent)
        import pyqtgraph as pg  # on first use: see the module docstring

        self.pg = pg
        self.plot = pg.PlotWidget()
        self.plot.setLabel("bottom", "step")
        self.plot.showGrid(x=True, y=True, alpha=0.15)
        self.plot.setClipToView(True)
        self.plot.setDownsampling(auto=True, mode="peak")
        self.plot.enableAutoRange(x=False, y=False)
        self.plot.setMouseEnabled(x=False, y=False)
        self.x_max, self.y_range = 0.0, (0.0, 0.0)
        self.legend = self.plot.addLegend(offset=(-10, 10))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)
        self.series: dict[str, tuple[list[float], list[float], list[float]]] = {}
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.raw_curves: dict[str, pg.PlotDataItem] = {}
        self.theme = get_theme(None)
        self.redraws = 0
        self._dirty = False
        self.timer = QTimer(self)
        self.timer.setInterval(redraw_ms)
        self.timer.timeout.connect(self.redraw)
        self.timer.start()
        self.apply_theme(self.theme)

    def clear(self) -> None:
        """Remove every curve (a new run starts)."""
        for curve in [*self.curves.values(), *self.raw_curves.values()]:
            self.plot.removeItem(curve)
        self.legend.clear()
        self.series, self.curves, self.raw_curves = {}, {}, {}
        self.x_max, self.y_range = 0.0, (0.0, 0.0)
        self._dirty = False

    def add(self, stats: dict[str, Any]) -> None:
        """Append one step's stats; drawing happens on the next timer tick."""
        step = stats.get("step")
        if step is None:
            return
        for key, value in stats.items():
            if is_curve_key(key) and isinstance(value, (int, float)) and math.isfinite(value):
                xs, ys, smooth = self.series.setdefault(key, ([], [], []))
                xs.append(float(step))
                ys.append(float(value))
                smooth.append(SMOOTHING * smooth[-1] + (1 - SMOOTHING) * value if smooth else float(value))
                self._dirty = True

    def set_history(self, records: list[dict[str, Any]]) -> None:
        """Replace the curves with a run's logged stats (e.g. from stats.jsonl) and draw at once."""
        self.clear()
        for record in records:
            self.add(record)
        self.redraw()

    def redraw(self) -> None:
        """Push the buffered points to the curves when something changed."""
        if not self._dirty:
            return
        self._dirty = False
        for key, (xs, ys, smooth) in self.series.items():
            self._curve(key).setData(xs, smooth)
            self.raw_curves[key].setData(xs, ys)
        self._fit_ranges()
        self.redraws += 1

    def _fit_ranges(self) -> None:
        """Grow x by doubling and refit y with a margin, only when the data leaves the shown range."""
        last_x = max((xs[-1] for xs, _, _ in self.series.values() if xs), default=0.0)
        if last_x > self.x_max:
            self.x_max = max(10.0, self.x_max)
            while self.x_max < last_x:
                self.x_max *= 2
            self.plot.setXRange(0, self.x_max, padding=0)
        low, high = self._y_extent()
        shown_low, shown_high = self.y_range
        span = max(high - low, 1e-6)
        if low < shown_low or high > shown_high or span < 0.4 * (shown_high - shown_low):
            self.y_range = (low - 0.15 * span, high + 0.15 * span)
            self.plot.setYRange(*self.y_range, padding=0)

    def _y_extent(self) -> tuple[float, float]:
        """Min and max over the recent part of every curve (old spikes do not flatten the view)."""
        values = [v for _, ys, _ in self.series.values() for v in ys[-2000:]]
        return (min(values), max(values)) if values else (0.0, 1.0)

    def _curve(self, key: str) -> pg.PlotDataItem:
        """The smoothed curve of ``key`` (created with its faint raw companion on first use)."""
        if key not in self.curves:
            index = len(self.curves)
            self.raw_curves[key] = self.plot.plot(pen=self._pen(index, raw=True))
            self.curves[key] = self.plot.plot(pen=self._pen(index, raw=False), name=NAMES.get(key, key))
        return self.curves[key]

    def _pen(self, index: int, raw: bool) -> object:
        color = QColor(self.theme.curve_colors[index % len(self.theme.curve_colors)])
        if raw:
            color.setAlpha(70)
        return self.pg.mkPen(color, width=1 if raw else 2)

    def apply_theme(self, theme: Theme) -> None:
        """Recolour background, axes and curves for ``theme``."""
        self.theme = theme
        self.plot.setBackground(theme.chart_background)
        for axis in ("left", "bottom"):
            self.plot.getAxis(axis).setPen(self.pg.mkPen(theme.chart_axis))
            self.plot.getAxis(axis).setTextPen(self.pg.mkPen(theme.chart_axis))
        self.legend.setLabelTextColor(theme.text)
        for _, label in self.legend.items:  # existing labels keep their colour unless re-set
            label.setText(label.text, color=theme.text)
        for i, key in enumerate(self.curves):
            self.curves[key].setPen(self._pen(i, raw=False))
            self.raw_curves[key].setPen(self._pen(i, raw=True))
