"""FastGAN-style small-data family (after Liu et al. 2021, "Towards Faster and Stabilized GAN Training
for High-fidelity Few-shot Image Synthesis").

Generator: a 4x4 seed from the latent, then nearest-upsample + 3x3 conv + BatchNorm + GLU blocks up to
the training size; every other block has two convolutions with (training-only) noise injection. Skip-
Layer Excitation (SLE) lets a coarse map gate the channels of a map 8x (up to 128 px) or 16x (from
256 px) larger, which gives the gradient a short path to the early layers.

Discriminator: strided-conv blocks with an average-pool shortcut, spectral norm on every conv, logits
from the 8x8 map. On real images it also has to reconstruct the whole image from its 8x8 map and a
random quarter of it from its 16x16 map (small decoders, L1/MSE on pixels); that self-supervision is
what keeps D from memorising a few hundred images. Class-conditional through class-conditional batch
norm in G (engine/nn/conditional.py; z stays G's only input) and a projection head in D, as in dcgan.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from engine.errors import ConfigError
from engine.families.base import AdversarialFamily, ModelSpec
from engine.families.registry import register_family
from engine.nn.conditional import CLASS_INPUTS, LabelledSequential, batch_norm
from engine.runs.config import TrainConfig

RECON_LOSSES = ("l1", "mse")


@dataclass
class FastGANConfig:
    """Options of the FastGAN family."""

    latent_dim: int = field(default=128, metadata={"label": "Noise length (latent size)"})
    """Length of the latent vector z."""
    base_channels: int = field(default=32, metadata={"label": "Network width"})
    """Feature maps at half the training size (G and D); doubled per halving of size, halved at full size."""
    max_channels: int = field(default=256, metadata={"label": "Maximum width"})
    """Cap on feature maps at low resolutions."""
    noise_injection: bool = field(default=True, metadata={"label": "Per-pixel noise in the generator"})
    """Add learned per-pixel noise in G's two-conv blocks while training (never in previews or exports)."""
    skip_excitation: bool = field(default=True, metadata={"label": "Skip-layer excitation"})
    """Skip-Layer Excitation: coarse G features gate the channels of much finer ones."""
    d_batchnorm: bool = field(default=True, metadata={"label": "Batch norm in the discriminator"})
    """BatchNorm in D's blocks as in the paper (False = spectral norm only)."""
    recon_weight: float = field(default=1.0, metadata={"label": "Reconstruction loss weight"})
    """Weight of D's self-supervised reconstruction loss on real images (0 = off)."""
    recon_loss: str = field(default="l1", metadata={"label": "Reconstruction loss"})
    """Pixel loss of the reconstruction: 'l1' or 'mse'."""
    class_input: str = field(default="norm", metadata={"label": "How the class enters the generator"})
    """Class-conditional runs only: 'norm' (each class sets the gains and biases of G's batch norms) or
    'latent' (a class embedding added to z: each class collapsed to nearly one image, see docs/training.md;
    kept so that older runs load and resume)."""

    def __post_init__(self) -> None:
        for name in ("latent_dim", "base_channels", "max_channels"):
            if getattr(self, name) < 1:
                raise ConfigError(f"option '{name}' must be at least 1 (got {getattr(self, name)})")
        if self.recon_weight < 0:
            raise ConfigError(f"option 'recon_weight' must be 0 or more (got {self.recon_weight})")
        if self.class_input not in CLASS_INPUTS:
            raise ConfigError(
                f"option 'class_input' must be one of {', '.join(CLASS_INPUTS)} (got {self.class_input!r})"
            )
        if self.recon_loss not in RECON_LOSSES:
            raise ConfigError(f"option 'recon_loss' must be one of {', '.join(RECON_LOSSES)} (got {self.recon_loss!r})")


