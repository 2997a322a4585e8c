"""pix2pix (Isola et al. 2017): paired image-to-image translation with a U-Net and a PatchGAN.

Trained from the artist's own folder: ``task='sketch'`` and ``task='colorize'`` derive the inputs
from each image (see engine.data.pairs); ``task='paired'`` reads A/ and B/ folders. The loss is the
adversarial term of a conditional PatchGAN (it sees input and output together) plus an L1 term that
keeps the output close to the target.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from engine.families.base import ModelSpec
from engine.families.registry import register_family
from engine.families.translation import TranslationFamily
from engine.runs.config import TrainConfig


@dataclass
class Pix2PixConfig:
    """Options of the pix2pix family."""

    task: Literal["sketch", "colorize", "paired"] = field(default="sketch", metadata={"label": "Task"})
    """What to learn: 'sketch' (line art -> image), 'colorize' (grey + colour hints -> colour) or 'paired'
    (A/ -> B/)."""
    base_channels: int = field(default=64, metadata={"label": "Network width"})
    """Feature maps of the U-Net at full resolution."""
    max_channels: int = field(default=512, metadata={"label": "Maximum width"})
    """Cap on feature maps deep in the U-Net and the discriminator."""
    depth: int = field(default=7, metadata={"label": "U-Net depth (downsamplings)"})
    """Downsamplings in the U-Net (capped so the bottleneck keeps 4x4 px at the training size)."""
    d_base_channels: int = field(default=64, metadata={"label": "Discriminator width"})
    """Feature maps of the discriminator's first layer."""
    d_layers: int = field(default=3, metadata={"label": "Discriminator layers"})
    """Strided layers of the PatchGAN (3 = 70x70 px patches)."""
    l1_weight: float = field(default=100.0, metadata={"label": "Pixel loss weight (L1)"})
    """Weight of the L1 distance to the target against the adversarial loss."""
    max_hints: int = field(default=10, metadata={"label": "Most colour hints per example"})
    """Colorize: most colour hints drawn into a training example (0 = learn without hints)."""


@register_family("pix2pix")
class Pix2Pix(TranslationFamily):
    """Sketch-to-image, colorization and paired A->B translation, 32-1024 px."""

    description = "Turns one kind of image into another: sketches into pictures, grey into colour, A into B."
    Config = Pix2PixConfig
    tasks = ("sketch", "colorize", "paired")
    min_resolution = 32
    tiny_options = {"base_channels": 8, "max_channels": 32, "depth": 3, "d_base_channels": 8, "d_layers": 2}

    def __init__(self, spec: ModelSpec, train: TrainConfig, device: torch.device) -> None:
        super().__init__(spec, train, device)
        G = self._place(self._generator(self.in_channels, self.out_channels))
        D = self._place(self.build_discriminator())
        self.modules = {"G": G, "D": D}
        self._add_ema()
        betas = (train.beta1, train.beta2)
        self.optimizers = {
            "G": torch.optim.Adam(G.parameters(), lr=train.lr_g, betas=betas),
            "D": torch.optim.Adam(D.parameters(), lr=train.lr_d, betas=betas),
        }
        self._make_scalers(("G", "D"))

    def build_discriminator(self) -> nn.Module:
        """A conditional PatchGAN: it judges (input, output) pairs, not outputs alone."""
        return self.build_patch_discriminator(self.in_channels + self.out_channels)

    def train_step(
        self, real: torch.Tensor, labels: torch.Tensor | None, step: int, micro_batches: int
    ) -> dict[str, float]:
        inputs, targets = self.random_flip(*self.split_batch(real))
        chunks = list(zip(inputs.chunk(micro_batches), targets.chunk(micro_batches)))
        stats, fakes = self._d_step(chunks)
        stats.update(self._g_step(chunks, fakes))
        self._finish_step(real.shape[0])
        return stats

    def _d_step(self, chunks: list) -> tuple[dict[str, float], list[torch.Tensor]]:
        G, D = self.modules["G"], self.modules["D"]
        D.requires_grad_(True)
        self.optimizers["D"].zero_grad(set_to_none=True)
        totals = {"loss_d": 0.0, "d_real": 0.0, "d_fake": 0.0}
        fakes = []  # kept with their graph: the G step reuses them instead of running G twice
        for a, b in chunks:
            with self._autocast():
                fake = G(a)
                real_logits = D(torch.cat([a, b], 1))
                fake_logits = D(torch.cat([a, fake.detach()], 1))
                loss = self.d_loss_fn(real_logits.float(), fake_logits.float())
            fakes.append(fake)
            self.scalers["D"].scale(loss / len(chunks)).backward()
            totals["loss_d"] += float(loss.detach()) / len(chunks)
            totals["d_real"] += float(real_logits.detach().float().mean()) / len(chunks)
            totals["d_fake"] += float(fake_logits.detach().float().mean()) / len(chunks)
        self._optimizer_step("D")
        return totals, fakes

    def _g_step(self, chunks: list, fakes: list[torch.Tensor]) -> dict[str, float]:
        D = self.modules["D"]
        D.requires_grad_(False)
        self.optimizers["G"].zero_grad(set_to_none=True)
        totals = {"loss_g": 0.0, "l1": 0.0}
        for (a, b), fake in zip(chunks, fakes):
            with self._autocast():
                adversarial = self.g_loss_fn(D(torch.cat([a, fake], 1)).float())
            l1 = (fake.float() - b.float()).abs().mean()
            loss = adversarial + self.cfg.l1_weight * l1
            self.scalers["G"].scale(loss / len(chunks)).backward()
            totals["loss_g"] += float(loss.detach()) / len(chunks)
            totals["l1"] += float(l1.detach()) / len(chunks)
        self._optimizer_step("G")
        return totals
