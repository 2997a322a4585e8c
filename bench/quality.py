"""Image quality: every noise-to-image family against a classic DCGAN reference loop, scored on emoji never seen.

emoji-google-64 (RGBA; both halves composited onto white the same way) is split by a fixed seed into two
disjoint halves of files. Every run trains on the train half at 64 px on the CPU; KD (EffLite0, x1e3) and FD
then compare 1,000 generated images with 1,000 images of the test half, which no run ever sees, using the
project's own metrics (engine.metrics: real_statistics, score_features). The runs:

* every registered 'generate' family with its own CPU settings (TrainConfig defaults with the family's
  ``recommended_settings(64, 'cpu')`` on top, plus any ``--set``), so a new family joins automatically;
* ``reference``: the DCGAN paper's generator and discriminator at 64 px (BatchNorm, ReLU/LeakyReLU), Adam
  2e-4 with beta1 0.5, BCE, batch 64, in the structure of the classic PyTorch DCGAN example, written here in
  plain PyTorch (not through our families): the yardstick;
* ``floor``: real vs real (the train half against the test half), the best any model can score;

each at equal images seen (``--kimg``, default 30) and at equal training time (``--minutes``, default 15;
only step time counts, as the Trainer's ``minutes`` limit does). Single GAN runs vary a lot: run the
reference and the best family with ``--seeds 0,1``; the table reports the mean and the range over seeds.

Each run is cached as one JSON under WORK/results/, named by a hash of everything that decides its result
(run, effective settings, budget, seed, thread count, split, evaluation sizes, bench and app version). A
finished run is skipped; an interrupted one (Ctrl-C checkpoints and stops; a kill loses at most two minutes)
resumes from its run folder under WORK/runs/ (Trainer.resume; the reference loop checkpoints its own state).
The table is printed from whatever is done, so the bench can be run in parts:

    nice python bench/quality.py                               # everything, seed 0, both budgets (hours)
    nice python bench/quality.py --only reference,fastgan --seeds 1 --budgets kimg
    python bench/quality.py --table [--out docs/results/quality/table.md]
    python bench/quality.py --list                             # what would run, and what is cached

Grids (8x8, seeds 0-63, the same latents for every run) go to docs/results/quality/ (``--grids``).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import hashlib
import json
import math
import os
import random
import shutil
import signal
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import engine  # noqa: E402
from engine.consent import attest, dataset_fingerprint, require_attestation  # noqa: E402
from engine.data import import_folder, is_dataset, load_dataset  # noqa: E402
from engine.errors import ConfigError, ConsentError  # noqa: E402
from engine.families import family_names, get_family  # noqa: E402
from engine.families.base import build_family_config  # noqa: E402
from engine.fsutil import atomic_write_json, save_png  # noqa: E402
from engine.inference.runner import latents_for_seeds  # noqa: E402
from engine.metrics.cache import sample_order  # noqa: E402
from engine.runs import TrainConfig  # noqa: E402
from engine.runs.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint  # noqa: E402
from engine.training import Callbacks, Trainer  # noqa: E402
from engine.training.previews import to_uint8_nhwc  # noqa: E402

BENCH_VERSION = 1
"""Part of every cache key: bump it when the protocol (split, training loop, scoring) changes meaning."""
SOURCE = ROOT.parent / "shared" / "datasets" / "emoji-google-64"
DEFAULT_WORK = ROOT / "bench" / ".cache" / "quality"
DEFAULT_GRIDS = ROOT / "docs" / "results" / "quality"
RESOLUTION = 64
ALPHA = "white"
"""How the RGBA emoji become RGB, the same for both halves: composited onto white (the import default)."""
SPLIT_SEED = 11
REFERENCE = "reference"
FLOOR = "floor"
CHECKPOINT_MINUTES = 2.0
"""Training minutes between checkpoints: what a hard kill can lose."""
GRID_SEEDS = 64
KD_SUBSETS = 100

# The reference loop's settings (--set reference.KEY=VALUE changes them, and the cache key with them).
REFERENCE_SETTINGS: dict[str, Any] = {
    "latent_dim": 100,
    "ngf": 64,
    "ndf": 64,
    "batch_size": 64,
    "lr": 2e-4,
    "beta1": 0.5,
    "beta2": 0.999,
}
# TrainConfig fields that say how a run is driven and recorded, not what it learns: left out of cache keys.
BOOKKEEPING = {
    "dataset",
    "family",
    "seed",
    "steps",
    "minutes",
    "device",
    "preview_every",
    "preview_count",
    "checkpoint_every",
    "checkpoint_minutes",
    "keep_checkpoints",
    "kid_every",
    "kid_samples",
    "log_every",
    "format_version",
}
# Fields added to TrainConfig after runs were cached, at the value that leaves training as it was (the
# health detectors only watch; auto remedies off change nothing): left out of the key at that value, so
# adding them keeps the cached runs; any other value is part of the key.
NEUTRAL_AT = {"health": True, "auto_remedies": False}


# -- the split --------------------------------------------------------------------------------------


def split_files(files: Iterable[str], seed: int = SPLIT_SEED) -> tuple[list[str], list[str]]:
    """(train, test): the sorted file list shuffled with ``seed`` and cut in two halves (train gets the odd one)."""
    ordered = sorted(set(files))
    random.Random(seed).shuffle(ordered)
    cut = (len(ordered) + 1) // 2
    return sorted(ordered[:cut]), sorted(ordered[cut:])


@dataclass(frozen=True)
class Split:
    """The two prepared datasets of a split and their fingerprints."""

    train: Path
    test: Path
    train_fingerprint: str
    test_fingerprint: str
    seed: int


def _copy_files(source: Path, names: list[str], folder: Path) -> None:
    """``folder``/NAME for each NAME, copied from ``source`` (the importer refuses symlinks that leave the folder)."""
    if folder.exists():
        shutil.rmtree(folder)
    for name in names:
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / name, target)


def prepare_split(source: Path, work: Path, seed: int = SPLIT_SEED) -> Split:
    """Import both halves of ``source`` (once) under WORK/split-SEED/ and attest the train half."""
    if not source.is_dir():
        raise SystemExit(f"bench/quality.py needs the emoji folder at {source}; pass --source FOLDER")
    files = [p.relative_to(source).as_posix() for p in source.rglob("*.png")]
    halves = split_files(files, seed)
    root = work / f"split-{seed}"
    datasets = []
    for part, names in zip(("train", "test"), halves):
        dataset = root / part
        listing = root / f"{part}-files.txt"
        wanted = "\n".join(names) + "\n"
        if not (is_dataset(dataset) and listing.is_file() and listing.read_text(encoding="utf-8") == wanted):
            _copy_files(source, names, root / f"{part}-images")
            print(f"importing the {part} half ({len(names)} files) into {dataset}", flush=True)
            import_folder(root / f"{part}-images", dataset, size=RESOLUTION, alpha=ALPHA)
            listing.write_text(wanted, encoding="utf-8")
        datasets.append(dataset)
    train, test = datasets
    try:
        require_attestation(train)
    except ConsentError:
        attest(
            train,
            rights="licensed",
            people="none",
            attested_by="bench/quality.py",
            note="Noto Emoji (Google), Apache License 2.0",
        )
    return Split(train, test, dataset_fingerprint(train), dataset_fingerprint(test), seed)


# -- settings and jobs ------------------------------------------------------------------------------


def generate_families() -> list[str]:
    """Every registered noise-to-image family, sorted (new families join the bench by registering)."""
    return [name for name in family_names() if get_family(name).kind == "generate"]


def parse_sets(items: Iterable[str]) -> dict[str, dict[str, Any]]:
    """{run: {setting: value}} from ``NAME.KEY=VALUE`` items; values are JSON when they parse, else text.

    A KEY that is not a TrainConfig field is a family option (``family_options``).
    """
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        head, sep, raw = item.partition("=")
        name, dot, key = head.strip().partition(".")
        if not (sep and dot and name and key):
            raise ConfigError(f"--set {item!r}: write NAME.KEY=VALUE, e.g. fastgan.loss=hinge")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        target = out.setdefault(name, {})
        if name != REFERENCE and key not in train_fields:
            target.setdefault("family_options", {})[key] = value
        else:
            target[key] = value
    return out


def family_settings(name: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """TrainConfig overrides for ``name``: its recommended CPU settings at 64 px, then ``overrides`` on top."""
    overrides = overrides or {}
    settings = copy.deepcopy(get_family(name).recommended_settings(RESOLUTION, "cpu"))
    options = {**settings.pop("family_options", {}), **overrides.get("family_options", {})}
    settings.update({k: v for k, v in overrides.items() if k != "family_options"})
    if options:
        settings["family_options"] = options
    return settings


def reference_settings(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The reference loop's settings with ``overrides``; unknown keys are refused by name."""
    overrides = overrides or {}
    unknown = sorted(set(overrides) - set(REFERENCE_SETTINGS))
    if unknown:
        raise ConfigError(
            f"unknown reference setting(s) {', '.join(unknown)}; known: {', '.join(sorted(REFERENCE_SETTINGS))}"
        )
    return {**REFERENCE_SETTINGS, **overrides}


