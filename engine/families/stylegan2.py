"""StyleGAN2 (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN"), with the
conditioning of StyleGAN2-ADA (Karras et al. 2020), in plain PyTorch (layers in engine/nn/style.py).

Generator = mapping network + synthesis network, exposed separately so that work in W (latent
editing, W-space exports) can call them:

- ``G.mapping(z, labels, truncation) -> ws`` (N, num_ws, w_dim): z is normalised, the class embedding
  (normalised too) is concatenated, an MLP with learning rate x0.01 gives w, repeated once per layer.
  ``truncation`` psi pulls w toward ``w_avg``, the running mean of w tracked during training.
- ``G.synthesis(ws, noise_mode) -> image`` (N, C, R, R): a learned 4x4 constant, then per size two
  modulated/demodulated 3x3 convs with per-pixel noise of learned strength; each size adds its own
  1x1 "toRGB" output to the upsampled image of the size before (the skip generator).
- ``G(z, labels, truncation)`` is synthesis(mapping(...)). In training mode it also tracks w_avg, mixes
  two latents' styles at a random layer (style mixing regularisation) and draws fresh noise; in eval
  mode (the EMA generator: previews, sampling, export) it uses the stored noise, so the same latent
  always gives the same image.

Discriminator: residual blocks (two 3x3 convs and a 1x1 shortcut, summed with gain sqrt(1/2)) down to
4x4, then minibatch standard deviation (groups of 4, one channel), a conv and two dense layers; with
classes, the last layer's output is projected onto a learned class embedding (StyleGAN2-ADA's cmap).

Regularisation: lazy R1 on real images (the shared step's ``r1_gamma``/``r1_every``) and lazy
path-length regularisation in the G step (``pl_weight`` every ``pl_every`` steps). EMA of G as for
every family. The option defaults are the paper's GPU model (its widths at 256 px, 8 mapping layers,
path length weight 2); ``recommended_settings`` gives the widths per size, the small model the CPU
presets train, and the learning rates, Adam betas and R1 weight the family is tuned for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from engine.errors import ConfigError
from engine.families.base import AdversarialFamily, ModelSpec
from engine.families.registry import register_family
from engine.nn.style import (
    NOISE_MODES,
    EqualConv2d,
    EqualLinear,
    MinibatchStdDev,
    ResidualBlock,
    SynthesisLayer,
    ToRGB,
    normalize_2nd_moment,
    upsample2x,
)
from engine.runs.config import TrainConfig

Truncation = float | torch.Tensor
"""psi: a number for the whole batch, or a (N,) tensor with one value per sample (the ONNX input)."""


CLASS_HEADS = ("both", "projection")
"""Option ``class_head``: how a conditional discriminator's output meets the class."""


