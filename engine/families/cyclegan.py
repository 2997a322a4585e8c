"""CycleGAN (Zhu et al. 2017): translation between two unpaired folders, A/ and B/.

Two generators (A->B and B->A) and two PatchGAN discriminators. Each generator fools its
discriminator while the round trip A->B->A must give back the input (cycle consistency), which is
what makes unpaired data enough. The published model is the A->B generator (its EMA).

Differences from the paper, on purpose: U-Net generators shared with pix2pix (any input size,
one building block to maintain), spectral-norm discriminators, the trainer's loss (non-saturating by
default) instead of least squares, and no pool of past fakes, so every step depends only on the
checkpointed state and resuming stays exact.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import torch
from torch import nn

from engine.families.base import ModelSpec
from engine.families.registry import register_family
from engine.families.translation import TranslationFamily
from engine.runs.config import TrainConfig


@dataclass
class CycleGANConfig:
    """Options of the CycleGAN family."""

    base_channels: int = field(default=48, metadata={"label": "Network width"})
    """Feature maps of each U-Net at full resolution."""
    max_channels: int = field(default=384, metadata={"label": "Maximum width"})
    """Cap on feature maps deep in the networks."""
    depth: int = field(default=6, metadata={"label": "U-Net depth (downsamplings)"})
    """Downsamplings in each U-Net (capped so the bottleneck keeps 4x4 px at the training size)."""
    d_base_channels: int = field(default=64, metadata={"label": "Discriminator width"})
    """Feature maps of each discriminator's first layer."""
    d_layers: int = field(default=3, metadata={"label": "Discriminator layers"})
    """Strided layers of each PatchGAN (3 = 70x70 px patches)."""
    cycle_weight: float = field(default=10.0, metadata={"label": "Round-trip loss weight"})
    """Weight of the round-trip (A->B->A and B->A->B) L1 loss."""
    identity_weight: float = field(default=0.5, metadata={"label": "Identity loss weight"})
    """Identity loss weight, relative to cycle_weight: G(B) should stay B (keeps colours; 0 = off)."""


@register_family("cyclegan")
class CycleGAN(TranslationFamily):
    """Unpaired A/ <-> B/ translation, 32-1024 px."""

    description = "Learns to turn A images into B images (and back) from two folders that need not match."
    Config = CycleGANConfig
    tasks = ("unpaired",)
    min_resolution = 32
    tiny_options = {"base_channels": 8, "max_channels": 32, "depth": 3, "d_base_channels": 8, "d_layers": 2}

    def __init__(self, spec: ModelSpec, train: TrainConfig, device: torch.device) -> None:
        super().__init__(spec, train, device)
        G, F = (self._place(self._generator(self.in_channels, self.out_channels)) for _ in range(2))
        D_A, D_B = (self._place(self.build_discriminator()) for _ in range(2))
        self.modules = {"G": G, "F": F, "D_A": D_A, "D_B": D_B}
        self._add_ema()
        betas = (train.beta1, train.beta2)
        self.optimizers = {
            "G": torch.optim.Adam(itertools.chain(G.parameters(), F.parameters()), lr=train.lr_g, betas=betas),
            "D": torch.optim.Adam(itertools.chain(D_A.parameters(), D_B.parameters()), lr=train.lr_d, betas=betas),
        }
        self._make_scalers(("G", "D"))

    def build_discriminator(self) -> nn.Module:
        """An unconditional PatchGAN over one domain's images."""
        return self.build_patch_discriminator(self.out_channels)

    def train_step(
        self, real: torch.Tensor, labels: torch.Tensor | None, step: int, micro_batches: int
    ) -> dict[str, float]:
        a, b = self.split_batch(real)
        (a,), (b,) = self.random_flip(a), self.random_flip(b)
        chunks = list(zip(a.chunk(micro_batches), b.chunk(micro_batches)))
        stats, fakes = self._g_step(chunks)
        stats.update(self._d_step(chunks, fakes))
        self._finish_step(real.shape[0])
        return stats

    def _g_step(self, chunks: list) -> tuple[dict[str, float], list[tuple[torch.Tensor, torch.Tensor]]]:
        G, F, D_A, D_B = (self.modules[k] for k in ("G", "F", "D_A", "D_B"))
        D_A.requires_grad_(False)
        D_B.requires_grad_(False)
        self.optimizers["G"].zero_grad(set_to_none=True)
        totals = {"loss_g": 0.0, "cycle": 0.0, "identity": 0.0}
        cw, iw = self.cfg.cycle_weight, self.cfg.cycle_weight * self.cfg.identity_weight
        fakes = []
        for a, b in chunks:
            with self._autocast():
                fake_b, fake_a = G(a), F(b)
                adversarial = self.g_loss_fn(D_B(fake_b).float()) + self.g_loss_fn(D_A(fake_a).float())
                cycle = _l1(F(fake_b), a) + _l1(G(fake_a), b)
                identity = _l1(G(b), b) + _l1(F(a), a) if iw else cycle.new_zeros(())
            loss = adversarial + cw * cycle + iw * identity
            self.scalers["G"].scale(loss / len(chunks)).backward()
            fakes.append((fake_a.detach(), fake_b.detach()))
            for key, value in (("loss_g", loss), ("cycle", cycle), ("identity", identity)):
                totals[key] += float(value.detach()) / len(chunks)
        self._optimizer_step("G")
        return totals, fakes

    def _d_step(self, chunks: list, fakes: list) -> dict[str, float]:
        D_A, D_B = self.modules["D_A"], self.modules["D_B"]
        D_A.requires_grad_(True)
        D_B.requires_grad_(True)
        self.optimizers["D"].zero_grad(set_to_none=True)
        totals = {"loss_d": 0.0, "d_real": 0.0, "d_fake": 0.0}
        for (a, b), (fake_a, fake_b) in zip(chunks, fakes):
            with self._autocast():
                real_a, real_b, out_a, out_b = D_A(a), D_B(b), D_A(fake_a), D_B(fake_b)
                loss = (
                    self.d_loss_fn(real_a.float(), out_a.float()) + self.d_loss_fn(real_b.float(), out_b.float())
                ) / 2
            self.scalers["D"].scale(loss / len(chunks)).backward()
            totals["loss_d"] += float(loss.detach()) / len(chunks)
            totals["d_real"] += float(real_b.detach().float().mean()) / len(chunks)
            totals["d_fake"] += float(out_b.detach().float().mean()) / len(chunks)
        self._optimizer_step("D")
        return totals


def _l1(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (x.float() - y.float()).abs().mean()
