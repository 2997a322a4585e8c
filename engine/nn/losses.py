"""Adversarial losses and the R1 gradient penalty, selected by name."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from engine.errors import ConfigError


def _ns_d(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def _ns_g(fake: torch.Tensor) -> torch.Tensor:
    return F.softplus(-fake).mean()


def _hinge_d(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return F.relu(1 - real).mean() + F.relu(1 + fake).mean()


def _hinge_g(fake: torch.Tensor) -> torch.Tensor:
    return -fake.mean()


LOSSES: dict[str, tuple[Callable, Callable]] = {"ns": (_ns_d, _ns_g), "hinge": (_hinge_d, _hinge_g)}


def get_loss(name: str) -> tuple[Callable, Callable]:
    """(d_loss(real_logits, fake_logits), g_loss(fake_logits)) for 'ns' (non-saturating) or 'hinge'."""
    try:
        return LOSSES[name]
    except KeyError:
        raise ConfigError(f"unknown loss {name!r} in 'loss'; use one of: {', '.join(LOSSES)}") from None


def r1_penalty(real_logits: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ||dD(x)/dx||^2 at real images (``real`` must require grad)."""
    (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
    return grad.float().pow(2).flatten(1).sum(1).mean()
