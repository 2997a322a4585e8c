"""StyleGAN2 beyond the shared family contract: the mapping/synthesis split, truncation toward w_avg,
style mixing, demodulation, the lazy path length schedule, deterministic sampling and truncation
through the runners and the ONNX export."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from engine.families import get_family
from engine.families.base import ModelSpec
from engine.families.stylegan2 import StyleGAN2, StyleGAN2Config, StyleGenerator, recommended_r1_gamma
from engine.nn.style import ModulatedConv2d, SynthesisLayer
from engine.runs import TrainConfig
from engine.runs.checkpoint import save_checkpoint

TINY = dict(StyleGAN2.tiny_options)


def _family(resolution: int = 32, classes: int = 0, seed: int = 0, **options) -> StyleGAN2:
    cfg = TrainConfig(
        dataset="unused",
        family="stylegan2",
        family_options={**TINY, **options},
        batch_size=4,
        r1_gamma=1.0,
        r1_every=2,
    )
    torch.manual_seed(seed)
    return StyleGAN2(ModelSpec(resolution, 3, classes), cfg, torch.device("cpu"))


def _batch(n: int = 4, resolution: int = 32, classes: int = 0, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, resolution, resolution, generator=gen) * 2 - 1
    return x, (torch.arange(n) % classes if classes else None)


def _generator(fam: StyleGAN2, ema: bool = True) -> StyleGenerator:
    G = fam.modules["G_ema" if ema else "G"]
    assert isinstance(G, StyleGenerator)
    return G


def _random_noise_strengths(G: StyleGenerator) -> None:
    """Nonzero per-layer noise (it starts at 0), so that noise modes make a visible difference."""
    with torch.no_grad():
        for layer in G.synthesis.layers:
            layer.noise_strength.fill_(0.5)


def test_registered_under_its_name():
    assert get_family("stylegan2") is StyleGAN2


@pytest.mark.parametrize("resolution", [16, 32, 64])
def test_mapping_and_synthesis_shapes(resolution):
    fam = _family(resolution, classes=3)
    G = _generator(fam)
    z = torch.randn(5, fam.latent_dim)
    labels = torch.tensor([0, 1, 2, 0, 1])
    ws = G.mapping(z, labels)
    # one w per synthesis layer (1 at 4 px, 2 per larger size) plus the last toRGB
    assert ws.shape == (5, 2 * int(math.log2(resolution)) - 2, TINY["w_dim"])
    assert torch.equal(ws[:, 0], ws[:, -1])  # mapping broadcasts one w; mixing and editing vary them
    image = G.synthesis(ws)
    assert image.shape == (5, 3, resolution, resolution)
    with torch.no_grad():
        assert torch.equal(G(z, labels), G.synthesis(G.mapping(z, labels), "const"))
    # the class changes the image
    assert not torch.allclose(G.synthesis(G.mapping(z, torch.zeros(5, dtype=torch.long))), image)


def test_truncation_zero_gives_the_w_avg_image_for_any_latent():
    fam = _family()
    fam.train_step(*_batch(), step=1, micro_batches=1)
    G = _generator(fam)
    _random_noise_strengths(G)
    w_avg = G.mapping.w_avg
    assert w_avg.abs().sum() > 0, "training tracked no w_avg"
    images = fam.sample(torch.randn(6, fam.latent_dim) * 3, truncation=0.0)
    assert torch.allclose(images, images[:1].expand_as(images), atol=1e-6)
    mean_image = G.synthesis(w_avg.expand(1, G.synthesis.num_ws, -1), "const").clamp(-1, 1)
    assert torch.allclose(images[0], mean_image[0], atol=1e-6)
    # psi between 0 and 1 interpolates in W, not in z: it differs from scaling z
    z = torch.randn(3, fam.latent_dim)
    half = fam.sample(z, truncation=0.5)
    assert not torch.allclose(half, fam.sample(z * 0.5), atol=1e-4)
    assert not torch.allclose(half, fam.sample(z), atol=1e-4)


def test_training_tracks_w_avg_with_the_configured_decay():
    fam = _family(w_avg_beta=0.5)
    G = fam.modules["G"]
    assert isinstance(G, StyleGenerator)
    z = torch.randn(8, fam.latent_dim)
    with torch.no_grad():
        w = G.mapping(z)[:, 0]
        G.train()(z)
    assert torch.allclose(G.mapping.w_avg, w.mean(0) * 0.5, atol=1e-6)  # lerp from 0 with beta 0.5
    before = G.mapping.w_avg.clone()
    fam.sample(z, ema=False)  # sampling the training G must not move it
    assert torch.equal(G.mapping.w_avg, before)


def test_style_mixing_changes_training_output_and_keeps_the_early_layers():
    fam = _family(style_mixing=1.0)
    G = fam.modules["G"]
    assert isinstance(G, StyleGenerator)
    z = torch.randn(4, fam.latent_dim)
    # noise strength is 0 at init, so any difference below comes from the mixed styles alone
    with torch.no_grad():
        torch.manual_seed(3)
        mixed = G(z)
        G.style_mixing = 0.0
        torch.manual_seed(3)
        plain = G(z)
    assert not torch.allclose(mixed, plain, atol=1e-5)

    G.style_mixing = 1.0
    ws = G.mapping(z).detach()
    torch.manual_seed(4)
    out = G.mix_styles(z, None, ws).detach()
    torch.manual_seed(4)
    cutoff = int(torch.randint(1, ws.shape[1], ()))
    torch.rand(())
    other = G.mapping(torch.randn_like(z)).detach()
    assert 1 <= cutoff < ws.shape[1]
    assert torch.equal(out[:, :cutoff], ws[:, :cutoff]) and torch.equal(out[:, cutoff:], other[:, cutoff:])
    G.style_mixing = 0.0
    assert G.mix_styles(z, None, ws) is ws
    # eval mode (the EMA generator) never mixes
    assert torch.equal(_generator(fam)(z), _generator(fam)(z))


def test_demodulation_keeps_activations_near_unit_std_at_init():
    torch.manual_seed(0)
    x = torch.randn(16, 64, 16, 16)
    w = torch.randn(16, 32)
    demod = ModulatedConv2d(64, 64, 3, 32)
    plain = ModulatedConv2d(64, 64, 3, 32, demodulate=False)
    plain.load_state_dict(demod.state_dict())
    with torch.no_grad():
        for conv in (demod, plain):  # larger styles: demodulation must cancel their scale
            conv.affine.weight.mul_(4.0)
        std_demod = float(demod(x, w).std())
        std_plain = float(plain(x, w).std())
    assert 0.8 < std_demod < 1.25, std_demod
    assert std_plain > 2.0, std_plain  # without demodulation the style scale passes straight through

    # Through a whole 64 px synthesis network, measured: each modulated conv's output/input RMS stays
    # 0.68-1.12 and the activations 0.39-0.83 (zero padding at 4 px and the bilinear upsampling smooth
    # them a little), whatever the style scale; without demodulation they grow x18 by the last layer
    # at init and x10^6 with 4x styles.
    for style_scale in (1.0, 4.0):
        gains, rms = _synthesis_rms(style_scale, demodulate=True)
        assert all(0.6 < g < 1.25 for g in gains), gains
        assert all(0.3 < r < 1.5 for r in rms), rms
    _, rms = _synthesis_rms(1.0, demodulate=False)
    assert rms[-1] > 5.0, rms


def _synthesis_rms(style_scale: float, demodulate: bool) -> tuple[list[float], list[float]]:
    """(output/input RMS of every modulated 3x3 conv, RMS of every synthesis layer's output) at init."""
    G = _generator(_family(64, base_channels=32, max_channels=64, w_dim=64))
    gains: list[float] = []
    rms: list[float] = []
    hooks = []
    for layer in G.synthesis.modules():
        if isinstance(layer, SynthesisLayer):
            layer.conv.demodulate = demodulate
            with torch.no_grad():
                layer.conv.affine.weight.mul_(style_scale)
            hooks.append(layer.conv.register_forward_hook(lambda _m, i, o: gains.append(float(_rms(o) / _rms(i[0])))))
            hooks.append(layer.register_forward_hook(lambda _m, _i, o: rms.append(float(_rms(o)))))
    with torch.no_grad():
        G(torch.randn(16, 16))
    for h in hooks:
        h.remove()
    assert len(rms) == 9  # 1 layer at 4 px, 2 at each of 8-64 px
    return gains, rms


def _rms(x: torch.Tensor) -> torch.Tensor:
    return x.square().mean().sqrt()


def test_path_length_penalty_runs_on_its_schedule():
    fam = _family(pl_every=2)
    seen = []
    for step in range(5):
        stats = fam.train_step(*_batch(seed=step), step=step, micro_batches=1)
        seen.append("pl" in stats)
        if "pl" in stats:
            assert math.isfinite(stats["pl"]) and stats["pl"] > 0
    assert seen == [True, False, True, False, True]
    assert float(fam.pl_mean) > 0  # the running target length moved from 0
    # the penalty is its own G update (the paper's lazy "Greg" phase); weight 0: no update, no stat
    assert _optimizer_steps(_family(pl_weight=0.0), step=0) == ["D", "G"]
    assert _optimizer_steps(_family(pl_every=2), step=0) == ["D", "G", "G"]
    assert _optimizer_steps(_family(pl_every=2), step=1) == ["D", "G"]


def _optimizer_steps(fam: StyleGAN2, step: int) -> list[str]:
    """Which optimizers stepped, in order, during one train step."""
    steps: list[str] = []
    original = fam._optimizer_step

    def counting(key: str) -> None:
        steps.append(key)
        original(key)

    fam._optimizer_step = counting  # type: ignore[method-assign]
    fam.train_step(*_batch(), step=step, micro_batches=1)
    return steps


def test_path_length_mean_survives_save_and_load():
    fam = _family()
    fam.train_step(*_batch(), step=0, micro_batches=1)
    other = _family(seed=5)
    other.load_state_dict(fam.state_dict())
    assert torch.equal(other.pl_mean, fam.pl_mean) and float(fam.pl_mean) > 0


def test_const_noise_makes_sampling_deterministic_and_random_noise_does_not():
    fam = _family()
    G = _generator(fam)
    _random_noise_strengths(G)
    z = torch.randn(3, fam.latent_dim)
    assert torch.equal(fam.sample(z), fam.sample(z))
    ws = G.mapping(z)
    with torch.no_grad():
        a, b = G.synthesis(ws, "random"), G.synthesis(ws, "random")
        const, none = G.synthesis(ws, "const"), G.synthesis(ws, "none")
    assert not torch.allclose(a, b)
    assert not torch.allclose(const, none)
    with pytest.raises(ValueError, match="noise_mode"):
        G.synthesis(ws, "loud")


def test_conditional_discriminator_projects_the_class():
    fam = _family(classes=3)
    D = fam.modules["D"]
    x, _ = _batch()
    with torch.no_grad():
        a = D(x, torch.zeros(4, dtype=torch.long))
        b = D(x, torch.full((4,), 2))
    assert a.shape == (4,) and not torch.allclose(a, b)
    with pytest.raises(ValueError, match="class"):
        D(x)


def test_minibatch_std_handles_batches_not_divisible_by_the_group():
    D = _family().modules["D"]
    with torch.no_grad():
        for n in (1, 3, 5, 6):
            assert D(torch.rand(n, 3, 32, 32)).shape == (n,)


def test_options_are_checked():
    from engine.errors import ConfigError

    with pytest.raises(ConfigError, match="style_mixing"):
        StyleGAN2Config(style_mixing=1.5)
    with pytest.raises(ConfigError, match="pl_every"):
        StyleGAN2Config(pl_every=0)


@pytest.mark.parametrize("resolution,device", [(64, "cpu"), (256, "cuda"), (512, "cuda"), (1024, "cuda")])
def test_recommended_settings_are_valid(resolution, device):
    settings = StyleGAN2.recommended_settings(resolution, device)
    options = settings.pop("family_options")
    TrainConfig(dataset="x", family="stylegan2", **settings).validate()
    cfg = StyleGAN2Config(**options)
    assert settings["beta1"] == 0 and settings["r1_gamma"] == round(recommended_r1_gamma(resolution), 4)
    widths = [min(cfg.base_channels * resolution // s, cfg.max_channels) for s in (4, resolution)]
    if device == "cpu":
        assert cfg.mapping_layers == 2 and max(widths) <= 128
    else:
        assert cfg.mapping_layers == 8 and widths[0] == 512
        assert cfg.base_channels * resolution == (32768 if resolution >= 512 else 16384)  # the paper's channel_base
    assert recommended_r1_gamma(1024) > recommended_r1_gamma(256) > recommended_r1_gamma(64)


def _checkpoint(fam: StyleGAN2, path):
    save_checkpoint(
        path,
        {
            "family": "stylegan2",
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


@pytest.mark.parametrize("classes", [0, 2])
def test_runners_and_export_apply_truncation_in_w(tmp_path, classes):
    from engine.export import OrtRunner, export_onnx
    from engine.inference import TorchRunner
    from engine.inference.runner import latents_for_seeds

    from .helpers import marked_as_by_export

    fam = _family(classes=classes)
    fam.train_step(*_batch(classes=classes), step=1, micro_batches=1)
    _random_noise_strengths(_generator(fam))
    ckpt = _checkpoint(fam, tmp_path / "step-000001.pt")
    runner = TorchRunner(ckpt, device="cpu")
    assert runner.truncates_in_w
    seeds, label = [1, 2, 3], 1 if classes else None
    got = runner.generate(seeds, class_index=label, truncation=0.6)
    z = torch.from_numpy(latents_for_seeds(seeds, fam.latent_dim))
    y = None if label is None else torch.full((3,), label)
    expected = ((fam.sample(z, y, truncation=0.6) + 1) * 127.5).clamp(0, 255).round().byte().permute(0, 2, 3, 1)
    assert np.abs(got.astype(int) - expected.numpy()).max() <= 1
    assert not np.array_equal(got, runner.generate(seeds, class_index=label))

    result = export_onnx(ckpt, tmp_path / "g.onnx")
    assert result.max_abs_error <= 1e-4
    ort = OrtRunner(tmp_path / "g.onnx")
    assert ort.truncates_in_w
    for psi in (1.0, 0.6, 0.1):
        ort_images = ort.generate(seeds, class_index=label, truncation=psi)
        torch_images = marked_as_by_export(runner.generate(seeds, class_index=label, truncation=psi), ort)
        assert np.abs(ort_images.astype(int) - torch_images).max() <= 1, psi


def test_cli_and_presets_start_from_the_recommended_settings(tmp_path):
    from engine.cli import _train_config, build_parser
    from studio.presets import preset_settings

    from .helpers import make_dataset

    dataset = make_dataset(tmp_path, per_class=2)  # imported at 32 px
    args = build_parser().parse_args(
        ["train", str(dataset), "--family", "stylegan2", "--steps", "5", "--option", "max_channels=32"]
        + ["--device", "cpu", "--set", "lr_g=0.001"]
    )
    cfg = _train_config(args)
    assert (cfg.lr_g, cfg.lr_d, cfg.beta1, cfg.beta2) == (0.001, 0.0025, 0.0, 0.99)  # the user's lr_g wins
    assert cfg.r1_gamma == round(recommended_r1_gamma(32), 4)
    assert cfg.family_options["max_channels"] == 32 and cfg.family_options["mapping_layers"] == 2
    # a family without recommendations keeps the TrainConfig defaults
    plain = _train_config(build_parser().parse_args(["train", str(dataset), "--family", "dcgan", "--steps", "5"]))
    assert (plain.lr_g, plain.beta1, plain.r1_gamma) == (TrainConfig.lr_g, TrainConfig.beta1, TrainConfig.r1_gamma)

    cpu = preset_settings("balanced", StyleGAN2, "cpu", 64)
    gpu = preset_settings("quality", StyleGAN2, "gpu-large", 1024)
    assert cpu["resolution"] == 64 and cpu["family_options"]["mapping_layers"] == 2 and cpu["lr_g"] == 0.0025
    assert (
        gpu["resolution"] == 1024
        and gpu["family_options"]["base_channels"] == 32
        and "mapping_layers" not in (gpu["family_options"])
    )
    quick = preset_settings("quick", StyleGAN2, "cpu", 64)  # half width, from the recommended width
    assert quick["family_options"]["base_channels"] == 16
