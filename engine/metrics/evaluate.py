"""evaluate(): score a trained run or an exported .onnx generator against its dataset; KIDMonitor for training.

``evaluate_run()`` does every step (model, real features, samples, features, scores, memorization and,
on request, the nearest training image of each sample) and reports progress and polls cancel between
batches; the CLI prints its scores, the studio's EvaluateWorker only turns its callbacks into signals.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.metrics.cache import DEFAULT_MAX_IMAGES, RealFeatures, real_statistics
from engine.metrics.classes import class_frequencies, format_classes
from engine.metrics.errors import MetricsCancelled, MetricsError
from engine.metrics.extractors import FeatureExtractor, Progress, check_images, get_extractor
from engine.metrics.memorization import MemorizationReport, NearestPair, memorization, nearest_images
from engine.metrics.scores import fid, inception_score, kid, kid_plan, precision_recall

if TYPE_CHECKING:
    from engine.inference.runner import GeneratorRunner

METRICS = ("kid", "fid", "pr", "is", "memorization", "classes")
DEFAULT_NUM_SAMPLES = 1000


def parse_metrics(metrics: str | Iterable[str]) -> tuple[str, ...]:
    """("kid", "fid", ...) from "kid,fid" or a sequence; MetricsError naming the unknown ones."""
    names = [m.strip().lower() for m in (metrics.split(",") if isinstance(metrics, str) else metrics)]
    names = [m for m in names if m]
    unknown = [m for m in names if m not in METRICS]
    if unknown or not names:
        raise MetricsError(
            f"unknown metric(s) {', '.join(unknown) or '(none given)'} in --metrics; choose from: {', '.join(METRICS)}"
        )
    return tuple(dict.fromkeys(names))


@dataclass
class Evaluation:
    """What evaluate_run() found: the JSON-ready scores and, for front ends that show them, the images."""

    result: dict[str, Any]
    """What evaluate() returns (see there)."""
    memorization: MemorizationReport | None = None
    """The full memorization report when 'memorization' was requested."""
    pairs: list[NearestPair] = field(default_factory=list)
    """Generated samples beside their nearest training image, nearest first (``pairs`` > 0)."""


def evaluate(source: Path | str, **options: Any) -> dict[str, Any]:
    """Score ``num_samples`` generated images of ``source`` (run folder, checkpoint or .onnx) against real ones.

    Takes the keyword options of :func:`evaluate_run` and returns its JSON-ready ``result``: source,
    backend, dataset, extractor, label, names (what to call each score), num_real, num_fake, the
    requested scores (kid: {mean, std, subset_size, subsets}, fid, precision/recall,
    inception_score: {mean, std}, memorization: {...}, classes: see engine.metrics.classes.class_frequencies,
    or None without class folders), feature throughput, seconds and notes.
    """
    return evaluate_run(source, **options).result


def evaluate_run(
    source: Path | str,
    *,
    dataset_dir: Path | str | None = None,
    metrics: str | Iterable[str] = ("kid",),
    extractor: str | FeatureExtractor = "efflite0",
    num_samples: int = DEFAULT_NUM_SAMPLES,
    max_real: int | None = DEFAULT_MAX_IMAGES,
    device: str = "cpu",
    batch_size: int = 32,
    seed: int = 0,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    pr_k: int = 3,
    inception_weights: Path | str | None = None,
    pairs: int = 0,
    progress: Progress | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> Evaluation:
    """Every step of an evaluation of ``source`` (run folder, checkpoint or .onnx); see :func:`evaluate`.

    The dataset is the run's own (run.json "dataset") unless ``dataset_dir`` is given; an .onnx file
    needs ``dataset_dir``. Real features are cached (see real_statistics). ``pairs`` > 0 (with
    'memorization' in ``metrics``) also keeps that many generated samples with their nearest training
    image. ``progress(done, total, stage)`` is called per batch (total 0: a step of unknown length);
    ``should_cancel()`` is polled between batches and stops with MetricsCancelled.
    """
    from engine.export import open_runner

    wanted = parse_metrics(metrics)
    started = time.perf_counter()
    dataset, expected_fp = _dataset_for(Path(source), dataset_dir)
    _announce(progress, "loading the model and the feature extractor")
    ext = _extractor(extractor, device, inception_weights, wanted)
    runner = open_runner(source, device=device)
    _check_cancel(should_cancel)
    real = real_statistics(
        dataset,
        ext,
        runner.resolution,
        max_real,
        batch_size=batch_size,
        progress=_stage(progress, "real images"),
        should_cancel=should_cancel,
        device=device,
    )
    notes = _notes(expected_fp, real, dataset)
    _check_cancel(should_cancel)
    images = generate_samples(
        runner, dataset, num_samples, seed, _stage(progress, "generating"), should_cancel, batch_size
    )
    t0 = time.perf_counter()
    fake, logits = ext.features_and_logits(images, batch_size, _stage(progress, "generated images"), should_cancel)
    rate = len(images) / max(time.perf_counter() - t0, 1e-9)
    _check_cancel(should_cancel)
    _announce(progress, "scoring")
    result: dict[str, Any] = {
        "source": str(runner.source),
        "backend": runner.description,
        "dataset": str(real_root(dataset)),
        "extractor": ext.name,
        "label": ext.label,
        "names": {m: ext.metric_name(m) for m in wanted},
        "num_real": int(len(real.features)),
        "num_fake": int(len(fake)),
        "resolution": runner.resolution,
        "features_per_second": round(rate, 1),
    }
    scores, report = _scores(
        real, fake, logits, wanted, kid_subsets=kid_subsets, kid_subset_size=kid_subset_size, pr_k=pr_k, seed=seed
    )
    result.update(scores)
    if "classes" in wanted:
        result["classes"] = _class_check(runner, dataset, real, fake, num_samples, seed)
        if result["classes"] is None:
            notes.append(f"{dataset} has no class folders (or fewer than 2): there are no class frequencies to check")
    if "memorization" in result:
        for pair in result["memorization"]["closest"]:
            pair["seed"] = seed + pair.pop("generated")
            pair["training_path"] = _row_path(dataset, runner.resolution, pair["training"])
    nearest = []
    if pairs > 0 and report is not None:
        from engine.data import load_dataset

        nearest = nearest_images(report, images, load_dataset(dataset, runner.resolution).images, count=pairs)
    result["seconds"] = round(time.perf_counter() - started, 1)
    result["notes"] = notes
    return Evaluation(result, report, nearest)


def score_features(
    real: RealFeatures,
    fake: np.ndarray,
    logits: np.ndarray | None,
    metrics: Iterable[str],
    *,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    pr_k: int = 3,
    seed: int = 0,
) -> dict[str, Any]:
    """The requested scores from ready features (what evaluate() does after extraction)."""
    return _scores(
        real, fake, logits, metrics, kid_subsets=kid_subsets, kid_subset_size=kid_subset_size, pr_k=pr_k, seed=seed
    )[0]


def _scores(
    real: RealFeatures,
    fake: np.ndarray,
    logits: np.ndarray | None,
    metrics: Iterable[str],
    *,
    kid_subsets: int,
    kid_subset_size: int,
    pr_k: int,
    seed: int,
) -> tuple[dict[str, Any], MemorizationReport | None]:
    """(JSON-ready scores, the memorization report when requested: front ends show its pairs)."""
    out: dict[str, Any] = {}
    report = None
    for name in metrics:
        if name == "kid":
            mean, std = kid(real.features, fake, kid_subsets, kid_subset_size, seed)
            subsets, size = kid_plan(len(real.features), len(fake), kid_subsets, kid_subset_size)
            out["kid"] = {"mean": mean, "std": std, "subset_size": size, "subsets": subsets}
        elif name == "fid":
            out["fid"] = fid(real.features, fake)
        elif name == "pr":
            out["precision"], out["recall"] = precision_recall(real.features, fake, pr_k)
        elif name == "is":
            if logits is None:
                raise MetricsError("the Inception Score needs class logits; extract with --extractor inception")
            mean, std = inception_score(logits)
            out["inception_score"] = {"mean": mean, "std": std}
        elif name == "memorization":
            report = memorization(fake, real.features, train_rows=real.indices)
            out["memorization"] = report.to_dict()
    return out, report


def _announce(progress: Progress | None, stage: str) -> None:
    """A step of unknown length (total 0), so a front end can say what is happening."""
    if progress is not None:
        progress(0, 0, stage)


def _check_cancel(should_cancel: Callable[[], bool] | None) -> None:
    if should_cancel is not None and should_cancel():
        raise MetricsCancelled("evaluation was cancelled")


def _stage(progress: Progress | None, stage: str) -> Progress | None:
    """``progress`` with messages prefixed by the evaluation stage, so front ends can tell them apart."""
    if progress is None:
        return None
    return lambda done, total, message: progress(done, total, stage if message == stage else f"{stage}: {message}")


def real_root(dataset: Path) -> Path:
    """The dataset folder as an absolute path."""
    return Path(dataset).expanduser().resolve()


def _extractor(
    extractor: str | FeatureExtractor, device: str, weights: Path | str | None, wanted: tuple[str, ...]
) -> FeatureExtractor:
    if isinstance(extractor, FeatureExtractor):
        ext = extractor
    else:
        options = {"weights": weights} if extractor == "inception" and weights else {}
        ext = get_extractor(extractor, device=device, **options)
    if "is" in wanted and not ext.has_logits:
        raise MetricsError(
            f"the Inception Score needs the Inception extractor's class logits; the {ext.name} "
            "extractor has none. Use --extractor inception or leave 'is' out of --metrics"
        )
    return ext


def _run_json(source: Path) -> Path | None:
    # A run folder, or a checkpoint file inside RUN/checkpoints/.
    path = (source if source.is_dir() else source.parent.parent) / "run.json"
    return path if path.is_file() else None


def _dataset_for(source: Path, dataset_dir: Path | str | None) -> tuple[Path, str | None]:
    """(dataset folder, fingerprint the model was trained on or None)."""
    run_json = None if source.suffix.lower() == ".onnx" else _run_json(source)
    info: dict[str, Any] = {}
    if run_json is not None:
        try:
            info = json.loads(run_json.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            info = {}
    if dataset_dir is not None:
        if not Path(dataset_dir).is_dir():
            raise MetricsError(
                f"{dataset_dir} does not exist; name a dataset folder made by gan-studio-cli import",
                gui=f"{dataset_dir} does not exist; choose a dataset imported on the Dataset page",
            )
        return Path(dataset_dir), info.get("dataset_fingerprint")
    if source.suffix.lower() == ".onnx":
        raise MetricsError(
            f"{source} is an ONNX file and does not say which images it was trained on; "
            "name the dataset to compare with: --dataset DATASET"
        )
    if not info.get("dataset"):
        raise MetricsError(
            f"cannot tell which dataset {source} was trained on (no readable run.json with a "
            "'dataset' entry); name the dataset to compare with (--dataset DATASET)"
        )
    dataset = Path(info["dataset"])
    if not dataset.is_dir():
        raise MetricsError(
            f"the dataset this run was trained on is gone: {dataset} does not exist. Re-import the images "
            "into that folder, or name another dataset to compare with (--dataset DATASET)"
        )
    return dataset, info.get("dataset_fingerprint")


def _notes(expected_fp: str | None, real: RealFeatures, dataset: Path) -> list[str]:
    notes = []
    if expected_fp and expected_fp != real.fingerprint:
        notes.append(
            f"the images in {dataset} changed since this model was trained; scores compare with the current images"
        )
    if real.path is None:
        notes.append(f"{dataset} is not writable: real-image features were not cached")
    return notes


def generate_samples(
    runner: GeneratorRunner,
    dataset: Path,
    n: int,
    seed: int = 0,
    progress: Progress | None = None,
    should_cancel: Callable[[], bool] | None = None,
    batch_size: int = 32,
) -> np.ndarray:
    """``n`` images for seeds seed..seed+n-1; class labels follow the dataset's class frequencies."""
    from engine.inference.runner import latents_for_seeds

    if n < 2:
        raise MetricsError(f"evaluation needs at least 2 generated images, got num_samples={n}")
    z = latents_for_seeds(list(range(seed, seed + n)), runner.latent_dim)
    labels = _labels_like_dataset(runner, dataset, n, seed)
    parts = []
    for start in range(0, n, batch_size):
        if should_cancel is not None and should_cancel():
            raise MetricsCancelled("evaluation was cancelled")
        parts.append(
            runner(z[start : start + batch_size], None if labels is None else labels[start : start + batch_size])
        )
        if progress is not None:
            progress(min(start + batch_size, n), n, "generating")
    return np.concatenate(parts)


