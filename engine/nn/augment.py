"""Differentiable augmentation for data-efficient GAN training.

DiffAugment (Zhao et al. 2020) applies the same random, differentiable transforms to real and fake
images before the discriminator sees them, so D cannot memorise a small folder. Applying each
transform per sample with probability ``p`` and steering ``p`` from D's overfitting signal is the ADA
idea (Karras et al. 2020). Written here rather than taken from a library because the transforms must
stay differentiable w.r.t. the generator's output and must draw from torch's RNG (checkpointed) so
that a resumed run is bit-identical.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

POLICIES = ("color", "translation", "cutout")


def parse_policy(policy: str) -> tuple[str, ...]:
    """Split a comma-separated policy string ('color,translation') into validated names."""
    from engine.errors import ConfigError

    names = tuple(p.strip() for p in policy.split(",") if p.strip())
    for name in names:
        if name not in POLICIES:
            raise ConfigError(f"unknown DiffAugment policy {name!r} in 'augment'; use any of {', '.join(POLICIES)}")
    return names


def _per_sample_mask(x: torch.Tensor, p: float) -> torch.Tensor:
    """A (N,1,1,1) bool mask selecting each sample with probability p."""
    return torch.rand(x.shape[0], 1, 1, 1, device=x.device) < p


def _color(x: torch.Tensor) -> torch.Tensor:
    n = x.shape[0]
    rgb = x[:, :3]
    rgb = rgb + (torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) - 0.5)
    mean = rgb.mean(dim=1, keepdim=True)
    rgb = (rgb - mean) * (torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) * 2) + mean
    mean = rgb.mean(dim=(1, 2, 3), keepdim=True)
    rgb = (rgb - mean) * (torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) + 0.5) + mean
    return torch.cat([rgb, x[:, 3:]], dim=1) if x.shape[1] > 3 else rgb


def _translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    n, _, h, w = x.shape
    # Integer pixel shifts expressed as an affine grid; nearest sampling keeps pixels crisp and the op
    # stays differentiable with respect to x.
    shift = torch.randint(-int(w * ratio), int(w * ratio) + 1, (n, 2), device=x.device).to(x.dtype)
    theta = torch.zeros(n, 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0] = 1
    theta[:, 1, 1] = 1
    theta[:, 0, 2] = shift[:, 0] * 2 / w
    theta[:, 1, 2] = shift[:, 1] * 2 / h
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)


def _cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=x.device)
    cx = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=x.device)
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    inside = ((ys - cy).abs() <= ch // 2) & ((xs - cx).abs() <= cw // 2)
    return x * (~inside).unsqueeze(1).to(x.dtype)


_OPS = {"color": _color, "translation": _translation, "cutout": _cutout}


def diff_augment(x: torch.Tensor, policy: tuple[str, ...], p: float = 1.0) -> torch.Tensor:
    """Apply each transform in ``policy`` to each sample of ``x`` (N,C,H,W) with probability ``p``."""
    if p <= 0 or not policy:
        return x
    for name in policy:
        out = _OPS[name](x)
        x = out if p >= 1 else torch.where(_per_sample_mask(x, p), out, x)
    return x


@dataclass
class AdaptiveAugment:
    """ADA-style controller: raises ``p`` while D is too sure about reals, lowers it otherwise.

    ``target`` is the wanted mean of sign(D(real)); ``speed_images`` is how many images it takes to move
    p from 0 to 1. With ``adaptive`` False, ``p`` stays at its initial value.
    """

    p: float = 0.0
    adaptive: bool = True
    target: float = 0.6
    speed_images: int = 100_000
    _sum: float = 0.0
    _count: int = 0

    def accumulate(self, real_logits: torch.Tensor) -> None:
        """Record sign(D(real)) for the next update."""
        if self.adaptive:
            self._sum += float(torch.sign(real_logits.detach()).sum())
            self._count += real_logits.numel()

    def update(self, total: Callable[[list[float]], list[float]] | None = None) -> None:
        """Move p by the accumulated signal and reset the accumulator. ``total`` sums the accumulator over
        the processes of a multi-process run (Replica.sum_values), so every process moves p alike."""
        if not self.adaptive:
            return
        if total is not None:
            self._sum, count = total([self._sum, float(self._count)])
            self._count = int(round(count))
        if self._count == 0:
            return
        rt = self._sum / self._count
        step = self._count / self.speed_images
        self.p = float(min(1.0, max(0.0, self.p + (step if rt > self.target else -step))))
        self._sum, self._count = 0.0, 0

    def state_dict(self) -> dict:
        """Plain-value state for checkpoints."""
        return {"p": self.p, "sum": self._sum, "count": self._count}

    def load_state_dict(self, state: dict) -> None:
        """Restore from :meth:`state_dict`."""
        self.p, self._sum, self._count = float(state["p"]), float(state["sum"]), int(state["count"])