def effective_settings(name: str, settings: dict[str, Any]) -> dict[str, Any]:
    """Every setting that decides what run ``name`` learns (defaults filled in): what the cache key hashes."""
    if name == REFERENCE:
        return reference_settings(settings)
    cfg = TrainConfig(dataset="-", family=name, **settings)
    cfg.validate()
    learned = {
        k: v for k, v in cfg.to_dict().items() if k not in BOOKKEEPING and not (k in NEUTRAL_AT and v == NEUTRAL_AT[k])
    }
    family_cfg = build_family_config(get_family(name).Config, cfg.family_options)
    learned["family_options"] = dataclasses.asdict(family_cfg)
    return learned


@dataclass
class Job:
    """One training run of the bench (or the real-vs-real floor): what it is and how it is scored."""

    name: str
    settings: dict[str, Any]
    """TrainConfig overrides (a family) or the reference loop's settings."""
    overrides: dict[str, Any]
    """The part of ``settings`` the user chose with --set (shown in the table)."""
    budget: str  # "kimg" or "minutes"; "" for the floor
    amount: float
    seed: int
    threads: int
    split: Split
    real: int
    fake: int
    key_fields: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.key_fields = {
            "bench_version": BENCH_VERSION,
            "app_version": engine.__version__,
            "name": self.name,
            "settings": {} if self.name == FLOOR else effective_settings(self.name, self.settings),
            "budget": self.budget,
            "amount": self.amount,
            "seed": self.seed,
            "threads": self.threads,
            "split_seed": self.split.seed,
            "train_fingerprint": self.split.train_fingerprint,
            "test_fingerprint": self.split.test_fingerprint,
            "real": self.real,
            "fake": self.fake,
        }

    @property
    def key(self) -> str:
        """Hash of everything that decides this job's result: its cache file's name."""
        return cache_key(self.key_fields)

    @property
    def budget_label(self) -> str:
        """'30 kimg', '15 min' or '' (the floor)."""
        return budget_label(self.budget, self.amount)

    @property
    def title(self) -> str:
        return f"{self.name} seed {self.seed}" + (f" [{self.budget_label}]" if self.budget else "")


