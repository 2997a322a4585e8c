"""The esrgan family (issue 13): its networks, the degradations, training through the Trainer, exact
resume, what a run folder records, and the settings it refuses. Tiny models on the CPU; the images are
written by the tests (photos-mate is used where it is present)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from engine.consent import attest
from engine.data import import_folder, load_dataset
from engine.data.degrade import JPEG_QUALITY, degrade, gaussian_kernel, random_kernels
from engine.errors import ConfigError
from engine.families import get_family
from engine.families.base import ModelSpec
from engine.nn.sr import CompactSR, RRDBNet, UNetDiscriminatorSN
from engine.runs import TrainConfig
from engine.runs.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from engine.runs.info import read_stats, run_info, run_kind
from engine.training import Callbacks, Trainer

PHOTOS = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "photos-mate"
ESRGAN = get_family("esrgan")


def _photo_like(size: int, seed: int) -> np.ndarray:
    """A uint8 RGB image with smooth gradients, soft blobs and a few sharp edges (something to restore)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    image = np.stack([0.5 + 0.4 * np.sin(2 * np.pi * (f * xx + g * yy)) for f, g in rng.uniform(0.5, 3, (3, 2))], -1)
    for _ in range(6):
        cy, cx, r = rng.uniform(0, 1, 3) * [1, 1, 0.2]
        mask = ((yy - cy) ** 2 + (xx - cx) ** 2) < r**2
        image[mask] = rng.uniform(0, 1, 3)
    return (image.clip(0, 1) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def sr_dataset(tmp_path_factory):
    """Twelve 80 px images written as PNGs, imported and attested (prepared at 32 px by the import)."""
    tmp = tmp_path_factory.mktemp("sr")
    (tmp / "images").mkdir()
    for i in range(12):
        Image.fromarray(_photo_like(80, i)).save(tmp / "images" / f"{i:02d}.png")
    import_folder(tmp / "images", tmp / "dataset", size=32)
    attest(tmp / "dataset", rights="own", people="none", attested_by="test")
    return tmp / "dataset"


def _config(dataset: Path, **overrides) -> TrainConfig:
    options = {**ESRGAN.tiny_options, "source_size": 64, **overrides.pop("options", {})}
    fields = dict(
        dataset=str(dataset),
        family="esrgan",
        family_options=options,
        resolution=32,
        batch_size=4,
        steps=6,
        preview_every=3,
        preview_count=4,
        checkpoint_every=3,
        log_every=1,
        seed=1,
    )
    return TrainConfig(**{**fields, **overrides})


SPEC = ModelSpec(64, 3, 0)


def _family(spec: ModelSpec = SPEC, resolution: int | None = 32, **options):
    train = TrainConfig(
        dataset="unused",
        family="esrgan",
        family_options={**ESRGAN.tiny_options, "source_size": 64, **options},
        resolution=resolution,
    )
    torch.manual_seed(0)
    return ESRGAN(spec, train, torch.device("cpu"))


# -- networks --------------------------------------------------------------------------------------
@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize(
    "make",
    [
        lambda c, s: CompactSR(c, s, 8, 2),
        lambda c, s: CompactSR(c, s, 8, 2, residual="bicubic"),
        lambda c, s: RRDBNet(c, s, 8, 1, 4),
        lambda c, s: RRDBNet(c, s, 8, 1, 4, upsample="pixelshuffle"),
    ],
    ids=["compact", "compact-bicubic", "rrdb", "rrdb-pixelshuffle"],
)
@pytest.mark.parametrize("channels", [1, 3])
def test_upscalers_map_odd_sizes_to_scale_times_them(make, scale, channels):
    net = make(channels, scale)
    assert net.scale == scale and net.channels == channels
    for h, w in ((7, 9), (13, 5)):
        out = net(torch.rand(2, channels, h, w))
        assert out.shape == (2, channels, h * scale, w * scale) and torch.isfinite(out).all()


def test_discriminator_gives_a_logit_per_pixel_at_any_size():
    D = UNetDiscriminatorSN(3, 8)
    for h, w in ((37, 45), (16, 16)):
        assert D(torch.rand(2, 3, h, w)).shape == (2, 1, h, w)
    sn = [name for name, _ in D.named_parameters() if "parametrizations" in name]
    assert len(sn) == 8, "every inner convolution is spectrally normalised"


def test_compact_residual_starts_from_the_enlarged_input():
    x = torch.rand(1, 3, 6, 7)
    for residual in ("bicubic", "nearest"):  # an untrained compact network is its shortcut's enlargement
        net = CompactSR(3, 4, 8, 2, residual=residual)
        assert torch.allclose(net(x), F.interpolate(x, scale_factor=4, mode=residual))


# -- degradations ------------------------------------------------------------------------------------
def _hr(n: int = 3, size: int = 48) -> torch.Tensor:
    return torch.from_numpy(np.stack([_photo_like(size, i) for i in range(n)])).permute(0, 3, 1, 2).float() / 255


@pytest.mark.parametrize("scale", [2, 4])
def test_realistic_degradation_is_deterministic_per_generator_and_draws_nothing_else(scale):
    hr = _hr()
    before = torch.get_rng_state()
    a = degrade(hr, scale, torch.Generator().manual_seed(5))
    b = degrade(hr, scale, torch.Generator().manual_seed(5))
    c = degrade(hr, scale, torch.Generator().manual_seed(6))
    assert torch.equal(torch.get_rng_state(), before), "the global RNG was used"
    assert a.shape == (3, 3, 48 // scale, 48 // scale)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, (a * 255).round() / 255), "outputs are 8-bit levels"


def test_realistic_degradation_loses_more_than_a_bicubic_downscale():
    hr, gen = _hr(4, 64), torch.Generator().manual_seed(0)
    clean = degrade(hr, 4, gen, mode="bicubic")
    real = degrade(hr, 4, gen)
    assert torch.equal(clean, degrade(hr, 4, torch.Generator().manual_seed(9), mode="bicubic"))
    reference = F.interpolate(hr, size=(16, 16), mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)
    assert (clean - reference).abs().max() <= 0.5 / 255 + 1e-6  # bicubic = antialiased bicubic, rounded
    assert (real - reference).abs().mean() > 2 * (clean - reference).abs().mean()


def test_grey_images_degrade_to_grey():
    lr = degrade(_hr(2, 32).mean(1, keepdim=True), 2, torch.Generator().manual_seed(1))
    assert lr.shape == (2, 1, 16, 16)


def test_degradation_refuses_sizes_that_are_no_multiple_of_the_scale():
    with pytest.raises(ValueError, match="multiple"):
        degrade(torch.rand(1, 3, 30, 30), 4, torch.Generator())


def test_blur_kernels_are_normalised_and_anisotropic_ones_rotate():
    iso = gaussian_kernel(9, 1.5, 1.5, 0.0)
    assert math.isclose(float(iso.sum()), 1.0, rel_tol=1e-5) and torch.allclose(iso, iso.T)
    wide = gaussian_kernel(11, 3.0, 0.5, 0.0)
    assert torch.allclose(gaussian_kernel(11, 3.0, 0.5, math.pi / 2), wide.T, atol=1e-6)
    assert wide[5].sum() > wide[:, 5].sum(), "sigma_x spreads along x"
    kernels = random_kernels(6, (0.2, 3.0), torch.Generator().manual_seed(0))
    assert kernels.shape[0] == 6 and kernels.shape[-1] % 2 == 1
    assert torch.allclose(kernels.sum((1, 2)), torch.ones(6), atol=1e-5)
    assert JPEG_QUALITY[0] < JPEG_QUALITY[1]


# -- the family --------------------------------------------------------------------------------------
def test_family_describes_itself_and_upscales_clamped_with_the_ema():
    fam = _family(scale=2)
    assert fam.kind == "upscale" and fam.latent_dim == 0
    assert fam.describe() == {"kind": "upscale", "scale": 2, "channels": 3, "arch": "compact", "latent_dim": 0}
    assert set(fam.export_modules()) == {"upscaler"} and fam.export_modules()["upscaler"] is fam.modules["G_ema"]
    out = fam.upscale(torch.rand(2, 3, 9, 11))
    assert out.shape == (2, 3, 18, 22) and out.min() >= 0 and out.max() <= 1
    with pytest.raises(ConfigError, match="Upscale page|upscale"):
        fam.sample(torch.zeros(1, 0))
    assert ESRGAN.data_resolution(TrainConfig(dataset="x", family="esrgan", family_options={"source_size": 256})) == 256


@pytest.mark.parametrize("arch", ["compact", "rrdb"])
def test_both_phases_train_and_report_their_stats(arch):
    fam = _family(arch=arch, psnr_steps=1)
    real = _hr(4, 64) * 2 - 1
    first = fam.train_step(real, None, step=0, micro_batches=1)
    assert set(first) == {"loss_g", "l1", "psnr", "psnr_bicubic"}
    before = [p.detach().clone() for p in fam.modules["D"].parameters()]
    second = fam.train_step(real, None, step=1, micro_batches=2)
    assert {"loss_g", "loss_d", "l1", "perceptual", "adversarial", "psnr", "d_real", "d_fake"} <= set(second)
    assert all(math.isfinite(v) for v in second.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, fam.modules["D"].parameters())), "D did not learn"


def test_a_pixel_loss_only_run_has_no_discriminator():
    fam = _family(psnr_steps=None)
    assert set(fam.modules) == {"G", "G_ema"} and not fam.uses_perceptual
    stats = fam.train_step(_hr(2, 64) * 2 - 1, None, step=10_000, micro_batches=1)
    assert "loss_d" not in stats and "perceptual" not in stats


def test_grey_option_trains_a_one_channel_model():
    fam = _family(color="grey")
    fam.train_step(_hr(2, 64) * 2 - 1, None, step=0, micro_batches=1)
    assert fam.describe()["channels"] == 1 and fam.upscale(torch.rand(1, 1, 8, 8)).shape == (1, 1, 32, 32)


def test_previews_are_input_output_original_triplets():
    fam = _family()
    real = _hr(3, 64) * 2 - 1
    inputs = fam.preview_inputs(64, 0, lambda k: real[:k])
    assert torch.equal(inputs[0], fam.preview_inputs(64, 0, lambda k: real[:k])[0]), "fixed inputs"
    images, per_row = fam.render_preview(inputs)
    assert images.shape == (9, 3, 64, 64) and per_row == 6 and images.min() >= -1 and images.max() <= 1


def test_state_round_trip_continues_identically(tmp_path):
    fam = _family(psnr_steps=1, degradation="realistic")
    real = _hr(4, 64) * 2 - 1
    fam.train_step(real, None, step=0, micro_batches=1)
    save_checkpoint(tmp_path / "c.pt", {"family": "esrgan", "family_state": fam.state_dict()})
    other = _family(psnr_steps=1, degradation="realistic")
    other.load_state_dict(load_checkpoint(tmp_path / "c.pt", family="esrgan")["family_state"])
    torch.manual_seed(3)
    a = fam.train_step(real, None, step=1, micro_batches=1)
    torch.manual_seed(3)
    b = other.train_step(real, None, step=1, micro_batches=1)
    assert a == b  # same crops, same degradation draws, same optimizer states


@pytest.mark.parametrize(
    "options,resolution,spec,match",
    [
        ({"scale": 3}, 32, ModelSpec(64, 3, 0), "'scale'.*2, 4"),
        ({}, 18, ModelSpec(64, 3, 0), "'resolution'.*multiple of the scale 4"),
        ({"source_size": 64}, 128, ModelSpec(64, 3, 0), "larger than the images.*source_size"),
        ({"arch": "swinir"}, 32, ModelSpec(64, 3, 0), "'arch'.*compact"),
        ({"degradation": "jpeg"}, 32, ModelSpec(64, 3, 0), "'degradation'.*realistic"),
        ({"psnr_steps": -1}, 32, ModelSpec(64, 3, 0), "'psnr_steps'"),
        ({"adversarial_weight": -0.1}, 32, ModelSpec(64, 3, 0), "'adversarial_weight'"),
        ({}, 32, ModelSpec(64, 4, 0), "alpha.*--alpha white"),
        ({"color": "rgb"}, 32, ModelSpec(64, 1, 0), "color=grey"),
        ({"no_such": 1}, 32, ModelSpec(64, 3, 0), "no_such"),
    ],
)
def test_settings_that_cannot_work_are_refused_by_name(options, resolution, spec, match):
    with pytest.raises(ConfigError, match=match):
        _family(spec, resolution, **options)


def test_noise_to_image_settings_are_refused():
    for train in ({"loss": "wgan-gp"}, {"n_critic": 2}, {"instance_noise": 0.1}):
        cfg = TrainConfig(
            dataset="x", family="esrgan", family_options=dict(ESRGAN.tiny_options), resolution=16, **train
        )
        with pytest.raises(ConfigError, match="esrgan"):
            ESRGAN(ModelSpec(32, 3, 0), cfg, torch.device("cpu"))


def test_recommended_settings_are_valid_on_both_devices():
    cpu = ESRGAN.recommended_settings(512, "cpu")
    gpu = ESRGAN.recommended_settings(512, "cuda")
    assert cpu["family_options"]["psnr_steps"] is None and cpu["family_options"]["degradation"] == "bicubic"
    assert gpu["family_options"]["arch"] == "rrdb" and cpu["resolution"] <= gpu["resolution"]
    for settings in (cpu, gpu):
        TrainConfig(dataset="x", family="esrgan", **settings).validate()
        options = {**ESRGAN.tiny_options, **settings["family_options"], "source_size": 512}
        ESRGAN(
            ModelSpec(512, 3, 0),
            TrainConfig(dataset="x", family="esrgan", **{**settings, "family_options": options}),
            torch.device("cpu"),
        )


# -- through the Trainer -------------------------------------------------------------------------------
def test_training_prepares_the_source_size_lowers_l1_and_records_an_upscale_run(sr_dataset, tmp_path):
    options = {"psnr_steps": None, "degradation": "bicubic", "scale": 2, "base_channels": 16, "num_conv": 4}
    config = _config(sr_dataset, steps=100, lr_g=2e-3, beta1=0.9, checkpoint_every=100, options=options)
    logs = []
    result = Trainer(config, Callbacks(on_log=logs.append), run_dir=tmp_path / "run").run()
    assert result.step == 100
    assert load_dataset(sr_dataset, 64).size == 64  # prepared at source_size on demand (imported at 32)
    assert not any("smaller than source_size" in line for line in logs)  # 80 px images are not enlarged to 64
    # L1 on images it never saw, against its start (the compact network starts as bicubic enlargement)
    state = load_checkpoint(result.checkpoint)
    trained = ESRGAN(ModelSpec(**state["spec"]), TrainConfig.from_dict(state["config"]), torch.device("cpu"))
    trained.load_state_dict(state["family_state"])
    untrained = ESRGAN(ModelSpec(**state["spec"]), TrainConfig.from_dict(state["config"]), torch.device("cpu"))
    hr = torch.from_numpy(np.stack([_photo_like(64, i) for i in range(20, 24)])).permute(0, 3, 1, 2).float() / 255
    lr = degrade(hr, 2, torch.Generator(), mode="bicubic")
    start = float((untrained.upscale(lr) - hr).abs().mean())
    end = float((trained.upscale(lr) - hr).abs().mean())
    assert end < 0.95 * start, f"L1 went from {start:.5f} to {end:.5f}"
    assert all(r["psnr"] > 0 for r in read_stats(tmp_path / "run") if "psnr" in r)
    assert run_kind(tmp_path / "run") == "upscale"
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert meta["kind"] == "upscale" and meta["scale"] == 2 and meta["channels"] == 3 and meta["arch"] == "compact"
    info = run_info(tmp_path / "run")
    assert info["kind"] == "upscale" and info["resolution"] == 32 and info["last_stats"]["loss_g"] > 0
    preview = np.asarray(Image.open(info["latest_preview"]))
    assert preview.shape[1] > preview.shape[0]  # rows of triplets, two examples per row


def test_enlarged_images_are_named_in_the_log(sr_dataset, tmp_path):
    logs = []
    config = _config(sr_dataset, steps=1, resolution=32, options={"source_size": 128})
    Trainer(config, Callbacks(on_log=logs.append), run_dir=tmp_path / "run").run()
    assert any("12 of 12 images are smaller than source_size 128 px" in line for line in logs)


def test_stop_and_resume_gives_identical_weights(sr_dataset, tmp_path):
    options = {"psnr_steps": 3, "degradation": "realistic"}  # both phases, every random draw
    Trainer(_config(sr_dataset, options=options), run_dir=tmp_path / "straight").run()
    seen = []
    cb = Callbacks(on_step=lambda s: seen.append(s["step"]), should_stop=lambda: len(seen) >= 4)
    stopped = Trainer(_config(sr_dataset, options=options), cb, run_dir=tmp_path / "split").run()
    assert stopped.stopped and stopped.step == 4
    assert Trainer.resume(tmp_path / "split").run().step == 6
    a = load_checkpoint(latest_checkpoint(tmp_path / "straight"))["family_state"]
    b = load_checkpoint(latest_checkpoint(tmp_path / "split"))["family_state"]
    for module in ("G", "G_ema", "D"):
        for key in a["modules"][module]:
            assert torch.equal(a["modules"][module][key], b["modules"][module][key]), f"{module}.{key} differs"


def test_rrdb_run_exports_an_upscaler_that_onnxruntime_runs_like_pytorch(sr_dataset, tmp_path):
    from engine.export import export_onnx

    config = _config(sr_dataset, steps=1, preview_every=0, options={"arch": "rrdb", "upsample": "pixelshuffle"})
    run = Trainer(config, run_dir=tmp_path / "run").run().run_dir
    result = export_onnx(run, tmp_path / "up.onnx")
    assert result.max_abs_error <= 1e-4


def test_cli_train_takes_scale_and_the_recommended_crop(sr_dataset, tmp_path, capsys):
    from engine.cli import main

    common = ["train", str(sr_dataset), "--steps", "1", "--device", "cpu", "--json"]
    code = main([*common, "--family", "esrgan", "--scale", "2", "--out", str(tmp_path / "run")])
    assert code == 0, capsys.readouterr().err
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["family_options"]["scale"] == 2 and config["resolution"] == ESRGAN.CPU_CROP
    assert json.loads((tmp_path / "run" / "run.json").read_text())["scale"] == 2
    capsys.readouterr()
    assert main([*common, "--family", "dcgan", "--scale", "2", "--out", str(tmp_path / "dc")]) == 2
    assert "--scale is for upscaling families" in capsys.readouterr().err


@pytest.mark.slow
def test_a_photo_folder_imports_and_trains(tmp_path):
    if not PHOTOS.is_dir():
        pytest.skip(f"photos-mate not found at {PHOTOS}")
    folder = tmp_path / "photos"
    folder.mkdir()
    for photo in sorted(PHOTOS.glob("*.jpg"))[:3]:
        shutil.copy(photo, folder / photo.name)
    import_folder(folder, tmp_path / "dataset", size=64)
    attest(tmp_path / "dataset", rights="licensed", people="none", attested_by="test (photos-mate, GPL-2+)")
    config = _config(tmp_path / "dataset", steps=2, batch_size=3, options={"source_size": 256})
    logs = []
    result = Trainer(config, Callbacks(on_log=logs.append), run_dir=tmp_path / "run").run()
    assert result.step == 2 and not any("smaller than source_size" in line for line in logs)
    assert load_dataset(tmp_path / "dataset", 256).images.shape == (3, 256, 256, 3)