def _width(cfg: FastGANConfig, resolution: int, size: int) -> int:
    """Feature maps of a block working at ``size`` px: base_channels at resolution/2, doubling per halving."""
    return max(min(cfg.base_channels * resolution // (2 * size), cfg.max_channels), 4)


def _decoder_width(cfg: FastGANConfig, size: int) -> int:
    """Feature maps of a reconstruction-decoder block with output ``size``: 2*base_channels at 16 px, halving.

    Half the paper's widths: the decoders only have to make D's features informative, and at full
    width they would cost more than the rest of D on a CPU.
    """
    return max(min(cfg.base_channels * 32 // size, cfg.max_channels), 4)


def _sle_pairs(resolution: int) -> dict[int, int]:
    """{high: low} sizes coupled by SLE: 16x apart from 256 px (as in the paper), 8x apart below."""
    ratio = 16 if resolution >= 256 else 8
    pairs = {}
    size = 4 * ratio
    while size <= resolution:
        pairs[size] = size // ratio
        size *= 2
    return pairs


def _recon_size(resolution: int) -> int:
    """Side of D's reconstructions: half the image, at most 128 px (the paper's size)."""
    return min(resolution // 2, 128)


# -- generator ---------------------------------------------------------------------------------


class NoiseInjection(nn.Module):
    """x + w * N(0, 1) per pixel with a learned scalar w, in training mode only.

    Eval mode is the identity so that previews are deterministic and the ONNX graph has no random op.
    """

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        n, _, h, w = x.shape
        return x + self.weight.to(x.dtype) * torch.randn(n, 1, h, w, device=x.device, dtype=x.dtype)


def _conv_glu(c_in: int, c_out: int, noise: bool, num_classes: int = 0, class_input: str = "norm") -> list[nn.Module]:
    """3x3 conv to 2*c_out, optional noise, BatchNorm (per class in a conditional G), GLU back to c_out."""
    layers: list[nn.Module] = [nn.Conv2d(c_in, 2 * c_out, 3, 1, 1, bias=False)]
    layers += [NoiseInjection()] if noise else []
    return layers + [batch_norm(2 * c_out, num_classes, class_input), nn.GLU(dim=1)]


def _up_block(c_in: int, c_out: int, double: bool, noise: bool, num_classes: int, class_input: str) -> nn.Sequential:
    """Nearest 2x upsample, then one conv-GLU (plain block) or two with noise (the paper's 'comp' block)."""
    layers: list[nn.Module] = [nn.Upsample(scale_factor=2, mode="nearest")]
    if double:
        layers += _conv_glu(c_in, c_out, noise, num_classes, class_input)
        layers += _conv_glu(c_out, c_out, noise, num_classes, class_input)
    else:
        layers += _conv_glu(c_in, c_out, False, num_classes, class_input)
    return LabelledSequential(*layers)


class SkipExcitation(nn.Module):
    """SLE: channel gates for a fine map computed from a coarse one (pooled to 4x4, conv4x4, conv1x1)."""

    def __init__(self, c_low: int, c_high: int, low_size: int) -> None:
        super().__init__()
        # A fixed-kernel average pool rather than adaptive pooling: same result here, and it exports.
        pool: nn.Module = nn.AvgPool2d(low_size // 4) if low_size > 4 else nn.Identity()
        self.gate = nn.Sequential(
            pool,
            nn.Conv2d(c_low, c_high, 4, 1, 0, bias=False),
            nn.LeakyReLU(0.1, True),
            nn.Conv2d(c_high, c_high, 1, 1, 0, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        return high * self.gate(low)


class FastGANGenerator(nn.Module):
    """z (N, latent) [+ labels] -> image (N, C, R, R) in [-1, 1]."""

    def __init__(self, cfg: FastGANConfig, resolution: int, channels: int, num_classes: int) -> None:
        super().__init__()
        self.sizes = [2**i for i in range(2, int(math.log2(resolution)) + 1)]
        w = {s: _width(cfg, resolution, s) for s in self.sizes}
        legacy = num_classes and cfg.class_input == "latent"
        self.embed = nn.Embedding(num_classes, cfg.latent_dim) if legacy else None
        self.init = LabelledSequential(
            nn.ConvTranspose2d(cfg.latent_dim, 2 * w[4], 4, 1, 0, bias=False),
            batch_norm(2 * w[4], num_classes, cfg.class_input),
            nn.GLU(dim=1),
        )
        # Two-conv blocks at 8, 32, 128, 512 px and one-conv blocks between, as in the paper.
        self.ups = nn.ModuleList(
            _up_block(w[s // 2], w[s], int(math.log2(s)) % 2 == 1, cfg.noise_injection, num_classes, cfg.class_input)
            for s in self.sizes[1:]
        )
        self.sle_from = _sle_pairs(resolution) if cfg.skip_excitation else {}
        self.sle = nn.ModuleDict({str(hi): SkipExcitation(w[lo], w[hi], lo) for hi, lo in self.sle_from.items()})
        self.sle_sources = set(self.sle_from.values())
        self.to_image = nn.Sequential(nn.Conv2d(w[resolution], channels, 3, 1, 1), nn.Tanh())
        self.apply(_init_weights)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None and labels is not None:
            z = z + self.embed(labels)
        h = self.init(z[:, :, None, None], labels)
        feats = {4: h}
        for size, block in zip(self.sizes[1:], self.ups):
            h = block(h, labels)
            if size in self.sle_from:
                h = self.sle[str(size)](feats[self.sle_from[size]], h)
            if size in self.sle_sources:
                feats[size] = h
        return self.to_image(h)


# -- discriminator -----------------------------------------------------------------------------


class DownBlock(nn.Module):
    """Halve the size: (strided 4x4 conv, 3x3 conv) averaged with an avg-pool + 1x1 conv shortcut."""

    def __init__(self, c_in: int, c_out: int, batchnorm: bool) -> None:
        super().__init__()

        def act(c: int) -> list[nn.Module]:
            return ([nn.BatchNorm2d(c)] if batchnorm else []) + [nn.LeakyReLU(0.2, True)]

        self.main = nn.Sequential(
            spectral_norm(nn.Conv2d(c_in, c_out, 4, 2, 1, bias=not batchnorm)),
            *act(c_out),
            spectral_norm(nn.Conv2d(c_out, c_out, 3, 1, 1, bias=not batchnorm)),
            *act(c_out),
        )
        self.skip = nn.Sequential(
            nn.AvgPool2d(2), spectral_norm(nn.Conv2d(c_in, c_out, 1, 1, 0, bias=not batchnorm)), *act(c_out)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.main(x) + self.skip(x)) * 0.5


def _decoder(c_in: int, out_size: int, channels: int, cfg: FastGANConfig) -> nn.Sequential:
    """8x8 features -> (N, channels, out_size, out_size) image in [-1, 1] (no spectral norm: not adversarial)."""
    layers: list[nn.Module] = []
    size, c = 8, c_in
    while size < out_size:
        size *= 2
        c_out = _decoder_width(cfg, size)
        layers += [nn.Upsample(scale_factor=2, mode="nearest"), *_conv_glu(c, c_out, False)]
        c = c_out
    return nn.Sequential(*layers, nn.Conv2d(c, channels, 3, 1, 1), nn.Tanh())


class FastGANDiscriminator(nn.Module):
    """image (N, C, R, R) [+ labels] -> logits (N,); :meth:`forward_with_recon` adds the self-supervised loss."""

    def __init__(self, cfg: FastGANConfig, resolution: int, channels: int, num_classes: int) -> None:
        super().__init__()
        w = {s: _width(cfg, resolution, s) for s in (2**i for i in range(3, int(math.log2(resolution))))}
        half = resolution // 2
        self.stem = nn.Sequential(spectral_norm(nn.Conv2d(channels, w[half], 4, 2, 1)), nn.LeakyReLU(0.2, True))
        # Blocks down to 16 px, then one to 8 px: the decoders read the maps between them.
        self.to_16 = nn.Sequential(*(DownBlock(w[s], w[s // 2], cfg.d_batchnorm) for s in _halvings(half, 16)))
        self.to_8 = DownBlock(w[16], w[8], cfg.d_batchnorm)
        self.head = spectral_norm(nn.Conv2d(w[8], 1, 4, 1, 0))
        # Projection discriminator (Miyato & Koyama 2018), on the mean-pooled 8x8 features.
        self.embed = spectral_norm(nn.Embedding(num_classes, w[8])) if num_classes else None
        self.recon_size = _recon_size(resolution)
        self.decode_full = _decoder(w[8], self.recon_size, channels, cfg)
        self.decode_part = _decoder(w[16], self.recon_size, channels, cfg)
        self.apply(_init_weights)

    def _features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(16x16 map, 8x8 map)."""
        h16 = self.to_16(self.stem(x))
        return h16, self.to_8(h16)

    def _logits(self, h8: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        # The 4x4 head sees 5x5 overlapping patches of the 8x8 map; their mean is the image's logit.
        out = self.head(h8).mean(dim=(1, 2, 3))
        if self.embed is not None and labels is not None:
            out = out + (self.embed(labels) * h8.mean(dim=(2, 3))).sum(1)
        return out

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self._logits(self._features(x)[1], labels)

    def forward_with_recon(
        self, x: torch.Tensor, labels: torch.Tensor | None, loss: str
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits (N,), reconstruction loss (scalar, float32)) for real images ``x``."""
        h16, h8 = self._features(x)
        quarter = torch.randint(0, 4, (x.shape[0],), device=x.device)
        target_full = F.interpolate(x, size=self.recon_size, mode="area")
        target_part = F.interpolate(_quarter(x, quarter), size=self.recon_size, mode="area")
        pixel_loss = F.l1_loss if loss == "l1" else F.mse_loss
        rec = pixel_loss(self.decode_full(h8).float(), target_full.float()) + pixel_loss(
            self.decode_part(_quarter(h16, quarter)).float(), target_part.float()
        )
        return self._logits(h8, labels), rec


def _halvings(start: int, stop: int) -> list[int]:
    """Sizes start, start/2, ... down to (excluding) stop."""
    sizes = []
    while start > stop:
        sizes.append(start)
        start //= 2
    return sizes


def _quarter(x: torch.Tensor, which: torch.Tensor) -> torch.Tensor:
    """Per sample, the quarter ``which`` (0..3, row-major) of a square map (N, C, S, S) -> (N, C, S/2, S/2)."""
    n, c, s, _ = x.shape
    quarters = x.reshape(n, c, 2, s // 2, 2, s // 2).permute(0, 2, 4, 1, 3, 5).reshape(n, 4, c, s // 2, s // 2)
    return quarters[torch.arange(n, device=x.device), which]


def _init_weights(m: nn.Module) -> None:
    # N(0, 0.02) as in DCGAN and the FastGAN paper; spectral norm rescales D's convs anyway.
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        # Under spectral norm the stored parameter is the parametrization's original, not m.weight.
        name = "parametrizations.weight.original" if hasattr(m, "parametrizations") else "weight"
        nn.init.normal_(m.get_parameter(name), 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d) and m.affine:  # a class batch norm's gains are set by the class
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


@register_family("fastgan")
class FastGAN(AdversarialFamily):
    """Small-data FastGAN family, 32-512 px: SLE generator, self-supervised discriminator."""

    description = "Best for small folders (100 to a few thousand images): new images in the style of yours."
    Config = FastGANConfig
    min_resolution = 32
    max_resolution = 512
    tiny_options = {"latent_dim": 16, "base_channels": 4, "max_channels": 16}

    CPU_SETTINGS: dict[str, Any] = {"batch_size": 8, "lr_g": 8e-4, "lr_d": 8e-4}
    """On a CPU: the paper's batch of 8 (at equal images seen, 4x the steps of batch 32 for the same time per
    image) at four times the TrainConfig learning rate. Emoji at 64 px, 30 kimg, KD x1e3 (bench/quality.py,
    docs/benchmarks.md): 302.5 at batch 32 and lr 2e-4; at batch 8: 222.6 at lr 2e-4, 201.3 at 4e-4 (2 seeds),
    167.5 at 8e-4 (2 seeds: 158.4, 176.5), 203.7 at 1.6e-3 (1 seed): 8e-4 is the best of the four."""

    @classmethod
    def recommended_settings(cls, resolution: int, device_type: str) -> dict[str, Any]:
        """CPU_SETTINGS on a CPU (more, smaller, larger steps learn more per image seen); the TrainConfig
        defaults otherwise."""
        return dict(cls.CPU_SETTINGS) if device_type == "cpu" else {}

    def __init__(self, spec: ModelSpec, train: TrainConfig, device: torch.device) -> None:
        super().__init__(spec, train, device)
        self._recon_total = torch.zeros((), device=device)
        self._recon_count = 0

    def build_generator(self) -> nn.Module:
        return FastGANGenerator(self.cfg, self.spec.resolution, self.spec.channels, self.spec.num_classes)

    def build_discriminator(self) -> nn.Module:
        return FastGANDiscriminator(self.cfg, self.spec.resolution, self.spec.channels, self.spec.num_classes)

    @property
    def latent_dim(self) -> int:
        return self.cfg.latent_dim

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`; a conditional checkpoint keeps the class input it was trained with."""
        self._adopt_checkpoint_class_input(state)
        super().load_state_dict(state)

    def discriminate_real(self, x: torch.Tensor, labels: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, recon_weight * reconstruction loss) for (augmented) real images."""
        D = self.modules["D"]
        assert isinstance(D, FastGANDiscriminator)  # built by build_discriminator above
        if self.cfg.recon_weight == 0:
            return D(x, labels), x.new_zeros((), dtype=torch.float32)
        logits, rec = D.forward_with_recon(x, labels, self.cfg.recon_loss)
        self._recon_total = self._recon_total + rec.detach()
        self._recon_count += 1
        return logits, rec * self.cfg.recon_weight

    def train_step(
        self, real: torch.Tensor, labels: torch.Tensor | None, step: int, micro_batches: int
    ) -> dict[str, float]:
        """The shared GAN step; adds D's mean reconstruction loss as stat 'recon'."""
        # Reset first: a step the Trainer abandoned (out of memory) may have left a partial sum.
        self._recon_total = torch.zeros((), device=self.device)
        self._recon_count = 0
        stats = super().train_step(real, labels, step, micro_batches)
        if self._recon_count:
            stats["recon"] = float(self._recon_total) / self._recon_count
        return stats
