"""GUI responsiveness: the longest stall of the Qt event loop while training is live, side by side with idle.

A precise timer asks to fire every ``--interval-ms`` and records how late each tick arrives; the
largest lateness is the longest time the event loop could not react (a click, a repaint). The same
window (Train page shown, preview and loss chart painting) is measured idle and with a real training
run of the bundled sample (quick preset, previews every ``--preview-every`` steps). Rounds alternate
idle/training so machine noise hits both alike. Target: no stall over 50 ms.

    python bench/gui_responsiveness.py [--seconds 8] [--rounds 2] [--interval-ms 5] [--preview-every 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PySide6.QtCore import QElapsedTimer, QEventLoop, Qt, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

TARGET_MS = 50.0


@dataclass
class Measurement:
    """Event-loop lateness over one measuring window."""

    condition: str
    seconds: float
    ticks: int
    max_stall_ms: float
    p99_ms: float
    mean_ms: float
    train_steps: int


class StallMeter:
    """A timer that measures its own lateness: every tick records (gap - interval) in milliseconds."""

    def __init__(self, interval_ms: int) -> None:
        self.interval_ms = interval_ms
        self.clock = QElapsedTimer()
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)
        self.late: list[float] = []
        self._last = 0

    def _tick(self) -> None:
        now = self.clock.nsecsElapsed()
        self.late.append(max(0.0, (now - self._last) / 1e6 - self.interval_ms))
        self._last = now

    def run(self, seconds: float, until: Callable[[], bool] | None = None) -> list[float]:
        """Measure for ``seconds`` (or until ``until()`` holds, checked every 20 ms, at most ``seconds``)
        while the event loop runs normally; returns the lateness list."""
        self.late = []
        loop = QEventLoop()
        QTimer.singleShot(int(seconds * 1000), loop.quit)
        check = QTimer()
        if until is not None:
            check.timeout.connect(lambda: until() and loop.quit())
            check.start(20)
        self.clock.start()
        self._last = self.clock.nsecsElapsed()
        self.timer.start()
        loop.exec()
        self.timer.stop()
        check.stop()
        return self.late


def summarize(condition: str, seconds: float, late: list[float], steps: int) -> Measurement:
    """Max, 99th percentile and mean lateness of one window."""
    ordered = sorted(late) or [0.0]
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return Measurement(
        condition, seconds, len(late), round(ordered[-1], 2), round(p99, 2), round(statistics.fmean(ordered), 3), steps
    )


def wait_until(condition, timeout: float) -> None:
    """Spin the event loop until ``condition()`` or raise after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out")
        QApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)


def build_window(workdir: Path):
    """A main window on a fresh project holding the attested sample dataset, Train page shown."""
    from engine.consent import attest
    from engine.data import import_folder
    from studio.main_window import MainWindow
    from studio.paths import SAMPLE_DATASET
    from studio.project import Project
    from studio.settings import SETTINGS_ENV, app_settings

    os.environ[SETTINGS_ENV] = str(workdir / "settings.ini")
    project = Project.create(workdir / "project")
    dataset = project.dataset_dir_for(SAMPLE_DATASET)
    import_folder(SAMPLE_DATASET, dataset, size=64)
    attest(dataset, rights="licensed", people="none", attested_by="benchmark")
    window = MainWindow(project, app_settings())
    window.resize(1440, 900)
    window.show()
    wait_until(window.engine_ready, 300)  # the pages are built once the engine is loaded
    window.show_page("train")
    window.train_page.select_dataset(dataset)
    window.train_page.set_preset("quick")
    return window


def measure_training(window, seconds: float, meter: StallMeter, preview_every: int) -> list[Measurement]:
    """Measure a run's start-up (click to the second preview: model build, first steps and previews),
    then its steady state for ``seconds``; stop it cleanly."""
    train = window.train_page
    train.train_form.set_values({"steps": 10_000_000, "preview_every": preview_every})
    started = time.perf_counter()
    meter.timer.start()  # already ticking when Start is clicked
    if not train.start():
        raise RuntimeError("training did not start")
    warm = preview_every + 1
    startup = meter.run(300, until=lambda: train.latest_stats.get("step", 0) > warm)
    startup_s = time.perf_counter() - started
    first = int(train.latest_stats.get("step", 0))
    late = meter.run(seconds)
    steps = int(train.latest_stats.get("step", 0)) - first
    train.stop()
    wait_until(lambda: not train.is_running(), 300)
    return [
        summarize(f"training start-up (to step {warm})", startup_s, startup, first),
        summarize(f"training (preview every {preview_every} steps)", seconds, late, steps),
    ]


def main() -> int:
    """Run the alternating rounds and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--interval-ms", type=int, default=5)
    parser.add_argument("--preview-every", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from studio.app import make_app  # the app's own start-up: PySide6 guard, GIL switch interval
    from studio.sysinfo import device_summary

    app = make_app(sys.argv[:1])
    from studio.theme import apply_theme

    apply_theme(app, "dark")
    workdir = Path(tempfile.mkdtemp(prefix="gan-studio-bench-"))
    window = build_window(workdir)
    meter = StallMeter(args.interval_ms)
    results: list[Measurement] = []
    for _ in range(args.rounds):
        meter.run(0.5)  # settle
        results.append(summarize("idle", args.seconds, meter.run(args.seconds), 0))
        results.extend(measure_training(window, args.seconds, meter, args.preview_every))
    window.close()
    report(results, device_summary(), args)
    worst = max(r.max_stall_ms for r in results if r.condition.startswith("training ("))
    return 0 if worst <= TARGET_MS else 1


def report(results: list[Measurement], device: str, args: argparse.Namespace) -> None:
    """Print a table (or JSON) of every window plus the worst case per condition."""
    if args.json:
        print(
            json.dumps(
                {
                    "device": device,
                    "target_ms": TARGET_MS,
                    "load_average": os.getloadavg()[0],
                    "results": [asdict(r) for r in results],
                },
                indent=2,
            )
        )
        return
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"GUI event-loop stalls, timer every {args.interval_ms} ms, {args.seconds:.0f} s per window, "
        f"{args.rounds} alternating rounds; {device}; {os.cpu_count()} CPU cores, load average {load:.1f}"
    )
    print(
        f"{'condition':<36}{'seconds':>8}{'ticks':>7}{'max stall ms':>14}{'p99 ms':>9}{'mean ms':>9}{'train steps':>13}"
    )
    for r in results:
        print(
            f"{r.condition:<36}{r.seconds:>8.1f}{r.ticks:>7}{r.max_stall_ms:>14.1f}{r.p99_ms:>9.2f}{r.mean_ms:>9.3f}"
            f"{r.train_steps:>13}"
        )
    idle = max(r.max_stall_ms for r in results if r.condition == "idle")
    startup = max(r.max_stall_ms for r in results if r.condition.startswith("training start"))
    busy = max(r.max_stall_ms for r in results if r.condition.startswith("training ("))
    verdict = "within" if busy <= TARGET_MS else "OVER"
    print(
        f"worst stall: idle {idle:.1f} ms, training {busy:.1f} ms ({verdict} the {TARGET_MS:.0f} ms target), "
        f"training start-up {startup:.1f} ms"
    )


if __name__ == "__main__":
    raise SystemExit(main())
