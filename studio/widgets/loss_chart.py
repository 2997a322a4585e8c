"""Loss curves with pyqtgraph, redrawn at most every ``redraw_ms`` however fast steps arrive."""
from __future__ import annotations

from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QVBoxLayout, QWidget

from studio.theme import Theme, get_theme

# Stats plotted as curves: every "loss_*" key, plus these auxiliary losses when a family reports them.
EXTRA_CURVES = ("recon", "r1")
NAMES = {"loss_d": "D loss", "loss_g": "G loss", "recon": "D reconstruction", "r1": "R1 penalty"}


def is_curve_key(key: str) -> bool:
    """True for the stats the chart draws."""
    return key.startswith("loss_") or key in EXTRA_CURVES


class LossChart(QWidget):
    """One plot with a curve per loss over training steps; feed it with :meth:`add`."""

    def __init__(self, parent: QWidget | None = None, redraw_ms: int = 100) -> None:
        super().__init__(parent)
        self.plot = pg.PlotWidget()
        self.plot.setLabel("bottom", "step")
        self.plot.showGrid(x=True, y=True, alpha=0.15)
        self.plot.setClipToView(True)
        self.plot.setDownsampling(auto=True, mode="peak")
        self.legend = self.plot.addLegend(offset=(-10, 10))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)
        self.series: dict[str, tuple[list[float], list[float]]] = {}
        self.curves: dict[str, pg.PlotDataItem] = {}
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
        for curve in self.curves.values():
            self.plot.removeItem(curve)
        self.legend.clear()
        self.series, self.curves = {}, {}
        self._dirty = False

    def add(self, stats: dict[str, Any]) -> None:
        """Append one step's stats; drawing happens on the next timer tick."""
        step = stats.get("step")
        if step is None:
            return
        for key, value in stats.items():
            if is_curve_key(key) and isinstance(value, (int, float)):
                xs, ys = self.series.setdefault(key, ([], []))
                xs.append(float(step))
                ys.append(float(value))
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
        for key, (xs, ys) in self.series.items():
            self._curve(key).setData(xs, ys)
        self.redraws += 1

    def _curve(self, key: str) -> pg.PlotDataItem:
        if key not in self.curves:
            color = self.theme.curve_colors[len(self.curves) % len(self.theme.curve_colors)]
            self.curves[key] = self.plot.plot(pen=pg.mkPen(color, width=1.5), name=NAMES.get(key, key))
        return self.curves[key]

    def apply_theme(self, theme: Theme) -> None:
        """Recolour background, axes and curves for ``theme``."""
        self.theme = theme
        self.plot.setBackground(theme.chart_background)
        for axis in ("left", "bottom"):
            self.plot.getAxis(axis).setPen(pg.mkPen(theme.chart_axis))
            self.plot.getAxis(axis).setTextPen(pg.mkPen(theme.chart_axis))
        self.legend.setLabelTextColor(theme.text)
        for i, curve in enumerate(self.curves.values()):
            curve.setPen(pg.mkPen(theme.curve_colors[i % len(theme.curve_colors)], width=1.5))
