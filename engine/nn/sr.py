"""Super-resolution networks: a compact SRVGG-style upscaler, ESRGAN's RRDB network, a U-Net discriminator.

Pixel convention (shared with community upscaler models, so one upscaler interface serves both): the
upscalers map float (N, C, h, w) in [0, 1] to (N, C, h * scale, w * scale), nominally in [0, 1] (they
are not clamped here; inference clamps). Every network runs at any h and w (no size multiple) and is
plain PyTorch (convolutions, PReLU/LeakyReLU, pixel shuffle, interpolation), so the ONNX export keeps
height and width dynamic.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

SCALES = (2, 4)
"""Upscaling factors the networks are built for."""
RESIDUAL_SCALE = 0.2
"""ESRGAN's residual scaling: each dense block and each RRDB adds 0.2 x its output to its input, which is
what lets 23 blocks train without batch norm (Wang et al. 2018, section 3.1)."""
UPSAMPLE_MODES = ("nearest", "pixelshuffle")
RESIDUAL_MODES = ("nearest", "bilinear", "bicubic")


def _check_scale(scale: int) -> int:
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale}")
    return scale


class CompactSR(nn.Module):
    """SRVGG-style compact upscaler (Real-ESRGAN's ``SRVGGNetCompact`` layout, written from the paper's
    description): ``num_conv`` 3x3 convolutions with PReLU at the input's resolution, one convolution to
    ``channels * scale**2`` maps, pixel shuffle, plus the nearest-upsampled input as a residual (so the
    network only learns the detail that nearest neighbour misses). Cheap: all work is at low resolution.

    ``residual`` 'bilinear' or 'bicubic' enlarges the input that way instead: on clean inputs the network
    then starts from a far better image and passes bicubic sooner (docs/training.md, Super-resolution).
    """

    def __init__(
        self, channels: int, scale: int, num_feat: int = 64, num_conv: int = 16, residual: str = "nearest"
    ) -> None:
        super().__init__()
        if residual not in RESIDUAL_MODES:
            raise ValueError(f"residual must be one of {RESIDUAL_MODES}, got {residual!r}")
        self.channels, self.scale, self.residual = channels, _check_scale(scale), residual
        layers: list[nn.Module] = [nn.Conv2d(channels, num_feat, 3, 1, 1), nn.PReLU(num_feat)]
        for _ in range(num_conv):
            layers += [nn.Conv2d(num_feat, num_feat, 3, 1, 1), nn.PReLU(num_feat)]
        last = nn.Conv2d(num_feat, channels * scale * scale, 3, 1, 1)
        layers += [last, nn.PixelShuffle(scale)]
        self.body = nn.Sequential(*layers)
        # The last convolution starts at zero, so an untrained network is exactly the residual's enlargement
        # and training only learns the correction (with the bicubic residual: bicubic from step 0).
        assert last.bias is not None  # built with a bias
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, h, w) in [0, 1] -> (N, C, h * scale, w * scale)."""
        if self.residual == "nearest":
            return self.body(x) + F.interpolate(x, scale_factor=self.scale, mode="nearest")
        return self.body(x) + F.interpolate(x, scale_factor=self.scale, mode=self.residual, align_corners=False)


class ResidualDenseBlock(nn.Module):
    """Five densely connected 3x3 convolutions (each sees the block input and every earlier output)."""

    def __init__(self, num_feat: int = 64, grow: int = 32) -> None:
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(num_feat + i * grow, grow, 3, 1, 1) for i in range(4))
        self.last = nn.Conv2d(num_feat + 4 * grow, num_feat, 3, 1, 1)
        # ESRGAN initialises these layers at 0.1x the usual scale: a deep residual stack then starts close
        # to the identity, and training is stable without normalisation.
        for conv in (*self.convs, self.last):
            nn.init.kaiming_normal_(conv.weight, a=0.2)
            conv.weight.data.mul_(0.1)
            nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for conv in self.convs:
            features.append(F.leaky_relu(conv(torch.cat(features, 1)), 0.2))
        return x + RESIDUAL_SCALE * self.last(torch.cat(features, 1))


