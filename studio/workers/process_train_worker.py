"""ProcessTrainWorker: a multi-process (torchrun) run started from the studio, followed through its run folder.

The run trains in processes of its own (one per GPU); this worker starts torchrun, passes on what the main
process writes to the run folder (engine/runs/follow.py) with the very signals a TrainWorker sends, so the
Train page shows it the same way, and stops it with a STOP file in the run folder, which the main process
sees and shares: every process stops on the same step and a checkpoint is written
(engine/training/trainer.py). SIGTERM to torchrun (passed on to every process, which stop the same way)
is the fallback should they not stop in time. It adapts, never computes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

from engine.runs.checkpoint import latest_checkpoint, load_checkpoint
from engine.runs.follow import RunFollower
from engine.runs.layout import preview_path
from engine.training import RunResult
from engine.training.health import Finding
from engine.training.trainer import STOP_FILE
from studio.workers.train_worker import TrainSignals

OUTPUT_NAME = "torchrun.log"
"""torchrun's own output (every process's stdout and stderr), kept in the run folder."""
SIGTERM_AFTER_SECONDS = 120.0
"""After Stop, how long the processes get to stop on their own before torchrun is sent SIGTERM."""


class ProcessTrainWorker(TrainSignals):
    """Runs ``command`` (a torchrun command line for ``run_dir``) to its end, a stop or an error."""

    can_pause = False
    """Several processes cannot hold on one step together; only Stop is offered."""

    def __init__(self, command: list[str], run_dir: Path, *, poll_seconds: float = 0.25) -> None:
        super().__init__()
        self.command = command
        self.run_dir = Path(run_dir)
        self.poll_seconds = poll_seconds
        self.follower = RunFollower(self.run_dir)
        self._stop = threading.Event()
        self.started = 0.0

    # -- control (GUI thread) ---------------------------------------------------------------------
    def stop(self) -> None:
        """Ask every process to stop after the current step (they write a checkpoint first)."""
        self._stop.set()

    def pause(self) -> None:
        """Not available for a multi-process run (see ``can_pause``)."""

    def resume(self) -> None:
        """Nothing to continue: a multi-process run never pauses."""

    @property
    def paused(self) -> bool:
        """Always False (see ``can_pause``)."""
        return False

    @property
    def stopping(self) -> bool:
        """True once a stop is requested."""
        return self._stop.is_set()

    # -- the job (worker thread) ------------------------------------------------------------------
    def run(self) -> None:
        """Start the processes, follow the run folder until they end, then emit sig_finished or sig_failed."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.started = time.monotonic()
        with open(self.run_dir / OUTPUT_NAME, "ab") as output:
            try:
                process = subprocess.Popen(self.command, stdout=output, stderr=subprocess.STDOUT, env=_env())
            except OSError as exc:
                self.sig_failed.emit(f"Could not start the training processes: {exc}", " ".join(self.command))
                return
            self._follow(process)
        self._pass_on()
        self._report_end(process.returncode)

    def _follow(self, process: subprocess.Popen) -> None:
        asked: float | None = None
        while process.poll() is None:
            if self._stop.is_set() and asked is None:
                (self.run_dir / STOP_FILE).touch()
                asked = time.monotonic()
            elif asked is not None and time.monotonic() - asked > SIGTERM_AFTER_SECONDS:
                process.send_signal(signal.SIGTERM)  # torchrun passes it to each process, which stop alike
                asked = float("inf")
            self._pass_on()
            time.sleep(self.poll_seconds)

    def _pass_on(self) -> None:
        updates = self.follower.poll()
        for line in updates.log:
            self.sig_log.emit(line)
        for record in updates.stats:
            (self.sig_metric if "kid" in record else self.sig_step).emit(record)
        for step in updates.previews[-1:]:  # only the newest grid is worth drawing
            grid = _read_grid(preview_path(self.run_dir, step))
            if grid is not None:
                self.sig_preview.emit(grid, step)
        for path in updates.checkpoints:
            self.sig_checkpoint.emit(str(path))
        for entry in updates.findings:
            self.sig_health.emit(Finding.from_dict(entry))

    def _report_end(self, code: int) -> None:
        checkpoint = latest_checkpoint(self.run_dir)
        # torchrun itself exits non-zero after a SIGTERM, even when its processes stopped cleanly
        if (code == 0 or self._stop.is_set()) and checkpoint is not None:
            state = load_checkpoint(checkpoint)
            target = state.get("config", {}).get("steps")
            step = int(state["step"])
            stopped = self._stop.is_set() or (target is not None and step < int(target))
            seconds = float(state.get("train_seconds", time.monotonic() - self.started))
            self.sig_finished.emit(RunResult(self.run_dir, step, stopped, checkpoint, seconds))
            return
        tail = _tail(self.run_dir / OUTPUT_NAME)
        errors = [line for line in tail.splitlines() if "error:" in line]
        message = errors[-1].split("error:", 1)[1].strip() if errors else f"the training processes ended (code {code})"
        kept = f" The last checkpoint, {checkpoint.name}, is kept." if checkpoint is not None else ""
        self.sig_failed.emit(f"Training stopped: {message.rstrip('.')}.{kept}", tail)


def _env() -> dict[str, str]:
    """This environment without a launcher's variables of our own process (they would confuse torchrun's)."""
    return {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT")}


def _read_grid(path: Path) -> np.ndarray | None:
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except OSError:  # still being renamed into place, or gone: the next one will do
        return None


def _tail(path: Path, limit: int = 6000) -> str:
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    return data[-limit:].decode("utf-8", errors="replace")
