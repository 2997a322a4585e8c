"""Trainer(config, callbacks).run(): the training loop shared by the CLI and the studio.

The loop owns data sampling, device placement, callbacks, previews, stats, checkpoints and recovery
(NaN roll-back, out-of-memory retry with smaller micro-batches). The model family owns the networks
and the optimisation step. All randomness is drawn from torch RNGs that are checkpointed, so a run
stopped at step k and resumed is bit-identical on CPU to a run that never stopped.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

import engine
from engine.consent import require_attestation
from engine.data import PreparedDataset, is_dataset, load_dataset
from engine.data.pairs import DataPlan
from engine.device import describe_device, free_accelerator_memory, is_oom, select_device
from engine.distributed import SINGLE, Replica, replica_from_env
from engine.errors import CheckpointError, ConfigError, DataError, DeviceError, GanStudioError
from engine.families import get_family
from engine.families.base import Family, ModelSpec
from engine.fsutil import atomic_write_json, save_png
from engine.gpu_stats import gpu_stats_record
from engine.runs.checkpoint import (
    checkpoint_path,
    latest_checkpoint,
    load_checkpoint,
    load_latest_checkpoint,
    prune_checkpoints,
    save_checkpoint,
)
from engine.runs.config import TrainConfig, read_run_config
from engine.runs.layout import preview_path
from engine.training.health import (
    AUTO_REMEDY_DETECTORS,
    HEALTH_SAMPLES,
    Finding,
    HealthMonitor,
    ImageSource,
    append_finding,
    cut_health,
    with_remedy,
)
from engine.training.planner import MemoryPlan, plan_memory
from engine.training.previews import make_grid_uint8, to_uint8_nhwc

_SNAPSHOT_EVERY = 50
_RUN_IDENTITY = ("dataset", "family", "family_options", "resolution", "format_version")
"""TrainConfig fields Trainer.resume(settings=...) refuses to change: the checkpoint is a model of exactly these."""
_RATE_SETTINGS = ("lr_g", "lr_d")
_MAX_ROLLBACKS = 5
_GPU_READ_SECONDS = 2.0
STOP_FILE = "STOP"
"""A file of this name in the run folder stops the run after the current step, with a checkpoint (any front
end, any machine that sees the folder: ``touch RUN/STOP``); the trainer removes it."""
_RANK_SEED_STRIDE = 1_000_003
"""Rank r > 0 of a multi-process run seeds its RNG with seed + r * this (its own augmentations)."""


class TrainingDiverged(GanStudioError):
    """Losses stayed non-finite after repeated roll-backs."""


@dataclass
class Callbacks:
    """Hooks the front ends pass to the Trainer. Every field is optional.

    on_step(stats) gets a dict per step (step, images_seen, losses, img_per_sec, eta_seconds, ...);
    on_preview(grid, step) gets the fixed-seed preview grid as uint8 HxWxC numpy;
    on_checkpoint(path) after each checkpoint is written; on_error(exc) before the error propagates;
    on_log(message) for notes the user should see (device, OOM retries, NaN roll-backs);
    on_metric(record) after each quality measurement ({'step', 'kid', 'kid_std', 'kid_name'});
    on_health(finding) when the training doctor's level for a detector changes (engine/training/health.py);
    should_stop() and should_pause() are polled every step.
    """

    on_step: Callable[[dict[str, Any]], None] | None = None
    on_preview: Callable[[np.ndarray, int], None] | None = None
    on_checkpoint: Callable[[Path], None] | None = None
    on_error: Callable[[BaseException], None] | None = None
    on_log: Callable[[str], None] | None = None
    on_metric: Callable[[dict[str, Any]], None] | None = None
    on_health: Callable[[Finding], None] | None = None
    should_stop: Callable[[], bool] | None = None
    should_pause: Callable[[], bool] | None = None


@dataclass
class RunResult:
    """What a finished (or stopped) run left behind."""

    run_dir: Path
    step: int
    stopped: bool
    checkpoint: Path | None
    seconds: float
    log: list[str] = field(default_factory=list)


class _Sampler:
    """Endless shuffled index stream over N items, with a checkpointable state.

    With ``weights`` (one per item) each pass is N draws with replacement, item i with probability
    proportional to weights[i] (class-balanced oversampling) instead of a permutation.
    """

    def __init__(self, n: int, seed: int, weights: torch.Tensor | None = None) -> None:
        self.n = n
        self.weights = weights
        self.gen = torch.Generator().manual_seed(seed)
        self.perm = torch.empty(0, dtype=torch.long)
        self.pos = 0

    def take(self, k: int) -> torch.Tensor:
        parts = []
        while k > 0:
            if self.pos >= len(self.perm):
                self.perm, self.pos = self._next_pass(), 0
            part = self.perm[self.pos : self.pos + k]
            parts.append(part)
            self.pos += len(part)
            k -= len(part)
        return torch.cat(parts)

    def _next_pass(self) -> torch.Tensor:
        if self.weights is None:
            return torch.randperm(self.n, generator=self.gen)
        return torch.multinomial(self.weights, self.n, replacement=True, generator=self.gen)

    def state_dict(self) -> dict[str, Any]:
        return {"gen": self.gen.get_state(), "perm": self.perm.clone(), "pos": self.pos}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.gen.set_state(state["gen"])
        self.perm, self.pos = state["perm"].clone(), int(state["pos"])


class _PlanSampler:
    """Draws examples of a DataPlan: one index stream for paired streams, one per stream otherwise."""

    def __init__(self, plan: DataPlan, seed: int, weights: torch.Tensor | None = None) -> None:
        self.streams = [torch.from_numpy(np.asarray(s, dtype=np.int64)) for s in plan.streams]
        sizes = [len(s) for s in self.streams]
        # ``weights`` are per example of the first stream (class balance); independent streams ignore them
        self.samplers = (
            [_Sampler(sizes[0], seed, weights)] if plan.paired else [_Sampler(n, seed + i) for i, n in enumerate(sizes)]
        )

    def take(self, k: int) -> list[torch.Tensor]:
        """Dataset rows for k examples, one tensor per stream."""
        if len(self.samplers) == 1:
            idx = self.samplers[0].take(k)
            return [s[idx] for s in self.streams]
        return [s[sampler.take(k)] for s, sampler in zip(self.streams, self.samplers)]

    def first(self, k: int) -> list[torch.Tensor]:
        """Rows of the first k examples of every stream (fixed preview inputs)."""
        return [s[:k] for s in self.streams]

    def state_dict(self) -> dict[str, Any]:
        # one stream keeps the layout of checkpoints written before data plans existed
        if len(self.samplers) == 1:
            return self.samplers[0].state_dict()
        return {"streams": [s.state_dict() for s in self.samplers]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        states = state["streams"] if "streams" in state else [state]
        if len(states) != len(self.samplers):
            raise CheckpointError(
                "this checkpoint samples its data differently from the current settings; "
                "resume it with the settings it was started with"
            )
        for sampler, sub in zip(self.samplers, states):
            sampler.load_state_dict(sub)


class Trainer:
    """Train ``config.family`` on ``config.dataset`` into ``run_dir``; see :meth:`run`."""

    def __init__(
        self,
        config: TrainConfig,
        callbacks: Callbacks | None = None,
        run_dir: Path | str | None = None,
        resume: bool = False,
    ) -> None:
        config.validate()
        self.config = config
        self.cb = callbacks or Callbacks()
        self.run_dir = Path(run_dir) if run_dir else default_run_dir(config)
        self.resume_requested = resume
        self.log_lines: list[str] = []
        self.step = 0
        self.train_seconds = 0.0
        self.micro_batches = 1
        self.rollbacks = 0
        self.best_kid: float | None = None
        self.health: HealthMonitor | None = None  # the training doctor, made in _setup with health on
        self.findings: list[Finding] = []
        self.last_checkpoint_step = 0
        self.last_checkpoint_seconds = 0.0  # training seconds at the last checkpoint (checkpoint_minutes)
        self.replica: Replica = SINGLE  # this process's place in a torchrun run (engine/distributed.py)
        self.auto_remedies = config.auto_remedies
        self.stats_file: Any = None  # stats.jsonl, open while the main process trains
        self._gpu_read_at = -math.inf
        self._gpu_last: dict[str, float] = {}

    @classmethod
    def resume(
        cls,
        run_dir: Path | str,
        callbacks: Callbacks | None = None,
        *,
        steps: int | None = None,
        minutes: float | None = None,
        device: str | None = None,
        settings: dict[str, Any] | None = None,
    ) -> Trainer:
        """A Trainer that continues ``run_dir`` from its newest checkpoint; limits can be raised.

        ``settings`` are TrainConfig overrides from the checkpoint on (a training doctor's Fix.settings):
        checked like any setting, recorded in config.json, and a changed learning rate reaches the restored
        optimizers (see _carry_changed_rates). What makes the run itself (dataset, family, resolution) stays.
        """
        config = read_run_config(run_dir)
        if settings:
            fixed = sorted(set(settings) & set(_RUN_IDENTITY))
            if fixed:
                raise ConfigError(
                    f"setting(s) {', '.join(fixed)} make the run what it is and cannot change on resume; "
                    "start a new run with them instead"
                )
            config = TrainConfig.from_dict({**config.to_dict(), **settings})
        if steps is not None:
            config.steps = steps
        if minutes is not None:
            config.minutes = minutes
        if device is not None:
            config.device = device
        return cls(config, callbacks, run_dir, resume=True)

    # -- public -----------------------------------------------------------------------------------
    def run(self) -> RunResult:
        """Train until the step/time limit or until should_stop(); always ends with a checkpoint."""
        try:
            self._setup()
            stopped = self._loop()
            # decided by the main process, which alone sees the run folder
            final = self.replica.broadcast_object(self._needs_final_checkpoint())
            last = self._save_checkpoint() if final else latest_checkpoint(self.run_dir)
            self._log(f"{'Stopped' if stopped else 'Finished'} at step {self.step}; checkpoint {last}")
            return RunResult(self.run_dir, self.step, stopped, last, self.train_seconds, self.log_lines)
        except BaseException as exc:
            if self.cb.on_error and not isinstance(exc, KeyboardInterrupt):
                self.cb.on_error(exc)
            raise
        finally:
            self._close_stats()
            self.replica.close()

    # -- set-up -----------------------------------------------------------------------------------
    def _setup(self) -> None:
        cfg = self.config
        self.device = select_device(cfg.device)
        self._join_replicas()
        existing = latest_checkpoint(self.run_dir)
        if existing is not None and not self.resume_requested:
            raise ConfigError(
                f"run folder {self.run_dir} already holds checkpoints; resume it "
                f"(gan-studio-cli resume {self.run_dir}) or choose another --out folder",
                gui=f"run folder {self.run_dir} already holds checkpoints; select it under Runs on the Train page "
                "and click Resume, or click Start training for a new run",
            )
        if not is_dataset(cfg.dataset):
            raise DataError(
                f"{cfg.dataset} is not a prepared dataset; create it with "
                f"gan-studio-cli import YOUR_IMAGE_FOLDER --out {cfg.dataset}",
                gui=f"{cfg.dataset} is not a prepared dataset; click Import folder… on the Dataset page to make one",
            )
        self.attestation = require_attestation(cfg.dataset)
        # the family says the size (an upscaler cuts its crops from images prepared larger than them)
        self.dataset: PreparedDataset = load_dataset(cfg.dataset, get_family(cfg.family).data_resolution(cfg))
        if len(self.dataset) == 0:
            raise DataError(f"dataset {cfg.dataset} has no usable images; import a folder with images first")
        self._log(f"Training '{cfg.family}' on {describe_device(self.device)}")
        self.plan = self._plan_memory()
        self.family = self._build_family()
        self._prepare_data()
        self.preview_inputs = self.family.preview_inputs(cfg.preview_count, cfg.seed, self._first_examples)
        # the training doctor watches from the main process (it writes health.jsonl and its evidence images)
        self.health = self._make_health() if cfg.health and self.replica.is_main else None
        self.micro_batches = self.plan.accumulate
        if self.resume_requested:
            self._restore(existing)
        self.replica.broadcast_modules(self.family.modules.values())  # as DDP does: rank 0's weights everywhere
        self.kid_every = self._kid_interval() if self.replica.is_main else 0
        if self.replica.is_main:
            (self.run_dir / STOP_FILE).unlink(missing_ok=True)  # left from an earlier stop: not a request to this run
            self._write_run_files()
            self._open_stats()
        self.good_state = _clone_state(self.family.state_dict())

    def _plan_memory(self) -> MemoryPlan:
        """The memory planner's choices for this device (engine/training/planner.py), in the log. On a GPU it
        measures the model to choose the gradient accumulation; elsewhere free memory is unknown and it only
        states the defaults. Settings the user gave are kept; amp and channels_last left unset (None) stay
        unset in config.json, where they mean the same device default the plan states."""
        cfg = self.config
        measure = self.device.type == "cuda" and cfg.accumulate is None
        plan = plan_memory(cfg, self.device, world_size=self.replica.world_size, probe=measure)
        self._log(plan.summary())
        return plan

    def _join_replicas(self) -> None:
        """Under torchrun: join the other processes, agree on the run folder and take this one's GPU."""
        self.replica = replica_from_env(self.device.type)
        if not self.replica.distributed:
            return
        self.replica.share(self.config.batch_size)  # refuses a batch that does not divide among the processes
        if self.device.type == "cuda":
            self.device = torch.device("cuda", self.replica.local_rank)
        # the default folder name holds the time, which differs between processes by a second or so
        self.run_dir = Path(self.replica.broadcast_object(str(self.run_dir)))
        if self.auto_remedies:
            self.auto_remedies = False
            self._log("Automatic remedies are off in a multi-process run; the doctor's findings are still written")
        self._log(
            f"{self.replica.world_size} processes ({self.replica.backend}): each trains on "
            f"{self.config.batch_size // self.replica.world_size} of the {self.config.batch_size} images per step"
        )

    def _build_family(self) -> Family:
        cfg = self.config
        family_cls = get_family(cfg.family)
        num_classes = len(self.dataset.classes) if cfg.conditional and family_cls.kind == "generate" else 0
        if num_classes and (np.asarray(self.dataset.labels) < 0).any():
            self._log("Some images lie outside the class folders: training without class labels")
            num_classes = 0
        spec = ModelSpec(self.dataset.size, self.dataset.channels, num_classes)
        # Seed before building so the initial weights are a function of the seed alone.
        torch.manual_seed(cfg.seed)
        family = family_cls(spec, cfg, self.device)
        family.join(self.replica)
        if self.replica.rank:  # augmentations and other draws differ between processes; weights start alike
            torch.manual_seed(cfg.seed + _RANK_SEED_STRIDE * self.replica.rank)
        if family.amp:
            self._log("Mixed precision (fp16 autocast) is on")
        return family

    def _prepare_data(self) -> None:
        images = self.dataset.images
        # Small datasets live in memory (on the GPU when there is one) so a step never waits for disk.
        in_memory = images.nbytes < (2 << 30)
        data = torch.from_numpy(np.array(images)) if in_memory else None  # a writable copy
        if data is not None and self.device.type == "cuda":
            data = data.to(self.device)
        self.images_in_memory = data
        self.labels = torch.from_numpy(np.asarray(self.dataset.labels, dtype=np.int64))
        self.conditional = self.family.spec.num_classes > 0
        plan = self.family.data_plan(self.dataset)
        for note in plan.notes:
            self._log(note)
        self.sampler = _PlanSampler(plan, self.config.seed, self._class_weights(plan))

    def _class_weights(self, plan: DataPlan) -> torch.Tensor | None:
        """Per-example sampling weights 1 / (size of its class) with setting class_balance, else None."""
        if not self.config.class_balance:
            return None
        if not self.dataset.classes or not plan.paired:
            self._log(
                "Class-balanced sampling needs class folders (and one image stream): every image is drawn equally"
            )
            return None
        # images outside the class folders (label -1) form one more group of their own
        labels = self.labels[torch.from_numpy(np.asarray(plan.streams[0], dtype=np.int64))]
        values, group, counts = torch.unique(labels, return_inverse=True, return_counts=True)
        sizes = ", ".join(
            f"{self.dataset.classes[v] if v >= 0 else 'no class'} {c}" for v, c in zip(values.tolist(), counts.tolist())
        )
        self._log(f"Class-balanced sampling: each class drawn equally often ({sizes} images)")
        return 1.0 / counts[group].double()

    def _rows(self, idx: torch.Tensor) -> torch.Tensor:
        """Dataset rows as (N,C,H,W) floats in [-1,1] on the training device."""
        if self.images_in_memory is not None:
            raw = self.images_in_memory[idx.to(self.images_in_memory.device)]
        else:
            order = np.argsort(idx.numpy(), kind="stable")  # memory-mapped reads in file order
            raw = torch.empty((len(idx), *self.dataset.images.shape[1:]), dtype=torch.uint8)
            raw[torch.from_numpy(order)] = torch.from_numpy(np.asarray(self.dataset.images[idx.numpy()[order]]))
        return raw.to(self.device, non_blocking=True).permute(0, 3, 1, 2).float().div_(127.5).sub_(1)

    def _batch(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        # every process draws the whole step's rows from the same sampler and takes its share: the data a
        # run sees does not depend on how many processes train it (a distributed sampler, resumable anywhere)
        share = self.replica.share(self.config.batch_size)
        rows = [idx[share] for idx in self.sampler.take(self.config.batch_size)]
        # several streams (A and B images) travel as one batch, concatenated along channels
        x = torch.cat([self._rows(idx) for idx in rows], 1) if len(rows) > 1 else self._rows(rows[0])
        labels = self.labels[rows[0]].to(self.device) if self.conditional else None
        return x, labels

    def _first_examples(self, k: int) -> torch.Tensor:
        return torch.cat([self._rows(idx) for idx in self.sampler.first(k)], 1)

    # -- the loop ---------------------------------------------------------------------------------
    def _loop(self) -> bool:
        cfg = self.config
        self.last_checkpoint_step, self.last_checkpoint_seconds = self.step, self.train_seconds
        rate = _RateMeter()
        while not self._limit_reached():
            if self._poll_stop_and_pause():
                return True
            started = time.perf_counter()
            stats = self._guarded_step(*self._batch())
            self.step += 1
            elapsed = time.perf_counter() - started
            self.train_seconds += elapsed
            rate.add(cfg.batch_size, elapsed)
            stop_agreed = self._sync_processes()
            if stats is not None:
                self._report(stats, rate)
                if self.health is not None:
                    self._health_findings(self.health.observe_step(self.step, stats))
            if self.health is not None and self.health.image_due(self.step):
                self._health_findings(self.health.observe_images(self.step))
            if cfg.preview_every and (self.step % cfg.preview_every == 0 or self.step == 1):
                self._preview()
            if self.kid_every and self.step % self.kid_every == 0:
                self._measure_kid()
            if self.step % cfg.checkpoint_every == 0 or self._checkpoint_due_by_time():
                self._save_checkpoint()
            if self.step % _SNAPSHOT_EVERY == 0:
                self.good_state = _clone_state(self.family.state_dict())
            if stop_agreed:
                return True
        if cfg.preview_every and self.step % cfg.preview_every:
            self._preview()
        return False

    def _sync_processes(self) -> bool:
        """Multi-process runs, after every step: rank 0's batch-norm statistics and training clock reach every
        process (so time limits and timed checkpoints fall on the same step everywhere), and a stop asked of
        any process (Ctrl+C, torchrun's SIGTERM) reaches all. True when they stop after this step."""
        if not self.replica.distributed:
            return False
        self.replica.broadcast_modules(self.family.modules.values(), buffers_only=True)
        asked = 1.0 if self._stop_asked() else 0.0
        total = self.replica.sum_values([asked, self.train_seconds if self.replica.is_main else 0.0])
        self.train_seconds = total[1]
        return total[0] > 0

    def _stop_asked(self) -> bool:
        """should_stop(), or a STOP file in the run folder (seen by the main process, which removes it)."""
        if self.cb.should_stop and self.cb.should_stop():
            return True
        flag = self.run_dir / STOP_FILE
        if self.replica.is_main and flag.exists():
            flag.unlink(missing_ok=True)
            self._log(f"Stop requested ({STOP_FILE} file in the run folder)")
            return True
        return False

    def _limit_reached(self) -> bool:
        cfg = self.config
        if cfg.steps is not None and self.step >= cfg.steps:
            return True
        return cfg.minutes is not None and self.train_seconds >= cfg.minutes * 60

    def _poll_stop_and_pause(self) -> bool:
        if self.replica.distributed:  # polled in _sync_processes, so every process stops on the same step
            return False
        pause = self.cb.should_pause
        if self._stop_asked():
            return True
        if pause and pause():
            self._log(f"Paused at step {self.step}")
            while pause():
                if self._stop_asked():
                    return True
                time.sleep(0.05)
            self._log("Resumed")
        return False

    def _guarded_step(self, real: torch.Tensor, labels: torch.Tensor | None) -> dict[str, float] | None:
        """One family step with OOM retry (smaller micro-batches) and NaN roll-back."""
        while True:
            try:
                stats = self.family.train_step(real, labels, self.step, self.micro_batches)
                break
            except Exception as exc:
                if is_oom(exc) and self.replica.distributed:  # one process cannot retry alone
                    raise DeviceError(
                        f"out of GPU memory on process {self.replica.rank} in micro-batches of "
                        f"{math.ceil(real.shape[0] / self.micro_batches)} images; resume with "
                        f"--set accumulate={min(real.shape[0], self.micro_batches * 2)} (or a smaller batch_size)"
                    ) from exc
                if not is_oom(exc) or self.micro_batches >= real.shape[0]:
                    raise
                free_accelerator_memory(self.device)
                self.micro_batches *= 2
                self._log(
                    f"Out of GPU memory at step {self.step}: retrying with {self.micro_batches} micro-batches "
                    f"of {math.ceil(real.shape[0] / self.micro_batches)} images (the effective batch stays "
                    f"{real.shape[0]})"
                )
        stats = self.replica.mean_stats(stats)  # the whole step's losses, and every process rolls back alike
        if all(math.isfinite(v) for v in stats.values()):
            self.rollbacks = 0
            return stats
        self._rollback(stats)
        return None

    def _rollback(self, stats: dict[str, float]) -> None:
        self.rollbacks += 1
        if self.rollbacks > _MAX_ROLLBACKS:
            if self.health is not None:  # the doctor's last word before the run gives up
                self._health_findings(self.health.observe_rollback(self.step, fatal=True))
            raise TrainingDiverged(
                f"training diverged: losses stayed non-finite after {_MAX_ROLLBACKS} roll-backs "
                "(try a lower lr_g/lr_d, loss 'hinge' or r1_gamma > 0)"
            )
        self.family.load_state_dict(_clone_state(self.good_state))
        self.family.scale_lr(self.config.nan_lr_factor)
        bad = ", ".join(f"{k}={v}" for k, v in stats.items() if not math.isfinite(v))
        self._log(
            f"Non-finite loss at step {self.step} ({bad}): rolled back to the last good state and "
            f"multiplied the learning rates by {self.config.nan_lr_factor}"
        )
        if self.health is not None:  # after the restore, so an automatic remedy acts on the restored model
            self._health_findings(self.health.observe_rollback(self.step))

    # -- reporting --------------------------------------------------------------------------------
    def _report(self, stats: dict[str, float], rate: _RateMeter) -> None:
        cfg = self.config
        per_second = rate.per_second()
        record = {
            "step": self.step,
            "images_seen": self.step * cfg.batch_size,
            **stats,
            "img_per_sec": per_second,
            "epoch": round(self.step * cfg.batch_size / len(self.dataset), 3),
            "seconds_per_epoch": round(len(self.dataset) / per_second, 2) if per_second else None,
            "seconds": round(self.train_seconds, 3),
            "eta_seconds": self._eta(rate),
            "world_size": self.replica.world_size,
            **self.gpu_record(),
        }
        if not self.replica.is_main:
            return
        if self.step % cfg.log_every == 0 or self.step == cfg.steps:
            self._write_stats(record)
        if self.cb.on_step:
            self.cb.on_step(record)

    def gpu_record(self) -> dict[str, float]:
        """GPU utilisation and memory for a stats line, read at most every few seconds (nvidia-ml-py); {} off a GPU."""
        now = time.monotonic()
        if self.device.type == "cuda" and now - self._gpu_read_at >= _GPU_READ_SECONDS:
            self._gpu_read_at, self._gpu_last = now, gpu_stats_record(self.device)
        return self._gpu_last

    def _write_stats(self, record: dict[str, Any]) -> None:
        self.stats_file.write(json.dumps(record) + "\n")
        self.stats_file.flush()

    def _eta(self, rate: _RateMeter) -> float | None:
        cfg = self.config
        per_step = rate.seconds_per_step()
        remaining = []
        if cfg.steps is not None and per_step:
            remaining.append((cfg.steps - self.step) * per_step)
        if cfg.minutes is not None:
            remaining.append(max(0.0, cfg.minutes * 60 - self.train_seconds))
        return round(min(remaining), 1) if remaining else None

    def _preview(self) -> None:
        if not self.replica.is_main:
            return
        images, per_row = self.family.render_preview(self.preview_inputs)
        grid = make_grid_uint8(images, nrow=per_row)
        save_png(grid, preview_path(self.run_dir, self.step))
        if self.cb.on_preview:
            self.cb.on_preview(grid, self.step)

    def _kid_interval(self) -> int:
        every = self.config.kid_every
        if self.family.kind != "generate":
            if every:
                self._log("KID is measured for noise-to-image families only; 'kid_every' is ignored for this run")
            return 0
        if every is None:  # on a CPU a measurement costs as much as many training steps
            every = 1000 if self.device.type == "cuda" else 0
        if every:
            from engine.metrics import KIDMonitor  # heavy (feature network); only when asked for

            self.kid_monitor = KIDMonitor(
                self.config.dataset,
                num_fake=self.config.kid_samples,
                device=str(self.device),
                size=self.dataset.size,
                seed=self.config.seed,
            )
            self._log(f"Measuring {self.kid_monitor.name} every {every} steps on {self.config.kid_samples} samples")
        return every

    def _measure_kid(self) -> None:
        # A private generator: measuring must not move the training RNG (exact resume).
        gen = torch.Generator().manual_seed(self.config.seed + 104729)
        n, fam = self.config.kid_samples, self.family
        z = torch.randn(n, fam.latent_dim, generator=gen)
        labels = torch.randint(0, fam.spec.num_classes, (n,), generator=gen) if fam.spec.num_classes else None
        images = np.concatenate(
            [
                to_uint8_nhwc(fam.sample(z[i : i + 64], None if labels is None else labels[i : i + 64]))
                for i in range(0, n, 64)
            ]
        )
        value = self.kid_monitor.measure(lambda _n: images)
        assert self.kid_monitor.last is not None  # measure() has just set (mean, std)
        record = {
            "step": self.step,
            "kid": value,
            "kid_std": self.kid_monitor.last[1],
            "kid_name": self.kid_monitor.name,
        }
        self._write_stats(record)
        if self.cb.on_metric:
            self.cb.on_metric(record)
        if self.health is not None:
            self._health_findings(self.health.observe_metric(record))
        if self.best_kid is None or value < self.best_kid:
            self.best_kid = value
            path = self.run_dir / "checkpoints" / "best-kid.pt"
            save_checkpoint(path, self._checkpoint_state())
            self._log(f"New best {self.kid_monitor.name} {value:.4f} at step {self.step}: saved {path.name}")

    # -- the training doctor ------------------------------------------------------------------------
    def _make_health(self) -> HealthMonitor:
        images = None
        if self.family.kind == "generate":  # the image detectors need images drawn from noise
            # the fixed latents of the preview (the same private seed), HEALTH_SAMPLES of them
            inputs = self.family.preview_inputs(HEALTH_SAMPLES, self.config.seed, self._first_examples)
            images = ImageSource(self._rows, len(self.dataset), lambda: self.family.render_preview(inputs)[0])
        return HealthMonitor(self.config, self.run_dir, images)

    def _health_findings(self, findings: list[Finding]) -> None:
        """Apply any automatic remedy, then write each finding to health.jsonl and pass it on."""
        for finding in findings:
            if self.auto_remedies and finding.detector in AUTO_REMEDY_DETECTORS:
                finding = self._auto_remedy(finding)
            append_finding(self.run_dir, finding)
            self.findings.append(finding)
            if self.cb.on_health:
                self.cb.on_health(finding)

    def _auto_remedy(self, finding: Finding) -> Finding:
        """Apply the first fix of a warning or problem to the running family (TrainConfig.auto_remedies)."""
        fix = finding.fixes[0] if finding.fixes and finding.level in ("warning", "problem") else None
        if fix is None or fix.action != "resume":
            return finding
        applied = self.family.retune(fix.settings)  # also records them in self.config (family.train)
        if not applied:
            self._log(f"Automatic remedy '{fix.label}' needs a resume with new settings; not applied mid-run")
            return finding
        atomic_write_json(self.run_dir / "config.json", self.config.to_dict())  # a resume keeps the remedy
        # a later roll-back restores this state, not one from before the remedy (which would undo it)
        self.good_state = _clone_state(self.family.state_dict())
        values = ", ".join(f"{k}={fix.settings[k]}" for k in applied)
        self._log(f"Automatic remedy at step {self.step} ({finding.detector}): {fix.label} ({values})")
        return with_remedy(finding, fix, applied)

    def _log(self, message: str) -> None:
        self.log_lines.append(message)
        if not self.replica.is_main:  # one log for the run: the main process's
            return
        stamp = datetime.now().strftime("%H:%M:%S")
        log_path = self.run_dir / "log.txt"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "a", encoding="utf-8") as handle:
            handle.write(f"{stamp} {message}\n")
        if self.cb.on_log:
            self.cb.on_log(message)

    # -- files ------------------------------------------------------------------------------------
    def _write_run_files(self) -> None:
        atomic_write_json(self.run_dir / "config.json", self.config.to_dict())
        atomic_write_json(
            self.run_dir / "run.json",
            {
                "format_version": 1,
                "app_version": engine.__version__,
                "family": self.config.family,
                "spec": vars(self.family.spec),
                "classes": self.dataset.classes,
                **self.family.describe(),
                "dataset": str(self.config.dataset),
                "dataset_fingerprint": self.dataset.fingerprint,
                "attestation_id": self.attestation.id,
                "world_size": self.replica.world_size,
                "effective_batch": self.config.batch_size,
                "batch_per_process": self.config.batch_size // self.replica.world_size,
                "backend": self.replica.backend or None,
                "updated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            },
        )
        for sub in ("checkpoints", "previews", "exports"):
            (self.run_dir / sub).mkdir(parents=True, exist_ok=True)

    def _open_stats(self) -> None:
        path = self.run_dir / "stats.jsonl"
        if self.resume_requested and path.exists():
            # Drop lines written after the checkpoint we resumed from (a hard kill leaves them behind),
            # so the curves show one consistent history.
            kept = [
                line
                for line in path.read_text(encoding="utf-8").splitlines()
                if (step := _line_step(line)) is not None and step <= self.step
            ]
            path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
        self.stats_file = open(path, "a", encoding="utf-8")

    def _close_stats(self) -> None:
        if self.stats_file is not None and not self.stats_file.closed:
            self.stats_file.close()

    def _needs_final_checkpoint(self) -> bool:
        return self.step != self.last_checkpoint_step or latest_checkpoint(self.run_dir) is None

    def _checkpoint_due_by_time(self) -> bool:
        # training seconds only: time spent paused, in previews or writing checkpoints is no lost work
        minutes = self.config.checkpoint_minutes
        return minutes is not None and self.train_seconds - self.last_checkpoint_seconds >= minutes * 60

    def _save_checkpoint(self) -> Path:
        """Every process calls this on the same step: each hands its RNG state to the main process, which writes."""
        path = checkpoint_path(self.run_dir, self.step)
        rngs = self.replica.gather_objects(_rng_state(self.device))
        self.last_checkpoint_step, self.last_checkpoint_seconds = self.step, self.train_seconds
        if not self.replica.is_main:
            return path
        save_checkpoint(path, self._checkpoint_state(rngs))
        prune_checkpoints(self.run_dir, self.config.keep_checkpoints, protect={path})
        if self.cb.on_checkpoint:
            self.cb.on_checkpoint(path)
        return path

    def _checkpoint_state(self, rngs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """The full state; ``rngs``: every process's RNG state in rank order (default: this process's)."""
        rngs = rngs or [_rng_state(self.device)]
        return {
            "family": self.config.family,
            "spec": vars(self.family.spec),
            "classes": self.dataset.classes,
            "config": self.config.to_dict(),
            "step": self.step,
            "train_seconds": self.train_seconds,
            "micro_batches": self.micro_batches,
            "family_state": self.family.state_dict(),
            "rng": rngs[0],
            "rng_ranks": rngs,
            "world_size": len(rngs),
            "sampler": self.sampler.state_dict(),
            "dataset_fingerprint": self.dataset.fingerprint,
            "attestation_id": self.attestation.id,
            "app_version": engine.__version__,
            "best_kid": self.best_kid,
            "health": None if self.health is None else self.health.state_dict(),
        }

    def _restore(self, path: Path | None) -> None:
        if path is None:
            raise CheckpointError(f"{self.run_dir} has no checkpoint to resume from; start a new run instead")
        path, state = self._load_for_resume()
        if state["dataset_fingerprint"] != self.dataset.fingerprint:
            raise DataError(
                f"the images in {self.config.dataset} changed since this run started; resuming would "
                "train on different data. Start a new run on the re-imported dataset"
            )
        self.family.load_state_dict(state["family_state"])
        self._carry_changed_rates(state.get("config", {}))
        self.sampler.load_state_dict(state["sampler"])
        self._restore_rng(state)
        self.step, self.train_seconds = int(state["step"]), float(state["train_seconds"])
        local_batch = self.config.batch_size // self.replica.world_size
        self.micro_batches = min(local_batch, int(self.config.accumulate or state.get("micro_batches", 1)))
        self.best_kid = state.get("best_kid")
        if self.health is not None and state.get("health"):
            self.health.load_state_dict(state["health"])
        if self.replica.is_main:
            cut_health(self.run_dir, self.step)  # findings after the checkpoint are judged again
        saved_world = int(state.get("world_size", 1))
        moved = "" if saved_world == self.replica.world_size else f"; trained by {saved_world} process(es) until now"
        self._log(f"Resumed from {path.name} (step {self.step}{moved})")

    def _load_for_resume(self) -> tuple[Path, dict[str, Any]]:
        """(path, state) of the checkpoint to resume: the main process picks it (renaming damaged newer ones,
        removing stale temp files) and the others load the very file it picked."""
        path: Path | None = None
        state: dict[str, Any] = {}
        if self.replica.is_main:
            _remove_stale_temp_files(self.run_dir)
            # the newest checkpoint that verifies: damaged newer ones are renamed *.damaged and logged
            path, state = load_latest_checkpoint(self.run_dir, family=self.config.family, on_note=self._log)
        picked = Path(self.replica.broadcast_object(str(path)))
        return (picked, state) if self.replica.is_main else (picked, load_checkpoint(picked, self.config.family))

    def _restore_rng(self, state: dict[str, Any]) -> None:
        """This process's RNG state from the checkpoint: its own rank's when the checkpoint has one, else a
        fresh stream from (seed, rank, step) for a process the checkpoint's run did not have."""
        ranks = state.get("rng_ranks") or [state["rng"]]
        if self.replica.rank < len(ranks):
            _set_rng_state(ranks[self.replica.rank], self.device)
        else:
            torch.manual_seed(self.config.seed + _RANK_SEED_STRIDE * self.replica.rank + int(state["step"]))

    def _carry_changed_rates(self, saved: dict[str, Any]) -> None:
        """Learning rates set since the checkpoint (Trainer.resume(settings=...)) reach the optimizers it restored:
        each rate is scaled by new / saved setting, so the cut of an earlier NaN roll-back is kept."""
        changed = {
            n: getattr(self.config, n)
            for n in _RATE_SETTINGS
            if saved.get(n, getattr(self.config, n)) != getattr(self.config, n)
        }
        if not changed:
            return
        for name in changed:
            setattr(self.family.train, name, float(saved[name]))  # retune scales by new / this (saved) rate
        applied = self.family.retune(changed)
        for name, value in changed.items():
            setattr(self.family.train, name, value)
        words = ", ".join(f"{n} {saved[n]:g} -> {changed[n]:g}" for n in applied)
        if words:
            self._log(f"Learning rates changed on resume: {words}")


class _RateMeter:
    """Images per second and seconds per step over a sliding window of recent steps."""

    def __init__(self, window: int = 20) -> None:
        self.window = window
        self.samples: list[tuple[int, float]] = []

    def add(self, images: int, seconds: float) -> None:
        self.samples.append((images, seconds))
        del self.samples[: -self.window]

    def per_second(self) -> float:
        total = sum(s for _, s in self.samples)
        return round(sum(i for i, _ in self.samples) / total, 2) if total else 0.0

    def seconds_per_step(self) -> float | None:
        return sum(s for _, s in self.samples) / len(self.samples) if self.samples else None


def default_run_dir(config: TrainConfig) -> Path:
    """runs/<family>-<timestamp> beside the dataset folder."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(config.dataset).resolve().parent / "runs" / f"{config.family}-{stamp}"


def _clone_state(obj: Any) -> Any:
    """Deep copy of a nested state dict with every tensor cloned (state_dict() shares storage)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().clone()
    if isinstance(obj, dict):
        return {k: _clone_state(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_clone_state(v) for v in obj)
    return obj


def _rng_state(device: torch.device) -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _line_step(line: str) -> int | None:
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return None


def _remove_stale_temp_files(run_dir: Path) -> None:
    # atomic_open's temp files are hidden ".name.*.tmp"; a hard kill mid-write can leave one behind.
    for tmp in (Path(run_dir) / "checkpoints").glob(".*.tmp"):
        tmp.unlink(missing_ok=True)
