"""sRGB <-> CIE Lab (D65) in PyTorch: differentiable and exportable to ONNX.

Written here rather than taken from kornia or scikit-image because the colorization network needs the
conversion inside its graph (so the exported model outputs RGB) and in the training loss, on any
device, without a new runtime dependency. Formulas follow the sRGB standard (IEC 61966-2-1) and
CIE 1976 L*a*b*; ``tests/engine/test_pairs.py`` checks them against scikit-image.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_RGB_TO_XYZ = torch.tensor(
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]]
)
_XYZ_TO_RGB = torch.linalg.inv(_RGB_TO_XYZ)  # a constant, so exported graphs hold numbers, not an inverse
_WHITE = (0.950456, 1.0, 1.088754)
_EPS = 216 / 24389  # CIE epsilon: below it the cube root becomes a line
_KAPPA = 24389 / 27
L_SCALE, AB_SCALE = 50.0, 110.0  # network encodings: L/50 - 1 and ab/110 lie in [-1, 1]


def _mix(x: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """Per-pixel 3x3 matrix product as a 1x1 convolution (one ONNX Conv, any batch and size)."""
    return F.conv2d(x, matrix.to(x.device, x.dtype)[:, :, None, None])


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """(N,3,H,W) sRGB in [0,1] -> (N,3,H,W) Lab with L in [0,100] and a, b roughly in [-110, 110]."""
    rgb = rgb.clamp(0, 1)
    linear = torch.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055).clamp(min=1e-8) ** 2.4)
    xyz = _mix(linear, _RGB_TO_XYZ)
    white = torch.tensor(_WHITE, device=rgb.device, dtype=rgb.dtype)[None, :, None, None]
    t = xyz / white
    # clamp inside the power so the branch torch.where discards never produces NaN gradients
    f = torch.where(t > _EPS, t.clamp(min=_EPS) ** (1 / 3), (_KAPPA * t + 16) / 116)
    fx, fy, fz = f[:, 0:1], f[:, 1:2], f[:, 2:3]
    return torch.cat([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], 1)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_lab`; out-of-gamut colours are clipped to [0,1]."""
    L, a, b = lab[:, 0:1], lab[:, 1:2], lab[:, 2:3]
    fy = (L + 16) / 116
    f = torch.cat([fy + a / 500, fy, fy - b / 200], 1)
    t = torch.where(f**3 > _EPS, f**3, (116 * f - 16) / _KAPPA)
    white = torch.tensor(_WHITE, device=lab.device, dtype=lab.dtype)[None, :, None, None]
    linear = _mix(t * white, _XYZ_TO_RGB).clamp(0, 1)
    rgb = torch.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear.clamp(min=1e-8) ** (1 / 2.4) - 0.055)
    return rgb.clamp(0, 1)


def encode_lab(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N,3,H,W) RGB in [-1,1] -> (L, ab) in the network encoding: (N,1,H,W) and (N,2,H,W) in ~[-1,1]."""
    lab = rgb_to_lab((rgb + 1) / 2)
    return lab[:, :1] / L_SCALE - 1, lab[:, 1:] / AB_SCALE


def decode_lab(L: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """Network-encoded L (N,1,H,W) and ab (N,2,H,W) -> RGB in [-1,1]."""
    lab = torch.cat([(L + 1) * L_SCALE, ab * AB_SCALE], 1)
    return lab_to_rgb(lab) * 2 - 1


def luminance(rgb: torch.Tensor) -> torch.Tensor:
    """(N,C>=3,H,W) RGB in [-1,1] -> (N,1,H,W) luma (Rec. 601) in [-1,1]; one channel passes through."""
    if rgb.shape[1] < 3:
        return rgb[:, :1]
    weights = torch.tensor([0.299, 0.587, 0.114], device=rgb.device, dtype=rgb.dtype)[None, :, None, None]
    return (rgb[:, :3] * weights).sum(1, keepdim=True)
