"""Discriminator stabilisers: minibatch standard deviation, minibatch discrimination, per-sample norms,
and the instance-noise schedule.

Mode collapse shows as a batch of near-identical fakes; a discriminator that looks at one image at a
time cannot see it. The two minibatch layers give D a feature computed across the batch, so a collapsed
batch is easy to tell from a real one and G is pushed to spread out again.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def _group_size(batch: int, wanted: int) -> int:
    """The largest group size <= ``wanted`` that divides ``batch`` (micro-batches can be any size)."""
    size = max(1, min(wanted, batch))
    while batch % size:
        size -= 1
    return size


class MinibatchStdDev(nn.Module):
    """Append one feature: the standard deviation across a group of samples, averaged over everything else.

    Karras et al. 2018 (Progressive GAN), as StyleGAN2 uses it: the batch is split into groups of
    ``group_size`` samples (samples i, i + N/G, ... form a group), the std of every feature over the
    group is averaged into one number per group, and that number is appended to every sample of the
    group as an extra channel (N, C, H, W) -> (N, C+1, H, W), or an extra feature (N, C) -> (N, C+1).
    """

    def __init__(self, group_size: int = 4) -> None:
        super().__init__()
        if group_size < 1:
            raise ValueError(f"group_size must be at least 1 (got {group_size})")
        self.group_size = group_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, rest = x.shape[0], x.shape[1:]
        g = _group_size(n, self.group_size)
        y = x.float().reshape(g, n // g, *rest)
        std = (y.var(dim=0, unbiased=False) + 1e-8).sqrt()  # (N/G, C, ...)
        feature = std.flatten(1).mean(1).to(x.dtype)  # one number per group
        feature = feature.repeat(g).reshape(n, 1, *([1] * (x.dim() - 2)))
        return torch.cat([x, feature.expand(n, 1, *rest[1:])], dim=1)


class MinibatchDiscrimination(nn.Module):
    """Salimans et al. 2016: (N, A) features -> (N, A + kernels), the extra features measuring closeness.

    Each sample's features are projected to ``kernels`` vectors of ``kernel_dims`` numbers; for every
    kernel the layer adds up exp(-L1 distance) to the same kernel's vector of every other sample in the
    batch. Near-identical samples (a collapsed generator) give large values, which D learns to use.
    """

    def __init__(self, in_features: int, kernels: int, kernel_dims: int = 8) -> None:
        super().__init__()
        self.kernels, self.kernel_dims = kernels, kernel_dims
        self.T = nn.Parameter(torch.empty(in_features, kernels * kernel_dims))
        nn.init.normal_(self.T, 0.0, 1.0 / math.sqrt(in_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = (x @ self.T.to(x.dtype)).reshape(x.shape[0], self.kernels, self.kernel_dims)
        l1 = (m.unsqueeze(0) - m.unsqueeze(1)).abs().sum(3)  # (N, N, kernels)
        # exp(-0) = 1 is each sample's closeness to itself: not evidence of collapse, so removed.
        closeness = torch.exp(-l1).sum(1) - 1
        return torch.cat([x, closeness], dim=1)


def per_sample_norms(module: nn.Module) -> int:
    """Replace every BatchNorm in ``module`` by a per-sample layer norm (GroupNorm with one group); returns
    how many were replaced.

    A WGAN-GP critic is penalised on each sample's gradient; batch norm makes every output depend on the
    whole batch, so that gradient is no longer the sample's own (Gulrajani et al. 2017 recommend layer
    norm instead). The replacement keeps the layer's place and width, so the family's design stays.
    """
    replaced = 0
    for name, child in module.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(module, name, nn.GroupNorm(1, child.num_features, affine=child.affine))
            replaced += 1
        else:
            replaced += per_sample_norms(child)
    return replaced


def instance_noise_std(start: float, kimg: float, images_seen: int) -> float:
    """Std of the instance noise after ``images_seen`` images: ``start`` falling linearly to 0 at ``kimg``
    thousand images, 0 from then on (and always 0 when ``start`` or ``kimg`` is 0)."""
    if start <= 0 or kimg <= 0:
        return 0.0
    return start * max(0.0, 1.0 - images_seen / (kimg * 1000))


def add_instance_noise(x: torch.Tensor, std: float) -> torch.Tensor:
    """``x`` plus N(0, std^2) per pixel, drawn from torch's global RNG; ``x`` itself when std is 0."""
    if std <= 0:
        return x
    return x + std * torch.randn_like(x)
