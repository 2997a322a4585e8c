"""Trainer behaviour: consent, callbacks, previews, exact resume, NaN roll-back, OOM retry."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from engine.errors import CheckpointError, ConfigError, ConsentError
from engine.families import family_names, get_family
from engine.runs.checkpoint import latest_checkpoint, list_checkpoints, load_checkpoint
from engine.training import Callbacks, Trainer

from .helpers import make_dataset, tiny_config


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("train"))


def _weights(run_dir):
    state = load_checkpoint(latest_checkpoint(run_dir))
    return state["step"], state["family_state"]["modules"]


def test_training_refuses_unattested_dataset(tmp_path):
    dataset = make_dataset(tmp_path, attested=False)
    with pytest.raises(ConsentError, match="gan-studio-cli attest"):
        Trainer(tiny_config(dataset), run_dir=tmp_path / "run").run()
    assert latest_checkpoint(tmp_path / "run") is None


def test_run_reports_steps_previews_and_checkpoints(dataset, tmp_path):
    steps, previews, checkpoints = [], [], []
    cb = Callbacks(
        on_step=steps.append, on_preview=lambda g, s: previews.append((g, s)), on_checkpoint=checkpoints.append
    )
    result = Trainer(tiny_config(dataset), cb, run_dir=tmp_path / "run").run()
    assert result.step == 6 and not result.stopped
    assert [s["step"] for s in steps] == [1, 2, 3, 4, 5, 6]
    assert all(math.isfinite(s["loss_d"]) and s["img_per_sec"] > 0 for s in steps)
    assert steps[-1]["eta_seconds"] == 0
    assert [s for _, s in previews] == [1, 3, 6]
    grid, _ = previews[0]
    assert grid.dtype == np.uint8 and grid.ndim == 3 and grid.shape[2] == 3
    assert sorted(p.name for p in (tmp_path / "run" / "previews").iterdir()) == [
        "step-000001.png",
        "step-000003.png",
        "step-000006.png",
    ]
    assert [p.name for p in checkpoints] == ["step-000003.pt", "step-000006.pt"]
    lines = (tmp_path / "run" / "stats.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1, 2, 3, 4, 5, 6]
    state = load_checkpoint(result.checkpoint)
    assert state["dataset_fingerprint"] and state["attestation_id"]
    assert state["config"]["format_version"] == 1


def test_keeps_only_last_k_checkpoints(dataset, tmp_path):
    Trainer(tiny_config(dataset, steps=8, checkpoint_every=1, keep_checkpoints=2), run_dir=tmp_path / "r").run()
    assert [p.name for p in list_checkpoints(tmp_path / "r")] == ["step-000007.pt", "step-000008.pt"]


@pytest.mark.parametrize("family", [name for name in family_names() if get_family(name).kind == "generate"])
def test_stop_and_resume_gives_identical_weights(dataset, tmp_path, family):
    cfg = dict(steps=6, checkpoint_every=100, preview_every=2, family=family)
    Trainer(tiny_config(dataset, **cfg), run_dir=tmp_path / "straight").run()

    seen = []
    cb = Callbacks(on_step=lambda s: seen.append(s["step"]), should_stop=lambda: len(seen) >= 4)
    stopped = Trainer(tiny_config(dataset, **cfg), cb, run_dir=tmp_path / "split").run()
    assert stopped.stopped and stopped.step == 4
    resumed = Trainer.resume(tmp_path / "split").run()
    assert resumed.step == 6

    step_a, a = _weights(tmp_path / "straight")
    step_b, b = _weights(tmp_path / "split")
    assert step_a == step_b == 6
    for module in ("G", "G_ema", "D"):
        for key in a[module]:
            assert torch.equal(a[module][key], b[module][key]), f"{module}.{key} differs after resume"


def test_resume_can_extend_and_rejects_fresh_start_in_used_folder(dataset, tmp_path):
    Trainer(tiny_config(dataset, steps=3), run_dir=tmp_path / "r").run()
    with pytest.raises(ConfigError, match="resume"):
        Trainer(tiny_config(dataset, steps=3), run_dir=tmp_path / "r").run()
    assert Trainer.resume(tmp_path / "r", steps=5).run().step == 5


def test_resume_of_a_folder_without_checkpoints_is_clear(tmp_path):
    with pytest.raises(CheckpointError, match="not a GAN Studio run folder"):
        Trainer.resume(tmp_path)


def test_pause_blocks_until_released(dataset, tmp_path):
    polls = {"n": 0}

    def should_pause():
        polls["n"] += 1
        return 3 <= polls["n"] <= 6  # paused for a few polls, then released

    logs = []
    result = Trainer(
        tiny_config(dataset, steps=4), Callbacks(should_pause=should_pause, on_log=logs.append), run_dir=tmp_path / "r"
    ).run()
    assert result.step == 4
    assert any(m.startswith("Paused at step") for m in logs) and "Resumed" in logs


def test_nan_loss_rolls_back_and_lowers_lr(dataset, tmp_path, monkeypatch):
    from engine.families.base import AdversarialFamily

    real_step = AdversarialFamily.train_step
    calls = {"n": 0}

    def flaky(self, *args, **kw):
        calls["n"] += 1
        stats = real_step(self, *args, **kw)
        if calls["n"] == 3:
            with torch.no_grad():  # poison the weights as a real divergence would
                for p in self.modules["G"].parameters():
                    p.fill_(float("nan"))
            stats["loss_g"] = float("nan")
        return stats

    monkeypatch.setattr(AdversarialFamily, "train_step", flaky)
    logs = []
    trainer = Trainer(tiny_config(dataset, steps=5), Callbacks(on_log=logs.append), run_dir=tmp_path / "r")
    trainer.run()
    assert any("rolled back" in m for m in logs)
    assert all(torch.isfinite(p).all() for p in trainer.family.modules["G"].parameters())
    lr = trainer.family.optimizers["G"].param_groups[0]["lr"]
    assert lr == pytest.approx(trainer.config.lr_g * trainer.config.nan_lr_factor)


def test_out_of_memory_retries_with_micro_batches(dataset, tmp_path, monkeypatch):
    from engine.families.base import AdversarialFamily

    real_step = AdversarialFamily.train_step
    seen = []

    def oom_once(self, real, labels, step, micro_batches):
        seen.append(micro_batches)
        if len(seen) == 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_step(self, real, labels, step, micro_batches)

    monkeypatch.setattr(AdversarialFamily, "train_step", oom_once)
    logs = []
    result = Trainer(tiny_config(dataset, steps=3), Callbacks(on_log=logs.append), run_dir=tmp_path / "r").run()
    assert result.step == 3
    assert seen == [1, 1, 2, 2]
    assert any("Out of GPU memory" in m and "effective batch stays 8" in m for m in logs)
    assert load_checkpoint(result.checkpoint)["micro_batches"] == 2


def test_time_limit_stops_the_run(dataset, tmp_path):
    result = Trainer(tiny_config(dataset, steps=None, minutes=0.002), run_dir=tmp_path / "r").run()
    assert result.step >= 1 and result.seconds >= 0.12


def test_changed_dataset_refuses_resume(tmp_path):
    from PIL import Image

    from engine.consent import attest
    from engine.data import import_folder

    dataset = make_dataset(tmp_path)
    Trainer(tiny_config(dataset, steps=2), run_dir=tmp_path / "r").run()
    Image.new("RGB", (40, 40), (1, 2, 3)).save(tmp_path / "images" / "circles" / "new.png")
    import_folder(tmp_path / "images", dataset, size=32)
    attest(dataset, rights="own", people="none", attested_by="test")
    from engine.errors import DataError

    with pytest.raises(DataError, match="changed since this run started"):
        Trainer.resume(tmp_path / "r", steps=4).run()


def test_checkpoint_of_other_family_or_newer_format_is_refused(dataset, tmp_path):

    result = Trainer(tiny_config(dataset, steps=1), run_dir=tmp_path / "r").run()
    with pytest.raises(CheckpointError, match="'dcgan' model, not 'fastgan'"):
        load_checkpoint(result.checkpoint, family="fastgan")
    state = load_checkpoint(result.checkpoint)
    state["format_version"] = 99
    torch.save(state, tmp_path / "newer.pt")
    with pytest.raises(CheckpointError, match="newer GAN Studio"):
        load_checkpoint(tmp_path / "newer.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable"):
        load_checkpoint(tmp_path / "junk.pt")


def test_checkpoint_loading_never_unpickles_code(tmp_path):
    import pickle

    class Evil:
        def __reduce__(self):
            return (exec, ("open({!r}, 'w').write('pwned')".format(str(tmp_path / "pwned")),))

    with open(tmp_path / "evil.pt", "wb") as f:
        pickle.dump({"kind": "gan-studio-checkpoint", "x": Evil()}, f)
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "evil.pt")
    assert not (tmp_path / "pwned").exists()


def test_kid_is_measured_logged_and_best_checkpoint_kept(dataset, tmp_path):
    metrics = []
    trainer = Trainer(
        tiny_config(dataset, steps=4, kid_every=2, kid_samples=12),
        Callbacks(on_metric=metrics.append),
        run_dir=tmp_path / "r",
    )
    trainer.run()
    assert [m["step"] for m in metrics] == [2, 4]
    assert all(math.isfinite(m["kid"]) and m["kid_name"] == "KD (EffLite0)" for m in metrics)
    lines = [json.loads(x) for x in (tmp_path / "r" / "stats.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines if "kid" in x] == [2, 4]
    best = load_checkpoint(tmp_path / "r" / "checkpoints" / "best-kid.pt")
    assert best["best_kid"] == min(m["kid"] for m in metrics)
    assert best["step"] == min(metrics, key=lambda m: m["kid"])["step"]


def test_kid_is_off_by_default_on_cpu(dataset, tmp_path):
    trainer = Trainer(tiny_config(dataset, steps=1), run_dir=tmp_path / "r")
    trainer.run()
    assert trainer.kid_every == 0
    assert not (tmp_path / "r" / "checkpoints" / "best-kid.pt").exists()
