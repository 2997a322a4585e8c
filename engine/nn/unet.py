"""Image-to-image building blocks: a fully convolutional U-Net generator and a PatchGAN discriminator.

Both run at any input size that is a multiple of ``UNet.multiple`` (callers pad and crop), which is
what lets a model trained on 256 px crops translate a 1024 px drawing, and lets the ONNX export keep
height and width dynamic.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


def _norm(channels: int) -> nn.Module:
    # Instance norm: statistics per image, so results do not depend on the batch or on batch size 1
    # at inference (pix2pix's BatchNorm in eval mode behaves differently from training).
    return nn.InstanceNorm2d(channels, affine=True)


def unet_depth(requested: int, resolution: int) -> int:
    """Downsamplings actually used: at most ``requested``, leaving at least 4x4 at the bottleneck."""
    return max(1, min(requested, int(math.log2(resolution)) - 2))


class UNet(nn.Module):
    """(N, in, H, W) -> (N, out, H, W) in [-1, 1]; H and W must be multiples of ``self.multiple``."""

    def __init__(
        self, in_channels: int, out_channels: int, base: int = 64, depth: int = 6, max_channels: int = 512
    ) -> None:
        super().__init__()
        ch = [min(base * 2**i, max_channels) for i in range(depth + 1)]
        self.multiple = 2**depth
        self.stem = nn.Sequential(nn.Conv2d(in_channels, ch[0], 3, 1, 1), nn.LeakyReLU(0.2, True))
        self.downs = nn.ModuleList(
            nn.Sequential(nn.Conv2d(ch[i], ch[i + 1], 4, 2, 1), _norm(ch[i + 1]), nn.LeakyReLU(0.2, True))
            for i in range(depth)
        )
        # Nearest upsampling + 3x3 conv instead of transposed convs: no checkerboard artefacts.
        self.ups = nn.ModuleList(
            nn.Sequential(
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv2d(ch[i + 1] * (1 if i + 1 == depth else 2), ch[i], 3, 1, 1),
                _norm(ch[i]),
                nn.ReLU(True),
            )
            for i in range(depth)
        )
        self.head = nn.Sequential(nn.Conv2d(ch[0] * 2, out_channels, 3, 1, 1), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [self.stem(x)]
        for down in self.downs:
            feats.append(down(feats[-1]))
        h = feats[-1]
        for i in reversed(range(len(self.ups))):
            h = torch.cat([self.ups[i](h), feats[i]], 1)
        return self.head(h)


class PatchDiscriminator(nn.Module):
    """(N, C, H, W) -> (N, 1, h, w) logits, one per overlapping patch (70x70 px with 3 layers)."""

    def __init__(self, in_channels: int, base: int = 64, layers: int = 3, max_channels: int = 512) -> None:
        super().__init__()
        # Spectral norm rather than normalisation layers: stable on a few hundred images, batch-size free.
        ch = [min(base * 2**i, max_channels) for i in range(layers + 1)]
        blocks: list[nn.Module] = [spectral_norm(nn.Conv2d(in_channels, ch[0], 4, 2, 1)), nn.LeakyReLU(0.2, True)]
        for i in range(1, layers):
            blocks += [spectral_norm(nn.Conv2d(ch[i - 1], ch[i], 4, 2, 1)), nn.LeakyReLU(0.2, True)]
        blocks += [
            spectral_norm(nn.Conv2d(ch[layers - 1], ch[layers], 4, 1, 1)),
            nn.LeakyReLU(0.2, True),
            spectral_norm(nn.Conv2d(ch[layers], 1, 4, 1, 1)),
        ]
        self.net = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
