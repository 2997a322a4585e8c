"""Train-step throughput: our `dcgan` family step vs a plain reference loop, side by side in one run.

The reference is written here in the structure of the classic PyTorch DCGAN example (BCE loss, D on
real then on detached fake, G step reusing the fake) and uses the very same generator and
discriminator modules, so the ratio measures only the training step around them. Rounds alternate
between the two so that machine noise hits both alike; medians are reported.

    python bench/train_throughput.py [--resolution 64] [--batch 64] [--rounds 7] [--steps 5] [--device auto]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.device import describe_device, select_device  # noqa: E402
from engine.families.base import ModelSpec  # noqa: E402
from engine.families.dcgan import DCGAN  # noqa: E402
from engine.runs import TrainConfig  # noqa: E402


class ReferenceLoop:
    """The classic DCGAN example's step, on the same modules our family builds."""

    def __init__(self, family: DCGAN, amp: bool) -> None:
        self.G, self.D = family.modules["G"], family.modules["D"]
        self.device = family.device
        self.latent = family.latent_dim
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.criterion = nn.BCEWithLogitsLoss()
        self.amp = amp
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=amp)

    def step(self, real: torch.Tensor) -> None:
        n = real.shape[0]
        ones = torch.ones(n, device=self.device)
        zeros = torch.zeros(n, device=self.device)
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
            self.D.zero_grad()
            err_real = self.criterion(self.D(real).float(), ones)
            fake = self.G(torch.randn(n, self.latent, device=self.device))
            err_fake = self.criterion(self.D(fake.detach()).float(), zeros)
        self.scaler.scale(err_real + err_fake).backward()
        self.scaler.step(self.opt_d)
        self.G.zero_grad()
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
            err_g = self.criterion(self.D(fake).float(), ones)
        self.scaler.scale(err_g).backward()
        self.scaler.step(self.opt_g)
        self.scaler.update()


def build(resolution: int, batch: int, device: torch.device, amp: bool, channels_last: bool, augment: str) -> DCGAN:
    cfg = TrainConfig(
        dataset="bench",
        family="dcgan",
        batch_size=batch,
        augment=augment,
        r1_gamma=0.0,
        amp=amp,
        channels_last=channels_last,
    )
    torch.manual_seed(0)
    return DCGAN(ModelSpec(resolution, 3, 0), cfg, device)


def time_steps(step_fn, real: torch.Tensor, steps: int, device: torch.device) -> float:
    """Images per second over ``steps`` calls."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step_fn(real)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * real.shape[0] / (time.perf_counter() - start)


def compare(args: argparse.Namespace, device: torch.device, amp: bool, channels_last: bool, label: str) -> None:
    ours = build(args.resolution, args.batch, device, amp, channels_last, augment="")
    ours_full = build(args.resolution, args.batch, device, amp, channels_last, augment="color,translation,cutout")
    ours_full.ada.p = 1.0
    ours_full.ada.adaptive = False
    ref = ReferenceLoop(build(args.resolution, args.batch, device, amp, channels_last, augment=""), amp)
    real = torch.rand(args.batch, 3, args.resolution, args.resolution, device=device) * 2 - 1
    if channels_last:
        real = real.contiguous(memory_format=torch.channels_last)
    runners = {
        "reference loop": ref.step,
        "ours (same features)": lambda x: ours.train_step(x, None, 1, 1),
        "ours + DiffAugment": lambda x: ours_full.train_step(x, None, 1, 1),
    }
    for fn in runners.values():  # warm-up: allocator, cuDNN autotune, lazy init
        time_steps(fn, real, 2, device)
    rates: dict[str, list[float]] = {k: [] for k in runners}
    for _ in range(args.rounds):
        for name, fn in runners.items():
            rates[name].append(time_steps(fn, real, args.steps, device))
    med = {k: statistics.median(v) for k, v in rates.items()}
    ref_rate = med["reference loop"]
    print(f"\n[{label}] dcgan {args.resolution}px, batch {args.batch}, {args.rounds} rounds x {args.steps} steps")
    for name, rate in med.items():
        print(f"  {name:<24} {rate:9.1f} img/s   ratio vs reference {rate / ref_rate:5.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = select_device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    print(f"Device: {describe_device(device)}")
    compare(args, device, amp=False, channels_last=False, label="fp32")
    if device.type == "cuda":
        compare(args, device, amp=True, channels_last=False, label="AMP fp16")
        compare(args, device, amp=True, channels_last=True, label="AMP fp16 + channels_last")


if __name__ == "__main__":
    main()