def _labels_like_dataset(runner: GeneratorRunner, dataset: Path, n: int, seed: int) -> np.ndarray | None:
    # A conditional model asked for every class equally would be compared with an unbalanced real set.
    if not runner.num_classes:
        return None
    from engine.data import load_dataset

    labels = np.asarray(load_dataset(dataset, runner.resolution).labels)
    labels = labels[(labels >= 0) & (labels < runner.num_classes)]
    rng = np.random.default_rng(seed)
    if len(labels) == 0:
        return np.arange(n, dtype=np.int64) % runner.num_classes
    return rng.choice(labels, n).astype(np.int64)


def _class_check(
    runner: GeneratorRunner, dataset: Path, real: RealFeatures, fake: np.ndarray, n: int, seed: int
) -> dict[str, Any] | None:
    """class_frequencies of the generated features against the real ones, with the labels asked for;
    None when the dataset has fewer than 2 classes among the compared real images."""
    from engine.data import load_dataset

    data = load_dataset(dataset, runner.resolution)
    real_labels = np.asarray(data.labels)[real.indices]
    if len(np.unique(real_labels[real_labels >= 0])) < 2:
        return None
    # the same labels generate_samples drew (a seeded choice), so each sample's requested class is known
    asked = _labels_like_dataset(runner, dataset, n, seed)
    return class_frequencies(real.features, real_labels, fake, list(data.classes), asked)


