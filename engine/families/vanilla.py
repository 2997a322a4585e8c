"""Vanilla GAN (Goodfellow et al. 2014): fully connected generator and discriminator.

The original GAN, with the habits that made it train in practice: a generator of widening linear
layers (BatchNorm, ReLU) ending in tanh over every pixel; a discriminator of narrowing linear layers
with LeakyReLU and dropout (the paper's regulariser against a discriminator that memorises). It has no
notion of neighbouring pixels, so it suits small images (16-64 px) and learning what each setting of a
GAN does; images look grainy next to a convolutional family's.

Class-conditional: the class sets the gain and bias of each of G's hidden layers (conditional batch
norm, engine/nn/conditional.py) and D adds a projection of its last hidden features onto a class
embedding (Miyato & Koyama 2018). Mirza & Osindero's 2014 conditioning — a label embedding concatenated
to the latent and to the flattened image — is option ``class_input='latent'``, kept so older runs load:
it collapsed each class to a few images (docs/training.md, "Conditional training"). Optional minibatch
discrimination (Salimans et al. 2016) or a minibatch standard-deviation feature (Karras et al. 2018)
in front of D's last layer counter mode collapse (engine/nn/layers.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from engine.errors import ConfigError
from engine.families.base import AdversarialFamily
from engine.families.registry import register_family
from engine.nn.conditional import CLASS_INPUTS, ClassAffine1d, LabelledSequential
from engine.nn.layers import MinibatchDiscrimination, MinibatchStdDev

LABEL_DIM = 32
"""Length of the class embedding concatenated to G's latent and D's image with class_input 'latent'."""
PROJECTION_SCALE = 0.25
"""Weight of D's class projection against its realness head (as in dcgan: a full-weight projection lets D
judge mostly "is it class y", which G satisfies with one image per class)."""


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
    class_input: str = field(default="norm", metadata={"label": "How the class enters the generator"})
    """Class-conditional runs only: 'norm' (each class sets the gains and biases of G's hidden layers; D adds
    a light projection of its features onto the class) or 'latent' (the 2014 conditioning of older runs,
    kept so they load and resume: a class embedding concatenated to z and to D's input, which collapsed each
    class to a few images, see docs/training.md)."""

    def __post_init__(self) -> None:
        if self.class_input not in CLASS_INPUTS:
            raise ConfigError(
                f"option 'class_input' must be one of {', '.join(CLASS_INPUTS)} (got {self.class_input!r})"
            )
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
        legacy = bool(num_classes) and cfg.class_input == "latent"
        by_class = bool(num_classes) and not legacy
        self.embed = nn.Embedding(num_classes, LABEL_DIM) if legacy else None
        width = cfg.latent_dim + (LABEL_DIM if legacy else 0)
        layers: list[nn.Module] = []
        for w in _widths(cfg):
            layers += [nn.Linear(width, w, bias=not cfg.g_batchnorm)]
            if by_class:
                layers += [ClassAffine1d(w, num_classes, normalize=cfg.g_batchnorm)]
            else:
                layers += [nn.BatchNorm1d(w)] if cfg.g_batchnorm else []
            layers += [nn.ReLU(True)]
            width = w
        layers += [nn.Linear(width, channels * resolution * resolution), nn.Tanh()]
        self.net = LabelledSequential(*layers)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None and labels is not None:
            z = torch.cat([z, self.embed(labels)], dim=1)
        return self.net(z, labels).reshape(z.shape[0], *self.shape)


class VanillaDiscriminator(nn.Module):
    """image (N, C, R, R) [+ labels] -> logits (N,)."""

    def __init__(self, cfg: VanillaConfig, resolution: int, channels: int, num_classes: int) -> None:
        super().__init__()
        self.concat = bool(num_classes) and cfg.class_input == "latent"
        width = channels * resolution * resolution + (LABEL_DIM if self.concat else 0)
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
        # 'latent' concatenates the label to the image; 'norm' projects the last features onto the class
        self.embed = nn.Embedding(num_classes, LABEL_DIM if self.concat else width) if num_classes else None
        if self.embed is not None and not self.concat:
            nn.init.normal_(self.embed.weight, 0.0, 1.0 / width**0.5)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = x.flatten(1)
        if self.embed is not None and self.concat and labels is not None:
            h = torch.cat([h, self.embed(labels).to(h.dtype)], dim=1)
        features = self.features(h)
        out = self.head(features).squeeze(1)
        if self.embed is not None and not self.concat and labels is not None:
            out = out + PROJECTION_SCALE * (self.embed(labels).to(features.dtype) * features).sum(1)
        return out


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

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`; a conditional checkpoint keeps the class input it was trained with
        (G and D were both built differently, so both are rebuilt)."""
        if self._adopt_checkpoint_class_input(state):
            self._rebuild_discriminator()
        super().load_state_dict(state)
