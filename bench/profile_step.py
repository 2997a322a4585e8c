"""Where a training step's time goes: every noise-to-image family's step cut into its parts, side by side.

Each registered 'generate' family is built with the settings bench/quality.py trains it with (TrainConfig
defaults plus the family's ``recommended_settings(resolution, 'cpu')``), beside the classic DCGAN reference
loop of bench/quality.py. Their steps run round-robin on one fixed random batch (so machine noise hits all
alike) with ``torch.set_num_threads`` fixed. Manual timers wrap the parts of the step where they are
called: G forward; D forward on real images, on fakes and in the G step; D and G backward; DiffAugment;
FastGAN's reconstruction decoders; lazy R1; WGAN-GP's penalty; StyleGAN2's lazy path length; the Adam steps;
the EMA update. Times are exclusive (a part nested in another is subtracted from it), so the parts add up to
the step. Per part the table gives the median over the measured steps (after warm-up) of the steps where
it ran, times the share of steps where it ran: lazy regularisers show their cost per step, amortised.
ADA's probability is fixed at ``--augment-p`` (default 0.5): DiffAugment computes every transform for the
whole batch whenever p > 0, so this is what augmentation costs once ADA has raised p above 0.

    nice python bench/profile_step.py [--resolution 64] [--batch 32] [--steps 16] [--warmup 2] [--threads 2]
        [--only reference,fastgan] [--augment-p 0.5]

On R1 steps D's backward also runs R1's second-order part (its graph joins D's loss); that time lands in
"D backward" on those steps, which the median leaves out. CPU only: the timers do not synchronise CUDA.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import engine.families.base as family_base  # noqa: E402
from engine.families import get_family  # noqa: E402
from engine.families.base import AdversarialFamily, ModelSpec  # noqa: E402
from engine.runs import TrainConfig  # noqa: E402


def _load_quality() -> Any:
    """bench/quality.py as a module (bench/ is a folder of scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("bench_quality", Path(__file__).with_name("quality.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


quality = _load_quality()

# The parts, in table order. Glue is what a phase does itself: losses, stats, ADA bookkeeping, zero_grad.
G_FORWARD = "G forward"
D_REAL = "D forward, real"
RECON = "D reconstruction decoders"
D_FAKE = "D forward, fake"
D_BACKWARD = "D backward"
D_GLUE = "D step: losses and glue"
AUGMENT = "augmentation (DiffAugment)"
R1 = "R1 penalty (lazy)"
GP = "gradient penalty (WGAN-GP)"
D_G = "D forward, G step"
G_BACKWARD = "G backward (through D)"
G_GLUE = "G step: losses and glue"
PL = "path length (lazy)"
OPTIMIZER = "optimizer steps (Adam)"
EMA = "EMA update"
REST = "rest of the step"
PARTS = [G_FORWARD, D_REAL, RECON, D_FAKE, D_BACKWARD, D_GLUE, AUGMENT, R1, GP, D_G, G_BACKWARD, G_GLUE, PL]
PARTS += [OPTIMIZER, EMA, REST]

Label = str | Callable[[list[str]], str]


class PartTimer:
    """Exclusive time per part: a wrapped call's time, less that of wrapped calls nested in it.

    Each wrapper has a part (where its own time goes, or a function of the phases it runs in) and a phase
    tag the nested wrappers can see, e.g. "real" while D looks at real images.
    """

    def __init__(self) -> None:
        self.stack: list[list[Any]] = []  # [phase, part, time of nested wrapped calls]
        self.times: dict[str, float] = defaultdict(float)

    def phases(self) -> list[str]:
        return [entry[0] for entry in self.stack]

    def wrap(self, fn: Callable[..., Any], part: Label, phase: str = "") -> Callable[..., Any]:
        """``fn`` with its exclusive time added to ``part`` (a name, or phases -> name) on every call."""

        def timed(*args: Any, **kwargs: Any) -> Any:
            name = part(self.phases()) if callable(part) else part
            self.stack.append([phase, name, 0.0])
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                total = time.perf_counter() - start
                _, name, nested = self.stack.pop()
                self.times[name] += total - nested
                if self.stack:
                    self.stack[-1][2] += total

        return timed

    def take(self) -> dict[str, float]:
        """The times since the last take (seconds per part), and start again."""
        times, self.times = dict(self.times), defaultdict(float)
        return times


def _first(phases: list[str], choices: list[tuple[str, str]], default: str) -> str:
    for tag, part in choices:
        if tag in phases:
            return part
    return default


def d_forward_part(phases: list[str]) -> str:
    return _first(phases, [("r1", R1), ("gp", GP), ("pl", PL), ("real", D_REAL), ("g", D_G)], D_FAKE)


def backward_part(phases: list[str]) -> str:
    return _first(phases, [("r1", R1), ("gp", GP), ("pl", PL), ("g", G_BACKWARD)], D_BACKWARD)


def g_forward_part(phases: list[str]) -> str:
    return _first(phases, [("pl", PL)], G_FORWARD)


def optimizer_part(phases: list[str]) -> str:
    return _first(phases, [("pl", PL)], OPTIMIZER)


def instrument_family(family: AdversarialFamily, timer: PartTimer) -> Callable[[torch.Tensor, int], Any]:
    """Wrap the family's step parts (instance attributes only; the class stays untouched); returns step(x, i)."""
    wraps = [
        ("_d_step", D_GLUE, "d"),
        ("_g_step", G_GLUE, "g"),
        ("discriminate_real", D_REAL, "real"),
        ("_augment", AUGMENT, ""),
        ("_r1", R1, "r1"),
        ("_gradient_penalty", GP, "gp"),
        ("_path_length_step", PL, "pl"),
        ("_optimizer_step", optimizer_part, ""),
    ]
    for attr, part, phase in wraps:
        if hasattr(family, attr):
            setattr(family, attr, timer.wrap(getattr(family, attr), part, phase))
    G, D = family.modules["G"], family.modules["D"]
    G.forward = timer.wrap(G.forward, g_forward_part)  # type: ignore[method-assign]
    D.forward = timer.wrap(D.forward, d_forward_part)  # type: ignore[method-assign]
    for name, child in D.named_children():
        if name.startswith("decode"):  # FastGAN's self-supervised decoders (decode_full, decode_part)
            child.forward = timer.wrap(child.forward, RECON)  # type: ignore[method-assign]
    step = timer.wrap(family.train_step, REST, "step")
    return lambda x, i: step(x, None, i, 1)


def instrument_reference(loop: Any, timer: PartTimer) -> Callable[[torch.Tensor, int], Any]:
    """Wrap the reference loop's parts; returns step(x, i)."""
    loop.d_on_real = timer.wrap(loop.d_on_real, D_GLUE, "real")
    loop.d_on_fake = timer.wrap(loop.d_on_fake, D_GLUE, "d")
    loop.g_on_fake = timer.wrap(loop.g_on_fake, G_GLUE, "g")
    loop.G.forward = timer.wrap(loop.G.forward, G_FORWARD)
    loop.D.forward = timer.wrap(loop.D.forward, d_forward_part)
    for opt in (loop.opt_d, loop.opt_g):
        opt.step = timer.wrap(opt.step, OPTIMIZER)
    step = timer.wrap(loop.train_step, REST, "step")
    return lambda x, i: step(x)


class Patched:
    """Inside ``with``: Tensor.backward and the EMA update go through the timer (restored on exit)."""

    def __init__(self, timer: PartTimer) -> None:
        self.timer = timer

    def __enter__(self) -> Patched:
        self.backward, self.ema = torch.Tensor.backward, family_base.update_ema
        torch.Tensor.backward = self.timer.wrap(self.backward, backward_part)  # type: ignore[method-assign]
        family_base.update_ema = self.timer.wrap(self.ema, EMA)
        return self

    def __exit__(self, *exc: Any) -> None:
        torch.Tensor.backward = self.backward  # type: ignore[method-assign]
        family_base.update_ema = self.ema


def build_runs(args: argparse.Namespace, timer: PartTimer) -> dict[str, Callable[[torch.Tensor, int], Any]]:
    """{name: step function} for the reference and every family asked for, each built from seed 0."""
    names = [quality.REFERENCE, *quality.generate_families()]
    if args.only:
        wanted = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in wanted if n not in names]
        if unknown:
            raise SystemExit(f"--only names unknown run(s) {', '.join(unknown)}; runs: {', '.join(names)}")
        names = wanted
    runs = {}
    for name in names:
        torch.manual_seed(0)
        if name == quality.REFERENCE:
            images = torch.zeros(args.batch, args.resolution, args.resolution, 3, dtype=torch.uint8).numpy()
            loop = quality.ReferenceLoop(images, {"batch_size": args.batch}, seed=0)
            runs[name] = instrument_reference(loop, timer)
            continue
        settings = quality.family_settings(name)
        settings["batch_size"] = args.batch
        cfg = TrainConfig(dataset="profile", family=name, device="cpu", **settings)
        family = get_family(name)(ModelSpec(args.resolution, 3, 0), cfg, torch.device("cpu"))
        assert isinstance(family, AdversarialFamily)  # every 'generate' family trains through the shared step
        family.ada.p, family.ada.adaptive = args.augment_p, False
        runs[name] = instrument_family(family, timer)
    return runs


def amortised(values: list[float]) -> float:
    """Median over the steps where a part ran, times the share of steps where it ran."""
    ran = [v for v in values if v > 0]
    return statistics.median(ran) * len(ran) / len(values) if ran else 0.0


def profile(args: argparse.Namespace) -> dict[str, dict[str, list[float]]]:
    """{run: {part: seconds per measured step}}, the runs' steps interleaved round-robin."""
    timer = PartTimer()
    runs = build_runs(args, timer)
    real = torch.rand(args.batch, 3, args.resolution, args.resolution) * 2 - 1
    measured: dict[str, dict[str, list[float]]] = {name: defaultdict(list) for name in runs}
    with Patched(timer):
        for i in range(1, args.warmup + args.steps + 1):
            for name, step in runs.items():
                timer.take()
                started = time.perf_counter()
                step(real, i)
                total = time.perf_counter() - started
                parts = timer.take()
                if i > args.warmup:
                    for part in PARTS:
                        measured[name][part].append(parts.get(part, 0.0))
                    measured[name]["total"].append(total)
            print(f"step {i}/{args.warmup + args.steps} done", file=sys.stderr, flush=True)
    return measured


def format_table(measured: dict[str, dict[str, list[float]]], batch: int) -> str:
    """Markdown: one row per part that any run has, one column per run (ms per step), then total and img/s."""
    names = list(measured)
    lines = ["| part (ms per step) | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for part in PARTS:
        values = [amortised(measured[n][part]) * 1e3 for n in names]
        if any(v >= 0.05 for v in values):
            lines.append(f"| {part} | " + " | ".join(f"{v:.1f}" if v >= 0.05 else "–" for v in values) + " |")
    totals = [statistics.median(measured[n]["total"]) for n in names]
    lines.append("| **total (median step)** | " + " | ".join(f"**{t * 1e3:.0f}**" for t in totals) + " |")
    lines.append("| img/s | " + " | ".join(f"{batch / t:.1f}" for t in totals) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=16, help="measured steps per run (default 16)")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured steps first (default 2)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", help="comma-separated runs (reference and family names; default: all)")
    parser.add_argument("--augment-p", type=float, default=0.5, help="fixed ADA probability (default 0.5)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    measured = profile(args)
    print(
        f"\n{args.resolution} px, batch {args.batch}, {args.steps} measured steps after {args.warmup} warm-up, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}, ADA p fixed at {args.augment_p}\n"
    )
    print(format_table(measured, args.batch))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