def _row_path(dataset: Path, size: int, row: int) -> str | None:
    from engine.data import load_dataset

    paths = load_dataset(dataset, size).paths
    return paths[row] if 0 <= row < len(paths) else None


class KIDMonitor:
    """A small, quick KID for the training loop: real features are computed once (and cached on disk).

    ``measure(generate_fn)`` calls ``generate_fn(num_fake)`` for uint8 NHWC images (use fixed seeds so
    successive measurements differ only by the model) and returns the KID mean; ``last`` keeps
    (mean, std). ``name`` is what to call the number ("KD (EffLite0)" with the default extractor).
    With the defaults a measurement costs about num_fake / 25 seconds on two CPU cores.
    """

    def __init__(
        self,
        dataset_dir: Path | str,
        extractor: str | FeatureExtractor = "efflite0",
        num_real: int = 1000,
        num_fake: int = 250,
        device: str = "cpu",
        size: int | None = None,
        subsets: int = 20,
        seed: int = 0,
        batch_size: int = 32,
    ) -> None:
        self.dataset_dir, self.size, self.device = Path(dataset_dir), size, device
        self.extractor = get_extractor(extractor, device=device) if isinstance(extractor, str) else extractor
        self.num_real, self.num_fake, self.subsets = int(num_real), int(num_fake), int(subsets)
        self.seed, self.batch_size = seed, batch_size
        self.name = self.extractor.metric_name("kid")
        self.real: np.ndarray | None = None
        self.last: tuple[float, float] | None = None

    def real_features(self) -> np.ndarray:
        """The real images' features (computed or read from the cache on first use)."""
        if self.real is None:
            self.real = real_statistics(
                self.dataset_dir, self.extractor, self.size, self.num_real, batch_size=self.batch_size
            ).features
        return self.real

    def measure(self, generate_fn: Callable[[int], np.ndarray]) -> float:
        """KID mean between ``generate_fn(num_fake)`` and the real features."""
        real = self.real_features()
        images = check_images(generate_fn(self.num_fake))
        fake = self.extractor.features(images, self.batch_size)
        self.last = kid(real, fake, self.subsets, min(len(fake), len(real)), self.seed)
        return self.last[0]


