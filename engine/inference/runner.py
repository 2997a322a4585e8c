"""The interface every generator runner shares (PyTorch, onnxruntime)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np
import torch

from engine.errors import ConfigError
from engine.provenance.model_info import ModelIdentity


def latents_for_seeds(seeds: list[int], latent_dim: int) -> np.ndarray:
    """One standard-normal latent per seed; the same seed always gives the same latent (and image)."""
    rows = [torch.randn(latent_dim, generator=torch.Generator().manual_seed(int(s))) for s in seeds]
    return torch.stack(rows).numpy() if rows else np.zeros((0, latent_dim), np.float32)


def to_uint8_nhwc_np(images: np.ndarray) -> np.ndarray:
    """(N,C,H,W) float in [-1,1] -> uint8 (N,H,W,C)."""
    x = np.clip((np.asarray(images, dtype=np.float32) + 1) * 127.5, 0, 255).round().astype(np.uint8)
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


class GeneratorRunner(ABC):
    """``runner(z, labels) -> uint8 NHWC`` and ``runner.generate(seeds, ...)`` over some backend.

    Subclasses set ``family_name, resolution, channels, num_classes, classes, latent_dim, source,
    backend, description, identity`` and implement :meth:`_forward`.
    """

    backend = ""
    family_name: str
    resolution: int
    channels: int
    num_classes: int
    classes: list[str]
    latent_dim: int
    source: Path
    description: str
    identity: ModelIdentity
    """Which model this is (engine/provenance/model_info.py): what its images' watermark and metadata say."""
    supports_truncation = True
    truncates_in_w = False
    """True when the model applies truncation itself (StyleGAN: toward its tracked mean w); otherwise
    truncation scales z toward 0."""

    @abstractmethod
    def _forward(self, z: np.ndarray, labels: np.ndarray | None, truncation: float = 1.0) -> np.ndarray:
        """float32 (N,C,H,W) images in [-1,1]; ``truncation`` is only passed when ``truncates_in_w``."""

    def __call__(self, z: np.ndarray, labels: np.ndarray | None = None, truncation: float = 1.0) -> np.ndarray:
        """Images (N,H,W,C) uint8 for latents (N, latent_dim), optional class indices (N,) and truncation."""
        z = np.asarray(z, dtype=np.float32)
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ConfigError(f"latents must have shape (N, {self.latent_dim}), got {tuple(z.shape)}")
        labels = self._labels(labels, z.shape[0])
        if self.truncates_in_w:
            return to_uint8_nhwc_np(self._forward(z, labels, truncation))
        return to_uint8_nhwc_np(self._forward(z * np.float32(truncation), labels))

    def generate(
        self, seeds: list[int], class_index: int | None = None, truncation: float = 1.0, batch_size: int = 32
    ) -> np.ndarray:
        """Images for ``seeds``; truncation < 1 pulls latents toward the mean (less variety, more typical)."""
        if not 0 < truncation <= 1:
            raise ConfigError(f"truncation must be in (0, 1], got {truncation}")
        z = latents_for_seeds(seeds, self.latent_dim)
        labels = None if class_index is None else np.full(len(seeds), class_index, dtype=np.int64)
        parts = [
            self(z[i : i + batch_size], None if labels is None else labels[i : i + batch_size], truncation)
            for i in range(0, len(seeds), batch_size)
        ]
        empty = np.zeros((0, self.resolution, self.resolution, self.channels), np.uint8)
        return np.concatenate(parts) if parts else empty

    def _labels(self, labels: np.ndarray | None, n: int) -> np.ndarray | None:
        if not self.num_classes:
            return None
        if labels is None:
            return np.arange(n, dtype=np.int64) % self.num_classes
        y = np.asarray(labels, dtype=np.int64)
        if y.shape != (n,) or int(y.min()) < 0 or int(y.max()) >= self.num_classes:
            raise ConfigError(f"class indices must be {n} values in 0..{self.num_classes - 1}")
        return y
