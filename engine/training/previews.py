"""Fixed-seed preview grids: the same latents every time, so progress is visible frame to frame."""

from __future__ import annotations

import math

import numpy as np
import torch
from torchvision.utils import make_grid

from engine.inference.runner import to_uint8_nhwc_np


def to_uint8_nhwc(images: torch.Tensor) -> np.ndarray:
    """(N,C,H,W) tensor in [-1,1] -> uint8 (N,H,W,C) numpy, the same conversion the runners use."""
    return to_uint8_nhwc_np(images.detach().float().cpu().numpy())


def make_grid_uint8(images: torch.Tensor, padding: int = 2, nrow: int | None = None) -> np.ndarray:
    """A grid of (N,C,H,W) images in [-1,1] as uint8 (H,W,C): ``nrow`` per row, or near-square."""
    nrow = nrow or max(1, math.ceil(math.sqrt(images.shape[0])))
    grid = make_grid(images.detach().float().cpu(), nrow=nrow, padding=padding, value_range=(-1, 1), normalize=True)
    return (grid * 255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