def cache_key(fields: dict[str, Any]) -> str:
    """A short stable hash of ``fields`` (key order does not matter)."""
    text = json.dumps(fields, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


def budget_label(budget: str, amount: float) -> str:
    return {"kimg": f"{amount:g} kimg", "minutes": f"{amount:g} min"}.get(budget, "")


# -- the reference loop -----------------------------------------------------------------------------


def reference_generator(nz: int, ngf: int, nc: int = 3) -> nn.Sequential:
    """The DCGAN paper's 64 px generator: z (N, nz, 1, 1) -> image (N, nc, 64, 64) in [-1, 1]."""
    return nn.Sequential(
        nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False),
        nn.BatchNorm2d(ngf * 8),
        nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ngf * 4),
        nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ngf * 2),
        nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ngf),
        nn.ReLU(True),
        nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),
        nn.Tanh(),
    )


def reference_discriminator(ndf: int, nc: int = 3) -> nn.Sequential:
    """The DCGAN paper's 64 px discriminator: image -> (N, 1, 1, 1) logits (the sigmoid is in the BCE loss)."""
    return nn.Sequential(
        nn.Conv2d(nc, ndf, 4, 2, 1, bias=False),
        nn.LeakyReLU(0.2, True),
        nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ndf * 2),
        nn.LeakyReLU(0.2, True),
        nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ndf * 4),
        nn.LeakyReLU(0.2, True),
        nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ndf * 8),
        nn.LeakyReLU(0.2, True),
        nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False),
    )


def _dcgan_init(m: nn.Module) -> None:
    # The paper's N(0, 0.02) for convolutions and N(1, 0.02) for the batch-norm scales.
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


