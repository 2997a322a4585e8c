"""Metrics: feature extractors, FD/FID, KD/KID, precision/recall, Inception Score, memorization check.

Public API (the CLI, the studio and the trainer use exactly these names; docs/metrics.md explains
what the numbers mean):

* :func:`get_extractor` (``"efflite0"``, offline default, or ``"inception"`` with user-provided
  weights) -> :class:`FeatureExtractor` with ``name``, ``label``, ``dim``, ``features(images)``.
* :func:`fid`, :func:`kid`, :func:`precision_recall`, :func:`inception_score` on feature arrays.
* :func:`real_statistics`: a dataset's real-image features, cached per fingerprint and extractor.
* :func:`memorization` / :func:`nearest_images`: nearest training image of each generated one.
* :func:`evaluate`: all of the above for a run folder or an exported .onnx generator.
* :class:`KIDMonitor`: a quick KID for the training loop.

Scores from the EffLite0 extractor are called "FD"/"KD (EffLite0)": they rank models like FID/KID
but are not comparable with published Inception FID numbers.
"""

from engine.metrics.cache import RealFeatures, real_statistics
from engine.metrics.errors import MetricsCancelled, MetricsError
from engine.metrics.evaluate import METRICS, KIDMonitor, evaluate, parse_metrics, score_features
from engine.metrics.extractors import FeatureExtractor, extractor_names, get_extractor, register_extractor
from engine.metrics.inception import (
    FIDInceptionV3,
    default_weights_path,
    download_inception_weights,
    inception_weights_dir,
    verify_inception_weights,
)
from engine.metrics.memorization import MemorizationReport, NearestPair, memorization, nearest_images
from engine.metrics.scores import (
    fid,
    frechet_distance,
    gaussian_statistics,
    inception_score,
    kid,
    nearest_neighbours,
    precision_recall,
)

__all__ = [
    "METRICS",
    "FIDInceptionV3",
    "FeatureExtractor",
    "KIDMonitor",
    "MemorizationReport",
    "MetricsCancelled",
    "MetricsError",
    "NearestPair",
    "RealFeatures",
    "default_weights_path",
    "download_inception_weights",
    "evaluate",
    "extractor_names",
    "fid",
    "frechet_distance",
    "gaussian_statistics",
    "get_extractor",
    "inception_score",
    "inception_weights_dir",
    "kid",
    "memorization",
    "nearest_images",
    "nearest_neighbours",
    "parse_metrics",
    "precision_recall",
    "real_statistics",
    "register_extractor",
    "score_features",
    "verify_inception_weights",
]
