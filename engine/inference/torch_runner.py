"""Generate images from a run folder or checkpoint with PyTorch."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from engine.device import select_device
from engine.errors import CheckpointError, ConfigError
from engine.families import get_family
from engine.families.base import ModelSpec
from engine.training.checkpoint import latest_checkpoint, load_checkpoint
from engine.training.config import TrainConfig
from engine.training.previews import to_uint8_nhwc


def resolve_checkpoint(source: Path | str) -> Path:
    """A checkpoint file as given, or the newest checkpoint of a run folder."""
    source = Path(source)
    if source.is_dir():
        found = latest_checkpoint(source)
        if found is None:
            raise CheckpointError(f"run folder {source} has no checkpoints yet; train or resume it first")
        return found
    if source.is_file():
        return source
    raise CheckpointError(f"{source} is neither a run folder nor a checkpoint file")


def latents_for_seeds(seeds: list[int], latent_dim: int) -> np.ndarray:
    """One standard-normal latent per seed; the same seed always gives the same latent (and image)."""
    rows = [torch.randn(latent_dim, generator=torch.Generator().manual_seed(int(s))) for s in seeds]
    return torch.stack(rows).numpy() if rows else np.zeros((0, latent_dim), np.float32)


class TorchRunner:
    """The EMA generator of a checkpoint, callable on latents: ``runner(z, labels) -> uint8 NHWC``."""

    backend = "pytorch"

    def __init__(self, source: Path | str, device: str = "auto") -> None:
        self.checkpoint = resolve_checkpoint(source)
        state = load_checkpoint(self.checkpoint)
        self.device = select_device(device)
        self.family_name = state["family"]
        self.spec = ModelSpec(**state["spec"])
        self.classes: list[str] = list(state.get("classes") or [])[: self.spec.num_classes]
        self.step = int(state["step"])
        config = TrainConfig.from_dict(state["config"])
        family = get_family(self.family_name)(self.spec, config, self.device)
        family.load_state_dict(state["family_state"])
        self.family = family
        self.latent_dim = family.latent_dim
        self.resolution = self.spec.resolution
        self.supports_truncation = True

    def __call__(self, z: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        """Images (N,H,W,C) uint8 for latents (N, latent_dim) and optional class indices (N,)."""
        z_t = torch.as_tensor(np.asarray(z, dtype=np.float32))
        if z_t.ndim != 2 or z_t.shape[1] != self.latent_dim:
            raise ConfigError(f"latents must have shape (N, {self.latent_dim}), got {tuple(z_t.shape)}")
        y_t = self._labels(labels, z_t.shape[0])
        return to_uint8_nhwc(self.family.sample(z_t, y_t))

    def generate(self, seeds: list[int], class_index: int | None = None, truncation: float = 1.0,
                 batch_size: int = 32) -> np.ndarray:
        """Images for ``seeds``; truncation < 1 pulls latents toward the mean (less variety, more typical)."""
        if not 0 < truncation <= 1:
            raise ConfigError(f"truncation must be in (0, 1], got {truncation}")
        z = latents_for_seeds(seeds, self.latent_dim) * truncation
        labels = None if class_index is None else np.full(len(seeds), class_index, dtype=np.int64)
        parts = [self(z[i:i + batch_size], None if labels is None else labels[i:i + batch_size])
                 for i in range(0, len(seeds), batch_size)]
        return np.concatenate(parts) if parts else np.zeros((0, self.resolution, self.resolution, self.spec.channels), np.uint8)

    def _labels(self, labels: np.ndarray | None, n: int) -> torch.Tensor | None:
        if not self.spec.num_classes:
            return None
        if labels is None:
            return torch.arange(n) % self.spec.num_classes
        y = torch.as_tensor(np.asarray(labels, dtype=np.int64))
        if y.shape != (n,) or int(y.min()) < 0 or int(y.max()) >= self.spec.num_classes:
            raise ConfigError(f"class indices must be {n} values in 0..{self.spec.num_classes - 1}")
        return y
