"""Image-to-image families (pix2pix, cyclegan): the shared contract over every family and task, pair
derivation, data plans, training end to end with exact resume, translators and ONNX parity at two sizes."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from engine.data.pairs import (
    ab_rows,
    hints_to_channels,
    line_art,
    paired_plan,
    random_hints,
    roughen,
    thin,
    unpaired_plan,
)
from engine.errors import CheckpointError, ConfigError
from engine.families import family_names, get_family
from engine.families.base import ModelSpec
from engine.nn.color import encode_lab, lab_to_rgb, rgb_to_lab
from engine.runs import TrainConfig
from engine.runs.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from engine.tasks import get_task
from engine.training import Callbacks, Trainer

from .helpers import make_ab_dataset, make_dataset, tiny_config

TRANSLATORS = [name for name in family_names() if get_family(name).kind == "translate"]
CASES = [(name, task) for name in TRANSLATORS for task in get_family(name).tasks]


def _family(name: str, task: str, seed: int = 0, resolution: int = 32, channels: int = 3, **train):
    cls = get_family(name)
    options = dict(cls.tiny_options, **({"task": task} if "task" in cls.Config.__dataclass_fields__ else {}))
    cfg = TrainConfig(dataset="unused", family=name, family_options=options, batch_size=4, **train)
    torch.manual_seed(seed)
    return cls(ModelSpec(resolution, channels, 0), cfg, torch.device("cpu"))


def _batch(task: str, n: int = 4, seed: int = 0, size: int = 32, channels: int = 3) -> torch.Tensor:
    """Smooth random images (blurred noise), as a trainer batch: A and B concatenated for two-stream tasks."""
    gen = torch.Generator().manual_seed(seed)
    streams = 1 if get_task(task).derives_inputs else 2
    coarse = torch.rand(n, channels * streams, size // 4, size // 4, generator=gen)
    return torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear") * 2 - 1


def test_translation_families_are_registered():
    assert {"pix2pix", "cyclegan"} <= set(TRANSLATORS)
    assert ("pix2pix", "sketch") in CASES and ("pix2pix", "colorize") in CASES and ("cyclegan", "unpaired") in CASES


# -- the contract -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name,task", CASES)
def test_train_step_learns_and_translates_any_size(name, task):
    fam = _family(name, task)
    before = [p.detach().clone() for p in fam.modules["G"].parameters()]
    stats = fam.train_step(_batch(task), None, step=0, micro_batches=1)
    assert {"loss_d", "loss_g"} <= set(stats) and all(math.isfinite(v) for v in stats.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, fam.modules["G"].parameters())), "G did not learn"
    m = fam.multiple
    out = fam.translate(torch.rand(2, fam.in_channels, 2 * m, 5 * m) * 2 - 1)
    assert out.shape == (2, 3, 2 * m, 5 * m) and out.min() >= -1 and out.max() <= 1
    assert fam.describe()["kind"] == "translate" and fam.describe()["task"] == task


@pytest.mark.parametrize("name,task", CASES)
def test_micro_batches_and_save_load_round_trip(name, task, tmp_path):
    fam = _family(name, task)
    fam.train_step(_batch(task), None, step=0, micro_batches=2)
    save_checkpoint(tmp_path / "c.pt", {"family": name, "family_state": fam.state_dict()})
    other = _family(name, task, seed=99)
    other.load_state_dict(load_checkpoint(tmp_path / "c.pt", family=name)["family_state"])
    x = torch.rand(1, fam.in_channels, 32, 32) * 2 - 1
    assert torch.equal(fam.translate(x), other.translate(x))
    torch.manual_seed(5)  # the derived inputs and the flips draw from the global RNG
    a = fam.train_step(_batch(task, seed=1), None, step=1, micro_batches=1)
    torch.manual_seed(5)
    b = other.train_step(_batch(task, seed=1), None, step=1, micro_batches=1)
    assert a == b


@pytest.mark.parametrize("name,task", CASES)
def test_deterministic_under_seed(name, task):
    weights = []
    for _ in range(2):
        fam = _family(name, task, seed=3)
        torch.manual_seed(11)
        fam.train_step(_batch(task), None, step=0, micro_batches=1)
        weights.append(fam.modules["G_ema"].state_dict())
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


@pytest.mark.parametrize("name,task", CASES)
def test_onnx_export_matches_pytorch_at_two_sizes(name, task, tmp_path):
    from engine.export import OrtTranslator, export_onnx
    from engine.inference import TorchTranslator

    fam = _family(name, task)
    fam.train_step(_batch(task), None, step=0, micro_batches=1)
    ckpt = tmp_path / "step-000001.pt"
    save_checkpoint(
        ckpt,
        {
            "family": name,
            "spec": vars(fam.spec),
            "classes": [],
            "config": fam.train.to_dict(),
            "step": 1,
            "family_state": fam.state_dict(),
            "dataset_fingerprint": "f" * 64,
            "attestation_id": "a" * 32,
        },
    )
    result = export_onnx(ckpt, tmp_path / "t.onnx")
    assert result.max_abs_error <= 1e-4 and result.psnr_db > 60
    card = json.loads((tmp_path / "t.json").read_text())
    assert card["kind"] == "translator" and card["task"] == task
    ort, pt = OrtTranslator(tmp_path / "t.onnx"), TorchTranslator(ckpt, device="cpu")
    assert (ort.task, ort.in_channels, ort.multiple) == (pt.task, pt.in_channels, pt.multiple)
    rng = np.random.default_rng(0)
    hints = [(5, 7, (250, 30, 20))] if get_task(task).takes_hints else []
    for shape, work in (((48, 48, 3), 32), ((37, 61, 3), 61)):  # the second is not a multiple of anything
        image = rng.integers(0, 256, shape, dtype=np.uint8)
        a, b = pt.translate(image, hints, work_size=work), ort.translate(image, hints, work_size=work)
        assert a.shape == shape and b.shape == shape
        assert np.abs(a.astype(int) - b).max() <= 1  # uint8 rounding at most


def test_refusals_name_the_setting():
    with pytest.raises(ConfigError, match="task"):
        _family("pix2pix", "unpaired")
    with pytest.raises(ConfigError, match="alpha"):
        _family("pix2pix", "colorize", channels=4)
    with pytest.raises(ConfigError, match="translate"):
        _family("pix2pix", "sketch").sample(torch.zeros(1, 1))


# -- pair derivation ------------------------------------------------------------------------------
def test_lab_matches_scikit_image_and_round_trips():
    color = pytest.importorskip("skimage.color", reason="scikit-image is a dev dependency")
    rgb = torch.rand(2, 3, 9, 11, generator=torch.Generator().manual_seed(0))
    ours = rgb_to_lab(rgb).permute(0, 2, 3, 1).numpy()
    assert np.abs(ours - color.rgb2lab(rgb.permute(0, 2, 3, 1).numpy())).max() < 0.02
    assert (lab_to_rgb(rgb_to_lab(rgb)) - rgb).abs().max() < 1e-4
    L, ab = encode_lab(rgb * 2 - 1)
    assert L.min() >= -1 and L.max() <= 1 and ab.abs().max() <= 1


def _disc_image(size: int = 64) -> torch.Tensor:
    """A dark filled disc on white, as a (1,3,H,W) batch in [-1,1]."""
    ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    inside = ((xs - size / 2) ** 2 + (ys - size / 2) ** 2) < (size / 4) ** 2
    return torch.where(inside, -0.8, 1.0).float()[None, None].repeat(1, 3, 1, 1)


def test_line_art_traces_the_outline_with_one_pixel_lines():
    lines = line_art(_disc_image())[0, 0]
    ys, xs = torch.nonzero(lines, as_tuple=True)
    radius = ((xs.float() - 32) ** 2 + (ys.float() - 32) ** 2).sqrt()
    assert len(ys) > 60  # a closed ring around a 16 px radius disc
    assert (radius - 16).abs().max() < 4  # ink on the outline only, not inside or outside
    # one pixel wide: no 2x2 block of ink anywhere
    blocks = lines[:-1, :-1] * lines[1:, :-1] * lines[:-1, 1:] * lines[1:, 1:]
    assert blocks.sum() == 0


def test_thinning_agrees_with_scikit_image():
    morphology = pytest.importorskip("skimage.morphology", reason="scikit-image is a dev dependency")
    mask = torch.zeros(1, 1, 40, 40)
    mask[0, 0, 10:16, 5:35] = 1  # a thick bar
    mask[0, 0, 5:35, 18:23] = 1  # crossed by another
    ours = thin(mask)[0, 0].numpy().astype(bool)
    ref = morphology.thin(mask[0, 0].numpy().astype(bool))
    assert abs(int(ours.sum()) - int(ref.sum())) <= 0.2 * ref.sum()
    assert ours.sum() < mask.sum() / 3


def test_roughened_sketches_vary_and_are_reproducible():
    lines = line_art(_disc_image().repeat(4, 1, 1, 1))
    a = roughen(lines, torch.Generator().manual_seed(1))
    b = roughen(lines, torch.Generator().manual_seed(1))
    c = roughen(lines, torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    ink = (a < 0.5).flatten(1).sum(1)
    assert ink.min() > 0 and len(set(ink.tolist())) > 1  # every image has strokes, of differing weight
    assert a.min() >= -1 and a.max() <= 1


def test_random_hints_carry_the_true_colour():
    rgb = torch.zeros(64, 3, 32, 32)
    rgb[:, 0], rgb[:, 1], rgb[:, 2] = 0.8, -0.6, -0.6  # one red everywhere
    _, ab = encode_lab(rgb)
    hints = random_hints(ab, max_hints=10, generator=torch.Generator().manual_seed(0))
    mask = hints[:, 2:]
    counts = mask.flatten(1).sum(1)
    assert (counts == 0).sum() >= 2 and (counts > 0).sum() >= 40  # some examples without hints, most with
    assert torch.allclose(hints[:, :2] * mask, ab * mask, atol=1e-5)


def test_user_hints_land_at_scaled_positions():
    channels = hints_to_channels([(40, 20, (0, 0, 255))], height=32, width=32, scale=2.0)
    assert channels[0, 2, 10, 20] == 1 and channels[0, 2].sum() >= 1
    assert channels[0, 1, 10, 20] < -0.5  # blue has a strongly negative b
    with pytest.raises(ConfigError, match="outside"):
        hints_to_channels([(70, 5, (0, 0, 0))], 32, 32, scale=2.0)


def test_spread_hints_colour_the_whole_image_from_a_few_clicks():
    from engine.data.pairs import spread_hints

    sparse = hints_to_channels([(8, 8, (255, 0, 0)), (56, 56, (0, 0, 255))], 64, 64)
    spread = spread_hints(sparse)[0]
    red, blue = sparse[0, :2, 8, 8], sparse[0, :2, 56, 56]
    assert torch.allclose(spread[:2, 8, 8], red, atol=0.1) and torch.allclose(spread[:2, 56, 56], blue, atol=0.1)
    assert (spread[:2, 0, 0] - red).abs().max() < (spread[:2, 0, 0] - blue).abs().max()  # nearer hint wins
    assert spread[2, 8, 8] > spread[2, 32, 0] > 0  # confidence falls with distance but reaches everywhere
    assert spread_hints(torch.zeros(1, 3, 64, 64)).abs().max() == 0  # no hints: nothing invented


def test_derived_colorize_input_and_preview_show_the_hints():
    real = _disc_image(32)
    colorize, sketch = get_task("colorize"), get_task("sketch")
    inputs, target = colorize.derive_pair(real, max_hints=0)
    assert inputs.shape == (1, 7, 32, 32) and torch.equal(target, real) and inputs[:, 1:].abs().sum() == 0
    shown = sketch.visualise_input(sketch.derive_pair(real, rough=False)[0], 3)
    assert shown.shape == (1, 3, 32, 32) and torch.equal(shown[:, 0], shown[:, 2])  # grey lines, drawn as RGB
    red = torch.tensor([0.8, -0.6, -0.6]).view(1, 3, 1, 1).expand(8, 3, 32, 32)
    hinted, _ = colorize.derive_pair(red, max_hints=10, generator=torch.Generator().manual_seed(0))
    mask = hinted[:, 3] > 0  # the hint mask channel
    assert mask.any() and not mask.all()
    drawn = colorize.visualise_input(hinted, 3)  # the lightness in grey, the hints in their colour
    redness = drawn[:, 0] - drawn[:, 2]
    assert redness[mask].min() > 0.5 and redness[~mask].abs().max() < 0.02


# -- data plans -------------------------------------------------------------------------------------
def test_ab_plan_pairs_by_name_and_explains_failures():
    paths = ["A/cat.png", "A/dog.png", "B/cat.jpg", "B/dog.png", "B/owl.png"]
    rows = ab_rows(paths, ["A", "B"], "paired")
    plan = paired_plan(rows)
    assert [list(s) for s in plan.streams] == [[0, 1], [2, 3]] and plan.paired
    assert "1 image" in plan.notes[0]
    unpaired = unpaired_plan(rows)
    assert not unpaired.paired and [len(s) for s in unpaired.streams] == [2, 3]
    with pytest.raises(ConfigError, match="task 'paired' needs a dataset imported from a folder with A/ and B/"):
        ab_rows(["x/1.png"], ["x"], "paired")
    with pytest.raises(ConfigError, match="no file names"):
        paired_plan(ab_rows(["A/1.png", "B/2.png"], ["A", "B"], "paired"))


# -- training end to end ----------------------------------------------------------------------------
def _config(dataset, family: str, task: str | None = None, **overrides):
    cfg = tiny_config(dataset, family=family, conditional=False, r1_gamma=0.0, batch_size=4, **overrides)
    if task:
        cfg.family_options["task"] = task
    return cfg


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("shapes"))


@pytest.fixture(scope="module")
def ab_dataset(tmp_path_factory):
    return make_ab_dataset(tmp_path_factory.mktemp("ab"), unmatched=2)


@pytest.mark.parametrize("task", ["sketch", "colorize"])
def test_derived_task_trains_with_triplet_previews(shapes, tmp_path, task):
    grids = []
    result = Trainer(
        _config(shapes, "pix2pix", task), Callbacks(on_preview=lambda g, s: grids.append(g)), run_dir=tmp_path / "run"
    ).run()
    assert result.step == 6
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["kind"] == "translate" and info["task"] == task and info["latent_dim"] == 0
    # preview_count=4: four (input, output, target) triplets, two per row -> 2 rows x 6 columns of 32 px
    assert grids[-1].shape == (2 * 34 + 2, 6 * 34 + 2, 3)
    assert Image.open(tmp_path / "run" / "previews" / "step-000006.png").size == (206, 70)


def test_paired_run_resumes_bit_identically(ab_dataset, tmp_path):
    logs = []
    Trainer(
        _config(ab_dataset, "pix2pix", "paired", steps=6), Callbacks(on_log=logs.append), run_dir=tmp_path / "full"
    ).run()
    assert any("no partner" in line for line in logs)
    Trainer(_config(ab_dataset, "pix2pix", "paired", steps=3), run_dir=tmp_path / "split").run()
    Trainer.resume(tmp_path / "split", steps=6).run()
    a = load_checkpoint(latest_checkpoint(tmp_path / "full"))["family_state"]["modules"]["G_ema"]
    b = load_checkpoint(latest_checkpoint(tmp_path / "split"))["family_state"]["modules"]["G_ema"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_cyclegan_trains_on_unpaired_folders_and_resumes_exactly(ab_dataset, tmp_path):
    Trainer(_config(ab_dataset, "cyclegan", steps=4), run_dir=tmp_path / "full").run()
    Trainer(_config(ab_dataset, "cyclegan", steps=2), run_dir=tmp_path / "split").run()
    Trainer.resume(tmp_path / "split", steps=4).run()
    states = [load_checkpoint(latest_checkpoint(tmp_path / r)) for r in ("full", "split")]
    assert "streams" in states[0]["sampler"]  # two independent index streams
    a, b = (s["family_state"]["modules"]["F"] for s in states)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_paired_task_on_a_folder_without_ab_is_refused(shapes, tmp_path):
    with pytest.raises(ConfigError, match="A/ and B/"):
        Trainer(_config(shapes, "pix2pix", "paired"), run_dir=tmp_path / "run").run()


def test_runners_refuse_the_other_kind_of_model(shapes, tmp_path):
    from engine.inference import TorchRunner, TorchTranslator

    Trainer(_config(shapes, "pix2pix", "sketch", steps=2), run_dir=tmp_path / "t").run()
    Trainer(tiny_config(shapes, steps=2), run_dir=tmp_path / "g").run()
    with pytest.raises(CheckpointError, match="Translate page"):
        TorchRunner(tmp_path / "t")
    with pytest.raises(CheckpointError, match="Generate page"):
        TorchTranslator(tmp_path / "g")
    translator = TorchTranslator(tmp_path / "t", device="cpu")
    drawing = np.full((50, 80), 255, np.uint8)
    drawing[20:22, 10:70] = 0
    out = translator.translate(drawing)
    assert out.shape == (50, 80, 3) and out.dtype == np.uint8
    with pytest.raises(ConfigError, match="hints"):
        translator.translate(drawing, [(1, 1, (0, 0, 0))])
    for size in (4, 5000):
        with pytest.raises(ConfigError, match="outside 8-4096"):
            translator.translate(drawing, work_size=size)
    with pytest.raises(ConfigError, match="uint8"):
        translator.translate(drawing.astype(np.float32))
