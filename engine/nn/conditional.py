"""How the class label enters a generator: class-conditional batch norm.

A class-conditional generator here takes the latent z alone as its input; the class sets the gain
and bias of every batch norm (conditional batch norm, as in the projection-discriminator paper's
generator, Miyato & Koyama 2018, and BigGAN). The older way, a class embedding *added to z*, made
each class collapse to nearly one image (docs/training.md, "Conditional training"): the embedding has
the norm of a whole latent vector but only one direction per class, so the first layer's gradient
keeps pointing the same way for every sample of a class, its weights turn towards those few
directions, and the class term outgrows the variation that z brings (measured: 3x its variance
after 300 steps). Through the norms the class can change every layer's output but cannot drown z.
"""

from __future__ import annotations

import torch
from torch import nn

CLASS_INPUTS = ("norm", "latent")
"""Family option ``class_input``: 'norm' (conditional batch norm) or 'latent' (the old added embedding,
kept so that runs trained with it still load and resume)."""


class ClassBatchNorm2d(nn.Module):
    """Batch norm without its own affine part, then a gain and a bias looked up per class.

    ``forward(x, labels)``; the gains start at N(1, 0.02) and the biases at 0, as a plain batch norm's
    would under the DCGAN initialisation, so a new model starts out nearly unconditional.
    """

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.gain = nn.Embedding(num_classes, channels)
        self.bias = nn.Embedding(num_classes, channels)
        nn.init.normal_(self.gain.weight, 1.0, 0.02)
        nn.init.zeros_(self.bias.weight)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        if labels is None:
            raise ValueError("this class-conditional generator needs class labels")
        h = self.norm(x)
        return h * self.gain(labels)[:, :, None, None].to(h.dtype) + self.bias(labels)[:, :, None, None].to(h.dtype)


class LabelledSequential(nn.Sequential):
    """``nn.Sequential`` that hands the class labels to the layers that take them (:class:`ClassBatchNorm2d`,
    :class:`ClassAffine1d`).

    Its children and their names are those of a plain ``nn.Sequential``, so an unconditional model built
    with it has the same state-dict keys as before.
    """

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        for layer in self:
            x = layer(x, labels) if isinstance(layer, (ClassBatchNorm2d, ClassAffine1d)) else layer(x)
        return x


class ClassAffine1d(nn.Module):
    """For fully connected layers (N, features): an optional batch norm without its own affine part, then a
    gain and a bias looked up per class (the vanilla family's generator; ``normalize=False`` for a G
    without batch norm). Initialised like :class:`ClassBatchNorm2d`."""

    def __init__(self, features: int, num_classes: int, normalize: bool = True) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(features, affine=False) if normalize else None
        self.gain = nn.Embedding(num_classes, features)
        self.bias = nn.Embedding(num_classes, features)
        nn.init.normal_(self.gain.weight, 1.0, 0.02)
        nn.init.zeros_(self.bias.weight)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        if labels is None:
            raise ValueError("this class-conditional generator needs class labels")
        h = x if self.norm is None else self.norm(x)
        return h * self.gain(labels).to(h.dtype) + self.bias(labels).to(h.dtype)


def batch_norm(channels: int, num_classes: int, class_input: str) -> nn.Module:
    """A ClassBatchNorm2d for a conditional generator with class_input 'norm', else a plain BatchNorm2d."""
    if num_classes and class_input == "norm":
        return ClassBatchNorm2d(channels, num_classes)
    return nn.BatchNorm2d(channels)
