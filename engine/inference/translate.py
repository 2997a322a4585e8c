"""Translate images with an image-to-image model: PyTorch (a run or checkpoint) or onnxruntime (an export).

The network runs at a working size (by default the size it was trained at: long side = training
resolution), padded to the network's multiple and cropped back. Results return at the input's own
size: a sketch result is resized up; a colorized image keeps the input's full-resolution lightness and
takes only the predicted colour from the network, which keeps it as sharp as the original.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from engine.data.pairs import fit_long_side, resize_images
from engine.device import describe_device, select_device
from engine.errors import CheckpointError, ConfigError
from engine.families import get_family
from engine.families.base import ModelSpec
from engine.families.translation import TranslationFamily
from engine.inference.runner import to_uint8_nhwc_np
from engine.provenance.model_info import ModelIdentity, identity_from_checkpoint
from engine.runs.checkpoint import open_checkpoint
from engine.runs.config import TrainConfig
from engine.tasks import ImageTask, get_task, task_names

MAX_WORK_SIZE = 4096
"""Largest long side the network may run at: a U-Net's activations at 4096 px already take gigabytes."""

Hint = tuple[float, float, tuple[int, int, int]]
"""A colour hint: x, y in pixels of the input image, and the colour as 0-255 RGB."""


class Translator(ABC):
    """``translator.translate(image, hints)`` over some backend; subclasses implement :meth:`_forward`.

    Attributes: family_name, task, in_channels, out_channels, resolution (training size), multiple,
    step, source, checkpoint, backend, description, notes, identity (engine/provenance/model_info.py).
    """

    backend = ""
    family_name: str
    task: str
    in_channels: int
    out_channels: int
    resolution: int
    multiple: int
    step: int
    source: Path
    checkpoint: Path
    description: str
    notes: list[str]
    identity: ModelIdentity

    @abstractmethod
    def _forward(self, x: np.ndarray) -> np.ndarray:
        """float32 (N, in_channels, H, W) in [-1,1], H and W multiples of ``multiple`` -> (N, out_channels, H, W)."""

    def run_network(self, x: torch.Tensor) -> torch.Tensor:
        """Network input (N, in_channels, H, W) of any size -> output at the same size (padded and cropped)."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ConfigError(f"the model takes (N, {self.in_channels}, H, W) inputs, got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        pad_h, pad_w = -h % self.multiple, -w % self.multiple
        # replicate, not reflect: reflection needs the pad to be smaller than the image
        padded = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else x
        out = self._forward(np.ascontiguousarray(padded.numpy(), dtype=np.float32))
        return torch.from_numpy(out[:, :, :h, :w].copy())

    def translate(self, image: np.ndarray, hints: Sequence[Hint] = (), work_size: int | None = None) -> np.ndarray:
        """uint8 (H,W) or (H,W,C) image -> uint8 (H,W,out_channels) result at the same size.

        ``image`` is a drawing for 'sketch', any image for 'colorize' (only its lightness is used) and an
        A-side image for 'paired'/'unpaired'. ``hints`` apply to 'colorize' only. ``work_size`` is the long
        side the network runs at (None: the training resolution).
        """
        array = np.asarray(image)
        if array.dtype != np.uint8 or array.ndim not in (2, 3) or min(array.shape[:2]) < 1:
            raise ConfigError(f"expected a uint8 (H, W) or (H, W, C) image, got {array.dtype} {array.shape}")
        task = self.image_task
        if hints and not task.takes_hints:
            takers = ", ".join(name for name in task_names() if get_task(name).takes_hints)
            raise ConfigError(f"colour hints only apply to {takers} models; this one does '{self.task}'")
        size = work_size or self.resolution
        if not 8 <= size <= MAX_WORK_SIZE:
            raise ConfigError(
                f"working size {size} px is outside 8-{MAX_WORK_SIZE} px; choose a smaller detail "
                "setting (the result is still returned at the input's full size)"
            )
        full = task.full_input(array, self.in_channels)
        work = resize_images(full, fit_long_side(full.shape[-2:], size))
        out = self.run_network(task.network_input(work, list(hints), full.shape[-1] / work.shape[-1]))
        return to_uint8_nhwc_np(task.finish(out, full).numpy())[0]

    @property
    def image_task(self) -> ImageTask:
        """The registered task this model was trained for (engine/tasks.py)."""
        return get_task(self.task)

    def info(self) -> dict:
        """What a front end shows about the loaded model."""
        return {
            "family": self.family_name,
            "task": self.task,
            "resolution": self.resolution,
            "step": self.step,
            "checkpoint": str(self.checkpoint),
            "backend": self.backend,
            "description": self.description,
            "notes": list(self.notes),
            "identity": self.identity.to_dict(),
        }


class TorchTranslator(Translator):
    """The EMA generator of a translation run or checkpoint, run with PyTorch."""

    backend = "pytorch"

    def __init__(self, source: Path | str, device: str = "auto") -> None:
        self.notes: list[str] = []  # e.g. "the newest checkpoint is damaged; using an older one"
        self.checkpoint, state = open_checkpoint(source, on_note=self.notes.append)
        self.source = self.checkpoint
        family_cls = get_family(state["family"])
        if not issubclass(family_cls, TranslationFamily):
            raise CheckpointError(
                f"{self.checkpoint} holds a '{state['family']}' model, which draws images from noise "
                "rather than translating them; open it on the Generate page"
            )
        self.device = select_device(device)
        spec = ModelSpec(**state["spec"])
        self.family = family_cls(spec, TrainConfig.from_dict(state["config"]), self.device)
        self.family.load_state_dict(state["family_state"])
        self.family_name, self.task = state["family"], self.family.task
        self.in_channels, self.out_channels = self.family.in_channels, self.family.out_channels
        self.resolution, self.multiple, self.step = spec.resolution, self.family.multiple, int(state["step"])
        self.identity = identity_from_checkpoint(self.checkpoint, state)
        self.description = f"PyTorch on {describe_device(self.device)}"

    def _forward(self, x: np.ndarray) -> np.ndarray:
        return self.family.translate(torch.from_numpy(x)).cpu().numpy()
