"""Scores computed from feature rows: FD/FID, KD/KID, precision/recall, Inception Score, nearest neighbours.

Everything here takes float feature arrays (N, D) from one extractor; which extractor made them only
changes what the number is called (see FeatureExtractor.metric_name).

* FID is the Frechet distance between Gaussians fitted to the two sets. The matrix square root term
  uses a symmetric eigen-decomposition in float64: tr sqrt(S1 S2) = sum sqrt(eig(sqrt(S1) S2 sqrt(S1))),
  which stays real and stable when the covariances are singular (fewer samples than dimensions).
* KID is the unbiased squared MMD with the cubic polynomial kernel k(x, y) = (x.y / D + 1)^3, averaged
  over random equal-size subsets. The kernel is torchmetrics' own (torchmetrics.image.kid.poly_kernel);
  the estimator is evaluated for all subsets at once from kernel row blocks and indicator columns,
  about 10x faster on CPU than recomputing three kernel blocks per subset. Tests check both FID and
  KID against torchmetrics' FrechetInceptionDistance / KernelInceptionDistance on the same features.
* Precision/recall follow Kynkaanniemi et al. 2019: each set's manifold is the union of balls reaching
  every point's k-th nearest neighbour in that set.
"""

from __future__ import annotations

import numpy as np
import torch

from engine.metrics.errors import MetricsError

_CHUNK = 1024


def _as_features(x: np.ndarray, what: str, min_rows: int = 2) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise MetricsError(f"{what} must be a 2-D (N, D) feature array, got shape {arr.shape}")
    if arr.shape[0] < min_rows:
        raise MetricsError(f"{what} has {arr.shape[0]} rows; this score needs at least {min_rows} images")
    return arr


def _same_dim(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape[1] != b.shape[1]:
        raise MetricsError(
            f"feature sizes differ ({a.shape[1]} vs {b.shape[1]}): both sets must come from the same extractor"
        )


# -- FID ------------------------------------------------------------------------------------------------
def gaussian_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean (D,), covariance (D, D)) of feature rows, in float64 (unbiased covariance, as FID uses)."""
    f = _as_features(features, "features").astype(np.float64)
    return f.mean(axis=0), np.cov(f, rowvar=False)


def _psd_sqrt(sigma: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((sigma + sigma.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + tr(S1 + S2 - 2 sqrt(S1 S2)) for two Gaussians; never negative."""
    root1 = _psd_sqrt(np.asarray(sigma1, np.float64))
    middle = root1 @ np.asarray(sigma2, np.float64) @ root1
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    diff = np.asarray(mu1, np.float64) - np.asarray(mu2, np.float64)
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt
    return max(float(value), 0.0)  # rounding can leave -1e-12 for identical sets


