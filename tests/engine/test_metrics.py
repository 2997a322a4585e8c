"""engine.metrics: score maths against closed forms and torchmetrics, extractors, cache, memorization,
evaluate() on a tiny trained run, and the CLI's evaluate command."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch
from PIL import Image

from engine.data import import_folder
from engine.metrics import (
    KIDMonitor,
    MetricsError,
    evaluate,
    fid,
    frechet_distance,
    get_extractor,
    inception_score,
    kid,
    memorization,
    nearest_images,
    precision_recall,
    real_statistics,
)
from engine.metrics import inception as inception_module
from engine.metrics.extractors import FeatureExtractor, to_model_input
from engine.metrics.inception import FIDInceptionV3, InceptionExtractor

from .helpers import make_dataset, tiny_config, write_shapes_folder

ROOT = Path(__file__).resolve().parents[2]
CAT_CLASSES = set(range(281, 286))  # tabby, tiger cat, Persian, Siamese, Egyptian cat
COFFEE_CLASSES = {967, 968}  # espresso, cup


@pytest.fixture(scope="module")
def efflite0():
    return get_extractor("efflite0")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A dataset of 24 shape images (32 px) and a DCGAN run trained for 6 steps on it."""
    from engine.training import Trainer

    tmp = tmp_path_factory.mktemp("metrics-run")
    dataset = make_dataset(tmp)
    run = tmp / "run"
    Trainer(tiny_config(dataset), run_dir=run).run()
    return dataset, run


