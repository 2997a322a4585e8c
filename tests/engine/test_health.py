"""The training doctor (engine/training/health.py): each failure made to happen for real on a tiny model
and flagged within a stated number of steps, a healthy MNIST run flagged for nothing, and the plumbing
(health.jsonl, on_health, resume, automatic remedies, the CLI line)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from engine.cli import main
from engine.consent import attest
from engine.data import import_folder, load_dataset
from engine.families.base import AdversarialFamily
from engine.families.dcgan import DCGAN
from engine.runs import TrainConfig
from engine.runs.checkpoint import latest_checkpoint, load_checkpoint
from engine.training import Callbacks, Trainer
from engine.training.health import (
    COLLAPSE_WARMUP,
    DETECTOR_LABELS,
    DETECTORS,
    LEVELS,
    OVERFIT_WINDOW,
    OVERPOWER_WARMUP,
    P_MAXED,
    Finding,
    Fix,
    HealthMonitor,
    _Level,
    current_levels,
    describe_finding,
    read_health,
)
from engine.training.trainer import TrainingDiverged

from .helpers import make_ab_dataset, tiny_config

PER_CLASS = 30  # 300 digits: enough for a tiny model to learn, quick to import


@pytest.fixture(scope="module")
def mnist(shared_datasets, tmp_path_factory):
    """300 MNIST digits (30 per class) from ../shared, imported at 16 px and attested."""
    source = shared_datasets / "mnist-5k"
    if not source.is_dir():
        pytest.skip(f"{source} not found; the health tests train on real digits")
    tmp = tmp_path_factory.mktemp("mnist")
    for folder in sorted(p for p in source.iterdir() if p.is_dir()):
        (tmp / "src" / folder.name).mkdir(parents=True)
        for path in sorted(folder.glob("*.png"))[:PER_CLASS]:
            shutil.copy(path, tmp / "src" / folder.name / path.name)
    import_folder(tmp / "src", tmp / "ds", size=16)
    attest(tmp / "ds", rights="own", people="none", attested_by="test")
    return tmp / "ds"


def digits_config(dataset, **overrides) -> TrainConfig:
    """A tiny unconditional DCGAN on 16 px digits; image checks every 20 steps."""
    fields = dict(
        dataset=str(dataset),
        family="dcgan",
        family_options=dict(DCGAN.tiny_options),
        batch_size=16,
        steps=300,
        preview_every=20,
        preview_count=4,
        checkpoint_every=1000,
        log_every=50,
        seed=0,
        conditional=False,
    )
    fields.update(overrides)
    return TrainConfig(**fields)


def train(config, run_dir, **callbacks) -> tuple[Trainer, list[Finding]]:
    found: list[Finding] = []
    trainer = Trainer(config, Callbacks(on_health=found.append, **callbacks), run_dir=run_dir)
    trainer.run()
    return trainer, found


def first(found, detector, at_least="warning") -> Finding | None:
    """The first finding of ``detector`` at ``at_least`` or worse."""
    return next((f for f in found if f.detector == detector and LEVELS.index(f.level) >= LEVELS.index(at_least)), None)


class IgnoresZ(nn.Module):
    """Wraps a generator so its output ignores the latent (the textbook total collapse)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, z, labels=None):
        return self.inner(torch.zeros_like(z), labels)


@pytest.fixture
def ignores_z(monkeypatch):
    build = DCGAN.build_generator
    monkeypatch.setattr(DCGAN, "build_generator", lambda self: IgnoresZ(build(self)))


def test_collapse_is_flagged_at_the_first_check_after_warm_up(mnist, tmp_path, ignores_z):
    # the first image check after the warm-up (100 steps; checks every 20) must call it a problem
    trainer, found = train(digits_config(mnist, steps=COLLAPSE_WARMUP + 20), tmp_path / "run")
    finding = first(found, "collapse", "problem")
    assert finding is not None and finding.step <= COLLAPSE_WARMUP, found
    assert finding.evidence["variety"] < 0.02
    assert finding.evidence["series"]["variety"][-1][0] == finding.step
    assert finding.fixes and all(isinstance(f, Fix) for f in finding.fixes)
    # health.jsonl holds exactly what the callback got, and reads back
    assert [f.to_dict() for f in read_health(tmp_path / "run")] == [f.to_dict() for f in found]
    assert current_levels(read_health(tmp_path / "run"))["collapse"] == "problem"
    assert trainer.findings == found


