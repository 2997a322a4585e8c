"""Layers of the style-based generator and its residual discriminator (StyleGAN2, Karras et al. 2020,
"Analyzing and Improving the Image Quality of StyleGAN"), in plain PyTorch.

No custom CUDA kernels and nothing compiled at run time: the same code runs on Windows without a
compiler, on a CPU, and exports to ONNX with standard operators. Where the paper's implementation uses
its own ops we use plain ones that compute the same thing or a close equivalent, each said in place.

Equalized learning rate (the paper's "weight scaling at runtime"): every weight is stored as N(0, 1)
(divided by ``lr_mul``) and multiplied by ``lr_mul / sqrt(fan_in)`` in the forward pass. Adam's step is
then the same relative size for every layer whatever its fan-in, and ``lr_mul`` slows a whole network
down (the mapping network trains at 0.01 x the learning rate) without a second optimizer.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

SQRT2 = math.sqrt(2.0)
NOISE_MODES = ("random", "const", "none")
"""'random': fresh per-pixel noise (training); 'const': the layer's stored noise buffer (previews,
sampling, export: same seed, same image); 'none': no noise."""


def lrelu(x: torch.Tensor) -> torch.Tensor:
    """Leaky ReLU (slope 0.2) times sqrt(2), which keeps the second moment of N(0, 1) inputs near 1."""
    return F.leaky_relu(x, 0.2) * SQRT2


def normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``x`` scaled so that each row has mean square 1 (the mapping network's input normalisation)."""
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


def upsample2x(x: torch.Tensor) -> torch.Tensor:
    """Bilinear 2x upsampling.

    The paper upsamples with a transposed convolution followed by a [1, 3, 3, 1] FIR low-pass filter in
    its own upfirdn2d CUDA op; bilinear interpolation is almost the same low-pass kernel, runs
    everywhere and exports as a single ONNX Resize.
    """
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


def downsample2x(x: torch.Tensor) -> torch.Tensor:
    """2x2 average pooling: a box low-pass in place of the paper's [1, 3, 3, 1] FIR + stride 2."""
    return F.avg_pool2d(x, 2)


class EqualLinear(nn.Module):
    """Fully connected layer with equalized learning rate and an optional lrelu activation."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias_init: float = 0.0,
        lr_mul: float = 1.0,
        activation: bool = False,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init)))
        self.weight_gain = lr_mul / math.sqrt(in_features)
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.linear(x, self.weight * self.weight_gain, self.bias * self.lr_mul)
        return lrelu(x) if self.activation else x


class EqualConv2d(nn.Module):
    """Convolution with equalized learning rate; ``down`` halves the size first (for the discriminator)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int,
        bias: bool = True,
        activation: bool = False,
        down: bool = False,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1 / math.sqrt(in_channels * kernel * kernel)
        self.activation, self.down, self.padding = activation, down, kernel // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Pool before the convolution (the paper filters, then convolves with stride 2): the same
        # low-pass-then-subsample, and the convolution runs on a quarter of the pixels.
        if self.down:
            x = downsample2x(x)
        x = F.conv2d(x, self.weight * self.weight_gain, self.bias, padding=self.padding)
        return lrelu(x) if self.activation else x


class ModulatedConv2d(nn.Module):
    """StyleGAN2's modulated convolution: the style scales the weight's input channels, then (with
    ``demodulate``) each output channel is divided by the norm of its scaled weights.

    Written as "scale the activations, convolve with the shared weight, scale the result" rather than
    as a per-sample weight with a grouped convolution. The two are the same arithmetic (the paper's own
    code uses this form while training); this one is a plain convolution over the whole batch, which is
    faster on a CPU and exports to ONNX with a dynamic batch and no reshapes of the weight.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int,
        w_dim: int,
        demodulate: bool = True,
        up: bool = False,
    ) -> None:
        super().__init__()
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)  # styles start at 1: plain conv at init
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel, kernel))
        self.weight_gain = 1 / math.sqrt(in_channels * kernel * kernel)
        self.demodulate, self.up, self.padding = demodulate, up, kernel // 2

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w)  # (N, in)
        weight = self.weight * self.weight_gain
        if self.up:
            x = upsample2x(x)
        x = F.conv2d(x * styles[:, :, None, None].to(x.dtype), weight.to(x.dtype), padding=self.padding)
        if self.demodulate:
            # sum over (in, kh, kw) of (weight * style)^2 = styles^2 @ (weight^2 summed over the kernel)^T
            # (in float32: the sum of squares overflows float16).
            sq = weight.float().square().sum(dim=(2, 3))  # (out, in)
            dcoefs = (styles.float().square() @ sq.t() + 1e-8).rsqrt()  # (N, out)
            x = x * dcoefs[:, :, None, None].to(x.dtype)
        return x


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv (optionally after 2x upsampling) + per-pixel noise + bias + lrelu."""

    noise_const: torch.Tensor

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, up: bool = False) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, 3, w_dim, up=up)
        # A fixed noise image for 'const' mode, so sampling and export are deterministic; the learned
        # strength starts at 0 (no noise until training finds it useful).
        self.register_buffer("noise_const", torch.randn(1, 1, resolution, resolution))
        self.noise_strength = nn.Parameter(torch.zeros(()))
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str) -> torch.Tensor:
        x = self.conv(x, w)
        if noise_mode == "random":
            n, _, h, width = x.shape
            x = x + torch.randn(n, 1, h, width, device=x.device, dtype=x.dtype) * self.noise_strength.to(x.dtype)
        elif noise_mode == "const":
            x = x + (self.noise_const * self.noise_strength).to(x.dtype)
        x = lrelu(x + self.bias.to(x.dtype)[None, :, None, None])
        # float16 activations can overflow in a long-trained net; the paper clamps at 256 too.
        return x.clamp(-256, 256) if x.dtype == torch.float16 else x


class ToRGB(nn.Module):
    """1x1 modulated conv to image channels, not demodulated (the output's scale is the image's)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.conv(x, w) + self.bias.to(x.dtype)[None, :, None, None]


class MinibatchStdDev(nn.Module):
    """Appends the standard deviation over groups of samples as extra feature maps (Karras et al. 2018).

    D sees how varied the batch is; a generator that collapses to a few images gets caught. Groups of
    ``group_size`` samples (the largest divisor of the batch up to that size), ``num_channels`` maps.
    """

    def __init__(self, group_size: int = 4, num_channels: int = 1) -> None:
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = max(d for d in range(1, min(self.group_size, n) + 1) if n % d == 0)
        f = self.num_channels
        y = x.float().reshape(g, -1, f, c // f, h, w)  # sample i is in group i % (n // g)
        y = (y - y.mean(dim=0)).square().mean(dim=0)  # variance within each group
        y = (y + 1e-8).sqrt().mean(dim=(2, 3, 4))  # (n // g, f): mean std per group and channel set
        y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w).to(x.dtype)
        return torch.cat([x, y], dim=1)


class ResidualBlock(nn.Module):
    """Discriminator block: two 3x3 convs (the second halves the size) plus a 1x1 shortcut, summed with
    gain sqrt(1/2) so the sum keeps the variance of its inputs."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv0 = EqualConv2d(in_channels, in_channels, 3, activation=True)
        self.conv1 = EqualConv2d(in_channels, out_channels, 3, activation=True, down=True)
        self.skip = EqualConv2d(in_channels, out_channels, 1, bias=False, down=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.skip(x) + self.conv1(self.conv0(x))) * math.sqrt(0.5)
