"""The status bar's GPU label: the engine's reading shown as it comes, hidden when there is none."""

from __future__ import annotations

from engine.gpu_stats import GIB, GpuStats
from studio.main_window import MEMORY_MS


def test_gpu_label_shows_the_reading_and_hides_without_one(window, qtbot, monkeypatch):
    readings: list[GpuStats | None] = [
        GpuStats(index=0, memory_used=int(9.1 * GIB), memory_total=24 * GIB, utilization=87, power_w=250, name="Fake")
    ]
    monkeypatch.setattr("studio.main_window.read_gpu_stats", lambda index=0, **_: readings[0])

    assert window.memory_timer.isActive() and window.memory_timer.interval() == MEMORY_MS
    window.memory_timer.timeout.emit()  # what the running timer does every MEMORY_MS
    assert window.gpu_label.text() == "GPU 87% · 9.1/24.0 GiB"
    assert window.gpu_label.isVisibleTo(window)
    assert "250 W" in window.gpu_label.toolTip() and "Fake" in window.gpu_label.toolTip()
    assert "GPU" not in window.memory_label.text(), "the GPU figure is shown once, in the GPU label"

    readings[0] = GpuStats(index=0, memory_used=2 * GIB, memory_total=8 * GIB, source="torch")
    window.memory_timer.timeout.emit()
    assert window.gpu_label.text() == "GPU 2.0/8.0 GiB"

    readings[0] = None  # a CPU-only machine, or a GPU that stopped answering
    window.memory_timer.timeout.emit()
    assert not window.gpu_label.isVisibleTo(window)
    assert window.memory_label.text().startswith("RAM ")
