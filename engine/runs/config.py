"""Training configuration: one dataclass, saved as config.json in every run folder."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from engine.errors import CheckpointError, ConfigError

FORMAT_VERSION = 1

LossName = Literal["ns", "hinge", "wgan-gp", "lsgan"]
"""The adversarial losses (engine/nn/losses.py defines them; a test checks the two lists agree). Named here
as a type so the GUI offers exactly these and this module needs no torch."""
LOSS_NAMES: tuple[str, ...] = get_args(LossName)
SMOOTHABLE_LOSSES = ("ns", "lsgan")
"""The losses where one-sided label smoothing has a meaning (a target for reals to lower), checked early
by validate(); the losses themselves say why the others refuse it."""

# The allowed range of every float setting: (low, high, low included, high included); None = unbounded.
# validate() also refuses NaN and infinity: a NaN passes no comparison and would only surface steps
# later as an optimizer error or a config.json that is not valid JSON.
FLOAT_RANGES: dict[str, tuple[float | None, float | None, bool, bool]] = {
    "minutes": (0, None, False, False),
    "checkpoint_minutes": (0, None, False, False),
    "lr_g": (0, None, False, False),
    "lr_d": (0, None, False, False),
    "beta1": (0, 1, True, False),
    "beta2": (0, 1, True, False),
    "r1_gamma": (0, None, True, False),
    "ada_target": (0, 1, True, True),
    "ema_half_life_kimg": (0, None, True, False),
    "grad_clip": (0, None, True, False),
    "nan_lr_factor": (0, 1, False, True),
    "gp_gamma": (0, None, True, False),
    "label_smoothing": (0, 0.5, True, False),
    "instance_noise": (0, None, True, False),
    "instance_noise_kimg": (0, None, False, False),
}


def describe_range(low: float | None, high: float | None, low_in: bool, high_in: bool) -> str:
    """'> 0', '>= 0' or 'in [0, 1)' for a FLOAT_RANGES entry."""
    if high is None:
        return f"{'>=' if low_in else '>'} {low:g}" if low is not None else "any finite number"
    return f"in {'[' if low_in else '('}{low:g}, {high:g}{']' if high_in else ')'}"


def _float_problem(name: str, value: Any) -> str | None:
    """Why ``value`` is not allowed for the float setting ``name``, or None when it is."""
    low, high, low_in, high_in = FLOAT_RANGES[name]
    allowed = f"setting '{name}' must be a finite number {describe_range(low, high, low_in, high_in)}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{allowed} (got {value!r})"
    outside_low = low is not None and (value < low if low_in else value <= low)
    outside_high = high is not None and (value > high if high_in else value >= high)
    if not math.isfinite(value) or outside_low or outside_high:
        return f"{allowed} (got {value})"
    return None


@dataclass
class TrainConfig:
    """Every setting of a training run. Family-specific settings live in ``family_options``.

    Each field carries a short ``label`` in its metadata (what front ends call the setting) and a
    docstring under it (what it does); family Config dataclasses follow the same pattern.
    """

    dataset: str = field(metadata={"label": "Dataset folder"})
    """Prepared dataset folder (from ``gan-studio-cli import``)."""
    family: str = field(default="dcgan", metadata={"label": "Model family"})
    """Registered model family name."""
    family_options: dict[str, Any] = field(default_factory=dict, metadata={"label": "Model options"})
    """Overrides for the family's own Config dataclass (e.g. {'base_channels': 32})."""
    resolution: int | None = field(default=None, metadata={"label": "Training size (px)"})
    """Training size in pixels (power of two); None = the dataset's prepared size."""
    batch_size: int = field(default=32, metadata={"label": "Batch size (images per step)"})
    """Images per step (the effective batch, kept when memory forces smaller micro-batches). With several
    processes (torchrun) this is the batch of all of them together: each takes batch_size / world size."""
    accumulate: int | None = field(default=None, metadata={"label": "Gradient accumulation (micro-batches)"})
    """Split each process's batch into this many micro-batches and add up their gradients (same result, less
    memory); None = the memory planner chooses from the device's free memory (1 on a CPU)."""
    steps: int | None = field(default=2000, metadata={"label": "Training steps"})
    """Stop after this many steps (None = no step limit)."""
    minutes: float | None = field(default=None, metadata={"label": "Time limit (minutes)"})
    """Stop after this many minutes of training (None = no time limit)."""
    lr_g: float = field(default=2e-4, metadata={"label": "Generator learning rate"})
    """Generator learning rate (Adam)."""
    lr_d: float = field(default=2e-4, metadata={"label": "Discriminator learning rate"})
    """Discriminator learning rate (Adam)."""
    beta1: float = field(default=0.5, metadata={"label": "Adam momentum (beta1)"})
    """Adam beta1."""
    beta2: float = field(default=0.999, metadata={"label": "Adam smoothing (beta2)"})
    """Adam beta2."""
    loss: LossName = field(default="ns", metadata={"label": "Adversarial loss"})
    """Adversarial loss: 'ns' (non-saturating), 'hinge', 'wgan-gp' (Wasserstein critic with gradient
    penalty: steadier, slower) or 'lsgan' (least squares: no vanishing gradients for far-off fakes)."""
    n_critic: int | None = field(default=None, metadata={"label": "Discriminator updates per generator update"})
    """D (critic) updates per G update, each on the step's real batch with fresh noise; None = 5 with
    'wgan-gp' (the paper's value), 1 with the other losses."""
    gp_gamma: float = field(default=10.0, metadata={"label": "WGAN gradient penalty weight"})
    """Weight (lambda) of the WGAN-GP gradient penalty, which keeps the critic's gradient norm near 1
    on points between real and fake images; used only with loss 'wgan-gp'."""
    label_smoothing: float = field(default=0.0, metadata={"label": "One-sided label smoothing"})
    """Lower D's target for real images from 1 to 1 - s (0 = off; 0.1 typical), so D stays less sure
    and keeps giving G useful gradients; with 'ns' and 'lsgan' only (hinge and wgan-gp refuse it)."""
    instance_noise: float = field(default=0.0, metadata={"label": "Instance noise (start std)"})
    """Std of Gaussian noise added to every image D sees (real and fake, images in [-1, 1]) at the start,
    falling linearly to 0 at instance_noise_kimg (0 = off; 0.1-0.5 typical): blurs the two distributions
    into each other early on, so D cannot separate them perfectly and starve G of gradient."""
    instance_noise_kimg: float = field(default=50.0, metadata={"label": "Instance noise ends at (thousand images)"})
    """Thousands of training images after which the instance noise has decayed to 0."""
    r1_gamma: float = field(default=0.0, metadata={"label": "Gradient penalty strength (R1)"})
    """R1 gradient penalty weight on real images (0 = off)."""
    r1_every: int = field(default=16, metadata={"label": "Gradient penalty every N steps"})
    """Apply R1 every N steps (lazy regularisation, scaled to keep the same strength)."""
    augment: str = field(default="color,translation,cutout", metadata={"label": "Augmentations (DiffAugment)"})
    """DiffAugment policy applied to everything D sees ('' = off)."""
    ada: bool = field(default=True, metadata={"label": "Adaptive augmentation (ADA)"})
    """Adapt the augmentation probability to D's overfitting (ADA); False = always apply."""
    ada_target: float = field(default=0.6, metadata={"label": "Adaptive augmentation target"})
    """ADA target for the mean sign of D(real), measured from the loss's real/fake boundary (0 for 'ns' and
    'hinge', 0.5 for 'lsgan'; for 'wgan-gp' the batch's mean critic score of fakes)."""
    ema_half_life_kimg: float = field(
        default=10.0, metadata={"label": "Averaged generator half-life (thousand images)"}
    )
    """Half-life of the EMA generator, in thousands of images."""
    amp: bool | None = field(default=None, metadata={"label": "Mixed precision"})
    """Mixed precision; None = on when training on CUDA."""
    channels_last: bool | None = field(default=None, metadata={"label": "Channels-last memory layout"})
    """channels_last memory format; None = on when training on CUDA."""
    grad_clip: float | None = field(default=None, metadata={"label": "Gradient clipping limit"})
    """Clip gradient norm of G and D to this value (None = off)."""
    conditional: bool = field(default=True, metadata={"label": "Learn the class folders (conditional)"})
    """Train class-conditional when the dataset has class folders, so you can ask for a class; no effect
    without them. On by default again since the class enters the generator through its batch norms (the
    older way collapsed each class to nearly one image; docs/training.md, Conditional training)."""
    class_balance: bool = field(default=False, metadata={"label": "Class-balanced sampling"})
    """Draw every class folder equally often (small classes oversampled, with repeats) instead of every image
    equally often; for unbalanced folders, so a conditional model learns its small classes too and an
    unconditional one does not mostly make the largest class. No effect without class folders."""
    seed: int = field(default=0, metadata={"label": "Random seed"})
    """Random seed; the same seed on CPU gives the same weights."""
    device: str = field(default="auto", metadata={"label": "Device"})
    """'auto', 'cpu', 'cuda', 'cuda:1' or 'mps'."""
    preview_every: int = field(default=200, metadata={"label": "Preview every N steps"})
    """Write a fixed-seed preview grid every N steps (0 = off)."""
    preview_count: int = field(default=64, metadata={"label": "Images in the preview"})
    """Number of images in the preview grid."""
    checkpoint_every: int = field(default=500, metadata={"label": "Checkpoint every N steps"})
    """Write a checkpoint every N steps (always also at the end and on stop)."""
    checkpoint_minutes: float | None = field(default=10.0, metadata={"label": "Checkpoint every N minutes"})
    """Also write a checkpoint after this many minutes of training since the last one, so a crash loses at
    most that much work however slow a step is (pauses don't count; None = by steps only)."""
    keep_checkpoints: int = field(default=3, metadata={"label": "Checkpoints to keep"})
    """How many recent checkpoints to keep."""
    nan_lr_factor: float = field(default=0.5, metadata={"label": "Learning-rate cut after a failed step"})
    """On a non-finite loss, roll back and multiply both learning rates by this."""
    kid_every: int | None = field(default=None, metadata={"label": "Measure quality (KID) every N steps"})
    """Measure KID against the dataset every N steps (0 = off; None = every 1000 steps on a GPU, off on CPU)."""
    kid_samples: int = field(default=250, metadata={"label": "Images per quality measurement"})
    """Generated images per KID measurement (more = steadier, slower)."""
    log_every: int = field(default=10, metadata={"label": "Log every N steps"})
    """Append a line to stats.jsonl every N steps."""
    health: bool = field(default=True, metadata={"label": "Training doctor (health checks)"})
    """Watch the run for the usual GAN failures (collapse to a few images, a discriminator that wins,
    divergence, overfitting, copying training images, no more progress) and say in words what to try;
    findings go to health.jsonl in the run folder (docs/training.md, The training doctor)."""
    auto_remedies: bool = field(default=False, metadata={"label": "Apply the doctor's fixes automatically"})
    """When the doctor finds divergence or overfitting, apply its first fix mid-run (lower the learning
    rates; more augmentation or a stronger gradient penalty) and log it; needs health checks on."""
    watermark: bool = field(default=True, metadata={"label": "Watermark the images this model makes"})
    """Every image made with this model (generate, translate, upscale, its ONNX export) carries an invisible
    watermark naming the model and this installation, so anyone can check it is AI-generated (gan-studio-cli
    verify, the studio's Check image). Turning it off is recorded in the run and the model card."""
    format_version: int = field(default=FORMAT_VERSION, metadata={"label": "Format version"})
    """Version of this config layout (for migrations)."""

    def validate(self) -> None:
        """Raise ConfigError naming the first invalid setting (and, for a number, its allowed range)."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None and "None" in str(f.type):
                continue  # an optional setting left unset
            if f.name in FLOAT_RANGES:
                problem = _float_problem(f.name, value)
            elif isinstance(value, float) and not math.isfinite(value):  # a float setting without a range
                problem = f"setting '{f.name}' must be a finite number (got {value})"
            else:
                problem = None
            if problem:
                raise ConfigError(problem)
        positive = ("batch_size", "r1_every", "checkpoint_every", "keep_checkpoints", "log_every")
        if self.loss not in LOSS_NAMES:
            raise ConfigError(f"setting 'loss' must be one of {', '.join(LOSS_NAMES)} (got {self.loss!r})")
        if self.label_smoothing and self.loss not in SMOOTHABLE_LOSSES:
            raise ConfigError(
                f"setting 'label_smoothing' has no meaning with loss '{self.loss}'; set label_smoothing=0 "
                f"or choose loss {' or '.join(repr(n) for n in SMOOTHABLE_LOSSES)}"
            )
        if self.n_critic is not None and self.n_critic < 1:
            raise ConfigError(
                f"setting 'n_critic' must be at least 1, or None for the loss's default (got {self.n_critic})"
            )
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"setting '{name}' must be at least 1 (got {getattr(self, name)})")
        if self.auto_remedies and not self.health:
            raise ConfigError(
                "setting 'auto_remedies' needs the health checks that find what to remedy; set health=true "
                "or auto_remedies=false"
            )
        if self.accumulate is not None and not 1 <= self.accumulate <= self.batch_size:
            raise ConfigError(
                f"setting 'accumulate' must be between 1 and batch_size ({self.batch_size}), or None for the "
                f"memory planner's choice (got {self.accumulate})"
            )
        if self.steps is None and self.minutes is None:
            raise ConfigError("set 'steps' or 'minutes' so the run knows when to stop")
        if self.steps is not None and self.steps < 1:
            raise ConfigError(f"setting 'steps' must be at least 1 (got {self.steps})")
        if self.resolution is not None and (self.resolution < 16 or self.resolution & (self.resolution - 1)):
            raise ConfigError(f"setting 'resolution' must be a power of two >= 16 (got {self.resolution})")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build from a dict, migrating older formats; refuse newer ones and unknown keys."""
        data = dict(data)
        version = int(data.get("format_version", 1))
        if version > FORMAT_VERSION:
            raise CheckpointError(
                f"this run was made by a newer GAN Studio (config format {version}, this version reads "
                f"up to {FORMAT_VERSION}); update GAN Studio to open it"
            )
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown training setting(s): {', '.join(unknown)}")
        data["format_version"] = FORMAT_VERSION
        return cls(**data)


def read_run_config(run_dir: Path | str) -> TrainConfig:
    """The TrainConfig stored in a run folder, or CheckpointError explaining what is missing."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise CheckpointError(f"{run_dir} is not a GAN Studio run folder (no config.json)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path} cannot be read ({exc}); the run folder is damaged") from None
    return TrainConfig.from_dict(data)