class RRDB(nn.Module):
    """Residual-in-residual dense block: three dense blocks, their sum scaled by RESIDUAL_SCALE."""

    def __init__(self, num_feat: int, grow: int) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*(ResidualDenseBlock(num_feat, grow) for _ in range(3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + RESIDUAL_SCALE * self.blocks(x)


class RRDBNet(nn.Module):
    """ESRGAN's generator: a first convolution, ``num_blocks`` RRDBs with a long skip, then x2 upsampling
    stages (one for scale 2, two for scale 4) and two convolutions at the output resolution.

    ``upsample`` 'nearest' (ESRGAN's: nearest x2 + 3x3 convolution, no checkerboard artefacts) or
    'pixelshuffle' (a convolution to 4x the maps + pixel shuffle). Both accept any input size, unlike
    Real-ESRGAN's x2 model, which pixel-unshuffles its input and so needs even sizes.
    """

    def __init__(
        self,
        channels: int,
        scale: int,
        num_feat: int = 64,
        num_blocks: int = 23,
        grow: int = 32,
        upsample: str = "nearest",
    ) -> None:
        super().__init__()
        if upsample not in UPSAMPLE_MODES:
            raise ValueError(f"upsample must be one of {UPSAMPLE_MODES}, got {upsample!r}")
        self.channels, self.scale, self.upsample = channels, _check_scale(scale), upsample
        self.conv_first = nn.Conv2d(channels, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*(RRDB(num_feat, grow) for _ in range(num_blocks)))
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        widen = 4 if upsample == "pixelshuffle" else 1
        self.ups = nn.ModuleList(nn.Conv2d(num_feat, num_feat * widen, 3, 1, 1) for _ in range(scale // 2))
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, channels, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, h, w) in [0, 1] -> (N, C, h * scale, w * scale)."""
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        for conv in self.ups:
            if self.upsample == "pixelshuffle":
                feat = F.pixel_shuffle(conv(feat), 2)
            else:
                feat = conv(F.interpolate(feat, scale_factor=2, mode="nearest"))
            feat = F.leaky_relu(feat, 0.2)
        return self.conv_last(F.leaky_relu(self.conv_hr(feat), 0.2))


class UNetDiscriminatorSN(nn.Module):
    """Real-ESRGAN's discriminator layout: a U-Net with spectral norm that gives one logit per pixel.

    Three stride-2 downsamplings, three bilinear upsamplings with skip connections, two more
    convolutions; every convolution but the first and last is spectrally normalised (its Lipschitz
    constant capped, which keeps this strong D from overpowering G). Per-pixel logits judge local
    texture everywhere instead of one verdict per image. Any input size: each upsampling goes to the
    size of the skip it joins.
    """

    def __init__(self, channels: int, num_feat: int = 64) -> None:
        super().__init__()
        nf = num_feat
        self.conv0 = nn.Conv2d(channels, nf, 3, 1, 1)
        self.downs = nn.ModuleList(
            spectral_norm(nn.Conv2d(a, b, 4, 2, 1, bias=False))
            for a, b in ((nf, nf * 2), (nf * 2, nf * 4), (nf * 4, nf * 8))
        )
        self.ups = nn.ModuleList(
            spectral_norm(nn.Conv2d(a, b, 3, 1, 1, bias=False))
            for a, b in ((nf * 8, nf * 4), (nf * 4, nf * 2), (nf * 2, nf))
        )
        self.tail = nn.ModuleList(spectral_norm(nn.Conv2d(nf, nf, 3, 1, 1, bias=False)) for _ in range(2))
        self.conv_out = nn.Conv2d(nf, 1, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) images in [0, 1] -> (N, 1, H, W) logits (real > 0)."""
        skips = [F.leaky_relu(self.conv0(x), 0.2)]
        for conv in self.downs:
            skips.append(F.leaky_relu(conv(skips[-1]), 0.2))
        feat = skips.pop()
        for conv in self.ups:
            skip = skips.pop()
            feat = F.interpolate(feat, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            feat = F.leaky_relu(conv(feat), 0.2) + skip
        for conv in self.tail:
            feat = F.leaky_relu(conv(feat), 0.2)
        return self.conv_out(feat)