def test_discriminator_overpowering_is_flagged_within_300_steps(mnist, tmp_path):
    # lr_g must be > 0: 1e-12 freezes the generator as well as 0 would
    _, found = train(digits_config(mnist, lr_g=1e-12), tmp_path / "run")
    finding = first(found, "overpowering")
    assert finding is not None and finding.step <= 300, found
    assert finding.evidence["accuracy_real"] >= 0.95 and finding.evidence["accuracy_fake"] >= 0.95
    assert finding.evidence["confidence"] >= 0.8
    assert any("generator's learning rate" in f.label and f.settings["lr_g"] > 1e-6 for f in finding.fixes)


def test_divergence_from_an_absurd_learning_rate_is_flagged_within_40_steps(mnist, tmp_path):
    _, found = train(digits_config(mnist, lr_g=1.0, lr_d=1.0, steps=60), tmp_path / "run")
    finding = first(found, "divergence")
    assert finding is not None and finding.step <= 40, found
    lowered = finding.fixes[0]
    assert lowered.settings == {"lr_g": 0.5, "lr_d": 0.5} and lowered.action == "resume"


def test_repeated_nan_roll_backs_are_a_divergence_problem_before_the_run_gives_up(mnist, tmp_path, monkeypatch):
    real_step = AdversarialFamily.train_step

    def poisoned(self, *args, **kw):
        stats = real_step(self, *args, **kw)
        if args[2] >= 30:  # from step 30 on every step is non-finite
            stats["loss_g"] = float("nan")
        return stats

    monkeypatch.setattr(AdversarialFamily, "train_step", poisoned)
    found: list[Finding] = []
    with pytest.raises(TrainingDiverged):
        Trainer(digits_config(mnist, steps=60), Callbacks(on_health=found.append), run_dir=tmp_path / "run").run()
    levels = [(f.step, f.level) for f in found if f.detector == "divergence"]
    assert levels[:2] == [(30, "warning"), (31, "problem")], levels
    assert read_health(tmp_path / "run")[-1].evidence["rollbacks"] >= 2


def test_memorization_is_flagged_and_the_pairs_saved(mnist, tmp_path, monkeypatch):
    images = torch.from_numpy(np.array(load_dataset(mnist).images)).permute(0, 3, 1, 2).float() / 127.5 - 1

    def returns_training_images(self, z, labels=None, ema=True):
        # a "generator" that hands back training images, chosen by its latent
        return images[(z[:, 0].abs() * 1e4).long() % len(images)]

    monkeypatch.setattr(AdversarialFamily, "sample", returns_training_images)
    _, found = train(digits_config(mnist, steps=COLLAPSE_WARMUP), tmp_path / "run")
    finding = first(found, "memorization", "problem")
    assert finding is not None and finding.step <= COLLAPSE_WARMUP, found
    assert finding.evidence["near_copy_share"] > 0.9
    assert first(found, "collapse", "note") is None  # copies of different digits still vary
    pairs = finding.evidence["pairs"]
    assert len(pairs) == 4 and all(p["distance"] < 1e-4 for p in pairs)
    for pair in pairs:
        gen = np.asarray(Image.open(tmp_path / "run" / pair["generated"]))
        real = np.asarray(Image.open(tmp_path / "run" / pair["neighbour"]))
        assert gen.shape[:2] == (16, 16) and np.array_equal(gen, real)
    assert any(f.action == "stop" for f in finding.fixes)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_healthy_mnist_run_is_flagged_for_nothing(mnist, tmp_path, seed):
    _, found = train(digits_config(mnist, seed=seed), tmp_path / "run")
    assert found == [], [describe_finding(f) for f in found]
    assert read_health(tmp_path / "run") == []


