"""Start-up time: process start -> main window on screen, beside a bare PySide6 QMainWindow (the floor).

Each start is a fresh ``python`` process (so imports are really done again; the OS file cache stays
warm, hence "cold-ish"). The app is started the way ``gan-studio`` starts it (``studio.app.main``) on
a new project with fresh settings (``GAN_STUDIO_SETTINGS``) and a new user data folder; the clock runs
from just before the process is spawned until the first Expose event of a top-level window. For the
app it also records when the engine (PyTorch and the heavy modules) is ready: the window is usable
for everything from then on, and the longest the event loop stalled in between (a 10 ms timer's
worst lateness: how long a click or a repaint had to wait). Starts alternate floor/app so machine
noise hits both alike; one app start before them warms the file cache and is not counted.

    python bench/startup.py [--runs 5] [--platform offscreen|xcb] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 3.0

# The child prints one JSON line: seconds from T0 (set by the parent just before spawning) to the
# first expose, and to the engine being ready. An application-wide event filter sees the Expose
# event of every QWindow, so nothing in the app has to cooperate to be timed.
CHILD = r"""
import json, os, sys, time
T0 = float(os.environ["STARTUP_T0"])
from PySide6.QtCore import QElapsedTimer, QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QWindow
from PySide6.QtWidgets import QApplication, QMainWindow

marks = {}
clock = QElapsedTimer()
last = [0]

def tick():  # lateness of a 10 ms timer while the engine loads: how long the window could not react
    now = clock.nsecsElapsed()
    marks["stall_ms"] = max(marks.get("stall_ms", 0.0), (now - last[0]) / 1e6 - 10)
    last[0] = now

meter = QTimer()
meter.setTimerType(Qt.TimerType.PreciseTimer)
meter.setInterval(10)
meter.timeout.connect(tick)

def finish():
    marks.setdefault("ready", marks["shown"])
    marks.setdefault("stall_ms", 0.0)
    print("STARTUP " + json.dumps(marks), flush=True)
    os._exit(0)  # the measurement is taken; skip tearing down threads and widgets

def on_shown():
    window = next(w for w in QApplication.topLevelWidgets() if isinstance(w, QMainWindow))
    loader = getattr(window, "engine_loader", None)  # absent in builds that load the engine eagerly
    if loader is None or loader.is_ready():
        finish()
        return
    def ready(*_):
        marks["ready"] = time.time() - T0
        finish()
    loader.sig_ready.connect(ready)
    loader.sig_failed.connect(ready)
    clock.start()
    meter.start()

class Exposed(QObject):
    def eventFilter(self, obj, event):
        if "shown" not in marks and event.type() == QEvent.Type.Expose and isinstance(obj, QWindow) and obj.isExposed():
            marks["shown"] = time.time() - T0
            QTimer.singleShot(0, on_shown)
        return False

app = QApplication(sys.argv[:1])
watcher = Exposed()
app.installEventFilter(watcher)
if sys.argv[1] == "bare":
    window = QMainWindow()
    window.resize(1400, 900)
    window.show()
    app.exec()
else:
    from studio.app import main
    main(["--project", sys.argv[2]])
"""


def one_start(mode: str, work: Path, index: int, platform: str) -> dict[str, float]:
    """Spawn one process (``bare`` or ``app``) and return its marks in seconds since the spawn."""
    home = work / f"{mode}-{index}"
    env = dict(
        os.environ,
        QT_QPA_PLATFORM=platform,
        GAN_STUDIO_SETTINGS=str(home / "settings.ini"),
        XDG_DATA_HOME=str(home / "data"),  # platformdirs' user data folder on Linux
        PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    )
    env["STARTUP_T0"] = repr(time.time())
    done = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(home / "project")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    for line in done.stdout.splitlines():
        if line.startswith("STARTUP "):
            return json.loads(line.removeprefix("STARTUP "))
    raise RuntimeError(f"{mode} start {index} printed no timing (exit {done.returncode}):\n{done.stderr[-3000:]}")


def main() -> int:
    """Run the starts and print the medians and the ratio to the floor."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="starts of each kind (median reported)")
    parser.add_argument("--platform", default=os.environ.get("QT_QPA_PLATFORM", "offscreen"))
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    bare: list[float] = []
    shown: list[float] = []
    ready: list[float] = []
    stalls: list[float] = []
    with tempfile.TemporaryDirectory(prefix="startup-bench-") as tmp:
        one_start("app", Path(tmp), -1, args.platform)  # warm the file cache; not counted
        for i in range(args.runs):
            bare.append(one_start("bare", Path(tmp), i, args.platform)["shown"])
            marks = one_start("app", Path(tmp), i, args.platform)
            shown.append(marks["shown"])
            ready.append(marks["ready"])
            stalls.append(marks["stall_ms"])
    result = {
        "runs": args.runs,
        "platform": args.platform,
        "floor_s": statistics.median(bare),
        "window_s": statistics.median(shown),
        "engine_ready_s": statistics.median(ready),
        "window_to_floor": statistics.median(shown) / statistics.median(bare),
        "max_stall_while_loading_ms": max(stalls),
        "target_s": TARGET_S,
        "all": {"floor": bare, "window": shown, "engine_ready": ready, "stall_ms": stalls},
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"start-up, median of {args.runs} fresh processes each ({args.platform}; cpus: {os.cpu_count()})")
    print(f"  bare QMainWindow (floor)   {result['floor_s']:6.2f} s")
    print(f"  GAN Studio window shown    {result['window_s']:6.2f} s   {result['window_to_floor']:.1f}x the floor")
    print(f"  engine ready               {result['engine_ready_s']:6.2f} s")
    print(f"  longest event-loop stall while loading: {result['max_stall_while_loading_ms']:.0f} ms (worst start)")
    verdict = "meets" if result["window_s"] < TARGET_S else "misses"
    print(f"  target: window under {TARGET_S:.0f} s -> {verdict}")
    print(
        "  each run: "
        + ", ".join(f"{s:.2f}/{w:.2f}/{r:.2f}" for s, w, r in zip(bare, shown, ready))
        + " (floor/window/ready)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