class ReferenceLoop:
    """The classic DCGAN training loop (PyTorch example structure) over uint8 NHWC ``images``.

    D: BCE on a real batch (target 1), backward; BCE on G's detached fakes (target 0), backward; Adam step.
    G: BCE of D on the same fakes with target 1, backward, Adam step. No EMA, no augmentation, no
    regularisation. Noise comes from the global torch RNG, the data order from a private generator; both
    are in :meth:`state_dict`, so a loop stopped and restored continues exactly.
    """

    def __init__(self, images: np.ndarray, settings: dict[str, Any], seed: int) -> None:
        self.s = reference_settings(settings)
        self.images = torch.from_numpy(np.array(images))  # a writable in-memory copy of the memory-mapped cache
        torch.manual_seed(seed)
        self.G = reference_generator(self.s["latent_dim"], self.s["ngf"], self.images.shape[3])
        self.D = reference_discriminator(self.s["ndf"], self.images.shape[3])
        self.G.apply(_dcgan_init)
        self.D.apply(_dcgan_init)
        betas = (self.s["beta1"], self.s["beta2"])
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=self.s["lr"], betas=betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=self.s["lr"], betas=betas)
        self.criterion = nn.BCEWithLogitsLoss()  # = sigmoid + BCELoss, numerically safer
        self.order = torch.Generator().manual_seed(seed)
        self.perm = torch.empty(0, dtype=torch.long)
        self.pos = 0
        self.step = 0
        self.train_seconds = 0.0

    @property
    def batch_size(self) -> int:
        return int(self.s["batch_size"])

    def next_batch(self) -> torch.Tensor:
        """The next ``batch_size`` images of an endless reshuffled pass, as (N, C, H, W) floats in [-1, 1]."""
        if self.pos + self.batch_size > len(self.perm):  # a new epoch; the short tail is dropped
            self.perm, self.pos = torch.randperm(len(self.images), generator=self.order), 0
        idx = self.perm[self.pos : self.pos + self.batch_size]
        self.pos += self.batch_size
        return self.images[idx].permute(0, 3, 1, 2).float().div(127.5).sub(1)

    def train_step(self, real: torch.Tensor) -> dict[str, float]:
        """One D update and one G update on ``real``; returns the three losses."""
        self.D.zero_grad()
        err_real = self.d_on_real(real)
        fake = self.G(torch.randn(real.shape[0], self.s["latent_dim"], 1, 1))
        err_fake = self.d_on_fake(fake)
        self.opt_d.step()
        self.G.zero_grad()
        err_g = self.g_on_fake(fake)
        self.opt_g.step()
        return {"loss_d": err_real + err_fake, "loss_g": err_g}

    def d_on_real(self, real: torch.Tensor) -> float:
        out = self.D(real).view(-1)
        err = self.criterion(out, torch.ones_like(out))
        err.backward()
        return float(err.detach())

    def d_on_fake(self, fake: torch.Tensor) -> float:
        out = self.D(fake.detach()).view(-1)
        err = self.criterion(out, torch.zeros_like(out))
        err.backward()
        return float(err.detach())

    def g_on_fake(self, fake: torch.Tensor) -> float:
        out = self.D(fake).view(-1)
        err = self.criterion(out, torch.ones_like(out))
        err.backward()
        return float(err.detach())

    @torch.no_grad()
    def sample(self, seeds: list[int], batch_size: int = 64) -> np.ndarray:
        """uint8 NHWC images for ``seeds`` (the latents every run gets), batch statistics in batches of 64.

        Train-mode batch norm, as the classic example samples (its G never ran in eval mode), on a copy so
        the loop's own running statistics stay untouched.
        """
        G = copy.deepcopy(self.G).train()
        z = torch.from_numpy(latents_for_seeds(seeds, self.s["latent_dim"]))
        parts = [to_uint8_nhwc(G(z[i : i + batch_size, :, None, None])) for i in range(0, len(z), batch_size)]
        return np.concatenate(parts)

    def state_dict(self) -> dict[str, Any]:
        return {
            "settings": self.s,
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "rng": torch.get_rng_state(),
            "order": self.order.get_state(),
            "perm": self.perm.clone(),
            "pos": self.pos,
            "step": self.step,
            "train_seconds": self.train_seconds,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        torch.set_rng_state(state["rng"])
        self.order.set_state(state["order"])
        self.perm, self.pos = state["perm"].clone(), int(state["pos"])
        self.step, self.train_seconds = int(state["step"]), float(state["train_seconds"])


def steps_for(budget: str, amount: float, batch_size: int) -> int | None:
    """Steps of a 'kimg' budget (images seen rounded up to whole batches); None for a time budget."""
    return math.ceil(amount * 1000 / batch_size) if budget == "kimg" else None


def train_reference(
    job: Job, run_dir: Path, should_stop: Callable[[], bool], progress: Callable[[int, int | None, float], None]
) -> tuple[ReferenceLoop, bool]:
    """Train (or resume) the reference loop in ``run_dir``; (loop, stopped early)."""
    images = load_dataset(job.split.train, RESOLUTION).images
    loop = ReferenceLoop(images, job.settings, job.seed)
    path = run_dir / "reference.pt"
    if path.is_file():
        loop.load_state_dict(load_checkpoint(path))
        print(f"  resumed the reference loop from {path} (step {loop.step})", flush=True)
    total = steps_for(job.budget, job.amount, loop.batch_size)
    limit = job.amount * 60 if job.budget == "minutes" else math.inf
    saved_at = loop.train_seconds
    while (total is None or loop.step < total) and loop.train_seconds < limit:
        if should_stop():
            save_checkpoint(path, loop.state_dict())
            return loop, True
        started = time.perf_counter()
        loop.train_step(loop.next_batch())
        loop.step += 1
        loop.train_seconds += time.perf_counter() - started
        progress(loop.step, total, loop.train_seconds)
        if loop.train_seconds - saved_at >= CHECKPOINT_MINUTES * 60:
            save_checkpoint(path, loop.state_dict())
            saved_at = loop.train_seconds
    save_checkpoint(path, loop.state_dict())
    return loop, False


# -- families through the Trainer -------------------------------------------------------------------


def train_family(
    job: Job, run_dir: Path, should_stop: Callable[[], bool], progress: Callable[[int, int | None, float], None]
) -> tuple[int, float, int, bool]:
    """Train (or resume) family ``job.name`` with the Trainer; (steps, train seconds, batch size, stopped)."""
    cfg = TrainConfig(dataset=str(job.split.train), family=job.name, **job.settings)
    total = steps_for(job.budget, job.amount, cfg.batch_size)
    cfg.steps = total
    cfg.minutes = job.amount if job.budget == "minutes" else None
    cfg.seed = job.seed
    cfg.device = "cpu"
    cfg.preview_every = 0
    cfg.kid_every = 0
    cfg.checkpoint_every = 10**9  # by training time instead (and always at the end or on stop)
    cfg.checkpoint_minutes = CHECKPOINT_MINUTES
    cfg.keep_checkpoints = 1
    cfg.log_every = 50
    callbacks = Callbacks(
        on_step=lambda rec: progress(int(rec["step"]), total, float(rec["seconds"])),
        on_log=lambda message: print(f"  {message}", flush=True),
        should_stop=should_stop,
    )
    if latest_checkpoint(run_dir) is not None:
        trainer = Trainer.resume(run_dir, callbacks)
    else:
        if run_dir.exists():  # killed before its first checkpoint: nothing worth keeping
            shutil.rmtree(run_dir)
        trainer = Trainer(cfg, callbacks, run_dir)
    result = trainer.run()
    return result.step, result.seconds, cfg.batch_size, result.stopped


def family_samples(run_dir: Path, seeds: list[int]) -> np.ndarray:
    """uint8 NHWC images of the run's EMA generator for ``seeds`` (the evaluation's latents)."""
    from engine.inference.torch_runner import TorchRunner

    return TorchRunner(run_dir, device="cpu").generate(seeds, batch_size=64)


# -- scoring ----------------------------------------------------------------------------------------


class Scorer:
    """KD and FD of image sets against ``real`` images of the test half, with the project's metrics."""

    def __init__(self, split: Split, real: int, fake: int) -> None:
        from engine.metrics import get_extractor, real_statistics

        self.extractor = get_extractor("efflite0", device="cpu")
        self.split, self.fake = split, fake
        self.test = real_statistics(split.test, self.extractor, RESOLUTION, real)
        self.subset = max(2, min(real, fake) // 2)  # subsets smaller than the sets, so their spread means something

    def score(self, features: np.ndarray) -> dict[str, Any]:
        """{'kd': {mean, std, subset_size, subsets}, 'fd': float} of ``features`` against the test half."""
        from engine.metrics import score_features

        scores = score_features(
            self.test, features, None, ("kid", "fid"), kid_subsets=KD_SUBSETS, kid_subset_size=self.subset, seed=0
        )
        return {"kd": scores["kid"], "fd": scores["fid"]}

    def score_images(self, images: np.ndarray) -> dict[str, Any]:
        return self.score(self.extractor.features(images, 32))

    def floor(self) -> tuple[dict[str, Any], np.ndarray]:
        """(scores of the train half's images against the test half, 64 test images for a grid)."""
        from engine.metrics import real_statistics

        train = real_statistics(self.split.train, self.extractor, RESOLUTION, len(self.test.features))
        test_data = load_dataset(self.split.test, RESOLUTION)
        shown = np.asarray(test_data.images[np.sort(sample_order(len(test_data))[:GRID_SEEDS])])
        return self.score(train.features), shown


def grid_uint8(images: np.ndarray, columns: int = 8, padding: int = 2) -> np.ndarray:
    """uint8 NHWC ``images`` tiled into one uint8 HWC grid (white gaps, like the preview grids' padding)."""
    n, h, w, c = images.shape
    rows = math.ceil(n / columns)
    grid = np.full((rows * (h + padding) + padding, columns * (w + padding) + padding, c), 255, np.uint8)
    for i, image in enumerate(images):
        y, x = padding + (i // columns) * (h + padding), padding + (i % columns) * (w + padding)
        grid[y : y + h, x : x + w] = image
    return grid


# -- running ----------------------------------------------------------------------------------------


class StopFlag:
    """Ctrl-C (or SIGTERM) asks the running job to checkpoint and stop; a second Ctrl-C interrupts at once."""

    def __init__(self) -> None:
        self.stop = False

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.stop:
            raise KeyboardInterrupt
        self.stop = True
        print("\nstopping: checkpointing the current run (Ctrl-C again to interrupt at once)", flush=True)

    def __call__(self) -> bool:
        return self.stop


class Progress:
    """A line at most every ``every`` seconds: step, images seen, training minutes, img/s."""

    def __init__(self, job: Job, batch_size: int, every: float = 30.0) -> None:
        self.job, self.batch, self.every = job, batch_size, every
        self.last = time.monotonic()

    def __call__(self, step: int, total: int | None, seconds: float) -> None:
        if time.monotonic() - self.last < self.every:
            return
        self.last = time.monotonic()
        steps = f"{step}/{total}" if total else str(step)
        rate = step * self.batch / seconds if seconds else 0.0
        print(
            f"  {self.job.title}: step {steps}, {step * self.batch / 1000:.1f} kimg, "
            f"{seconds / 60:.1f} min, {rate:.1f} img/s",
            flush=True,
        )


def result_path(work: Path, job: Job) -> Path:
    return work / "results" / f"{job.key}.json"


def _grid_name(job: Job) -> str:
    if job.name == FLOOR:
        return "floor-test-half.png"
    budget = job.budget_label.replace(" ", "")
    suffix = f"-{cache_key(job.overrides)[:6]}" if job.overrides else ""
    return f"{job.name}-{budget}-seed{job.seed}{suffix}.png"


def run_job(job: Job, work: Path, grids: Path, scorer: Callable[[], Scorer], stop: StopFlag) -> dict | None:
    """Train and score ``job`` (resuming its run folder); its result, or None when it was stopped."""
    run_dir = work / "runs" / job.key
    load_start = os.getloadavg()[0]
    started = time.perf_counter()
    print(f"{job.title}: run folder {run_dir}", flush=True)
    if job.name == FLOOR:
        scores, shown = scorer().floor()
        record: dict[str, Any] = {"steps": 0, "images_seen": 0, "train_seconds": 0.0, "img_per_sec": None}
    else:
        if job.name == REFERENCE:
            batch = int(reference_settings(job.settings)["batch_size"])
            loop, stopped = train_reference(job, run_dir, stop, Progress(job, batch))
            steps, seconds = loop.step, loop.train_seconds
        else:
            batch = TrainConfig(dataset="-", family=job.name, **job.settings).batch_size
            steps, seconds, batch, stopped = train_family(job, run_dir, stop, Progress(job, batch))
        if stopped:
            print(f"{job.title}: stopped at step {steps}; run the bench again to resume it", flush=True)
            return None
        seeds = list(range(job.fake))
        images = loop.sample(seeds) if job.name == REFERENCE else family_samples(run_dir, seeds)
        scores, shown = scorer().score_images(images), images[:GRID_SEEDS]
        record = {
            "steps": steps,
            "images_seen": steps * batch,
            "train_seconds": round(seconds, 1),
            "img_per_sec": round(steps * batch / seconds, 2) if seconds else None,
        }
    grid = grids / _grid_name(job)
    save_png(grid_uint8(shown), grid)
    result = {
        "key": job.key,
        **job.key_fields,
        "overrides": job.overrides,
        **record,
        **scores,
        "grid": str(grid.resolve()),
        "load": [round(load_start, 2), round(os.getloadavg()[0], 2)],
        "torch": torch.__version__,
        "seconds_total": round(time.perf_counter() - started, 1),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "run_dir": str(run_dir),
    }
    atomic_write_json(result_path(work, job), result)
    kd = scores["kd"]
    print(f"{job.title}: KD x1e3 {kd['mean'] * 1e3:.1f} (std {kd['std'] * 1e3:.1f}), FD {scores['fd']:.1f}", flush=True)
    return result


def plan(args: argparse.Namespace, split: Split, sets: dict[str, dict[str, Any]]) -> list[Job]:
    """The jobs asked for, in order: the floor, then per seed the kimg budget before the time budget,
    the reference first in each (so a partial bench already gives a comparison)."""
    names = [REFERENCE, *generate_families()]
    chosen = _chosen(args.only, [FLOOR, *names])
    unknown = sorted(set(sets) - set(names))
    if unknown:
        raise ConfigError(f"--set names unknown run(s) {', '.join(unknown)}; runs: {', '.join(names)}")
    budgets = [b.strip() for b in args.budgets.split(",") if b.strip()]
    if not budgets or set(budgets) - {"kimg", "minutes"}:
        raise ConfigError(f"--budgets takes kimg, minutes or both (got {args.budgets!r})")
    common = dict(threads=args.threads, split=split, real=args.real, fake=args.fake)
    jobs = [Job(FLOOR, {}, {}, "", 0.0, 0, **common)] if FLOOR in chosen else []
    for seed in _seeds(args.seeds):
        for budget in budgets:
            amount = float(args.kimg if budget == "kimg" else args.minutes)
            for name in (n for n in names if n in chosen):
                user = sets.get(name, {})
                settings = reference_settings(user) if name == REFERENCE else family_settings(name, user)
                jobs.append(Job(name, settings, user, budget, amount, seed, **common))
    return jobs


def _chosen(only: str | None, known: list[str]) -> list[str]:
    if not only:
        return known
    wanted = [n.strip() for n in only.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise ConfigError(f"--only names unknown run(s) {', '.join(unknown)}; runs: {', '.join(known)}")
    return wanted


def _seeds(text: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"--seeds takes whole numbers separated by commas, e.g. 0,1 (got {text!r})") from None


# -- the table --------------------------------------------------------------------------------------


def load_results(work: Path) -> list[dict[str, Any]]:
    """Every finished run's result in ``work`` written by this bench version."""
    results = []
    for path in sorted((work / "results").glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            print(f"skipping unreadable result {path}")
            continue
        if data.get("bench_version") == BENCH_VERSION:
            results.append(data)
    return results


def group_results(results: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Results that differ only by seed, together; floor first, then by budget, the reference first in each."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        fields = {k: r.get(k) for k in ("name", "settings", "budget", "amount", "threads", "real", "fake")}
        groups.setdefault(cache_key(fields), []).append(r)

    def order(group: list[dict[str, Any]]) -> tuple:
        r = group[0]
        return (r["name"] != FLOOR, r["budget"], r["amount"], r["name"] != REFERENCE, r["name"], bool(r["overrides"]))

    return [sorted(g, key=lambda r: r["seed"]) for g in sorted(groups.values(), key=order)]


def _spread(values: list[float], digits: int = 1) -> str:
    mean = statistics.fmean(values)
    if len(values) == 1:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ({min(values):.{digits}f}–{max(values):.{digits}f})"


def _settings_text(r: dict[str, Any]) -> str:
    if r["name"] == FLOOR:
        return "train half vs test half"
    if r["name"] == REFERENCE:
        base = "DCGAN paper, BN, Adam 2e-4 β1 0.5, BCE, batch 64"
    else:
        base = "recommended (cpu)" if _recommended(r["name"]) else "defaults"
    extra = _flat(r.get("overrides") or {})
    return base + (" + " + ", ".join(f"{k}={v}" for k, v in extra.items()) if extra else "")


def _flat(settings: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in settings.items() if k != "family_options"}
    out.update(settings.get("family_options") or {})
    return out


def _recommended(name: str) -> dict[str, Any]:
    """The family's recommended CPU settings at 64 px ({} for a family no longer registered)."""
    try:
        return get_family(name).recommended_settings(RESOLUTION, "cpu")
    except ConfigError:
        return {}


def format_table(results: list[dict[str, Any]], link_base: Path = ROOT / "docs") -> str:
    """The markdown table (one row per run and budget, seeds pooled) and the target lines under it; grid
    links are relative to ``link_base``, the folder of the file the table goes in."""
    groups = group_results(results)
    reference = {
        (g[0]["budget"], g[0]["amount"]): statistics.fmean(r["kd"]["mean"] for r in g)
        for g in groups
        if g[0]["name"] == REFERENCE and not g[0]["overrides"]
    }
    header = (
        "| run | settings | budget | seeds | KD×10³ mean (range) | FD | KD / reference | img/s "
        "| train time | images seen | load | grid |"
    )
    lines = [header, "|" + "---|" * 12]
    for g in groups:
        r = g[0]
        kd = [x["kd"]["mean"] * 1e3 for x in g]
        ref = reference.get((r["budget"], r["amount"]))
        ratio = f"{statistics.fmean(kd) / (ref * 1e3):.2f}" if ref and r["name"] != FLOOR else "–"
        rates = [x["img_per_sec"] for x in g if x.get("img_per_sec")]
        loads = [v for x in g for v in x.get("load", [])]
        lines.append(
            "| "
            + " | ".join(
                [
                    "real vs real (floor)" if r["name"] == FLOOR else r["name"],
                    _settings_text(r),
                    budget_label(r["budget"], r["amount"]) or "–",
                    ",".join(str(x["seed"]) for x in g) if r["name"] != FLOOR else "–",
                    _spread(kd),
                    _spread([x["fd"] for x in g]),
                    ratio,
                    f"{statistics.fmean(rates):.1f}" if rates else "–",
                    f"{statistics.fmean(x['train_seconds'] for x in g) / 60:.1f} min" if r["steps"] else "–",
                    f"{statistics.fmean(x['images_seen'] for x in g) / 1000:.1f} k" if r["steps"] else "–",
                    f"{min(loads):.1f}–{max(loads):.1f}" if loads else "–",
                    f"[grid]({Path(os.path.relpath(r['grid'], link_base)).as_posix()})",
                ]
            )
            + " |"
        )
    return "\n".join(lines + [""] + target_lines(groups, reference))


def target_lines(groups: list[list[dict[str, Any]]], reference: dict[tuple, float]) -> list[str]:
    """Per budget: the best family against the reference (issue 11: at most a third at 30 kimg), and which
    families score at or below the reference."""
    out = []
    for (budget, amount), ref in sorted(reference.items()):
        rivals = [
            g
            for g in groups
            if g[0]["budget"] == budget and g[0]["amount"] == amount and g[0]["name"] not in (REFERENCE, FLOOR)
        ]
        if not rivals:
            continue
        means = {id(g): statistics.fmean(r["kd"]["mean"] for r in g) for g in rivals}
        best = min(rivals, key=lambda g: means[id(g)])
        ratio = means[id(best)] / ref
        at_or_below = sorted({g[0]["name"] for g in rivals if means[id(g)] <= ref})
        seeds = ",".join(str(r["seed"]) for r in best)
        out.append(
            f"- {budget_label(budget, amount)}: best {best[0]['name']} (seeds {seeds}) "
            f"KD {means[id(best)] * 1e3:.1f} = {ratio:.2f}× the reference's {ref * 1e3:.1f} "
            f"(target ≤ 0.33×: {'met' if ratio <= 1 / 3 else 'not met'}); at or below the reference: "
            f"{', '.join(at_or_below) or 'none'}"
        )
    return out


def settings_notes(results: list[dict[str, Any]]) -> list[str]:
    """One line per family shown: the settings its recommended CPU settings change from TrainConfig's defaults."""
    defaults = TrainConfig(dataset="-")
    common = (
        f"Families: TrainConfig defaults (batch {defaults.batch_size}, loss {defaults.loss}, DiffAugment "
        f"'{defaults.augment}' with ADA {'on' if defaults.ada else 'off'}, EMA half-life "
        f"{defaults.ema_half_life_kimg:g} kimg, R1 {defaults.r1_gamma:g}) and the family's own defaults, unless listed:"
    )
    lines = [common]
    for name in sorted({r["name"] for r in results} - {REFERENCE, FLOOR}):
        recommended = _flat(_recommended(name))
        if recommended:
            lines.append(f"- {name}: " + ", ".join(f"{k}={v}" for k, v in recommended.items()))
    return lines


def print_table(work: Path, out: Path | None, real: int | None, fake: int | None) -> None:
    results = load_results(work)
    shown = [r for r in results if (real is None or r["real"] == real) and (fake is None or r["fake"] == fake)]
    if not shown:
        print(f"no finished runs in {work / 'results'} (for {real} real and {fake} generated images)")
        return
    text = "\n".join(
        [
            f"KD (EffLite0) ×10³ and FD of {shown[0]['fake']:,} generated images against {shown[0]['real']:,} "
            "images of the held-out half of emoji-google-64, 64 px, CPU; lower is better. KD / reference: "
            "against the DCGAN reference loop at the same budget. Range: over seeds.",
            "",
            format_table(shown, out.resolve().parent if out is not None else ROOT / "docs"),
            "",
            *settings_notes(shown),
        ]
    )
    hidden = len(results) - len(shown)
    print("\n" + text + (f"\n\n({hidden} results with other evaluation sizes not shown)" if hidden else ""))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n", encoding="utf-8")
        print(f"\nwritten to {out}")


# -- main -------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help=f"comma-separated runs: {FLOOR}, {REFERENCE} and family names (default: all)")
    parser.add_argument("--seeds", default="0", help="comma-separated training seeds (default 0)")
    parser.add_argument("--kimg", type=float, default=30.0, help="images seen per run, thousands (default 30)")
    parser.add_argument("--minutes", type=float, default=15.0, help="training minutes per run (default 15)")
    parser.add_argument("--budgets", default="kimg,minutes", help="which budgets to run: kimg, minutes or both")
    parser.add_argument("--set", action="append", default=[], metavar="NAME.KEY=VALUE", help="override a setting")
    parser.add_argument("--real", type=int, default=1000, help="test-half images to score against (default 1000)")
    parser.add_argument("--fake", type=int, default=1000, help="generated images per run (default 1000)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--source", type=Path, default=SOURCE, help="the emoji folder")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help="split, run folders and results")
    parser.add_argument("--grids", type=Path, default=DEFAULT_GRIDS, help="where the 8x8 sample grids go")
    parser.add_argument("--table", action="store_true", help="print the table from the results so far; run nothing")
    parser.add_argument("--list", action="store_true", help="print the planned runs and which are done; run nothing")
    parser.add_argument("--out", type=Path, help="also write the table (markdown) to this file")
    args = parser.parse_args(argv)
    if args.table:
        print_table(args.work, args.out, args.real, args.fake)
        return 0
    try:
        torch.set_num_threads(args.threads)
        split = prepare_split(args.source, args.work)
        jobs = plan(args, split, parse_sets(args.set))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    todo = [job for job in jobs if not result_path(args.work, job).is_file()]
    pending = {job.key for job in todo}
    print(
        f"{len(jobs)} runs asked for, {len(jobs) - len(todo)} already done; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; split {split.train.parent}",
        flush=True,
    )
    if args.list:
        for job in jobs:
            state = (
                "done"
                if job.key not in pending
                else ("partial" if (args.work / "runs" / job.key).exists() else "to run")
            )
            print(f"  {state:8} {job.title:40} {job.key}")
        return 0
    stop = StopFlag()
    stop.install()
    shared: list[Scorer] = []

    def scorer() -> Scorer:  # the feature network loads once, and only when a run needs scoring
        if not shared:
            shared.append(Scorer(split, args.real, args.fake))
        return shared[0]

    for job in todo:
        if stop() or run_job(job, args.work, args.grids, scorer, stop) is None:
            break
    print_table(args.work, args.out, args.real, args.fake)
    return 130 if stop() else 0


if __name__ == "__main__":
    raise SystemExit(main())
