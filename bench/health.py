"""The training doctor (engine/training/health.py): detection delay, false alarms and cost.

Every failure is made to happen for real in a tiny DCGAN (latent 16, width 8) on 300 MNIST digits at
16 px (30 per class from ../shared/datasets/mnist-5k), at a known *onset* step of an otherwise healthy
run, over several seeds:

- collapse: from the onset the generator ignores its latent (its input is zeroed);
- overpowering: from the onset the generator's learning rate is 0 (D keeps learning);
- divergence (lr): at the onset both learning rates are multiplied by 5000 (2e-4 -> 1.0);
- divergence (NaN): from the onset every step's loss is non-finite (the Trainer rolls back);
- overfitting: 30 digits (3 per class) with ADA made 50x faster (speed 2,000 images instead of 100,000,
  in this benchmark only, so p can max out within the run); onset = the first step with p = 1;
- memorization: from the onset the generator returns training images (chosen by its latent);
- stalled: KD measured every 50 steps on 64 samples; from the onset (step 1000) G's learning rate is 0.

Delay = the step of the detector's first warning (or problem) minus the onset; "early" counts warnings
of that detector before the onset (false alarms). Healthy runs (no failure) count every finding per
detector: notes and warnings-or-worse apart.

Then the cost, side by side in one run: the doctor is switched on and off every 20 steps
(trainer.config.health for the family's two extra statistics, the monitor itself), so both see the
same machine load; per-step wall time between step callbacks (image checks, every 20 steps, and findings
count), median of the 'on' blocks over the median of the 'off' blocks; and the time inside the
doctor's code (timers around the monitor's calls and the family's extra statistics) as a share of the
'on' blocks' time. For the tiny model (where the doctor's fixed cost weighs most) and the default-size
DCGAN.

    python bench/health.py [--seeds 3] [--healthy-seeds 5] [--work /tmp/health-bench]
        [--only collapse,overpowering,...] [--no-detection] [--no-overhead] [--tiny-steps 2000]
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")  # tiny models: one thread is fastest on a shared 2-core box

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import engine.families.base as family_base  # noqa: E402
from engine.consent import attest  # noqa: E402
from engine.data import import_folder, load_dataset  # noqa: E402
from engine.families.dcgan import DCGAN  # noqa: E402
from engine.runs import TrainConfig  # noqa: E402
from engine.training import Callbacks, Trainer  # noqa: E402
from engine.training.health import DETECTORS, LEVELS, Finding, HealthMonitor  # noqa: E402

SOURCE = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "mnist-5k"
ONSET = 200


def digits(work: Path, per_class: int) -> Path:
    """``per_class`` MNIST digits per class imported at 16 px and attested (reused when present)."""
    out = work / f"mnist-{per_class}"
    if not (out / "dataset.json").is_file():
        for folder in sorted(p for p in SOURCE.iterdir() if p.is_dir()):
            (work / f"src-{per_class}" / folder.name).mkdir(parents=True, exist_ok=True)
            for path in sorted(folder.glob("*.png"))[:per_class]:
                shutil.copy(path, work / f"src-{per_class}" / folder.name / path.name)
        import_folder(work / f"src-{per_class}", out, size=16)
        attest(out, rights="own", people="none", attested_by="bench")
    return out


def config(dataset: Path, seed: int, **overrides: Any) -> TrainConfig:
    fields: dict[str, Any] = dict(
        dataset=str(dataset),
        family="dcgan",
        family_options=dict(DCGAN.tiny_options),
        batch_size=16,
        steps=600,
        preview_every=20,
        preview_count=4,
        checkpoint_every=10**6,
        checkpoint_minutes=None,
        log_every=100,
        seed=seed,
        conditional=False,
    )
    fields.update(overrides)
    return TrainConfig(**fields)


# -- failures --------------------------------------------------------------------------------------
class _Switch:
    """Set from the onset on; read by the patched pieces."""

    on = False


class _IgnoresZ(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.inner(torch.zeros_like(z) if _Switch.on else z, labels)


@dataclass
class Scenario:
    name: str
    detector: str
    overrides: dict[str, Any] = field(default_factory=dict)
    onset: int | None = ONSET  # None: found from the stats (overfitting)
    at_onset: Callable[[Trainer], None] | None = None
    patch: Callable[[dict[str, Any]], None] | None = None  # installs monkeypatches into the dict's undo list
    small: bool = False


def _freeze_g(trainer: Trainer) -> None:
    for group in trainer.family.optimizers["G"].param_groups:
        group["lr"] = 0.0


def _patch(undo: dict[str, Any], owner: Any, name: str, value: Any) -> None:
    undo.setdefault("items", []).append((owner, name, getattr(owner, name)))
    setattr(owner, name, value)


def _patch_collapse(undo: dict[str, Any]) -> None:
    build = DCGAN.build_generator
    _patch(undo, DCGAN, "build_generator", lambda self: _IgnoresZ(build(self)))


def _patch_nan(undo: dict[str, Any]) -> None:
    step_fn = family_base.AdversarialFamily.train_step

    def poisoned(self: Any, *args: Any, **kw: Any) -> dict[str, float]:
        stats = step_fn(self, *args, **kw)
        if _Switch.on:
            stats["loss_g"] = float("nan")
        return stats

    _patch(undo, family_base.AdversarialFamily, "train_step", poisoned)


def _patch_fast_ada(undo: dict[str, Any]) -> None:
    _patch(undo, family_base, "AdaptiveAugment", functools.partial(family_base.AdaptiveAugment, speed_images=2000))


def _patch_memorization(dataset: Path) -> Callable[[dict[str, Any]], None]:
    images = torch.from_numpy(np.array(load_dataset(dataset).images)).permute(0, 3, 1, 2).float() / 127.5 - 1

    def install(undo: dict[str, Any]) -> None:
        sample = family_base.AdversarialFamily.sample

        def copies(self: Any, z: torch.Tensor, labels: Any = None, ema: bool = True) -> torch.Tensor:
            if not _Switch.on:
                return sample(self, z, labels, ema)
            return images[(z[:, 0].abs() * 1e4).long() % len(images)]

        _patch(undo, family_base.AdversarialFamily, "sample", copies)

    return install


def scenarios(data: Path) -> list[Scenario]:
    return [
        Scenario("collapse (G ignores z)", "collapse", patch=_patch_collapse),
        Scenario("overpowering (lr_g = 0)", "overpowering", at_onset=_freeze_g),
        Scenario("divergence (lr x5000)", "divergence", at_onset=lambda t: t.family.scale_lr(5000)),
        Scenario("divergence (NaN losses)", "divergence", patch=_patch_nan),
        Scenario("overfitting (30 digits, fast ADA)", "overfitting", onset=None, patch=_patch_fast_ada, small=True),
        Scenario("memorization (returns training images)", "memorization", patch=_patch_memorization(data)),
        Scenario(
            "stalled (lr_g = 0, KD every 50)",
            "stalled",
            {"steps": 1600, "kid_every": 50, "kid_samples": 64},
            onset=1000,
            at_onset=_freeze_g,
        ),
    ]


@dataclass
class Outcome:
    findings: list[Finding]
    onset: int | None
    seconds: float


def run_once(scenario: Scenario | None, data: Path, small: Path, seed: int, work: Path) -> Outcome:
    """One run of ``scenario`` (None: healthy) with ``seed``; its findings and onset step."""
    undo: dict[str, Any] = {}
    _Switch.on = False
    if scenario is not None and scenario.patch is not None:
        scenario.patch(undo)
    onset = None if scenario is None else scenario.onset
    found: list[Finding] = []
    holder: dict[str, Trainer] = {}
    seen = {"onset": onset}

    def on_step(stats: dict[str, Any]) -> None:
        if scenario is None:
            return
        step = stats["step"]
        if scenario.onset is not None and step == scenario.onset:
            _Switch.on = True
            if scenario.at_onset is not None:
                scenario.at_onset(holder["trainer"])
        if scenario.onset is None and seen["onset"] is None and stats.get("augment_p", 0.0) >= 1.0:
            seen["onset"] = step

    overrides = {} if scenario is None else scenario.overrides
    cfg = config(small if scenario is not None and scenario.small else data, seed, **overrides)
    run_dir = work / "runs" / f"{'healthy' if scenario is None else scenario.detector}-{seed}-{time.time_ns()}"
    trainer = Trainer(cfg, Callbacks(on_step=on_step, on_health=found.append), run_dir=run_dir)
    holder["trainer"] = trainer
    started = time.perf_counter()
    try:
        trainer.run()
    except Exception as exc:  # the NaN scenario ends with TrainingDiverged, as it should
        if type(exc).__name__ != "TrainingDiverged":
            raise
    finally:
        for owner, name, value in reversed(undo.get("items", [])):
            setattr(owner, name, value)
        _Switch.on = False
        shutil.rmtree(run_dir, ignore_errors=True)
    return Outcome(found, seen["onset"], time.perf_counter() - started)


def _serious(f: Finding) -> bool:
    return LEVELS.index(f.level) >= LEVELS.index("warning")


def detection_table(args: argparse.Namespace, data: Path, small: Path) -> list[str]:
    rows = ["| detector | failure (from the onset) | onset | flagged | delay, steps: median (min–max) | early |"]
    rows.append("|---|---|---|---|---|---|")
    chosen = [s for s in scenarios(data) if not args.only or s.detector in args.only]
    for scenario in chosen:
        delays, early, flagged, onsets = [], 0, 0, []
        for seed in range(args.seeds):
            out = run_once(scenario, data, small, seed, args.work)
            mine = [f for f in out.findings if f.detector == scenario.detector and _serious(f)]
            onset = out.onset
            onsets.append(onset)
            if onset is None:
                continue
            early += sum(1 for f in mine if f.step < onset and f.level != "ok")
            after = [f.step for f in mine if f.step >= onset]
            if after:
                flagged += 1
                delays.append(after[0] - onset)
            print(
                f"  {scenario.name} seed {seed}: onset {onset}, delay {after[0] - onset if after else '-'}, "
                f"{out.seconds:.0f} s",
                file=sys.stderr,
            )
        spread = f"{statistics.median(delays):.0f} ({min(delays)}–{max(delays)})" if delays else "–"
        shown = sorted({o for o in onsets if o is not None})
        onset_text = ", ".join(str(o) for o in shown) if shown else "never"
        rows.append(
            f"| {scenario.detector} | {scenario.name} | {onset_text} | {flagged}/{args.seeds} | {spread} | {early} |"
        )
    return rows


def false_alarm_table(args: argparse.Namespace, data: Path, small: Path) -> list[str]:
    counts = {d: [0, 0] for d in DETECTORS}
    for seed in range(args.healthy_seeds):
        out = run_once(None, data, small, seed, args.work)
        for f in out.findings:
            if f.level != "ok":
                counts[f.detector][1 if _serious(f) else 0] += 1
        print(f"  healthy seed {seed}: {len(out.findings)} findings, {out.seconds:.0f} s", file=sys.stderr)
    rows = [
        f"| detector | notes in {args.healthy_seeds} healthy runs | warnings or problems |",
        "|---|---|---|",
    ]
    rows += [f"| {d} | {n} | {w} |" for d, (n, w) in counts.items()]
    return rows


# -- overhead --------------------------------------------------------------------------------------
class _Timer:
    """Wraps methods to add their wall time to ``total``."""

    def __init__(self) -> None:
        self.total = 0.0
        self.undo: list[tuple[Any, str, Any]] = []

    def wrap(self, owner: Any, name: str) -> None:
        original = getattr(owner, name)

        @functools.wraps(original)
        def timed(*a: Any, **kw: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*a, **kw)
            finally:
                self.total += time.perf_counter() - started

        self.undo.append((owner, name, original))
        setattr(owner, name, timed)

    def restore(self) -> None:
        for owner, name, original in reversed(self.undo):
            setattr(owner, name, original)


BLOCK = 20
"""Steps per block in the overhead run; the doctor is on in even blocks and off in odd ones."""


def overhead_row(name: str, cfg: TrainConfig, work: Path, toggle: bool = True) -> str:
    """One run with the doctor switched on and off every BLOCK steps (the same load for both), its
    image checks every BLOCK steps falling in the 'on' blocks; plus timers around the doctor's code.
    ``toggle`` False: the control, the doctor off in every block (the measurement's own noise)."""
    timer = _Timer()
    for method in ("observe_step", "observe_images", "observe_metric", "observe_rollback"):
        timer.wrap(HealthMonitor, method)
    for method in ("_judged", "_grad_norm"):
        timer.wrap(family_base.AdversarialFamily, method)
    stamps: list[tuple[float, bool, float]] = []  # (time, doctor on for this interval, doctor seconds so far)
    holder: dict[str, Any] = {}

    def on_step(stats: dict[str, Any]) -> None:
        trainer = holder["trainer"]
        step = stats["step"]
        if step % BLOCK == 0:  # from here (this step's checks, the next steps) the next block's mode
            on = toggle and (step // BLOCK) % 2 == 0
            trainer.config.health = on  # the family's extra statistics follow it (family.train is this config)
            trainer.health = holder["monitor"] if on else None
        stamps.append((time.perf_counter(), (step // BLOCK) % 2 == 0, timer.total))

    run_dir = work / "runs" / f"overhead-{time.time_ns()}"
    trainer = Trainer(cfg, Callbacks(on_step=on_step), run_dir=run_dir)
    holder["trainer"] = trainer
    original_setup = trainer._setup

    def setup() -> None:
        original_setup()
        holder["monitor"] = trainer.health

    trainer._setup = setup  # type: ignore[method-assign]
    try:
        trainer.run()
    finally:
        timer.restore()
        shutil.rmtree(run_dir, ignore_errors=True)
    blocks: dict[bool, list[float]] = {True: [], False: []}
    inside, on_time = 0.0, 0.0
    for start in range(BLOCK, len(stamps) - BLOCK + 1, BLOCK):  # skip the first block (warm-up)
        t0, on, d0 = stamps[start - 1]
        t1, _, d1 = stamps[start + BLOCK - 1]
        blocks[on].append((t1 - t0) / BLOCK)
        if on:
            inside, on_time = inside + d1 - d0, on_time + t1 - t0
    off, on_ = statistics.median(blocks[False]), statistics.median(blocks[True])
    share = f"{inside / on_time * 100:.1f}%" if toggle else "–"
    return (
        f"| {name} | {len(blocks[True])} + {len(blocks[False])} | {off * 1e3:.2f} | {on_ * 1e3:.2f} | "
        f"{(on_ / off - 1) * 100:+.1f}% | {share} |"
    )


def overhead_table(args: argparse.Namespace, data: Path) -> list[str]:
    rows = [
        f"| model (image checks every {BLOCK} steps) | blocks on + off | step off, ms | step on, ms | "
        "on / off − 1 (medians) | inside the doctor |",
        "|---|---|---|---|---|---|",
    ]
    tiny = config(data, 0, steps=args.tiny_steps, preview_every=BLOCK)
    default = config(data, 0, steps=args.default_steps, preview_every=BLOCK, family_options={}, batch_size=32)
    for label, cfg in (
        (f"tiny DCGAN (width 8), 16 px, batch 16, {args.tiny_steps} steps", tiny),
        (f"default DCGAN (width 64), 16 px, batch 32, {args.default_steps} steps", default),
    ):
        rows.append(overhead_row(label, cfg, args.work))
        rows.append(overhead_row("the same, control: off in both", cfg, args.work, toggle=False))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--healthy-seeds", type=int, default=5)
    parser.add_argument("--tiny-steps", type=int, default=2000)
    parser.add_argument("--default-steps", type=int, default=800)
    parser.add_argument("--work", type=Path, default=Path("/tmp/health-bench"))
    parser.add_argument("--only", type=lambda s: [x.strip() for x in s.split(",") if x.strip()], default=[])
    parser.add_argument("--no-overhead", action="store_true")
    parser.add_argument("--no-detection", action="store_true")
    args = parser.parse_args()
    if not SOURCE.is_dir():
        sys.exit(f"{SOURCE} not found: the benchmark trains on its digits")
    args.work.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    data, small = digits(args.work, 30), digits(args.work, 3)
    load = os.getloadavg()[0]
    out = [f"load average at the start {load:.1f}, torch threads 1"]
    if not args.no_detection:
        out += ["", *detection_table(args, data, small)]
        if not args.only:
            out += ["", *false_alarm_table(args, data, small)]
    if not args.no_overhead:
        out += ["", *overhead_table(args, data)]
    out.append(f"\nload average at the end {os.getloadavg()[0]:.1f}")
    print("\n".join(out))


if __name__ == "__main__":
    main()
