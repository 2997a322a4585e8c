"""Vanilla GAN (Goodfellow et al. 2014): fully connected generator and discriminator.

The original GAN, with the habits that made it train in practice: a generator of widening linear
layers (BatchNorm, ReLU) ending in tanh over every pixel; a discriminator of narrowing linear layers
with LeakyReLU and dropout (the paper's regulariser against a discriminator that memorises). It has no
notion of neighbouring pixels, so it suits small images (16-64 px) and learning what each setting of a
GAN does; images look grainy next to a convolutional family's.

Class-conditional as in Mirza & Osindero 2014: a learned label embedding is concatenated to the latent
(G) and to the flattened image (D). Optional minibatch discrimination (Salimans et al. 2016) or a
minibatch standard-deviation feature (Karras et al. 2018) in front of D's last layer counter mode
collapse (engine/nn/layers.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from engine.errors import ConfigError
from engine.families.base import AdversarialFamily
from engine.families.registry import register_family
from engine.nn.layers import MinibatchDiscrimination, MinibatchStdDev

LABEL_DIM = 32
"""Length of the learned class embedding concatenated to G's latent and to D's flattened image."""


@dataclass
class VanillaConfig:
    """Options of the vanilla (fully connected) family."""

    latent_dim: int = field(default=64, metadata={"label": "Noise length (latent size)"})
    """Length of the latent vector z."""
    base_channels: int = field(default=128, metadata={"label": "Network width"})
    """Units of the narrowest hidden layer; each further layer doubles them (G widens towards the image,
    D narrows from it: 128, 256, 512 with the defaults)."""
    depth: int = field(default=3, metadata={"label": "Hidden layers"})
    """Hidden layers in each network."""
    g_batchnorm: bool = field(default=True, metadata={"label": "Batch norm in the generator"})
    """BatchNorm after each of G's hidden layers (False = the 2014 paper's plain MLP, slower to start)."""
    dropout: float = field(default=0.3, metadata={"label": "Dropout in the discriminator"})
    """Dropout probability after each of D's hidden layers (0 = off): keeps D from memorising a small folder."""
    minibatch_discrimination: int = field(default=0, metadata={"label": "Minibatch discrimination kernels"})
    """Minibatch discrimination kernels before D's last layer (0 = off; 16-64 typical): D sees how alike
    the samples of a batch are, which counters mode collapse."""
    minibatch_stddev: int = field(default=0, metadata={"label": "Minibatch std-dev group size"})
    """Group size of the minibatch standard-deviation feature before D's last layer (0 = off; 4 is the
    usual value): a cheaper counter to mode collapse than minibatch discrimination."""

    def __post_init__(self) -> None:
        for name in ("latent_dim", "base_channels", "depth"):
            if getattr(self, name) < 1:
                raise ConfigError(f"option '{name}' must be at least 1 (got {getattr(self, name)})")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"option 'dropout' must be in [0, 1) (got {self.dropout})")
        for name in ("minibatch_discrimination", "minibatch_stddev"):
            if getattr(self, name) < 0:
                raise ConfigError(f"option '{name}' must be 0 (off) or more (got {getattr(self, name)})")


def _widths(cfg: VanillaConfig) -> list[int]:
    """Hidden-layer widths from the narrowest to the widest."""
    return [cfg.base_channels * 2**i for i in range(cfg.depth)]


class VanillaGenerator(nn.Module):
    """z (N, latent) [+ labels] -> image (N, C, R, R) in [-1, 1]."""

    def __init__(self, cfg: VanillaConfig, resolution: int, channels: int, num_classes: int) -> None:
        super().__init__()
        self.shape = (channels, resolution, resolution)
        self.embed = nn.Embedding(num_classes, LABEL_DIM) if num_classes else None
        width = cfg.latent_dim + (LABEL_DIM if num_classes else 0)
        layers: list[nn.Module] = []
        for w in _widths(cfg):
            layers += [nn.Linear(width, w, bias=not cfg.g_batchnorm)]
            layers += [nn.BatchNorm1d(w)] if cfg.g_batchnorm else []
            layers += [nn.ReLU(True)]
            width = w
        layers += [nn.Linear(width, channels * resolution * resolution), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None and labels is not None:
            z = torch.cat([z, self.embed(labels)], dim=1)
        return self.net(z).reshape(z.shape[0], *self.shape)


class VanillaDiscriminator(nn.Module):
    """image (N, C, R, R) [+ labels] -> logits (N,)."""

    def __init__(self, cfg: VanillaConfig, resolution: int, channels: int, num_classes: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(num_classes, LABEL_DIM) if num_classes else None
        width = channels * resolution * resolution + (LABEL_DIM if num_classes else 0)
        layers: list[nn.Module] = []
        for w in reversed(_widths(cfg)):
            layers += [nn.Linear(width, w), nn.LeakyReLU(0.2, True)]
            layers += [nn.Dropout(cfg.dropout)] if cfg.dropout else []
            width = w
        if cfg.minibatch_discrimination:
            layers += [MinibatchDiscrimination(width, cfg.minibatch_discrimination)]
            width += cfg.minibatch_discrimination
        if cfg.minibatch_stddev:
            layers += [MinibatchStdDev(cfg.minibatch_stddev)]
            width += 1
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(width, 1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = x.flatten(1)
        if self.embed is not None and labels is not None:
            h = torch.cat([h, self.embed(labels).to(h.dtype)], dim=1)
        return self.head(self.features(h)).squeeze(1)


@register_family("vanilla")
class Vanilla(AdversarialFamily):
    """The original fully connected GAN, 16-64 px."""

    description = "The original GAN, fully connected: for the smallest images and for learning how GANs work."
    Config = VanillaConfig
    min_resolution = 16
    max_resolution = 64
    tiny_options = {"latent_dim": 16, "base_channels": 16, "depth": 2}

    def build_generator(self) -> nn.Module:
        return VanillaGenerator(self.cfg, self.spec.resolution, self.spec.channels, self.spec.num_classes)

    def build_discriminator(self) -> nn.Module:
        return VanillaDiscriminator(self.cfg, self.spec.resolution, self.spec.channels, self.spec.num_classes)

    @property
    def latent_dim(self) -> int:
        return self.cfg.latent_dim
