"""One contract, run over every registered noise-to-image family: build, train a step, sample, save/load,
determinism, ONNX parity. Image-to-image families have theirs in test_translation.py."""

from __future__ import annotations

import math

import pytest
import torch

from engine.families import family_names, get_family
from engine.families.base import ModelSpec
from engine.runs import TrainConfig
from engine.runs.checkpoint import load_checkpoint, save_checkpoint

FAMILIES = [name for name in family_names() if get_family(name).kind == "generate"]


def _family(name: str, spec: ModelSpec, seed: int = 0, **train):
    cls = get_family(name)
    cfg = TrainConfig(
        dataset="unused",
        family=name,
        family_options=dict(cls.tiny_options),
        batch_size=4,
        r1_gamma=1.0,
        r1_every=1,
        **train,
    )
    torch.manual_seed(seed)
    return cls(spec, cfg, torch.device("cpu"))


def _batch(spec: ModelSpec, n: int = 4, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, spec.channels, spec.resolution, spec.resolution, generator=gen) * 2 - 1
    y = torch.arange(n) % spec.num_classes if spec.num_classes else None
    return x, y


def _spec(name: str, channels: int = 3, classes: int = 0) -> ModelSpec:
    return ModelSpec(max(32, get_family(name).min_resolution), channels, classes)


def test_builtin_families_are_registered():
    assert {"dcgan", "fastgan"} <= set(FAMILIES)
    assert {"pix2pix", "cyclegan"} <= set(family_names()) - set(FAMILIES)


@pytest.mark.parametrize("name", family_names())
def test_every_family_declares_a_known_kind(name):
    assert get_family(name).kind in ("generate", "translate", "upscale")  # upscalers: tests/engine/test_esrgan.py


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("channels,classes", [(3, 0), (4, 3)])
def test_train_step_and_sample(name, channels, classes):
    spec = _spec(name, channels, classes)
    fam = _family(name, spec, ada=classes == 0)  # the RGBA case runs every augmentation on every image
    x, y = _batch(spec)
    before = [p.detach().clone() for p in fam.modules["G"].parameters()]
    stats = fam.train_step(x, y, step=0, micro_batches=1)
    assert {"loss_d", "loss_g", "r1", "augment_p"} <= set(stats)
    assert all(math.isfinite(v) for v in stats.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, fam.modules["G"].parameters())), "G did not learn"
    z = torch.randn(5, fam.latent_dim)
    out = fam.sample(z, None if not classes else torch.arange(5) % classes)
    assert out.shape == (5, channels, spec.resolution, spec.resolution)
    assert out.min() >= -1 and out.max() <= 1


@pytest.mark.parametrize("name", FAMILIES)
def test_micro_batches_train(name):
    spec = _spec(name)
    fam = _family(name, spec)
    stats = fam.train_step(*_batch(spec), step=1, micro_batches=2)
    assert math.isfinite(stats["loss_d"]) and math.isfinite(stats["loss_g"])


@pytest.mark.parametrize("name", FAMILIES)
def test_save_load_round_trip(name, tmp_path):
    spec = _spec(name, classes=2)
    fam = _family(name, spec)
    fam.train_step(*_batch(spec), step=0, micro_batches=1)
    save_checkpoint(tmp_path / "c.pt", {"family": name, "family_state": fam.state_dict()})
    state = load_checkpoint(tmp_path / "c.pt", family=name)
    other = _family(name, spec, seed=99)
    other.load_state_dict(state["family_state"])
    z = torch.randn(3, fam.latent_dim)
    labels = torch.tensor([0, 1, 0])
    assert torch.equal(fam.sample(z, labels), other.sample(z, labels))
    # optimizer state survives too: the next step is identical
    torch.manual_seed(5)
    a = fam.train_step(*_batch(spec, seed=1), step=1, micro_batches=1)
    torch.manual_seed(5)
    b = other.train_step(*_batch(spec, seed=1), step=1, micro_batches=1)
    assert a == b


@pytest.mark.parametrize("name", FAMILIES)
def test_deterministic_under_seed(name):
    spec = _spec(name)
    results = []
    for _ in range(2):
        fam = _family(name, spec, seed=3)
        torch.manual_seed(11)
        fam.train_step(*_batch(spec), step=0, micro_batches=1)
        results.append(fam.modules["G_ema"].state_dict())
    for key in results[0]:
        assert torch.equal(results[0][key], results[1][key]), key


@pytest.mark.parametrize("name", FAMILIES)
def test_resolution_outside_range_is_refused(name):
    from engine.errors import ConfigError

    cls = get_family(name)
    with pytest.raises(ConfigError, match="resolution"):
        _family(name, ModelSpec(cls.max_resolution * 2, 3, 0))


@pytest.mark.parametrize("name", FAMILIES)
def test_unknown_option_is_named(name):
    from engine.errors import ConfigError

    cfg = TrainConfig(dataset="x", family=name, family_options={"no_such_option": 1})
    with pytest.raises(ConfigError, match="no_such_option"):
        get_family(name)(_spec(name), cfg, torch.device("cpu"))


def _checkpoint_of(fam, name: str, path):
    """A checkpoint file in the Trainer's layout for a family built in a test."""
    save_checkpoint(
        path,
        {
            "family": name,
            "spec": vars(fam.spec),
            "classes": [f"c{i}" for i in range(fam.spec.num_classes)],
            "config": fam.train.to_dict(),
            "step": 1,
            "family_state": fam.state_dict(),
            "dataset_fingerprint": "f" * 64,
            "attestation_id": "a" * 32,
        },
    )
    return path


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("classes", [0, 2])
def test_onnx_export_matches_pytorch(name, classes, tmp_path):
    import numpy as np

    from engine.export import OrtRunner, export_onnx
    from engine.inference import TorchRunner

    from .helpers import marked_as_by_export

    spec = _spec(name, classes=classes)
    fam = _family(name, spec)
    fam.train_step(*_batch(spec), step=0, micro_batches=1)  # trained weights, BN statistics moved
    ckpt = _checkpoint_of(fam, name, tmp_path / "step-000001.pt")
    result = export_onnx(ckpt, tmp_path / "g.onnx")
    assert result.max_abs_error <= 1e-4 and result.psnr_db > 60
    ort = OrtRunner(tmp_path / "g.onnx")
    ort_images = ort.generate([3, 4, 5], class_index=1 if classes else None)
    torch_images = TorchRunner(ckpt, device="cpu").generate([3, 4, 5], class_index=1 if classes else None)
    assert ort_images.shape == (3, spec.resolution, spec.resolution, spec.channels)
    marked = marked_as_by_export(torch_images, ort)  # the export marks in its graph, the writers mark the rest
    assert np.abs(ort_images.astype(int) - marked).max() <= 1  # uint8 rounding at most
    assert np.abs(ort_images.astype(int) - torch_images).max() > 1  # and the mark is really there