def test_health_draws_nothing_from_the_training_rng(mnist, tmp_path):
    """With the doctor on (image checks every 10 steps) the weights are those of a run without it."""
    cfg = dict(steps=40, preview_every=10, checkpoint_every=40)
    train(digits_config(mnist, **cfg), tmp_path / "on")
    train(digits_config(mnist, health=False, **cfg), tmp_path / "off")
    on, off = (load_checkpoint(latest_checkpoint(tmp_path / r))["family_state"]["modules"] for r in ("on", "off"))
    for module in ("G", "G_ema", "D"):
        for key in on[module]:
            assert torch.equal(on[module][key], off[module][key]), f"{module}.{key}"
    assert load_checkpoint(latest_checkpoint(tmp_path / "off"))["health"] is None


def test_resume_continues_the_monitor_exactly(mnist, tmp_path, ignores_z):
    cfg = dict(steps=COLLAPSE_WARMUP + 20, checkpoint_every=60)
    straight, _ = train(digits_config(mnist, **cfg), tmp_path / "straight")
    steps: list[int] = []
    stop = Callbacks(on_step=lambda s: steps.append(s["step"]), should_stop=lambda: len(steps) >= 60)
    Trainer(digits_config(mnist, **cfg), stop, run_dir=tmp_path / "split").run()
    assert read_health(tmp_path / "split") == []  # the collapse is only judged after the warm-up
    resumed = Trainer.resume(tmp_path / "split")
    resumed.run()
    assert resumed.health is not None and straight.health is not None
    assert resumed.health.state_dict() == straight.health.state_dict()
    assert [f.to_dict() for f in read_health(tmp_path / "split")] == [
        f.to_dict() for f in read_health(tmp_path / "straight")
    ]


def test_hysteresis_raises_at_once_and_clears_only_after_five_agreeing_checks():
    level = _Level(clear_after=5)
    raw = ["ok", "warning", "ok", "ok", "problem", "note", "ok", "note", "ok", "ok", "ok", "ok", "ok"]
    changes = [(i, level.level) for i, r in enumerate(raw) if level.update(r)]
    assert changes == [(1, "warning"), (4, "problem"), (9, "ok")]


def test_a_discriminator_winning_in_spells_is_one_finding_until_it_stops(tmp_path, mnist):
    monitor = HealthMonitor(digits_config(mnist), tmp_path)
    noise = torch.Generator().manual_seed(0)
    found: list[Finding] = []
    step = 0
    for winning, n in [(False, OVERPOWER_WARMUP), (True, 60), (False, 30), (True, 40), (False, 200)]:
        for _ in range(n):
            step += 1
            e = float(torch.randn((), generator=noise)) * 0.02
            acc, conf = (1.0, 0.95 + e) if winning else (0.7, 0.3 + e)
            stats = {"d_acc_real": acc, "d_acc_fake": acc, "d_confidence": conf, "loss_d": 1 + e, "loss_g": 1 + e}
            found += monitor.observe_step(step, stats)
    # raised once while D wins; the 30 steps between the two spells are too few to clear it
    assert [(f.detector, f.level) for f in found if f.detector == "overpowering"] == [
        ("overpowering", "problem"),
        ("overpowering", "ok"),
    ]


def test_overfitting_needs_the_augmentation_maxed(tmp_path, mnist):
    monitor = HealthMonitor(digits_config(mnist), tmp_path)  # ADA on, target 0.6
    found: list[Finding] = []
    p = [min(1.0, step / 100) for step in range(1, 301)]  # ADA raising p while D calls 97% of the reals real
    for step in range(1, 301):
        found += monitor.observe_step(step, {"d_acc_real": 0.97, "d_acc_fake": 0.6, "augment_p": p[step - 1]})
    maxed = next(s for s in range(100, 301, 10) if np.mean(p[s - OVERFIT_WINDOW : s]) >= P_MAXED)
    assert [(f.level, f.step) for f in found if f.detector == "overfitting"] == [("problem", maxed)]
    finding = found[-1]
    assert finding.evidence["rt"] == pytest.approx(0.94) and finding.evidence["augment_p"] >= 0.99
    assert {"family": "fastgan"} in [f.settings for f in finding.fixes]


