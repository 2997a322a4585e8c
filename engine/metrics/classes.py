"""Which class does each generated image look like? A classifier-free check of class frequencies.

Every generated image is given the class that most of its ``k`` nearest training images (in the
feature extractor's space, EffLite0 by default) carry. Counting those classes says how often the
generator makes each class compared with the data, which shows a model that neglects the small
classes of an unbalanced folder; for a class-conditional model it also says how often a sample asked
for class c looks like class c (``agreement``).

No classifier is trained: the check is only as sharp as the classes are apart in feature space, so
it is calibrated on the real images themselves (each real image classified by its k nearest *other*
real images). That ``real_agreement`` is the best a perfect generator could score; a generated
agreement close to it means the classes are as recognisable as in the data.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.metrics.errors import MetricsError
from engine.metrics.scores import nearest_neighbours

DEFAULT_K = 5


def vote(neighbour_labels: np.ndarray, num_classes: int) -> np.ndarray:
    """The majority class of each row of ``neighbour_labels`` (N, k), nearest first.

    A tie goes to the tied class whose member is nearest, so one vote (k=1) is the nearest neighbour's.
    """
    counts = np.zeros((len(neighbour_labels), num_classes), np.int64)
    rows = np.arange(len(neighbour_labels))
    for column in neighbour_labels.T:
        counts[rows, column] += 1
    best = counts.max(axis=1, keepdims=True)
    tied = counts[rows[:, None], neighbour_labels] == best  # (N, k): neighbour belongs to a top class
    return neighbour_labels[rows, tied.argmax(axis=1)]


def class_frequencies(
    real_features: np.ndarray,
    real_labels: np.ndarray,
    fake_features: np.ndarray,
    classes: list[str],
    asked: np.ndarray | None = None,
    k: int = DEFAULT_K,
) -> dict[str, Any]:
    """How often the generated images look like each class, beside the data's class shares.

    ``real_labels`` are class indices of the real feature rows (-1 = no class: left out);
    ``asked`` the class each generated image was asked for (conditional models) or None. Returns
    the JSON-ready {"method", "k", "classes": [{"name", "data", "generated", "real_assigned",
    "asked", "agreement", "real_agreement"}], "distance", "agreement", "real_agreement"} where shares
    are fractions, ``distance`` is the total-variation distance between the data's shares and the
    generated ones (0 = the same frequencies, 1 = no class in common), ``agreement`` the share of
    generated images that look like the class they were asked for (None without ``asked``) and
    ``real_agreement`` the share of real images that look like their own class (the check's ceiling).
    """
    labels = np.asarray(real_labels, np.int64)
    keep = (labels >= 0) & (labels < len(classes))
    feats, labels = np.asarray(real_features, np.float32)[keep], labels[keep]
    if len(classes) < 2 or len(np.unique(labels)) < 2:
        raise MetricsError(
            "the class check needs a dataset with at least 2 class folders among the compared images; "
            "this dataset has none (import a folder with one subfolder per class)"
        )
    k = min(k, len(feats) - 1)
    n_classes = len(classes)
    real_votes = vote(labels[nearest_neighbours(feats, feats, k, exclude_self=True)[1]], n_classes)
    fake_votes = vote(labels[nearest_neighbours(fake_features, feats, k)[1]], n_classes)
    data = _shares(labels, n_classes)
    generated = _shares(fake_votes, n_classes)
    real_assigned = _shares(real_votes, n_classes)
    asked_shares = _shares(np.asarray(asked), n_classes) if asked is not None else None
    rows = []
    for c, name in enumerate(classes):
        own = labels == c
        row = {
            "name": name,
            "data": data[c],
            "generated": generated[c],
            "real_assigned": real_assigned[c],
            "real_agreement": float((real_votes[own] == c).mean()) if own.any() else None,
            "asked": None if asked_shares is None else asked_shares[c],
            "agreement": None,
        }
        if asked is not None and (np.asarray(asked) == c).any():
            row["agreement"] = float((fake_votes[np.asarray(asked) == c] == c).mean())
        rows.append(row)
    return {
        "method": f"{k}-nearest training images in feature space",
        "k": k,
        "classes": rows,
        "distance": 0.5 * float(np.abs(np.array(data) - np.array(generated)).sum()),
        "agreement": None if asked is None else float((fake_votes == np.asarray(asked)).mean()),
        "real_agreement": float((real_votes == labels).mean()),
    }


def _shares(values: np.ndarray, n: int) -> list[float]:
    counts = np.bincount(np.asarray(values, np.int64), minlength=n)[:n]
    return [float(c) / max(int(counts.sum()), 1) for c in counts]


def format_classes(report: dict[str, Any]) -> list[str]:
    """Human lines: one per class with its data share, generated share and (conditional) agreement."""
    lines = [
        f"Classes ({report['method']}; real images land in their own class {report['real_agreement']:.0%} of "
        f"the time): generated vs data shares differ by {report['distance']:.0%} (total variation; 0 = same)"
    ]
    if report["agreement"] is not None:
        lines[0] += f"; {report['agreement']:.0%} of samples look like the class they were asked for"
    for row in report["classes"]:
        line = f"  {row['name']}: data {row['data']:.1%}, generated {row['generated']:.1%}"
        if row["agreement"] is not None:
            line += f", looks like its class {row['agreement']:.0%}"
        lines.append(line)
    return lines
