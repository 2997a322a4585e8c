"""DCGAN (Radford et al. 2015): the baseline family.

Generator: transposed convolutions with BatchNorm and ReLU from a 4x4 seed up to the training size.
Discriminator: strided convolutions with LeakyReLU; spectral norm instead of BatchNorm by default,
which is what keeps a small-data DCGAN stable. Class-conditional through class-conditional batch norm
in G (engine/nn/conditional.py; z stays G's only input) and a projection head in D.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from engine.errors import ConfigError
from engine.families.base import AdversarialFamily
from engine.families.registry import register_family
from engine.nn.conditional import CLASS_INPUTS, LabelledSequential, batch_norm
from engine.nn.layers import MinibatchStdDev


@dataclass
class DCGANConfig:
    """Options of the DCGAN family."""

    latent_dim: int = field(default=100, metadata={"label": "Noise length (latent size)"})
    """Length of the latent vector z."""
    base_channels: int = field(default=64, metadata={"label": "Network width"})
    """Feature maps at the highest resolution (the classic ngf/ndf)."""
    max_channels: int = field(default=512, metadata={"label": "Maximum width"})
    """Cap on feature maps at low resolutions."""
    spectral_norm: bool = field(default=True, metadata={"label": "Spectral norm in the discriminator"})
    """Spectral norm in D (False = the classic BatchNorm discriminator; with loss 'wgan-gp' its batch norms
    become layer norms, since the gradient penalty is per sample)."""
    minibatch_stddev: int = field(default=0, metadata={"label": "Minibatch std-dev group size"})
    """Group size of a minibatch standard-deviation channel added before D's last layer (0 = off; 4 is the
    usual value): D sees how varied a batch is, which counters mode collapse."""
    class_input: str = field(default="norm", metadata={"label": "How the class enters the generator"})
    """Class-conditional runs only: 'norm' (each class sets the gains and biases of G's batch norms; D weighs
    the class by a light projection on its mean-pooled features) or 'latent' (the conditioning of older
    runs, kept so they load and resume: a class embedding added to z and a projection on the summed
    features, which collapsed each class to nearly one image, see docs/training.md)."""

    def __post_init__(self) -> None:
        if self.class_input not in CLASS_INPUTS:
            raise ConfigError(
                f"option 'class_input' must be one of {', '.join(CLASS_INPUTS)} (got {self.class_input!r})"
            )


PROJECTION_SCALE = 0.25
"""Weight of D's class projection on its mean-pooled 4x4 features (see DCGANDiscriminator)."""


def _channels(cfg: DCGANConfig, stages: int) -> list[int]:
    """Feature maps from the 4x4 stage (index 0) to the last stage before the image."""
    return [min(cfg.base_channels * 2 ** (stages - 1 - i), cfg.max_channels) for i in range(stages)]


class DCGANGenerator(nn.Module):
    """z (N, latent) [+ labels] -> image (N, C, R, R) in [-1, 1]."""

    def __init__(self, cfg: DCGANConfig, resolution: int, channels: int, num_classes: int) -> None:
        super().__init__()
        stages = int(math.log2(resolution)) - 2
        ch = _channels(cfg, stages)
        legacy = num_classes and cfg.class_input == "latent"
        self.embed = nn.Embedding(num_classes, cfg.latent_dim) if legacy else None
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(cfg.latent_dim, ch[0], 4, 1, 0, bias=False),
            batch_norm(ch[0], num_classes, cfg.class_input),
            nn.ReLU(True),
        ]
        for c_in, c_out in zip(ch[:-1], ch[1:]):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False)]
            layers += [batch_norm(c_out, num_classes, cfg.class_input), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(ch[-1], channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = LabelledSequential(*layers)
        self.apply(_dcgan_init)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None and labels is not None:
            z = z + self.embed(labels)
        return self.net(z[:, :, None, None], labels)


class DCGANDiscriminator(nn.Module):
    """image (N, C, R, R) [+ labels] -> logits (N,)."""

    def __init__(self, cfg: DCGANConfig, resolution: int, channels: int, num_classes: int) -> None:
        super().__init__()
        stages = int(math.log2(resolution)) - 2
        ch = list(reversed(_channels(cfg, stages)))
        sn = spectral_norm if cfg.spectral_norm else (lambda m: m)
        layers: list[nn.Module] = [sn(nn.Conv2d(channels, ch[0], 4, 2, 1)), nn.LeakyReLU(0.2, True)]
        for c_in, c_out in zip(ch[:-1], ch[1:]):
            layers += [sn(nn.Conv2d(c_in, c_out, 4, 2, 1, bias=not cfg.spectral_norm))]
            layers += [] if cfg.spectral_norm else [nn.BatchNorm2d(c_out)]
            layers += [nn.LeakyReLU(0.2, True)]
        self.features = nn.Sequential(*layers)
        self.stddev = MinibatchStdDev(cfg.minibatch_stddev) if cfg.minibatch_stddev else None
        self.head = sn(nn.Conv2d(ch[-1] + (1 if self.stddev is not None else 0), 1, 4, 1, 0))
        # Projection discriminator (Miyato & Koyama 2018): class evidence is an inner product with
        # the pooled features, which conditions D without extra input channels. Its weight against the
        # head decides whether G keeps its variety: the sum over the 4x4 map (older runs, class_input
        # 'latent') reaches 4x as far as the head, and D judged mostly "is it class y", which G satisfies
        # by sending every sample of a class to the same point. Measured (docs/training.md): sum
        # collapsed each class, the mean (1/16 of the sum) still halved the variety in some seeds,
        # PROJECTION_SCALE x the mean kept it and the classes apart.
        self.sum_pool = bool(num_classes) and cfg.class_input == "latent"
        self.embed = sn(nn.Embedding(num_classes, ch[-1])) if num_classes else None
        self.apply(_dcgan_init)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.features(x)
        out = self.head(h if self.stddev is None else self.stddev(h)).flatten(1).sum(1)
        if self.embed is not None and labels is not None:
            pooled = h.sum(dim=(2, 3)) if self.sum_pool else h.mean(dim=(2, 3)) * PROJECTION_SCALE
            out = out + (self.embed(labels) * pooled).sum(1)
        return out


def _dcgan_init(m: nn.Module) -> None:
    # The DCGAN paper's N(0, 0.02) init; it matters for the BatchNorm generator's early stability.
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d) and m.affine:  # a class batch norm's gains are set by the class
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


@register_family("dcgan")
class DCGAN(AdversarialFamily):
    """Baseline DCGAN family, 16-256 px."""

    description = "The classic baseline: quick to train and simple, but wants a few thousand images to look good."
    Config = DCGANConfig
    max_resolution = 256
    tiny_options = {"latent_dim": 16, "base_channels": 8, "max_channels": 32}

    def build_generator(self) -> nn.Module:
        return DCGANGenerator(self.cfg, self.spec.resolution, self.spec.channels, self.spec.num_classes)

    def build_discriminator(self) -> nn.Module:
        return DCGANDiscriminator(self.cfg, self.spec.resolution, self.spec.channels, self.spec.num_classes)

    @property
    def latent_dim(self) -> int:
        return self.cfg.latent_dim

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`; a conditional checkpoint keeps the class input it was trained with."""
        if self._adopt_checkpoint_class_input(state):
            D = self.modules["D"]
            assert isinstance(D, DCGANDiscriminator)  # built by build_discriminator
            D.sum_pool = self.cfg.class_input == "latent"  # same weights, the pooling they were trained with
        super().load_state_dict(state)