def test_stalled_quality_suggests_stopping_at_the_best_checkpoint(tmp_path, mnist):
    monitor = HealthMonitor(digits_config(mnist), tmp_path)
    found: list[Finding] = []
    # KD rising for 8 measurements before step 1000 (STALL_MIN_STEPS) is early training, not a stall
    early = [(step, 0.3 + step / 1000) for step in range(100, 1000, 100)]
    late = [(1000, 0.30), (1200, 0.20), (1400, 0.21), (1600, 0.199), (1800, 0.22), (2000, 0.205)]
    for step, kid in early + late:
        found += monitor.observe_metric({"step": step, "kid": kid, "kid_std": 0.01, "kid_name": "KD"})
    assert [(f.level, f.step) for f in found] == [("warning", 2000)]
    stop = found[0].fixes[0]
    assert stop.action == "stop" and "step 1600" in stop.label and found[0].evidence["best_step"] == 1600
    found = monitor.observe_metric({"step": 2200, "kid": 0.1, "kid_std": 0.01, "kid_name": "KD"})
    assert [f.level for f in found] == ["ok"]


def test_auto_remedies_lower_the_learning_rates_mid_run(mnist, tmp_path):
    logs: list[str] = []
    trainer, found = train(
        digits_config(mnist, lr_g=1.0, lr_d=1.0, steps=40, auto_remedies=True), tmp_path / "run", on_log=logs.append
    )
    finding = first(found, "divergence")
    assert finding is not None and finding.evidence["auto_remedy"]["settings"] == {"lr_g": 0.5, "lr_d": 0.5}
    assert any(m.startswith(f"Automatic remedy at step {finding.step}") for m in logs)
    assert trainer.family.optimizers["G"].param_groups[0]["lr"] <= 0.5
    assert json.loads((tmp_path / "run" / "config.json").read_text())["lr_d"] == 0.5
    assert read_health(tmp_path / "run")[0].evidence["auto_remedy"]["label"] == finding.fixes[0].label


def test_auto_remedies_need_the_health_checks():
    from engine.errors import ConfigError

    with pytest.raises(ConfigError, match="auto_remedies"):
        TrainConfig(dataset="x", health=False, auto_remedies=True).validate()


def test_cli_train_prints_findings(mnist, tmp_path, capsys):
    code = main(
        ["train", str(mnist), "--out", str(tmp_path / "run"), "--steps", "30", "--lr", "1.0", "--batch", "16"]
        + ["--option", "latent_dim=16", "--option", "base_channels=8", "--option", "max_channels=32"]
    )
    out = capsys.readouterr().out
    assert code == 0
    line = next(x for x in out.splitlines() if x.startswith("[health] problem: Training is diverging"))
    assert "Try: Lower the learning rates to 5e-1" in line


def test_findings_round_trip_and_read_health_skips_a_torn_line(tmp_path):
    finding = Finding("stalled", "warning", 7, "m.", (Fix("Stop", {}, "stop"),), {"series": {"kid": [[1, 0.5]]}})
    assert Finding.from_dict(json.loads(json.dumps(finding.to_dict()))) == finding
    (tmp_path / "health.jsonl").write_text(json.dumps(finding.to_dict()) + "\n" + '{"detector": "coll')
    assert read_health(tmp_path) == [finding]
    assert current_levels([finding]) == {**dict.fromkeys(DETECTORS, "ok"), "stalled": "warning"}
    assert set(DETECTOR_LABELS) == set(DETECTORS)
    assert describe_finding(finding) == "[health] warning: m. Try: Stop."


def test_translators_get_the_step_detectors_only(tmp_path):
    dataset = make_ab_dataset(tmp_path)
    trainer = Trainer(tiny_config(dataset, family="pix2pix", steps=2), run_dir=tmp_path / "run")
    trainer.run()
    assert trainer.health is not None and trainer.health.images is None
