"""Feature extractors behind one interface, registered by name.

An extractor turns uint8 NHWC images (1, 2, 3 or 4 channels, any size) into float32 feature rows.
Every score in this package is computed from those rows, so the extractor decides what "similar"
means. Scores from different extractors are never comparable; each extractor carries the label the
front ends must show next to its numbers (``FD/KD (EffLite0)`` is not the published FID).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.metrics.errors import MetricsCancelled, MetricsError
from engine.registry import Registry

Progress = Callable[[int, int, str], None]


def _load_builtin() -> None:
    # Importing the modules runs their @register_extractor decorators.
    import engine.metrics.efflite0  # noqa: F401
    import engine.metrics.inception  # noqa: F401


EXTRACTORS: Registry = Registry("feature extractor", MetricsError, _load_builtin)
register_extractor = EXTRACTORS.register


def extractor_names() -> list[str]:
    """Names of every registered extractor, sorted."""
    return EXTRACTORS.names()


def get_extractor(name: str = "efflite0", device: str = "cpu", **options: Any) -> FeatureExtractor:
    """A ready extractor (weights loaded) by name; MetricsError listing the known names otherwise.

    ``device`` is "cpu", "cuda", "mps" or "auto"; ``options`` go to the extractor (for "inception":
    ``weights=PATH`` of the pytorch-fid weights file).
    """
    return EXTRACTORS.get(name)(device=device, **options)


def to_model_input(images: np.ndarray, size: int, antialias: bool = True) -> torch.Tensor:
    """uint8 (N,H,W,C) -> float (N,3,size,size) in [-1, 1]; alpha is composited on white, gray repeated."""
    x = torch.from_numpy(np.array(images)).permute(0, 3, 1, 2).float().div_(255.0)
    if x.shape[1] in (2, 4):  # straight alpha: blend onto white, as the dataset import does by default
        alpha = x[:, -1:]
        x = x[:, :-1] * alpha + (1.0 - alpha)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    if x.shape[-2:] != (size, size):
        x = F.interpolate(
            x, size=(size, size), mode="bilinear", align_corners=False, antialias=antialias and min(x.shape[-2:]) > size
        )
    return x * 2.0 - 1.0


def check_images(images: np.ndarray) -> np.ndarray:
    """``images`` as a uint8 (N,H,W,C) array with C in 1..4; MetricsError describing what was given."""
    arr = np.asarray(images)
    if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[-1] not in (1, 2, 3, 4):
        raise MetricsError(
            f"feature extraction needs uint8 images shaped (N, H, W, C) with 1-4 channels; "
            f"got {arr.dtype} {tuple(arr.shape)}"
        )
    return arr


class FeatureExtractor(ABC):
    """Base class: subclasses set the attributes below and implement :meth:`_build` and :meth:`_forward`.

    ``name`` is the registry name, ``label`` the caption for its scores, ``short`` the suffix of each
    metric's name (see :meth:`metric_name`), ``dim`` the feature size, ``input_size`` the square size
    the network sees, ``has_logits`` whether :meth:`features_and_logits` gives class logits (needed
    for the Inception Score), ``cache_version`` bumps when features change meaning.
    """

    name = ""
    label = ""
    short = ""
    dim = 0
    input_size = 224
    antialias = True
    has_logits = False
    cache_version = 1
    standard_names = False

    def __init__(self, device: str = "cpu") -> None:
        from engine.device import select_device

        self.device = select_device(device)
        self.net = self._build().to(self.device).eval()
        if self.device.type != "mps":  # NHWC convolutions are faster on CPU and CUDA
            self.net = self.net.to(memory_format=torch.channels_last)

    @abstractmethod
    def _build(self) -> nn.Module:
        """The network, with its weights loaded."""

    @abstractmethod
    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(features, logits or None) for a normalised batch."""

    @property
    def cache_key(self) -> str:
        """Names this extractor's features in cache files (changes when the features would)."""
        return f"{self.name}-v{self.cache_version}"

    def metric_name(self, metric: str) -> str:
        """What to call ``metric`` (kid, fid, pr, is, memorization) next to a number from this extractor."""
        standard = {"kid": "KID", "fid": "FID", "pr": "Precision/Recall", "is": "IS", "memorization": "Memorization"}
        standard["classes"] = "Class frequencies"
        if self.standard_names:
            return standard[metric]
        # Not the Inception network: "FD"/"KD", never "FID"/"KID", and always the extractor's name.
        own = {"kid": "KD", "fid": "FD"}.get(metric, standard[metric])
        return f"{own} ({self.short})"

    def features(
        self,
        images: np.ndarray,
        batch_size: int = 32,
        progress: Progress | None = None,
        should_cancel: Callable[[], bool] | None = None,
    ) -> np.ndarray:
        """float32 (N, dim) features of uint8 NHWC ``images`` (see :func:`to_model_input`).

        ``progress(done, total, message)`` is called after each batch; ``should_cancel()`` is polled
        before each batch and raises MetricsCancelled when it returns True.
        """
        return self.features_and_logits(images, batch_size, progress, should_cancel)[0]

    def features_and_logits(
        self,
        images: np.ndarray,
        batch_size: int = 32,
        progress: Progress | None = None,
        should_cancel: Callable[[], bool] | None = None,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """(features float32 (N, dim), logits float32 (N, classes) or None when ``has_logits`` is False)."""
        images = check_images(images)
        feats, logits = [], []
        for start in range(0, len(images), max(1, batch_size)):
            if should_cancel is not None and should_cancel():
                raise MetricsCancelled("feature extraction was cancelled")
            f, lg = self._batch(images[start : start + batch_size])
            feats.append(f)
            if lg is not None:
                logits.append(lg)
            if progress is not None:
                progress(min(start + batch_size, len(images)), len(images), f"{self.short} features")
        empty = np.zeros((0, self.dim), np.float32)
        return (np.concatenate(feats) if feats else empty), (np.concatenate(logits) if logits else None)

    def _batch(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        x = to_model_input(images, self.input_size, self.antialias).to(self.device)
        if self.device.type != "mps":
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            f, lg = self._forward(x)
        return (f.float().cpu().numpy(), None if lg is None else lg.float().cpu().numpy())
