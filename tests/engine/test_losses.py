"""The adversarial losses, their stabilisers (label smoothing, instance noise, n_critic, gradient penalty,
minibatch layers) and the vanilla family training on a real folder.

Expected values are computed here from each loss's formula with plain Python floats, never by calling
the code under test twice."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from engine.consent import attest
from engine.data import import_folder, load_dataset
from engine.errors import ConfigError
from engine.families import get_family
from engine.families.base import ModelSpec
from engine.nn.layers import (
    MinibatchDiscrimination,
    MinibatchStdDev,
    add_instance_noise,
    instance_noise_std,
    per_sample_norms,
)
from engine.nn.losses import LOSSES, adversarial_loss, get_loss, gradient_penalty, interpolates
from engine.runs import TrainConfig
from engine.runs.checkpoint import latest_checkpoint, load_checkpoint
from engine.runs.config import LOSS_NAMES, SMOOTHABLE_LOSSES
from engine.training import Callbacks, Trainer

from .helpers import make_dataset, tiny_config

REAL = [2.0, -1.0, 0.5]
FAKE = [-0.3, 1.2]


def _mean(values):
    return sum(values) / len(values)


def _softplus(v: float) -> float:
    return math.log1p(math.exp(v))


def _family(name: str = "vanilla", spec: ModelSpec | None = None, seed: int = 0, **train):
    cls = get_family(name)
    fields = dict(dataset="unused", family=name, family_options=dict(cls.tiny_options), batch_size=4)
    fields.update(train)
    torch.manual_seed(seed)
    return cls(spec or ModelSpec(16, 3, 0), TrainConfig(**fields), torch.device("cpu"))


def _batch(spec: ModelSpec, n: int = 4, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, spec.channels, spec.resolution, spec.resolution, generator=gen) * 2 - 1


# -- the losses ------------------------------------------------------------------------------------


def test_config_choices_are_the_registered_losses():
    assert tuple(LOSSES) == LOSS_NAMES == ("ns", "hinge", "wgan-gp", "lsgan")
    assert SMOOTHABLE_LOSSES == tuple(name for name, loss in LOSSES.items() if not loss.smoothing_refusal)


EXPECTED_D = {
    "ns": _mean([_softplus(-r) for r in REAL]) + _mean([_softplus(f) for f in FAKE]),
    "hinge": _mean([max(0.0, 1 - r) for r in REAL]) + _mean([max(0.0, 1 + f) for f in FAKE]),
    "wgan-gp": _mean(FAKE) - _mean(REAL) + 1e-3 * _mean([r * r for r in REAL]),
    "lsgan": 0.5 * _mean([(r - 1) ** 2 for r in REAL]) + 0.5 * _mean([f * f for f in FAKE]),
}
EXPECTED_G = {
    "ns": _mean([_softplus(-f) for f in FAKE]),
    "hinge": -_mean(FAKE),
    "wgan-gp": -_mean(FAKE),
    "lsgan": 0.5 * _mean([(f - 1) ** 2 for f in FAKE]),
}


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_each_loss_value_matches_its_formula(name):
    d_loss, g_loss = get_loss(name)
    real, fake = torch.tensor(REAL, dtype=torch.float64), torch.tensor(FAKE, dtype=torch.float64)
    assert float(d_loss(real, fake)) == pytest.approx(EXPECTED_D[name], rel=1e-12)
    assert float(g_loss(fake)) == pytest.approx(EXPECTED_G[name], rel=1e-12)


def test_unknown_loss_is_refused_with_the_known_ones():
    with pytest.raises(ConfigError, match="'loss'.*ns, hinge, wgan-gp, lsgan"):
        TrainConfig(dataset="x", loss="wgan").validate()  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="ns, hinge, wgan-gp, lsgan"):
        adversarial_loss("wgan")


def test_label_smoothing_lowers_the_real_target_as_defined():
    s = 0.1
    real, fake = torch.tensor(REAL, dtype=torch.float64), torch.tensor(FAKE, dtype=torch.float64)
    # ns: cross-entropy against probability 1 - s for reals; fakes unchanged (one-sided).
    sig = [1 / (1 + math.exp(-r)) for r in REAL]
    ns_real = _mean([-(1 - s) * math.log(p) - s * math.log(1 - p) for p in sig])
    ns_expected = ns_real + _mean([_softplus(f) for f in FAKE])
    assert float(get_loss("ns", s)[0](real, fake)) == pytest.approx(ns_expected, rel=1e-12)
    # lsgan: target 1 - s for reals.
    ls_expected = 0.5 * _mean([(r - (1 - s)) ** 2 for r in REAL]) + 0.5 * _mean([f * f for f in FAKE])
    assert float(get_loss("lsgan", s)[0](real, fake)) == pytest.approx(ls_expected, rel=1e-12)
    # D's best logit for a real is now log(0.9 / 0.1) instead of +infinity: the gradient vanishes there.
    logit = torch.tensor([math.log((1 - s) / s)], dtype=torch.float64, requires_grad=True)
    get_loss("ns", s)[0](logit, torch.zeros(1, dtype=torch.float64)).backward()
    assert abs(float(logit.grad)) < 1e-12
    # The G loss does not change.
    assert float(get_loss("ns", s)[1](fake)) == pytest.approx(EXPECTED_G["ns"], rel=1e-12)


@pytest.mark.parametrize("name", ["hinge", "wgan-gp"])
def test_label_smoothing_is_refused_where_it_means_nothing(name):
    with pytest.raises(ConfigError, match="'label_smoothing' has no meaning with loss"):
        get_loss(name, 0.1)
    with pytest.raises(ConfigError, match="label_smoothing"):
        _family(loss=name, label_smoothing=0.1)
    with pytest.raises(ConfigError, match="'label_smoothing' has no meaning with loss"):
        TrainConfig(dataset="x", loss=name, label_smoothing=0.1).validate()


def test_label_smoothing_changes_the_trained_d_loss():
    spec = ModelSpec(16, 3, 0)
    stats = []
    for s in (0.0, 0.2):
        fam = _family(loss="ns", label_smoothing=s, augment="")
        torch.manual_seed(1)
        stats.append(fam.train_step(_batch(spec), None, step=1, micro_batches=1))
    # Same weights and noise, so the fake term and D(real) are identical; only the real term moves.
    assert stats[0]["d_real"] == stats[1]["d_real"] and stats[0]["d_fake"] == stats[1]["d_fake"]
    # Per real logit r, smoothing adds s * (softplus(r) - softplus(-r)) = s * r: the loss moves by 0.2 * mean(r).
    assert stats[1]["loss_d"] - stats[0]["loss_d"] == pytest.approx(0.2 * stats[0]["d_real"], abs=1e-5)


def test_config_ranges_of_the_new_settings():
    for bad in ({"label_smoothing": 0.5}, {"label_smoothing": -0.1}, {"instance_noise": -1.0}):
        with pytest.raises(ConfigError, match=f"'{next(iter(bad))}'"):
            TrainConfig(dataset="x", **bad).validate()
    with pytest.raises(ConfigError, match="'instance_noise_kimg'"):
        TrainConfig(dataset="x", instance_noise_kimg=0.0).validate()
    with pytest.raises(ConfigError, match="'n_critic' must be at least 1"):
        TrainConfig(dataset="x", n_critic=0).validate()
    with pytest.raises(ConfigError, match="'gp_gamma'"):
        TrainConfig(dataset="x", gp_gamma=-1.0).validate()
    TrainConfig(dataset="x", loss="wgan-gp", n_critic=3, label_smoothing=0.0, instance_noise=0.2).validate()


# -- WGAN-GP -------------------------------------------------------------------------------------


def test_gradient_penalty_of_a_linear_critic_is_norm_minus_one_squared():
    # D(x) = <w, x>: its gradient is w at every point, so the penalty is (|w| - 1)^2 = (5 - 1)^2.
    critic = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[3.0, 4.0]]))
    real, fake = torch.randn(6, 2), torch.randn(6, 2)
    points = interpolates(real, fake)
    assert float(gradient_penalty(critic(points).squeeze(1), points).detach()) == pytest.approx(16.0, rel=1e-6)
    # The penalty can be minimised: its gradient w.r.t. w is 2 (|w| - 1) w / |w|.
    gradient_penalty(critic(points).squeeze(1), points).backward()
    assert torch.allclose(critic.weight.grad, torch.tensor([[2 * 4 * 3 / 5, 2 * 4 * 4 / 5]]))


def test_interpolates_lie_between_real_and_fake_one_weight_per_sample():
    real, fake = torch.randn(5, 3, 4, 4), torch.randn(5, 3, 4, 4)
    points = interpolates(real, fake)
    alpha = (points - fake) / (real - fake)  # the same weight for every pixel of a sample
    assert torch.allclose(alpha, alpha[:, :1, :1, :1].expand_as(alpha), atol=1e-4)
    assert bool(((alpha >= -1e-4) & (alpha <= 1 + 1e-4)).all())
    assert points.requires_grad and not real.requires_grad


def _count_steps(fam) -> dict[str, int]:
    counts = {"D": 0, "G": 0}
    for key in counts:
        fam.optimizers[key].register_step_post_hook(lambda *a, key=key: counts.__setitem__(key, counts[key] + 1))
    return counts


@pytest.mark.parametrize("loss,n_critic,expected", [("wgan-gp", 3, 3), ("wgan-gp", None, 5), ("ns", None, 1)])
def test_n_critic_does_that_many_d_updates_per_g_update(loss, n_critic, expected):
    spec = ModelSpec(16, 3, 0)
    fam = _family(loss=loss, n_critic=n_critic)
    counts = _count_steps(fam)
    for micro_batches in (1, 2):  # micro-batches accumulate gradients: still one D update per critic step
        stats = fam.train_step(_batch(spec), None, step=1, micro_batches=micro_batches)
    assert counts == {"D": 2 * expected, "G": 2}
    assert all(math.isfinite(v) for v in stats.values())
    assert ("gp" in stats) == (loss == "wgan-gp")


def test_wgan_gp_critic_has_no_batch_norm_and_scores_each_sample_alone():
    spec = ModelSpec(32, 3, 0)
    plain = _family("fastgan", spec)  # fastgan's D has batch norm by default
    critic = _family("fastgan", spec, loss="wgan-gp")
    assert any(isinstance(m, nn.BatchNorm2d) for m in plain.modules["D"].modules())
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in critic.modules["D"].modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in critic.modules["G"].modules())  # G keeps its own
    x = _batch(spec)
    other = x.clone()
    other[1:] = -other[1:]

    def first_score(D: nn.Module, batch: torch.Tensor) -> float:
        # train mode, as in a step; the spectral-norm power iteration is undone so only the batch differs
        saved = {k: v.clone() for k, v in D.state_dict().items()}
        with torch.no_grad():
            score = float(D.train()(batch)[0])
        D.load_state_dict(saved)
        return score

    # Sample 0's score must not depend on the rest of the batch, or the per-sample gradient penalty lies.
    assert first_score(critic.modules["D"], x) == pytest.approx(first_score(critic.modules["D"], other), abs=1e-6)
    assert first_score(plain.modules["D"], x) != pytest.approx(first_score(plain.modules["D"], other), abs=1e-6)
    stats = critic.train_step(x, None, step=1, micro_batches=1)
    assert stats["gp"] >= 0 and math.isfinite(stats["loss_d"])


def test_per_sample_norms_replaces_batch_norms_in_place():
    net = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2)))
    assert per_sample_norms(net) == 2
    assert isinstance(net[1], nn.GroupNorm) and isinstance(net[2][1], nn.GroupNorm)
    assert net[2][1].num_channels == 2


def test_ada_signal_is_measured_from_each_losses_boundary():
    real, fake = torch.tensor([0.6, 0.4, 3.0]), torch.tensor([1.0, 2.0])
    assert adversarial_loss("ns").ada_signal(real, fake).tolist() == real.tolist()
    assert torch.allclose(adversarial_loss("lsgan").ada_signal(real, fake), torch.tensor([0.1, -0.1, 2.5]))
    # a critic's real scores count as "judged real" above the mean fake score (1.5 here)
    assert torch.allclose(adversarial_loss("wgan-gp").ada_signal(real, fake), torch.tensor([-0.9, -1.1, 1.5]))


def test_ada_moves_once_per_step_whatever_n_critic_is():
    fam = _family(loss="wgan-gp", n_critic=3, ada=True)
    fam.ada.p = 0.5
    fam.train_step(_batch(ModelSpec(16, 3, 0)), None, step=1, micro_batches=1)
    assert abs(fam.ada.p - 0.5) == pytest.approx(4 / fam.ada.speed_images)


# -- instance noise ------------------------------------------------------------------------------


def test_instance_noise_decays_linearly_to_zero_at_the_set_kimg():
    assert instance_noise_std(0.2, 1.0, 0) == 0.2
    assert instance_noise_std(0.2, 1.0, 500) == pytest.approx(0.1)
    assert instance_noise_std(0.2, 1.0, 1000) == 0.0
    assert instance_noise_std(0.2, 1.0, 5000) == 0.0
    assert instance_noise_std(0.0, 1.0, 0) == 0.0
    x = torch.zeros(2000)
    torch.manual_seed(0)
    assert float(add_instance_noise(x, 0.3).std()) == pytest.approx(0.3, rel=0.1)
    assert add_instance_noise(x, 0.0) is x


def test_instance_noise_in_training_reaches_zero_at_the_set_kimg():
    spec = ModelSpec(16, 3, 0)
    fam = _family(instance_noise=0.5, instance_noise_kimg=0.012, augment="")  # 12 images: 3 steps of 4
    seen = [fam.train_step(_batch(spec), None, step=i, micro_batches=1)["instance_noise"] for i in range(5)]
    assert seen == pytest.approx([0.5, 0.5 * 2 / 3, 0.5 / 3, 0.0, 0.0])
    x = _batch(spec)
    assert torch.equal(fam._d_view(x), x)  # no augmentation, noise decayed: D sees the images as they are
    fam.images_seen = 0
    fam._noise_std = instance_noise_std(0.5, 0.012, 0)
    assert float((fam._d_view(x) - x).std()) == pytest.approx(0.5, rel=0.15)


# -- minibatch layers ----------------------------------------------------------------------------


def test_minibatch_stddev_appends_the_group_std():
    x = torch.randn(6, 3, 2, 2)
    out = MinibatchStdDev(group_size=3)(x)
    assert out.shape == (6, 4, 2, 2) and torch.equal(out[:, :3], x)
    data = x.numpy()
    for k in range(2):  # groups are samples k, k+2, k+4
        expected = np.sqrt(data[k::2].var(axis=0) + 1e-8).mean()
        for i in (k, k + 2, k + 4):
            assert np.allclose(out[i, 3].numpy(), expected, atol=1e-6)
    # a batch of one image repeated (collapse) gives ~0, any group size dividing the batch is used
    same = MinibatchStdDev(4)(x[:1].repeat(5, 1, 1, 1))
    assert float(same[:, 3].abs().max()) < 1e-3
    flat = MinibatchStdDev(4)(torch.randn(8, 5))
    assert flat.shape == (8, 6)


def test_minibatch_discrimination_sees_identical_samples():
    layer = MinibatchDiscrimination(in_features=4, kernels=3, kernel_dims=2)
    same = layer(torch.ones(5, 4))
    assert same.shape == (5, 7)
    assert torch.allclose(same[:, 4:], torch.full((5, 3), 4.0))  # exp(0) from each of the 4 others
    with torch.no_grad():
        layer.T.fill_(1.0)
    far = layer(torch.arange(5, dtype=torch.float32)[:, None].repeat(1, 4) * 10)
    assert float(far[:, 4:].max()) < 1e-6


@pytest.mark.parametrize("options", [{"minibatch_discrimination": 4}, {"minibatch_stddev": 2}])
def test_vanilla_minibatch_options_train(options):
    spec = ModelSpec(16, 3, 2)
    fam = _family(spec=spec, **{"family_options": {**get_family("vanilla").tiny_options, **options}})
    layer = MinibatchDiscrimination if "minibatch_discrimination" in options else MinibatchStdDev
    assert any(isinstance(m, layer) for m in fam.modules["D"].modules())
    stats = fam.train_step(_batch(spec), torch.tensor([0, 1, 0, 1]), step=1, micro_batches=2)
    assert math.isfinite(stats["loss_d"]) and math.isfinite(stats["loss_g"])


def test_dcgan_minibatch_stddev_option():
    spec = ModelSpec(32, 3, 0)
    fam = _family("dcgan", spec, family_options={**get_family("dcgan").tiny_options, "minibatch_stddev": 4})
    assert any(isinstance(m, MinibatchStdDev) for m in fam.modules["D"].modules())
    stats = fam.train_step(_batch(spec), None, step=1, micro_batches=1)
    assert math.isfinite(stats["loss_d"])


def test_translation_families_refuse_settings_they_do_not_have():
    with pytest.raises(ConfigError, match="no critic step for loss 'wgan-gp'.*ns, hinge, lsgan"):
        _family("pix2pix", ModelSpec(32, 3, 0), loss="wgan-gp")
    with pytest.raises(ConfigError, match="'instance_noise' is for noise-to-image families"):
        _family("pix2pix", ModelSpec(32, 3, 0), instance_noise=0.1)
    _family("pix2pix", ModelSpec(32, 3, 0), loss="lsgan", label_smoothing=0.1)


# -- training runs -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("losses"))


def _weights(run_dir):
    state = load_checkpoint(latest_checkpoint(run_dir))
    return state["step"], state["family_state"]["modules"]


@pytest.mark.parametrize(
    "family,settings",
    [
        ("vanilla", dict(loss="wgan-gp", n_critic=2, instance_noise=0.3, instance_noise_kimg=0.04)),
        ("dcgan", dict(loss="lsgan", label_smoothing=0.1, family_options={"minibatch_stddev": 2})),
        ("vanilla", dict(loss="ns", label_smoothing=0.1, family_options={"minibatch_discrimination": 4})),
    ],
)
def test_stabilisers_resume_bit_identical(dataset, tmp_path, family, settings):
    options = {**get_family(family).tiny_options, **settings.pop("family_options", {})}
    cfg = dict(steps=6, checkpoint_every=100, preview_every=2, family=family, family_options=options, **settings)
    Trainer(tiny_config(dataset, **cfg), run_dir=tmp_path / "straight").run()
    seen = []
    cb = Callbacks(on_step=lambda s: seen.append(s["step"]), should_stop=lambda: len(seen) >= 4)
    assert Trainer(tiny_config(dataset, **cfg), cb, run_dir=tmp_path / "split").run().step == 4
    assert Trainer.resume(tmp_path / "split").run().step == 6
    step_a, a = _weights(tmp_path / "straight")
    step_b, b = _weights(tmp_path / "split")
    assert step_a == step_b == 6
    for module in ("G", "G_ema", "D"):
        for key in a[module]:
            assert torch.equal(a[module][key], b[module][key]), f"{module}.{key} differs after resume"


def _bars_dataset(tmp_path):
    """24 real 16 px PNGs: a red field with a blue bar at a random height."""
    source = tmp_path / "bars"
    source.mkdir()
    rng = np.random.default_rng(0)
    for i in range(24):
        image = np.zeros((16, 16, 3), np.uint8)
        image[:] = (230, 40, 40)
        top = int(rng.integers(2, 8))
        image[top : top + 6, 4:12] = (20, 20, 220)
        Image.fromarray(image).save(source / f"{i:02d}.png")
    import_folder(source, tmp_path / "dataset", size=16)
    attest(tmp_path / "dataset", rights="own", people="none", attested_by="test")
    return tmp_path / "dataset"


def test_vanilla_learns_a_tiny_real_folder(tmp_path):
    dataset = _bars_dataset(tmp_path)
    data = load_dataset(dataset, 16).images.astype(np.float32) / 127.5 - 1
    mean_image = torch.from_numpy(data.mean(0)).permute(2, 0, 1)

    def distance(trainer):
        z = torch.randn(64, trainer.family.latent_dim, generator=torch.Generator().manual_seed(0))
        return float((trainer.family.sample(z).mean(0) - mean_image).abs().mean())

    settings = dict(family="vanilla", batch_size=16, augment="", r1_gamma=0.0, conditional=False, preview_every=0)
    settings.update(lr_g=1e-3, lr_d=1e-3, ema_half_life_kimg=0.5, checkpoint_every=1000)
    start = Trainer(tiny_config(dataset, steps=1, **settings), run_dir=tmp_path / "start")
    start.run()
    trained = Trainer(tiny_config(dataset, steps=100, **settings), run_dir=tmp_path / "trained")
    result = trained.run()
    assert result.step == 100 and latest_checkpoint(tmp_path / "trained") is not None
    # Untrained, the samples are grey noise around 0; trained, they take the folder's red and blue.
    assert distance(trained) < 0.6 * distance(start)
