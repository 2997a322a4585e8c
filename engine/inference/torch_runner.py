"""Generate images from a run folder or checkpoint with PyTorch."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.device import describe_device, select_device
from engine.errors import CheckpointError
from engine.families import get_family
from engine.families.base import ModelSpec
from engine.inference.runner import GeneratorRunner
from engine.provenance.model_info import identity_from_checkpoint
from engine.runs.checkpoint import newest_verified_checkpoint, open_checkpoint
from engine.runs.config import TrainConfig


def resolve_checkpoint(source: Path | str, on_note: Callable[[str], None] | None = None) -> Path:
    """A checkpoint file as given, or the newest checkpoint of a run folder that verifies.

    Damaged newer checkpoints are renamed ``*.damaged`` and reported through ``on_note``
    (see engine.runs.checkpoint.load_latest_checkpoint, which also returns the loaded state).
    """
    source = Path(source)
    if source.is_dir():
        return newest_verified_checkpoint(source, on_note)
    if source.is_file():
        return source
    raise CheckpointError(f"{source} is neither a run folder nor a checkpoint file")


class TorchRunner(GeneratorRunner):
    """The EMA generator of a checkpoint, run with PyTorch."""

    backend = "pytorch"

    def __init__(self, source: Path | str, device: str = "auto") -> None:
        self.notes: list[str] = []  # e.g. "the newest checkpoint is damaged; using an older one"
        self.checkpoint, state = open_checkpoint(source, on_note=self.notes.append)
        self.source = self.checkpoint
        self.device = select_device(device)
        self.family_name = state["family"]
        if get_family(self.family_name).kind != "generate":
            problem = (
                f"{self.checkpoint} holds a '{self.family_name}' model, which translates images "
                "rather than drawing them from noise"
            )
            raise CheckpointError(
                f"{problem}; use it on the Translate page or with gan-studio-cli translate",
                gui=f"{problem}; open the Translate page and choose this run there",
            )
        self.spec = ModelSpec(**state["spec"])
        self.resolution, self.channels, self.num_classes = (
            self.spec.resolution,
            self.spec.channels,
            self.spec.num_classes,
        )
        self.classes: list[str] = list(state.get("classes") or [])[: self.num_classes]
        self.step = int(state["step"])
        self.identity = identity_from_checkpoint(self.checkpoint, state)
        config = TrainConfig.from_dict(state["config"])
        self.dataset_dir = str(config.dataset)  # the prepared dataset it was trained on (may have moved since)
        self.family = get_family(self.family_name)(self.spec, config, self.device)
        self.family.load_state_dict(state["family_state"])
        self.latent_dim = self.family.latent_dim
        self.truncates_in_w = self.family.truncates_in_w
        self.description = f"PyTorch on {describe_device(self.device)}"

    def _forward(self, z: np.ndarray, labels: np.ndarray | None, truncation: float = 1.0) -> np.ndarray:
        y = None if labels is None else torch.from_numpy(labels)
        psi: dict[str, Any] = {"truncation": truncation} if self.truncates_in_w else {}  # only they take it
        return self.family.sample(torch.from_numpy(z), y, **psi).cpu().numpy()