def fid(feat_a: np.ndarray, feat_b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (FID with Inception features).

    Biased upward for small sets: compare numbers only at equal sample counts.
    """
    a, b = _as_features(feat_a, "first feature set"), _as_features(feat_b, "second feature set")
    _same_dim(a, b)
    return frechet_distance(*gaussian_statistics(a), *gaussian_statistics(b))


# -- KID ------------------------------------------------------------------------------------------------
def kid(
    feat_a: np.ndarray, feat_b: np.ndarray, subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """(mean, std) of the unbiased polynomial-kernel MMD^2 over ``subsets`` random subsets (KID).

    ``subset_size`` is clamped to the smaller set; when both sets are used whole, one subset suffices.
    Unbiased: two samples of the same distribution give a mean near 0 (slightly negative values occur).
    """
    a, b = _as_features(feat_a, "first feature set"), _as_features(feat_b, "second feature set")
    _same_dim(a, b)
    subsets, m = kid_plan(len(a), len(b), subsets, subset_size)
    rng = np.random.default_rng(seed)
    pick_a = np.stack([rng.choice(len(a), m, replace=False) for _ in range(subsets)])
    pick_b = np.stack([rng.choice(len(b), m, replace=False) for _ in range(subsets)])
    # Only rows drawn into some subset matter; one indicator column per subset selects its rows.
    rows_a, inv_a = np.unique(pick_a, return_inverse=True)
    rows_b, inv_b = np.unique(pick_b, return_inverse=True)
    feats = torch.from_numpy(np.concatenate([a[rows_a], b[rows_b]]).astype(np.float32))
    sel_x = torch.zeros(len(feats), subsets, dtype=torch.float64)
    sel_y = torch.zeros(len(feats), subsets, dtype=torch.float64)
    cols = np.repeat(np.arange(subsets), m)
    sel_x[inv_a.reshape(-1), cols] = 1.0
    sel_y[len(rows_a) + inv_b.reshape(-1), cols] = 1.0
    scores = _mmd_per_subset(feats, sel_x, sel_y, m).numpy()
    return float(scores.mean()), float(scores.std())


def kid_plan(n_a: int, n_b: int, subsets: int, subset_size: int) -> tuple[int, int]:
    """(subsets, subset size) KID really uses for sets of n_a and n_b rows."""
    m = min(int(subset_size), n_a, n_b)
    if m < 2:
        raise MetricsError(
            f"KID needs subsets of at least 2 images, got {m} (subset size {subset_size}, sets of {n_a} and {n_b})"
        )
    # When both sets are used whole, every "subset" is the same: one is enough (and the std is 0).
    return (1 if m == n_a == n_b else max(1, int(subsets))), m


def _mmd_per_subset(feats: torch.Tensor, sel_x: torch.Tensor, sel_y: torch.Tensor, m: int) -> torch.Tensor:
    """Unbiased MMD^2 for each subset column, from kernel row blocks (never the whole N x N kernel)."""
    from torchmetrics.image.kid import poly_kernel  # (x.y * gamma + 1)^3 with gamma = 1/D: the KID kernel

    kx = torch.zeros_like(sel_x)
    ky = torch.zeros_like(sel_y)
    diag = torch.zeros(len(feats), dtype=torch.float64)
    for start in range(0, len(feats), _CHUNK):
        block = poly_kernel(feats[start : start + _CHUNK], feats).double()
        kx[start : start + _CHUNK], ky[start : start + _CHUNK] = block @ sel_x, block @ sel_y
        diag[start : start + _CHUNK] = block.diagonal(offset=start)
    k_xx = (sel_x * kx).sum(0) - diag @ sel_x  # off-diagonal sums within each subset
    k_yy = (sel_y * ky).sum(0) - diag @ sel_y
    k_xy = (sel_x * ky).sum(0)
    return (k_xx + k_yy) / (m * (m - 1)) - 2 * k_xy / (m * m)


# -- nearest neighbours, precision / recall -------------------------------------------------------------
def pairwise_distances(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Euclidean distances (len(a), len(b)) as float32."""
    ta, tb = torch.as_tensor(np.asarray(a, np.float32)), torch.as_tensor(np.asarray(b, np.float32))
    return torch.cdist(ta, tb)


def nearest_neighbours(
    query: np.ndarray, reference: np.ndarray, k: int = 1, exclude_self: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(distances (N, k), indices (N, k)) of each query row's k nearest reference rows, nearest first.

    ``exclude_self`` skips row i of ``reference`` for query row i (query and reference are one set).
    Works in chunks of rows so memory stays small for large sets.
    """
    q, r = np.asarray(query, np.float32), np.asarray(reference, np.float32)
    if k > len(r) - int(exclude_self):
        raise MetricsError(
            f"cannot find {k} nearest neighbours among {len(r)} images; use fewer neighbours or more images"
        )
    dists, idx = [], []
    for start in range(0, len(q), _CHUNK):
        d = pairwise_distances(q[start : start + _CHUNK], r)
        if exclude_self:
            rows = torch.arange(d.shape[0])
            d[rows, rows + start] = float("inf")
        top = torch.topk(d, k, dim=1, largest=False)
        dists.append(top.values.numpy())
        idx.append(top.indices.numpy())
    return np.concatenate(dists), np.concatenate(idx)


def _coverage(radii_set: np.ndarray, radii: np.ndarray, probes: np.ndarray) -> float:
    """Share of ``probes`` inside at least one ball (centre radii_set[i], radius radii[i])."""
    radii_t = torch.from_numpy(radii.astype(np.float32))
    inside = 0
    for start in range(0, len(probes), _CHUNK):
        d = pairwise_distances(probes[start : start + _CHUNK], radii_set)
        inside += int((d <= radii_t[None, :]).any(dim=1).sum())
    return inside / len(probes)


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    """(precision, recall) with k-NN manifolds (Kynkaanniemi et al. 2019).

    precision: share of generated images that fall inside the real images' manifold (quality);
    recall: share of real images inside the generated images' manifold (variety). Both in [0, 1].
    """
    r, f = _as_features(real, "real features", k + 1), _as_features(fake, "generated features", k + 1)
    _same_dim(r, f)
    real_radii = nearest_neighbours(r, r, k, exclude_self=True)[0][:, -1]
    fake_radii = nearest_neighbours(f, f, k, exclude_self=True)[0][:, -1]
    return _coverage(r, real_radii, f), _coverage(f, fake_radii, r)


# -- Inception Score ------------------------------------------------------------------------------------
def inception_score(logits: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """(mean, std over splits) of exp(E[KL(p(y|x) || p(y))]) from classifier logits (N, classes).

    Meaningful only with the Inception network's 1008 logits; higher is better.
    """
    lg = torch.from_numpy(_as_features(logits, "logits").astype(np.float64))
    splits = max(1, min(int(splits), lg.shape[0]))
    scores = []
    for part in torch.tensor_split(lg, splits):
        log_p = part.log_softmax(dim=1)
        log_marginal = log_p.exp().mean(dim=0).log()
        kl = (log_p.exp() * (log_p - log_marginal)).sum(dim=1).mean()
        scores.append(float(kl.exp()))
    return float(np.mean(scores)), float(np.std(scores))
