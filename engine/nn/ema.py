"""Exponential moving average of generator weights (the weights used for previews and export)."""

from __future__ import annotations

import copy

import torch
from torch import nn


def make_ema(model: nn.Module) -> nn.Module:
    """A frozen deep copy of ``model`` in eval mode, to be updated with :func:`update_ema`."""
    ema = copy.deepcopy(model).eval()
    ema.requires_grad_(False)
    return ema


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, beta: float) -> None:
    """ema = beta * ema + (1 - beta) * model for parameters; buffers (BN statistics) are copied."""
    e_params: list[torch.Tensor] = list(ema.parameters())
    m_params = [p.detach() for p in model.parameters()]
    # One fused multi-tensor op instead of a Python loop: the EMA must stay cheap on CPU.
    torch._foreach_lerp_(e_params, m_params, 1.0 - beta)
    for eb, mb in zip(ema.buffers(), model.buffers()):
        eb.copy_(mb)


def ema_beta(batch_size: int, half_life_images: float, images_seen: int, rampup: float = 0.05) -> float:
    """Per-step decay for a half-life in images, ramped up early so young EMAs follow fast."""
    half_life = half_life_images
    if rampup > 0:
        half_life = min(half_life, max(images_seen, 1) * rampup)
    return 0.5 ** (batch_size / max(half_life, 1e-8))