def format_result(result: dict[str, Any]) -> str:
    """Human-readable lines for an evaluate() result, each score under its extractor-specific name."""
    names = result["names"]
    lines = [
        f"{result['source']} vs {result['dataset']}: {result['num_fake']} generated, {result['num_real']} real "
        f"images; features: {result['label']} ({result['features_per_second']:.0f} img/s)"
    ]
    if "kid" in result:
        k = result["kid"]
        lines.append(
            f"{names['kid']}: {k['mean'] * 1e3:.2f} x1e-3 (std {k['std'] * 1e3:.2f}, "
            f"{k['subsets']} subsets of {k['subset_size']}); lower is better"
        )
    if "fid" in result:
        lines.append(f"{names['fid']}: {result['fid']:.2f}; lower is better")
    if "precision" in result:
        lines.append(
            f"{names['pr']}: precision {result['precision']:.3f} (quality), "
            f"recall {result['recall']:.3f} (variety); higher is better"
        )
    if "inception_score" in result:
        s = result["inception_score"]
        lines.append(f"{names['is']}: {s['mean']:.2f} (std {s['std']:.2f}); higher is better")
    if "memorization" in result:
        m = result["memorization"]
        lines.append(
            f"{names['memorization']}: {m['near_copies']} of {result['num_fake']} samples "
            f"({m['near_copy_share']:.1%}) are near-copies of training images "
            f"(baseline: {m['training_share']:.1%} of the training images are near-copies of each other)"
        )
        lines += [f"  seed {p['seed']} ~ {p['training_path']} (distance {p['distance']:.3g})" for p in m["closest"][:3]]
    if "classes" in result:
        lines += format_classes(result["classes"])
    if not result["label"].startswith("FID"):
        lines.append(
            f"Note: {result['label']} scores compare your own runs; they are not comparable with "
            "published (Inception) FID numbers."
        )
    return "\n".join(lines + [f"Note: {n}" for n in result.get("notes", [])])
