"""bench/quality.py's own logic: the held-out split, the cache keys, the settings, the reference loop's resume."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.errors import ConfigError
from engine.families import family_names, get_family

BENCH = Path(__file__).resolve().parents[2] / "bench" / "quality.py"


@pytest.fixture(scope="module")
def quality():
    spec = importlib.util.spec_from_file_location("bench_quality_under_test", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _split(quality, train_fp: str = "a" * 64):
    return quality.Split(Path("train"), Path("test"), train_fp, "b" * 64, quality.SPLIT_SEED)


def _job(quality, name="dcgan", settings=None, budget="kimg", amount=30.0, seed=0, split=None):
    settings = quality.family_settings(name) if settings is None else settings
    split = split or _split(quality)
    return quality.Job(name, settings, {}, budget, amount, seed, threads=2, split=split, real=1000, fake=1000)


def test_split_halves_are_disjoint_complete_and_deterministic(quality):
    files = [f"class{i % 7}/{i:05d}.png" for i in range(3787)]
    train, test = quality.split_files(files)
    assert not set(train) & set(test)
    assert sorted(train + test) == sorted(files)
    assert len(train) - len(test) == 1
    # the same halves whatever order the folder listing came in, and other halves for another seed
    again = quality.split_files(list(reversed(files)))
    assert again == (train, test)
    assert quality.split_files(files, seed=quality.SPLIT_SEED + 1)[0] != train
    # a random split, not the first half by name
    assert 0.4 < sum(f < files[len(files) // 2] for f in train) / len(train) < 0.6


def test_cache_key_follows_everything_that_decides_a_result(quality):
    base = _job(quality)
    assert base.key == _job(quality).key
    changed = [
        _job(quality, settings={**quality.family_settings("dcgan"), "loss": "hinge"}),
        _job(quality, settings={**quality.family_settings("dcgan"), "family_options": {"base_channels": 32}}),
        _job(quality, budget="minutes", amount=15.0),
        _job(quality, amount=10.0),
        _job(quality, seed=1),
        _job(quality, name="fastgan"),
        _job(quality, split=_split(quality, train_fp="c" * 64)),
    ]
    keys = {job.key for job in changed}
    assert base.key not in keys and len(keys) == len(changed)
    # an override equal to the default is the same run, not a new one
    same = _job(quality, settings={**quality.family_settings("dcgan"), "loss": "ns", "family_options": {}})
    assert same.key == base.key


def test_settings_start_from_the_familys_recommendation(quality):
    for name in quality.generate_families():
        recommended = get_family(name).recommended_settings(64, "cpu")
        settings = quality.family_settings(name, {"batch_size": 16, "family_options": {"latent_dim": 8}})
        assert settings["batch_size"] == 16
        assert settings["family_options"]["latent_dim"] == 8
        for key, value in recommended.get("family_options", {}).items():
            if key != "latent_dim":
                assert settings["family_options"][key] == value
    generate = {n for n in family_names() if get_family(n).kind == "generate"}
    assert set(quality.generate_families()) == generate


def test_set_options_are_split_between_train_settings_and_family_options(quality):
    sets = quality.parse_sets(["fastgan.loss=hinge", "fastgan.recon_weight=0.5", "reference.lr=0.0001"])
    assert sets == {"fastgan": {"loss": "hinge", "family_options": {"recon_weight": 0.5}}, "reference": {"lr": 0.0001}}
    with pytest.raises(ConfigError, match="NAME.KEY=VALUE"):
        quality.parse_sets(["loss=hinge"])
    with pytest.raises(ConfigError, match="unknown reference setting"):
        quality.reference_settings({"momentum": 0.9})


def test_plan_runs_the_floor_once_and_every_family_per_seed_and_budget(quality):
    args = argparse.Namespace(only=None, seeds="0,1", budgets="kimg,minutes", kimg=30.0, minutes=15.0)
    args.threads, args.real, args.fake = 2, 1000, 1000
    jobs = quality.plan(args, _split(quality), {})
    runs = [quality.REFERENCE, *quality.generate_families()]
    assert [j.name for j in jobs].count(quality.FLOOR) == 1
    assert len(jobs) == 1 + 2 * 2 * len(runs)
    assert len({j.key for j in jobs}) == len(jobs)
    args.only = "reference,nosuchfamily"
    with pytest.raises(ConfigError, match="nosuchfamily"):
        quality.plan(args, _split(quality), {})


def _train_reference(quality, images, steps, state=None):
    loop = quality.ReferenceLoop(images, {"ngf": 4, "ndf": 4, "batch_size": 4}, seed=3)
    if state is not None:
        loop.load_state_dict(state)
    while loop.step < steps:
        loop.train_step(loop.next_batch())
        loop.step += 1
    return loop


def test_reference_loop_resumes_exactly(quality, tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (10, 64, 64, 3), dtype=np.uint8)
    straight = _train_reference(quality, images, 6)
    first = _train_reference(quality, images, 3)
    path = tmp_path / "reference.pt"
    quality.save_checkpoint(path, first.state_dict())  # the bench's own checkpoint round trip
    torch.manual_seed(12345)  # whatever happened to the global RNG in between
    resumed = _train_reference(quality, images, 6, state=quality.load_checkpoint(path))
    for a, b in zip(straight.G.state_dict().values(), resumed.G.state_dict().values()):
        assert torch.equal(a, b)
    for a, b in zip(straight.D.state_dict().values(), resumed.D.state_dict().values()):
        assert torch.equal(a, b)
    samples = resumed.sample(list(range(5)))
    assert samples.shape == (5, 64, 64, 3) and samples.dtype == np.uint8
    assert len({s.tobytes() for s in samples}) == 5  # different seeds, different images


def test_table_pools_seeds_and_compares_with_the_reference(quality):
    def result(name, seed, kd, budget="kimg", amount=30.0):
        return {
            "name": name,
            "settings": {"x": name},
            "overrides": {},
            "budget": budget,
            "amount": amount,
            "threads": 2,
            "real": 1000,
            "fake": 1000,
            "seed": seed,
            "kd": {"mean": kd / 1e3, "std": 0.0},
            "fd": kd / 2,
            "img_per_sec": 20.0,
            "train_seconds": 600.0,
            "images_seen": 30016,
            "steps": 938,
            "load": [2.0, 2.5],
            "grid": f"/x/docs/results/quality/{name}.png",
        }

    results = [
        result(quality.REFERENCE, 0, 300.0),
        result(quality.REFERENCE, 1, 500.0),
        result("dcgan", 0, 120.0),
        result("dcgan", 1, 140.0),
        result("fastgan", 0, 450.0),
    ]
    table = quality.format_table(results)
    assert "400.0 (300.0–500.0)" in table  # the reference: mean and range over its two seeds
    assert "130.0 (120.0–140.0)" in table and "| 0.33 |" in table  # dcgan: 130 / 400
    assert "best dcgan (seeds 0,1) KD 130.0 = 0.33× the reference's 400.0 (target ≤ 0.33×: met)" in table
    assert "at or below the reference: dcgan" in table  # fastgan (450) is not