@dataclass
class StyleGAN2Config:
    """Options of the StyleGAN2 family."""

    latent_dim: int = field(default=512, metadata={"label": "Noise length (latent size)"})
    """Length of the latent vector z."""
    w_dim: int = field(default=512, metadata={"label": "Style vector length (w)"})
    """Length of the intermediate latent w that the mapping network produces and every layer reads."""
    mapping_layers: int = field(default=8, metadata={"label": "Mapping network layers"})
    """Dense layers from z (+ class) to w: 8 in the paper; 2 are enough for small models and small data."""
    base_channels: int = field(default=64, metadata={"label": "Network width"})
    """Feature maps at the training size, doubled per halving of size up to the maximum width, in G and D
    alike (the paper's channel_base is this times the resolution: 16384 = 64 at 256 px)."""
    max_channels: int = field(default=512, metadata={"label": "Maximum width"})
    """Cap on feature maps at the small sizes."""
    style_mixing: float = field(default=0.9, metadata={"label": "Style mixing probability"})
    """Share of training batches whose styles switch to a second latent at a random layer (0 = off).
    Keeps neighbouring layers' styles independent, so styles can be mixed and edited later."""
    pl_weight: float = field(default=2.0, metadata={"label": "Path length regularisation weight"})
    """Weight of the path length penalty: a fixed-size step in w should change the image by a fixed
    amount, which makes the generator smoother and easier to invert (0 = off)."""
    pl_every: int = field(default=4, metadata={"label": "Path length penalty every N steps"})
    """Apply the path length penalty every N steps (lazy regularisation, scaled by N)."""
    pl_decay: float = field(default=0.01, metadata={"label": "Path length mean decay"})
    """How fast the target path length (a running mean of the measured lengths) follows new batches."""
    pl_batch_shrink: int = field(default=2, metadata={"label": "Path length batch divisor"})
    """The penalty runs on 1/N of each batch (it needs a second backward pass; half the batch is enough)."""
    mapping_lr_mul: float = field(default=0.01, metadata={"label": "Mapping network learning-rate factor"})
    """The mapping network learns this many times slower than the rest (the paper's 0.01)."""
    w_avg_beta: float = field(default=0.995, metadata={"label": "Mean style tracking decay"})
    """Decay of the running mean of w (the centre that truncation pulls toward), per training step."""
    mbstd_group: int = field(default=4, metadata={"label": "Minibatch std group size"})
    """The discriminator compares each image with the other images of its group of this many."""
    class_head: str = field(default="both", metadata={"label": "Discriminator's class head"})
    """Class-conditional runs only: 'both' (a realness output plus the projection onto the class, as in
    Miyato & Koyama 2018) or 'projection' (StyleGAN2-ADA's projection alone, the head of older runs: on small
    data it let each class collapse to a few images, see docs/training.md)."""
    class_weight: float = field(default=0.5, metadata={"label": "Class weight in the mapping input"})
    """Class-conditional runs only: the normalised class embedding is scaled by this before it joins z in the
    mapping network (1 = StyleGAN2-ADA and older runs; less leaves z more say over w, so each class varies)."""

    def __post_init__(self) -> None:
        for name in (
            "latent_dim",
            "w_dim",
            "mapping_layers",
            "base_channels",
            "max_channels",
            "pl_every",
            "pl_batch_shrink",
            "mbstd_group",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"option '{name}' must be at least 1 (got {getattr(self, name)})")
        for name in ("style_mixing", "pl_decay", "w_avg_beta"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"option '{name}' must be between 0 and 1 (got {getattr(self, name)})")
        if not self.pl_weight >= 0:
            raise ConfigError(f"option 'pl_weight' must be 0 or more (got {self.pl_weight})")
        if not self.mapping_lr_mul > 0:
            raise ConfigError(f"option 'mapping_lr_mul' must be more than 0 (got {self.mapping_lr_mul})")
        if self.class_head not in CLASS_HEADS:
            raise ConfigError(f"option 'class_head' must be one of {', '.join(CLASS_HEADS)} (got {self.class_head!r})")
        if not 0 < self.class_weight <= 4:
            raise ConfigError(f"option 'class_weight' must be more than 0 and at most 4 (got {self.class_weight})")