class Identity(torch.nn.Module):
    """Lets torchmetrics' image metrics consume precomputed features."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.num_features = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class PixelExtractor(FeatureExtractor):
    """A cheap stand-in: 8x8 average-pooled pixels; counts how many images it was asked for."""

    name, label, short, dim, input_size = "pixels", "pixels", "pixels", 192, 8

    def __init__(self) -> None:
        self.calls = 0
        super().__init__("cpu")

    def _build(self) -> torch.nn.Module:
        return torch.nn.Identity()

    def _forward(self, x):
        self.calls += len(x)
        return x.flatten(1), None


# -- score maths ---------------------------------------------------------------------------------------
def test_fid_of_identical_sets_is_zero():
    feats = np.random.default_rng(0).normal(size=(500, 32)).astype(np.float32)
    assert fid(feats, feats) == pytest.approx(0.0, abs=1e-6)


def test_fid_of_two_gaussians_matches_the_closed_form():
    rng = np.random.default_rng(1)
    d = 6
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    a1, a2 = rng.normal(size=(d, d)), rng.normal(size=(d, d))
    s1, s2 = a1 @ a1.T / d + 0.1 * np.eye(d), a2 @ a2.T / d + 0.1 * np.eye(d)
    # Closed form with scipy's general matrix square root, independent of our eigen-decomposition.
    expected = float(np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * scipy.linalg.sqrtm(s1 @ s2).real))
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)
    x = rng.multivariate_normal(mu1, s1, size=200_000)
    y = rng.multivariate_normal(mu2, s2, size=200_000)
    assert fid(x, y) == pytest.approx(expected, rel=0.02)
    # Diagonal covariances commute: FD = |mu1 - mu2|^2 + sum (sqrt(v1) - sqrt(v2))^2.
    v1, v2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 1.0])
    diag = frechet_distance(np.zeros(3), np.diag(v1), np.ones(3), np.diag(v2))
    assert diag == pytest.approx(3 + np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2))


def test_kid_is_unbiased_on_one_distribution_and_positive_on_two():
    rng = np.random.default_rng(2)
    estimates, biased = [], []
    for _ in range(30):
        x, y = rng.normal(size=(100, 16)), rng.normal(size=(100, 16))
        estimates.append(kid(x, y, subset_size=100)[0])
        k = (np.concatenate([x, y]) @ np.concatenate([x, y]).T / 16 + 1) ** 3
        biased.append(k[:100, :100].mean() + k[100:, 100:].mean() - 2 * k[:100, 100:].mean())  # V-statistic
    estimates = np.array(estimates)
    assert abs(estimates.mean()) < 3 * estimates.std() / np.sqrt(len(estimates))
    assert np.mean(biased) > 10 * abs(estimates.mean())  # the biased estimator is clearly not ~0
    mean, std = kid(rng.normal(size=(300, 16)), rng.normal(0.5, 1, size=(300, 16)), subsets=20, subset_size=100)
    assert mean > 5 * std > 0


def test_kid_clamps_the_subset_size_to_the_sample_counts():
    rng = np.random.default_rng(3)
    mean, std = kid(rng.normal(size=(40, 8)), rng.normal(size=(25, 8)), subsets=10, subset_size=1000)
    assert np.isfinite(mean) and np.isfinite(std)
    with pytest.raises(MetricsError, match="at least 2"):
        kid(rng.normal(size=(1, 8)), rng.normal(size=(5, 8)))


def test_scores_agree_with_torchmetrics_on_the_same_features():
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.inception import InceptionScore
    from torchmetrics.image.kid import KernelInceptionDistance

    rng = np.random.default_rng(4)
    real = np.abs(rng.normal(size=(400, 64))).astype(np.float32)  # non-negative, like pooled features
    fake = np.abs(rng.normal(0.2, 1.1, size=(300, 64))).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchmetrics warns about keeping features in memory
        tm_fid = FrechetInceptionDistance(feature=Identity(64))
        tm_kid = KernelInceptionDistance(feature=Identity(64), subsets=1, subset_size=300)
        tm_is = InceptionScore(feature=Identity(64), splits=1)
        for metric in (tm_fid, tm_kid):
            metric.update(torch.from_numpy(real[:300] if metric is tm_kid else real), real=True)
            metric.update(torch.from_numpy(fake), real=False)
        tm_is.update(torch.from_numpy(fake).double())
        expected = float(tm_fid.compute()), float(tm_kid.compute()[0]), float(tm_is.compute()[0])
    assert fid(real, fake) == pytest.approx(expected[0], rel=1e-6)
    assert kid(real[:300], fake, subset_size=300)[0] == pytest.approx(expected[1], rel=1e-5)
    assert inception_score(fake, splits=1)[0] == pytest.approx(expected[2], rel=1e-6)


def test_precision_recall_separates_quality_from_variety():
    rng = np.random.default_rng(5)
    real = rng.normal(size=(600, 8))
    same = precision_recall(real, rng.normal(size=(600, 8)))
    collapsed = precision_recall(real, rng.normal(0, 0.1, size=(600, 8)))  # good but not varied
    far = precision_recall(real, rng.normal(6, 1, size=(600, 8)))
    assert same[0] > 0.6 and same[1] > 0.6
    assert collapsed[0] > 0.95 and collapsed[1] < 0.2
    assert far[0] == 0.0 and far[1] == 0.0


# -- extractors ----------------------------------------------------------------------------------------
def _photo(name: str, size: int = 256) -> np.ndarray:
    import skimage.data

    img = Image.fromarray(getattr(skimage.data, name)())
    side = min(img.size)
    left, top = (img.width - side) // 2, (img.height - side) // 2
    return np.asarray(img.crop((left, top, left + side, top + side)).resize((size, size), Image.BICUBIC))


def test_efflite0_classifies_sample_photos(efflite0):
    images = np.stack([_photo("chelsea"), _photo("coffee")])
    feats = efflite0.features(images)
    assert feats.shape == (2, 1280) and feats.dtype == np.float32
    assert efflite0.label == "FD/KD (EffLite0)" and efflite0.metric_name("fid") == "FD (EffLite0)"
    with torch.inference_mode():
        top5 = efflite0.net._fc(torch.from_numpy(feats)).topk(5).indices.tolist()
    assert top5[0][0] in CAT_CLASSES, top5[0]
    assert top5[1][0] in COFFEE_CLASSES, top5[1]
    # The extractor runs the network with BatchNorm folded into the convolutions: same features.
    from engine.metrics.efflite0 import load_efflite0

    with torch.inference_mode():
        plain = load_efflite0().forward_features(to_model_input(images, 224))
    np.testing.assert_allclose(feats, plain.numpy(), rtol=1e-3, atol=1e-4)


def test_alpha_is_composited_on_white_and_gray_is_repeated():
    rgb = np.full((1, 4, 4, 3), 255, np.uint8)
    rgba = np.zeros((1, 4, 4, 4), np.uint8)  # fully transparent black -> white
    gray = np.full((1, 4, 4, 1), 255, np.uint8)
    for images in (rgb, rgba, gray):
        x = to_model_input(images, 4)
        assert x.shape == (1, 3, 4, 4) and torch.allclose(x, torch.ones_like(x))


def test_fid_inception_network_has_the_pytorch_fid_layout():
    import torchvision

    reference = torchvision.models.inception_v3(weights=None, num_classes=1008, aux_logits=False, init_weights=False)
    ours = FIDInceptionV3()
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in reference.state_dict().items()}
    ext = InceptionExtractor(net=ours)
    feats, logits = ext.features_and_logits(np.random.default_rng(0).integers(0, 255, (2, 48, 48, 3), dtype=np.uint8))
    assert feats.shape == (2, 2048) and logits.shape == (2, 1008) and np.isfinite(feats).all()
    assert ext.label == "FID/KID (Inception)" and ext.metric_name("kid") == "KID"


def test_inception_weights_load_after_the_hash_check(tmp_path, monkeypatch):
    net = FIDInceptionV3().eval()
    path = tmp_path / inception_module.WEIGHTS_NAME
    torch.save(net.state_dict(), path)
    monkeypatch.setattr(inception_module, "WEIGHTS_SHA256_PREFIX", inception_module.sha256_of(path)[:8])
    monkeypatch.setenv(inception_module.WEIGHTS_ENV, str(tmp_path))
    ext = get_extractor("inception")
    images = np.random.default_rng(1).integers(0, 255, (1, 32, 32, 3), dtype=np.uint8)
    expected = InceptionExtractor(net=net).features(images)
    np.testing.assert_allclose(ext.features(images), expected, rtol=1e-4, atol=1e-5)


def test_missing_inception_weights_name_the_folder(tmp_path, monkeypatch):
    folder = tmp_path / "weights"
    monkeypatch.setenv(inception_module.WEIGHTS_ENV, str(folder))
    with pytest.raises(MetricsError) as info:
        get_extractor("inception")
    assert str(folder) in str(info.value) and inception_module.WEIGHTS_NAME in str(info.value)


def test_wrong_inception_weights_are_refused_by_hash(tmp_path, monkeypatch):
    monkeypatch.setenv(inception_module.WEIGHTS_ENV, str(tmp_path))
    (tmp_path / inception_module.WEIGHTS_NAME).write_bytes(b"not the weights")
    with pytest.raises(MetricsError, match="sha256 starts with .* expected 6726825d"):
        get_extractor("inception")


def test_inception_download_fails_clearly_offline(tmp_path):
    with pytest.raises(MetricsError) as info:
        inception_module.download_inception_weights(tmp_path, url="http://127.0.0.1:9/weights.pth", timeout=2)
    assert "offline" in str(info.value) and str(tmp_path) in str(info.value)
    assert list(tmp_path.iterdir()) == []


# -- cache ---------------------------------------------------------------------------------------------
def test_real_features_are_cached_extended_and_invalidated(tmp_path):
    dataset = make_dataset(tmp_path, attested=False)
    ext = PixelExtractor()
    first = real_statistics(dataset, ext, max_images=10)
    assert first.computed == 10 and ext.calls == 10 and first.path.is_file()
    again = real_statistics(dataset, ext, max_images=10)
    assert again.computed == 0 and ext.calls == 10
    np.testing.assert_array_equal(again.features, first.features)
    more = real_statistics(dataset, ext, max_images=None)  # all 24: only the 14 new ones are extracted
    assert more.computed == 14 and ext.calls == 24
    np.testing.assert_array_equal(more.features[:10], first.features)
    Image.new("RGB", (40, 40), (1, 2, 3)).save(tmp_path / "images" / "circles" / "new.png")
    import_folder(tmp_path / "images", dataset, size=32)
    changed = real_statistics(dataset, ext, max_images=None)
    assert changed.fingerprint != first.fingerprint and changed.computed == 25
    assert not first.path.exists() and changed.path.is_file()


# -- memorization ---------------------------------------------------------------------------------------
def test_memorization_flags_copies_of_training_images_not_noise(tmp_path, efflite0):
    source = write_shapes_folder(tmp_path / "shapes", per_class=10)
    train = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in sorted(source.rglob("*.png"))])
    noise = np.random.default_rng(6).integers(0, 256, (4, 40, 40, 3), dtype=np.uint8)
    generated = np.concatenate([train[[3, 11, 17]], noise])
    report = memorization(efflite0.features(generated), efflite0.features(train))
    assert report.near_copy.tolist() == [True] * 3 + [False] * 4
    assert report.nearest_index[:3].tolist() == [3, 11, 17] and report.near_copy_share == pytest.approx(3 / 7)
    assert report.threshold == pytest.approx(0.5 * report.typical_distance)
    pairs = nearest_images(report, generated, train, count=3)
    assert sorted(p.generated_index for p in pairs) == [0, 1, 2]
    assert all(p.near_copy and p.distance < 1e-3 * report.typical_distance for p in pairs)
    assert all(np.array_equal(p.generated, p.training) for p in pairs)


# -- evaluate, monitor, CLI ----------------------------------------------------------------------------
def test_evaluate_a_tiny_run(tiny_run, efflite0):
    dataset, run = tiny_run
    result = evaluate(run, metrics="kid,fid,pr,memorization", extractor=efflite0, num_samples=16)
    assert result["dataset"] == str(dataset.resolve()) and result["num_real"] == 24 and result["num_fake"] == 16
    assert result["names"]["kid"] == "KD (EffLite0)" and result["label"] == "FD/KD (EffLite0)"
    assert result["kid"]["subset_size"] == 16 and result["fid"] > 0
    assert 0 <= result["precision"] <= 1 and 0 <= result["recall"] <= 1
    closest = result["memorization"]["closest"][0]
    assert closest["training_path"].endswith(".png") and 0 <= closest["seed"] < 16
    json.dumps(result)  # JSON-ready
    with pytest.raises(MetricsError, match="Inception"):
        evaluate(run, metrics="is", extractor=efflite0)
    with pytest.raises(MetricsError, match="--dataset"):
        evaluate(run / "exports" / "model.onnx", extractor=efflite0)


def test_kid_monitor_prefers_real_looking_images(tiny_run, efflite0):
    dataset, _ = tiny_run
    monitor = KIDMonitor(dataset, extractor=efflite0, num_real=24, num_fake=12, subsets=5)
    real_like = monitor.measure(lambda n: np.asarray(import_dataset_images(dataset)[:n]))
    noise = monitor.measure(lambda n: np.random.default_rng(7).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8))
    assert monitor.name == "KD (EffLite0)" and noise > real_like + 0.01 and monitor.last[0] == noise


def import_dataset_images(dataset: Path) -> np.ndarray:
    from engine.data import load_dataset

    return load_dataset(dataset).images[::-1]  # reversed: not the first rows the monitor's real set uses


def test_cli_evaluate_json(tiny_run):
    dataset, run = tiny_run
    proc = subprocess.run(
        [sys.executable, "-m", "engine", "evaluate", str(run), "--metrics", "kid,fid", "--num-samples", "12", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["names"] == {"kid": "KD (EffLite0)", "fid": "FD (EffLite0)"} and summary["num_fake"] == 12
    refused = subprocess.run(
        [sys.executable, "-m", "engine", "evaluate", str(run), "--metrics", "kid,bogus"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert refused.returncode == 2 and "bogus" in refused.stderr and "Traceback" not in refused.stderr
