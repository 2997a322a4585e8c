"""Memorization check: is a generated image (nearly) a copy of a training image?

For every generated image we find the nearest training image in feature space. A distance alone
means nothing (it depends on the extractor and the data), so the threshold is relative to the data
itself: the *typical distance* is the median, over training images, of the distance from each one to
its nearest other training image (exact duplicates, distance 0, are left out of that median). A
generated image is a near-copy when it is closer to some training image than ``ratio`` (default 0.5)
times that typical distance, i.e. clearly closer than training images usually are to each other.

Datasets with deliberate variants (skin tones, recolours) have training images that are near-copies
of each other; ``training_share`` reports that baseline so a generated share can be read against it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.metrics.errors import MetricsError
from engine.metrics.scores import nearest_neighbours

DEFAULT_RATIO = 0.5


@dataclass
class MemorizationReport:
    """Per generated image: ``nearest_index`` (a training row) and ``distance``; ``near_copy`` flags.

    ``threshold`` is the absolute distance used (``ratio`` x ``typical_distance``);
    ``near_copy_share`` the fraction of generated images under it (0 is good); ``training_share`` the
    fraction of training images that are that close to another training image (the data's own baseline).
    """

    nearest_index: np.ndarray
    distance: np.ndarray
    near_copy: np.ndarray
    near_copy_share: float
    threshold: float
    typical_distance: float
    ratio: float
    training_share: float = 0.0

    def closest(self, count: int = 8) -> np.ndarray:
        """Indices of the ``count`` generated images closest to a training image, closest first."""
        return np.argsort(self.distance, kind="stable")[:count]

    def to_dict(self, count: int = 8) -> dict[str, Any]:
        """JSON-ready summary with the ``count`` closest pairs."""
        return {
            "near_copy_share": self.near_copy_share,
            "near_copies": int(self.near_copy.sum()),
            "threshold": self.threshold,
            "typical_distance": self.typical_distance,
            "ratio": self.ratio,
            "training_share": self.training_share,
            "median_distance": float(np.median(self.distance)),
            "closest": [
                {
                    "generated": int(i),
                    "training": int(self.nearest_index[i]),
                    "distance": float(self.distance[i]),
                    "near_copy": bool(self.near_copy[i]),
                }
                for i in self.closest(count)
            ],
        }


@dataclass
class NearestPair:
    """A generated image beside its nearest training image, for the studio to show."""

    generated_index: int
    training_index: int
    distance: float
    near_copy: bool
    generated: np.ndarray
    training: np.ndarray


def _training_neighbour_distances(train_features: np.ndarray) -> np.ndarray:
    feats = np.asarray(train_features, np.float32)
    if len(feats) < 2:
        raise MetricsError("the memorization check needs at least 2 training images to measure distances")
    return nearest_neighbours(feats, feats, 1, exclude_self=True)[0][:, 0]


def _median_positive(d: np.ndarray) -> float:
    positive = d[d > 1e-6 * max(float(d.max()), 1e-12)]  # exact duplicates would drag the median to 0
    return float(np.median(positive)) if len(positive) else 0.0


def typical_distance(train_features: np.ndarray) -> float:
    """Median distance from each training image to its nearest other one (exact duplicates left out)."""
    return _median_positive(_training_neighbour_distances(train_features))


def memorization(
    gen_features: np.ndarray,
    train_features: np.ndarray,
    threshold: float | None = None,
    *,
    ratio: float = DEFAULT_RATIO,
    train_rows: np.ndarray | None = None,
    own_distances: np.ndarray | None = None,
) -> MemorizationReport:
    """Nearest training image for each generated one and the share of near-copies.

    ``threshold`` is an absolute feature distance; None derives it as ``ratio`` x :func:`typical_distance`.
    ``train_rows`` maps feature rows to dataset rows (``RealFeatures.indices``) so that
    ``nearest_index`` indexes the dataset's images directly. Needs at least 2 training images.
    ``own_distances`` are each training row's distance to its nearest other row, when already known
    (the training doctor measures them once and checks every few hundred steps).
    """
    gen = np.asarray(gen_features, np.float32)
    train = np.asarray(train_features, np.float32)
    if len(gen) == 0:
        raise MetricsError("the memorization check needs generated images")
    own = _training_neighbour_distances(train) if own_distances is None else np.asarray(own_distances, np.float32)
    typical = _median_positive(own)
    limit = float(threshold) if threshold is not None else ratio * typical
    dist, idx = nearest_neighbours(gen, train, 1)
    dist, idx = dist[:, 0], idx[:, 0]
    if train_rows is not None:
        idx = np.asarray(train_rows)[idx]
    flags = dist <= limit
    used_ratio = ratio if threshold is None else (limit / typical if typical else float("nan"))
    return MemorizationReport(
        idx, dist, flags, float(flags.mean()), limit, typical, used_ratio, float((own <= limit).mean())
    )


def nearest_images(
    report: MemorizationReport, generated: np.ndarray, training: np.ndarray, count: int = 8
) -> list[NearestPair]:
    """The ``count`` generated images closest to a training image, each with that training image.

    ``generated`` are the images the report's features came from, ``training`` the dataset images
    that ``report.nearest_index`` indexes (e.g. ``load_dataset(...).images``).
    """
    return [
        NearestPair(
            int(i),
            int(report.nearest_index[i]),
            float(report.distance[i]),
            bool(report.near_copy[i]),
            np.asarray(generated[i]),
            np.asarray(training[int(report.nearest_index[i])]),
        )
        for i in report.closest(count)
    ]
