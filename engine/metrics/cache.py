"""Real-image features, cached per dataset fingerprint, extractor and resolution.

Extracting features from the training images is the slow part of every evaluation, and they only
change when the images do. They are kept in ``DATASET/metrics/<extractor>-v<N>-<fingerprint[:16]>-<size>px.npz``
(written atomically). A new import changes the fingerprint, so the old file is simply not used
again (and is removed the next time features are computed).

Which images: a fixed pseudo-random order of the dataset's rows (seed 0), of which the first
``max_images`` are used. Asking for more later extends the cached rows instead of starting over.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.fsutil import atomic_open
from engine.metrics.errors import MetricsError
from engine.metrics.extractors import FeatureExtractor, Progress, get_extractor
from engine.metrics.scores import gaussian_statistics

CACHE_FOLDER = "metrics"
DEFAULT_MAX_IMAGES = 5000
_ORDER_SEED = 0


@dataclass
class RealFeatures:
    """Features of (a subset of) a dataset's images.

    ``indices`` are the dataset rows the feature rows belong to; ``path`` is the cache file (None when
    the dataset folder is not writable); ``computed`` counts the images this call had to extract.
    """

    features: np.ndarray
    indices: np.ndarray
    fingerprint: str
    extractor: str
    size: int
    path: Path | None
    computed: int

    def gaussian(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean, covariance) of the features, as FID uses them."""
        return gaussian_statistics(self.features)


def cache_path(dataset_dir: Path | str, extractor: FeatureExtractor, fingerprint: str, size: int) -> Path:
    """The cache file for these features."""
    return Path(dataset_dir) / CACHE_FOLDER / f"{extractor.cache_key}-{fingerprint[:16]}-{size}px.npz"


def sample_order(n: int) -> np.ndarray:
    """The fixed order in which dataset rows are taken (any prefix is a uniform random subset)."""
    return np.random.default_rng(_ORDER_SEED).permutation(n)


def real_statistics(
    dataset_dir: Path | str,
    extractor: str | FeatureExtractor = "efflite0",
    size: int | None = None,
    max_images: int | None = DEFAULT_MAX_IMAGES,
    *,
    batch_size: int = 32,
    progress: Progress | None = None,
    should_cancel: Callable[[], bool] | None = None,
    device: str = "cpu",
) -> RealFeatures:
    """Features of up to ``max_images`` (None: all) images of a prepared dataset at ``size`` px, cached.

    ``extractor`` is a name or a ready FeatureExtractor. Raises DataError when the folder is not a
    prepared dataset, MetricsError when it holds no images.
    """
    from engine.data import load_dataset

    ext = get_extractor(extractor, device=device) if isinstance(extractor, str) else extractor
    data = load_dataset(dataset_dir, size)
    if len(data) == 0:
        raise MetricsError(f"dataset {dataset_dir} has no images to compare with; import a folder of images first")
    wanted = sample_order(len(data))[: len(data) if max_images is None else max(1, int(max_images))]
    path = cache_path(data.root, ext, data.fingerprint, data.size)
    cached = _read_cache(path, data.fingerprint, ext, data.size)
    have = 0 if cached is None else _usable_prefix(cached[0], wanted)
    feats = cached[1][:have] if cached is not None else np.zeros((0, ext.dim), np.float32)
    stored: Path | None = path  # None when the new features could not be cached
    if have < len(wanted):
        rows = wanted[have:]
        # Read the memmap in sorted order (fast), then restore the sampling order.
        order = np.argsort(rows)
        new = np.empty((len(rows), ext.dim), np.float32)
        new[order] = ext.features(np.asarray(data.images[rows[order]]), batch_size, progress, should_cancel)
        feats = np.concatenate([feats, new])
        stored = _write_cache(path, wanted, feats, data.fingerprint, ext, data.size)
    return RealFeatures(feats, wanted, data.fingerprint, ext.cache_key, data.size, stored, len(wanted) - have)


def _usable_prefix(cached_rows: np.ndarray, wanted: np.ndarray) -> int:
    n = min(len(cached_rows), len(wanted))
    same = cached_rows[:n] == wanted[:n]
    return n if same.all() else int(np.argmin(same))


def _read_cache(path: Path, fingerprint: str, ext: FeatureExtractor, size: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(rows, features) from a cache file that matches, else None (missing, stale or unreadable)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            meta_ok = (
                str(npz["fingerprint"]) == fingerprint
                and str(npz["extractor"]) == ext.cache_key
                and int(npz["size"]) == size
            )
            rows, feats = npz["indices"], npz["features"]
    except (OSError, KeyError, ValueError):
        return None
    if not meta_ok or feats.shape != (len(rows), ext.dim):
        return None
    return rows, feats.astype(np.float32, copy=False)


def _write_cache(
    path: Path, rows: np.ndarray, feats: np.ndarray, fingerprint: str, ext: FeatureExtractor, size: int
) -> Path | None:
    """Write atomically and remove this extractor's files for other fingerprints; None if not writable."""
    try:
        with atomic_open(path, "wb") as handle:
            np.savez(
                handle,
                indices=rows.astype(np.int64),
                features=feats,
                fingerprint=np.str_(fingerprint),
                extractor=np.str_(ext.cache_key),
                size=np.int64(size),
            )
    except OSError:
        return None  # a read-only dataset folder still evaluates, it just recomputes next time
    for stale in path.parent.glob(f"{ext.cache_key}-*-{size}px.npz"):
        if stale != path:
            stale.unlink(missing_ok=True)
    return path