def _widths(cfg: StyleGAN2Config, resolution: int) -> dict[int, int]:
    """Feature maps per size 4 .. resolution: base_channels at the full size, doubling per halving, at most
    max_channels."""
    sizes = [2**i for i in range(2, int(math.log2(resolution)) + 1)]
    return {s: min(cfg.base_channels * (resolution // s), cfg.max_channels) for s in sizes}


def recommended_r1_gamma(resolution: int, batch_size: int = 32) -> float:
    """R1 weight by StyleGAN2-ADA's rule of thumb, 0.0002 * resolution^2 / batch size.

    At batch 32: 0.0256 at 64 px, 0.41 at 256, 1.6 at 512, 6.6 at 1024 (the papers used 1 at 256,
    0.5 at 512, 2-10 at 1024 for faces: raise it when training is unstable, lower it when images stay
    blurry).
    """
    return 0.0002 * resolution**2 / batch_size


# -- generator ---------------------------------------------------------------------------------


class MappingNetwork(nn.Module):
    """z (N, latent) [+ class indices] -> ws (N, num_ws, w_dim); keeps ``w_avg`` for truncation."""

    w_avg: torch.Tensor

    def __init__(self, cfg: StyleGAN2Config, num_classes: int, num_ws: int) -> None:
        super().__init__()
        self.num_ws = num_ws
        self.class_weight = cfg.class_weight
        self.embed = nn.Embedding(num_classes, cfg.w_dim) if num_classes else None
        dims = [cfg.latent_dim + (cfg.w_dim if num_classes else 0)] + [cfg.w_dim] * cfg.mapping_layers
        self.net = nn.Sequential(
            *(EqualLinear(a, b, lr_mul=cfg.mapping_lr_mul, activation=True) for a, b in zip(dims[:-1], dims[1:]))
        )
        self.register_buffer("w_avg", torch.zeros(cfg.w_dim))

    def forward(
        self, z: torch.Tensor, labels: torch.Tensor | None = None, truncation: Truncation = 1.0
    ) -> torch.Tensor:
        x = normalize_2nd_moment(z)
        if self.embed is not None:
            # No labels on a conditional model: a zero class vector (the mean of no class).
            y = self.embed(labels) if labels is not None else x.new_zeros(x.shape[0], self.embed.embedding_dim)
            x = torch.cat([x, normalize_2nd_moment(y) * self.class_weight], dim=1)
        w = self.net(x)
        if isinstance(truncation, torch.Tensor):
            w = self.w_avg.to(w.dtype) + (w - self.w_avg.to(w.dtype)) * truncation.reshape(-1, 1).to(w.dtype)
        elif truncation != 1:
            w = self.w_avg.to(w.dtype) + (w - self.w_avg.to(w.dtype)) * truncation
        return w.unsqueeze(1).repeat(1, self.num_ws, 1)

    @torch.no_grad()
    def track_w_avg(self, w: torch.Tensor, beta: float) -> None:
        """Move ``w_avg`` toward the mean of the batch of w (N, w_dim)."""
        self.w_avg.copy_(w.detach().float().mean(dim=0).lerp(self.w_avg, beta))


class SynthesisNetwork(nn.Module):
    """ws (N, num_ws, w_dim) -> image (N, C, R, R), about [-1, 1] (not clamped: the loss sees it raw)."""

    def __init__(self, cfg: StyleGAN2Config, resolution: int, channels: int) -> None:
        super().__init__()
        w = _widths(cfg, resolution)
        sizes = sorted(w)
        self.const = nn.Parameter(torch.randn(w[4], 4, 4))
        layers = [SynthesisLayer(w[4], w[4], cfg.w_dim, 4)]
        for s in sizes[1:]:
            layers += [SynthesisLayer(w[s // 2], w[s], cfg.w_dim, s, up=True), SynthesisLayer(w[s], w[s], cfg.w_dim, s)]
        self.layers = nn.ModuleList(layers)
        self.to_rgbs = nn.ModuleList(ToRGB(w[s], channels, cfg.w_dim) for s in sizes)
        # Layer i reads ws[:, i]; the toRGB after layer i reads ws[:, i + 1] (shared with the next
        # size's first layer, as in the paper), so there is one more w than layers.
        self.num_ws = len(layers) + 1

    def forward(self, ws: torch.Tensor, noise_mode: str = "const") -> torch.Tensor:
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        x = self.const.unsqueeze(0).expand(ws.shape[0], -1, -1, -1)
        x = self.layers[0](x, ws[:, 0], noise_mode)
        img = self.to_rgbs[0](x, ws[:, 1])
        for b in range(1, len(self.to_rgbs)):
            x = self.layers[2 * b - 1](x, ws[:, 2 * b - 1], noise_mode)
            x = self.layers[2 * b](x, ws[:, 2 * b], noise_mode)
            img = upsample2x(img) + self.to_rgbs[b](x, ws[:, 2 * b + 1])
        return img


class StyleGenerator(nn.Module):
    """G(z, labels, truncation) = synthesis(mapping(z, labels, truncation)) with the training extras."""

    def __init__(self, cfg: StyleGAN2Config, resolution: int, channels: int, num_classes: int) -> None:
        super().__init__()
        self.synthesis = SynthesisNetwork(cfg, resolution, channels)
        self.mapping = MappingNetwork(cfg, num_classes, self.synthesis.num_ws)
        self.style_mixing = cfg.style_mixing
        self.w_avg_beta = cfg.w_avg_beta

    def forward(
        self, z: torch.Tensor, labels: torch.Tensor | None = None, truncation: Truncation = 1.0
    ) -> torch.Tensor:
        ws = self.mapping(z, labels, truncation)
        if not self.training:
            return self.synthesis(ws, "const")
        self.mapping.track_w_avg(ws[:, 0], self.w_avg_beta)
        return self.synthesis(self.mix_styles(z, labels, ws), "random")

    def mix_styles(self, z: torch.Tensor, labels: torch.Tensor | None, ws: torch.Tensor) -> torch.Tensor:
        """With probability ``style_mixing``, the layers from a random one on take a second latent's w."""
        if self.style_mixing <= 0 or ws.shape[1] < 2:
            return ws
        # Both draws always happen (from torch's global generator): the random stream, and so an
        # exact resume, does not depend on which way the coin fell.
        cutoff = int(torch.randint(1, ws.shape[1], ()))
        if float(torch.rand(())) >= self.style_mixing:
            return ws
        other = self.mapping(torch.randn_like(z), labels)
        return torch.cat([ws[:, :cutoff], other[:, cutoff:]], dim=1)


# -- discriminator -----------------------------------------------------------------------------


class ResidualDiscriminator(nn.Module):
    """image (N, C, R, R) [+ class indices] -> logits (N,)."""

    def __init__(self, cfg: StyleGAN2Config, resolution: int, channels: int, num_classes: int) -> None:
        super().__init__()
        w = _widths(cfg, resolution)
        self.from_rgb = EqualConv2d(channels, w[resolution], 1, activation=True)
        self.blocks = nn.Sequential(*(ResidualBlock(w[s], w[s // 2]) for s in sorted(w, reverse=True)[:-1]))
        self.mbstd = MinibatchStdDev(cfg.mbstd_group, 1)
        self.conv = EqualConv2d(w[4] + 1, w[4], 3, activation=True)
        self.fc = EqualLinear(w[4] * 16, w[4], activation=True)
        # With classes the output is a w[4]-vector projected onto the class's embedding (StyleGAN2-ADA's
        # cmap, after Miyato & Koyama 2018): the class enters as an inner product, not as input channels.
        self.cmap = nn.Embedding(num_classes, w[4]) if num_classes else None
        self.out = EqualLinear(w[4], w[4] if num_classes else 1)
        # 'both': also psi, a realness output of its own, so D still judges "is it real" apart from "is it
        # class y"; with the projection alone G could satisfy D with one convincing image per class.
        self.psi = EqualLinear(w[4], 1) if num_classes and cfg.class_head == "both" else None

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.blocks(self.from_rgb(x))
        h = self.fc(self.conv(self.mbstd(h)).flatten(1))
        out = self.out(h)
        if self.cmap is None:
            return out.squeeze(1)
        if labels is None:
            raise ValueError("this discriminator is class-conditional: pass the class indices")
        projected = (out * self.cmap(labels).to(out.dtype)).sum(dim=1) / math.sqrt(out.shape[1])
        return projected if self.psi is None else projected + self.psi(h).squeeze(1)


# -- the family --------------------------------------------------------------------------------


@register_family("stylegan2")
class StyleGAN2(AdversarialFamily):
    """StyleGAN2 family, 16-1024 px: mapping + synthesis networks, residual D, R1 and path length."""

    description = (
        "The style-based generator (StyleGAN2): the best images from a few thousand pictures up, "
        "with a style space for mixing and editing; slower per step than the others."
    )
    Config = StyleGAN2Config
    min_resolution = 16
    max_resolution = 1024
    tiny_options = {"latent_dim": 16, "w_dim": 16, "mapping_layers": 2, "base_channels": 8, "max_channels": 16}
    truncates_in_w = True

    def __init__(self, spec: ModelSpec, train: TrainConfig, device: torch.device) -> None:
        super().__init__(spec, train, device)
        self.pl_mean = torch.zeros((), device=device)
        self._step = 0  # the step being trained, for the lazy path length schedule in _g_step

    @classmethod
    def recommended_settings(cls, resolution: int, device_type: str) -> dict[str, Any]:
        """Training settings StyleGAN2 is tuned for at ``resolution`` on a 'cpu' or GPU device.

        Adam with lr 0.0025 and betas (0, 0.99) and R1 by :func:`recommended_r1_gamma` as in
        StyleGAN2-ADA. On a CPU a small model (2 mapping layers, widths 64 down to 32 at 64 px); on a
        GPU the paper's widths (channel_base 16384 up to 256 px, 32768 above: 64 maps at 256 and 512 px,
        32 at 1024; at most 512).
        """
        if device_type == "cpu":
            options: dict[str, Any] = {
                "latent_dim": 128,
                "w_dim": 128,
                "mapping_layers": 2,
                "base_channels": 32,
                "max_channels": 64,
                "pl_weight": 0.0,
            }
        else:
            channel_base = 32768 if resolution >= 512 else 16384
            options = {"base_channels": max(1, channel_base // resolution), "max_channels": 512}
        return {
            "lr_g": 0.0025,
            "lr_d": 0.0025,
            "beta1": 0.0,
            "beta2": 0.99,
            "r1_gamma": round(recommended_r1_gamma(resolution), 4),
            "r1_every": 16,
            "family_options": options,
        }

    def build_generator(self) -> nn.Module:
        return StyleGenerator(self.cfg, self.spec.resolution, self.spec.channels, self.spec.num_classes)

    def build_discriminator(self) -> nn.Module:
        return ResidualDiscriminator(self.cfg, self.spec.resolution, self.spec.channels, self.spec.num_classes)

    @property
    def latent_dim(self) -> int:
        return self.cfg.latent_dim

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`; a conditional checkpoint from before ``class_head`` (a D without
        ``psi``) keeps the projection head and the full class weight it was trained with."""
        if self.spec.num_classes and "psi.weight" not in state["modules"]["D"] and self.cfg.class_head == "both":
            self.cfg.class_head, self.cfg.class_weight = "projection", 1.0
            options = {"class_head": "projection", "class_weight": 1.0}
            self.train.family_options = {**self.train.family_options, **options}
            for key in ("G", "G_ema"):
                G = self.modules[key]
                assert isinstance(G, StyleGenerator)  # built by build_generator
                G.mapping.class_weight = 1.0
            self._rebuild_discriminator()
        super().load_state_dict(state)

    def _generator(self, ema: bool) -> StyleGenerator:
        G = self.modules["G_ema" if ema else "G"]
        assert isinstance(G, StyleGenerator)  # built by build_generator above
        return G

    def export_modules(self) -> dict[str, nn.Module]:
        """The EMA generator (z, labels -> image) and its two halves for work in W."""
        G = self._generator(ema=True)
        return {"generator": G, "mapping": G.mapping, "synthesis": G.synthesis}

    @torch.no_grad()
    def sample(
        self, z: torch.Tensor, labels: torch.Tensor | None = None, ema: bool = True, truncation: Truncation = 1.0
    ) -> torch.Tensor:
        """Images in [-1, 1] with the stored noise (deterministic); ``truncation`` psi pulls w to w_avg."""
        G = self._generator(ema)
        y = None if labels is None else labels.to(self.device)
        t = truncation.to(self.device) if isinstance(truncation, torch.Tensor) else truncation
        # mapping + synthesis directly, so sampling the training G never tracks w_avg or mixes styles
        return G.synthesis(G.mapping(z.to(self.device), y, t), "const").float().clamp(-1, 1)

    # -- the step: the shared one, plus lazy path length regularisation after the G update --------
    def train_step(
        self, real: torch.Tensor, labels: torch.Tensor | None, step: int, micro_batches: int
    ) -> dict[str, float]:
        """The shared GAN step (style mixing happens inside G); every ``pl_every`` steps also the PL penalty."""
        self._step = step
        return super().train_step(real, labels, step, micro_batches)

    def _g_step(self, chunks: list) -> dict[str, float]:
        stats = super()._g_step(chunks)
        if self.cfg.pl_weight > 0 and self._step % self.cfg.pl_every == 0:
            stats["pl"] = self._path_length_step(chunks)
        return stats

    def _path_length_step(self, chunks: list) -> float:
        """One extra G update on the path length penalty (the paper's lazy 'Greg' phase); mean length."""
        G, opt = self._generator(ema=False), self.optimizers["G"]
        opt.zero_grad(set_to_none=True)
        total = 0.0
        for x, y in chunks:
            n = max(1, x.shape[0] // self.cfg.pl_batch_shrink)
            penalty, length = self._path_length(G, n, None if y is None else y[:n])
            self.scalers["G"].scale(penalty / len(chunks)).backward()
            total += length / len(chunks)
        self._optimizer_step("G")
        return total

    def _path_length(self, G: StyleGenerator, n: int, labels: torch.Tensor | None) -> tuple[torch.Tensor, float]:
        """(weighted penalty, mean length) for ``n`` new samples: |J_w^T y| for random images y should stay
        at its running mean. In float32 outside autocast, like R1: the double backward underflows in fp16."""
        z = self._noise(n)
        ws = G.mix_styles(z, labels, G.mapping(z, labels))
        img = G.synthesis(ws, "random")
        noise = torch.randn_like(img) / math.sqrt(img.shape[2] * img.shape[3])
        (grad,) = torch.autograd.grad((img * noise).sum(), ws, create_graph=True)
        lengths = grad.square().sum(dim=2).mean(dim=1).sqrt()
        pl_mean = self.pl_mean.lerp(lengths.mean(), self.cfg.pl_decay)
        self.pl_mean.copy_(pl_mean.detach())
        penalty = (lengths - pl_mean).square().mean() * self.cfg.pl_weight * self.cfg.pl_every
        return penalty, float(lengths.detach().mean())

    def extra_state(self) -> dict[str, Any]:
        return {**super().extra_state(), "pl_mean": self.pl_mean.detach().cpu().clone()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        super().load_extra_state(state)
        if "pl_mean" in state:
            self.pl_mean = state["pl_mean"].to(self.device)
