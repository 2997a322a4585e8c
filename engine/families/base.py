"""The contract every model family implements, and the shared noise-to-image GAN step.

A family owns its networks, optimizers and training step. The Trainer owns everything around it
(data, device, loop, callbacks, checkpoints, NaN/OOM recovery) and talks to the family only through
the methods of :class:`Family`.
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from engine.data.pairs import DataPlan, single_plan
from engine.distributed import SINGLE, Replica
from engine.errors import ConfigError
from engine.nn.augment import AdaptiveAugment, diff_augment, parse_policy
from engine.nn.ema import ema_beta, make_ema, update_ema
from engine.nn.layers import add_instance_noise, instance_noise_std, per_sample_norms
from engine.nn.losses import adversarial_loss, get_loss, gradient_penalty, interpolates, r1_penalty
from engine.runs.config import TrainConfig

if TYPE_CHECKING:
    from engine.data import PreparedDataset

_NOISE_SEED = 15_485_863
"""Offset of the latent generator's seed from the run's seed (a prime, apart from the other private seeds)."""

ExampleLoader = Callable[[int], torch.Tensor]
"""k -> the first k examples of the data plan as one batch, like train_step receives (for previews)."""


@dataclass(frozen=True)
class ModelSpec:
    """What the data dictates: image size, channels, number of classes (0 = unconditional)."""

    resolution: int
    channels: int = 3
    num_classes: int = 0


def build_family_config(config_cls: type, options: dict[str, Any]) -> Any:
    """Instantiate a family's Config dataclass from user options, naming any unknown option."""
    known = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(f"unknown option(s) {', '.join(unknown)} for this family; known: {', '.join(sorted(known))}")
    return config_cls(**options)


class Family(ABC):
    """Base class of a registered model family (see engine.families.registry)."""

    name: ClassVar[str] = ""
    kind: ClassVar[str] = "generate"
    """'generate' (latent noise -> image), 'translate' (image -> image) or 'upscale' (image -> the image
    enlarged); front ends list runs by kind."""
    description: ClassVar[str] = ""
    """One line in plain words for the family picker: what the family is for and when to choose it."""
    Config: ClassVar[type]
    min_resolution: ClassVar[int] = 16
    max_resolution: ClassVar[int] = 1024
    tiny_options: ClassVar[dict[str, Any]] = {}
    """Family options for a model small enough for CPU tests (used by the contract test)."""
    truncates_in_w: ClassVar[bool] = False
    """True when ``sample()`` takes ``truncation=psi`` and applies it in the model's own latent space
    (StyleGAN's W); runners then pass psi through instead of scaling z."""
    live_settings: ClassVar[tuple[str, ...]] = ("grad_clip",)
    """TrainConfig settings read from ``self.train`` at every step, so retune() only has to record them."""

    def __init__(self, spec: ModelSpec, train: TrainConfig, device: torch.device) -> None:
        if not self.min_resolution <= spec.resolution <= self.max_resolution:
            raise ConfigError(
                f"family '{self.name}' trains at {self.min_resolution}-{self.max_resolution} px; "
                f"setting 'resolution' is {spec.resolution}"
            )
        self.spec = spec
        self.train = train
        self.device = device
        self.cfg = build_family_config(self.Config, train.family_options)
        self.modules: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.amp = bool(train.amp if train.amp is not None else device.type == "cuda")
        self.memory_format = (
            torch.channels_last
            if (train.channels_last if train.channels_last is not None else device.type == "cuda")
            else torch.contiguous_format
        )
        self.scalers: dict[str, torch.amp.GradScaler] = {}
        self.replica: Replica = SINGLE
        """This process's place in a multi-process run; the Trainer sets it with :meth:`join`."""

    def join(self, replica: Replica) -> None:
        """Train as one of ``replica.world_size`` processes: each step's batch is this process's share, and
        gradients are averaged over all of them before every optimizer step."""
        self.replica = replica

    # -- subclasses implement ------------------------------------------------------------------
    @abstractmethod
    def train_step(
        self, real: torch.Tensor, labels: torch.Tensor | None, step: int, micro_batches: int
    ) -> dict[str, float]:
        """One optimisation step on ``real`` (N,C,H,W in [-1,1]); returns scalar stats."""

    @abstractmethod
    def sample(self, z: torch.Tensor, labels: torch.Tensor | None = None, ema: bool = True) -> torch.Tensor:
        """Images in [-1,1] (N,C,H,W) for latents ``z`` (N, latent_dim)."""

    @property
    @abstractmethod
    def latent_dim(self) -> int:
        """Length of the latent vector the generator takes."""

    # -- shared ------------------------------------------------------------------------------
    @classmethod
    def data_resolution(cls, train: TrainConfig) -> int | None:
        """The size the Trainer prepares the dataset at for ``train`` (None: the dataset's last import size).
        The training resolution itself; a family that cuts crops from larger images (esrgan) says its
        source size."""
        return train.resolution

    @classmethod
    def recommended_settings(cls, resolution: int, device_type: str) -> dict[str, Any]:
        """TrainConfig values (``family_options`` included) this family is tuned for at ``resolution`` px
        on a device of type ``device_type`` ('cpu', 'cuda', 'mps'); front ends start from these and put
        the user's own choices on top. Empty: the TrainConfig and Config defaults suit the family."""
        return {}

    def export_modules(self) -> dict[str, nn.Module]:
        """Modules that make up the published model (the EMA generator). A family with a style space adds
        ``mapping`` (z, labels, truncation -> ws) and ``synthesis`` (ws -> the eval generator's image), and
        the ONNX export then publishes them as graphs of their own."""
        return {"generator": self.modules["G_ema"]}

    def describe(self) -> dict[str, Any]:
        """What a run folder records about the model beyond its spec (kind, latent size, task...)."""
        return {"kind": self.kind, "latent_dim": self.latent_dim}

    def data_plan(self, dataset: PreparedDataset) -> DataPlan:
        """Which dataset rows make one training example; noise-to-image families use every row alone."""
        return single_plan(len(dataset))

    def preview_inputs(self, count: int, seed: int, first_examples: ExampleLoader) -> Any:
        """Fixed inputs of the preview grid: latents from a private generator and cycling class labels."""
        gen = torch.Generator().manual_seed(seed + 7919)
        z = torch.randn(count, self.latent_dim, generator=gen)
        labels = torch.arange(count) % self.spec.num_classes if self.spec.num_classes else None
        return z, labels

    def render_preview(self, inputs: Any) -> tuple[torch.Tensor, int | None]:
        """(images (N,C,H,W) in [-1,1], images per grid row or None for a square grid) for ``inputs``."""
        return self.sample(*inputs), None

    # -- optimisation helpers for subclasses --------------------------------------------------
    def _place(self, module: nn.Module) -> nn.Module:
        """``module`` on this family's device, in its memory format (channels_last for convs on CUDA)."""
        # Two calls: torch's typed overloads of Module.to have no (device, memory_format=) form.
        return module.to(self.device).to(memory_format=self.memory_format)

    def _make_scalers(self, keys: tuple[str, ...]) -> None:
        self.scalers = {k: torch.amp.GradScaler(self.device.type, enabled=self.amp) for k in keys}

    def _autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp)

    def _optimizer_step(self, key: str) -> None:
        opt, scaler = self.optimizers[key], self.scalers[key]
        params = [p for group in opt.param_groups for p in group["params"]]
        # the mean over processes before anything reads the gradients: clipping then sees the whole batch's
        self.replica.average_gradients(params)
        if self.train.grad_clip:
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(params, self.train.grad_clip)
        scaler.step(opt)
        scaler.update()

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume exactly: weights, optimizer and extra state."""
        return {
            "modules": {k: m.state_dict() for k, m in self.modules.items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "extra": self.extra_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`."""
        for k, m in self.modules.items():
            m.load_state_dict(state["modules"][k])
        for k, o in self.optimizers.items():
            o.load_state_dict(state["optimizers"][k])
        self.load_extra_state(state.get("extra", {}))

    def extra_state(self) -> dict[str, Any]:
        """Non-tensor state beyond weights and optimizers (augmentation p, AMP scalers)."""
        return {"scalers": {k: s.state_dict() for k, s in self.scalers.items()}}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`extra_state`."""
        for k, s in state.get("scalers", {}).items():
            if s and k in self.scalers:
                self.scalers[k].load_state_dict(s)

    def retune(self, settings: dict[str, Any]) -> list[str]:
        """Apply TrainConfig ``settings`` to the running model mid-run (the training doctor's automatic
        remedies) and record each in ``self.train``; returns the names applied, leaving out those this family
        takes only on a resumed run. Learning rates scale the optimizer by new / old setting, so the cut of
        an earlier NaN roll-back is kept."""
        applied = []
        for name, value in settings.items():
            if self._retune(name, value):
                setattr(self.train, name, value)
                applied.append(name)
        return applied

    def _retune(self, name: str, value: Any) -> bool:
        key = {"lr_g": "G", "lr_d": "D"}.get(name)
        if key is not None and key in self.optimizers and getattr(self.train, name) > 0:
            factor = value / getattr(self.train, name)
            for group in self.optimizers[key].param_groups:
                group["lr"] *= factor
            return True
        return name in self.live_settings

    def scale_lr(self, factor: float) -> None:
        """Multiply every optimizer's learning rate by ``factor`` (used after a NaN roll-back)."""
        for opt in self.optimizers.values():
            for group in opt.param_groups:
                group["lr"] *= factor

    @property
    def augment_p(self) -> float:
        """Current augmentation probability (0 when the family does not augment)."""
        return 0.0


class AdversarialFamily(Family):
    """Noise-to-image GAN: subclasses supply the two networks, this class trains them.

    Implements the losses of engine/nn/losses.py (non-saturating, hinge, LSGAN, WGAN-GP with its
    gradient penalty and n_critic D steps per G step), one-sided label smoothing, decaying instance
    noise, DiffAugment with ADA, lazy R1, EMA, AMP on CUDA, gradient accumulation over
    ``micro_batches`` and gradient clipping.
    """

    live_settings: ClassVar[tuple[str, ...]] = ("grad_clip", "r1_gamma", "r1_every")

    def __init__(self, spec: ModelSpec, train: TrainConfig, device: torch.device) -> None:
        super().__init__(spec, train, device)
        self.policy = parse_policy(train.augment)
        self.loss = adversarial_loss(train.loss)
        self.d_loss_fn, self.g_loss_fn = get_loss(train.loss, train.label_smoothing)
        self.n_critic = train.n_critic or self.loss.default_n_critic
        # D's loss when it answers the boundary for every image (a D that guesses): its confidence's scale
        guess = None if self.loss.boundary is None else torch.full((1,), self.loss.boundary)
        self._guess_loss = None if guess is None else float(self.d_loss_fn(guess, guess))
        self.ada = AdaptiveAugment(p=0.0 if train.ada else 1.0, adaptive=train.ada, target=train.ada_target)
        G = self._place(self.build_generator())
        self.modules = {"G": G, "G_ema": make_ema(G), "D": self._new_discriminator()}
        D = self.modules["D"]
        betas = (train.beta1, train.beta2)
        self.optimizers = {
            "G": torch.optim.Adam(G.parameters(), lr=train.lr_g, betas=betas),
            "D": torch.optim.Adam(D.parameters(), lr=train.lr_d, betas=betas),
        }
        self._make_scalers(("G", "D"))
        # G's latents come from a generator of their own, the same on every process of a multi-process run:
        # each draws the whole batch's latents and takes its share, so N processes see the very latents one
        # process would (a 2-process run matches a 1-process run with the same batch; tests/engine/test_ddp.py)
        self.noise_gen = torch.Generator(device=device).manual_seed(train.seed + _NOISE_SEED)
        self.images_seen = 0
        self._noise_std = 0.0  # instance noise of the current step (from images_seen, so it resumes exactly)
        self._fakes: list[torch.Tensor] = []

    def _new_discriminator(self) -> nn.Module:
        D = self.build_discriminator()
        if self.loss.critic:
            # Automatic rather than refused: a family's batch-norm D becomes a layer-norm critic, which
            # is what the WGAN-GP paper does (engine/nn/layers.py: per_sample_norms).
            per_sample_norms(D)
        return self._place(D)

    def _rebuild_discriminator(self) -> None:
        """Build D (and its optimizer) again from the current options, for a checkpoint whose D was built
        another way (the family's load_state_dict decides)."""
        D = self._new_discriminator()
        self.modules["D"] = D
        betas = (self.train.beta1, self.train.beta2)
        self.optimizers["D"] = torch.optim.Adam(D.parameters(), lr=self.train.lr_d, betas=betas)

    def _adopt_checkpoint_class_input(self, state: dict[str, Any]) -> bool:
        """Rebuild G (with its EMA and optimizer) the way a conditional checkpoint's G was built, when that
        differs from the settings' ``class_input``; record it in the run's settings. True when rebuilt."""
        legacy = "embed.weight" in state["modules"]["G"]
        if not self.spec.num_classes or legacy == (self.cfg.class_input == "latent"):
            return False
        # Runs from before class_input existed added the class to z; rebuild G that way rather than refuse them.
        self.cfg.class_input = "latent" if legacy else "norm"
        self.train.family_options = {**self.train.family_options, "class_input": self.cfg.class_input}
        G = self._place(self.build_generator())
        self.modules["G"], self.modules["G_ema"] = G, make_ema(G)
        betas = (self.train.beta1, self.train.beta2)
        self.optimizers["G"] = torch.optim.Adam(G.parameters(), lr=self.train.lr_g, betas=betas)
        return True

    def _retune(self, name: str, value: Any) -> bool:
        if name == "augment":
            self.policy = parse_policy(value)
            return True
        if name == "ada":
            # the probability carries on from where it is (1 for a fixed policy) and adapts from there
            self.ada.adaptive = bool(value)
            return True
        return super()._retune(name, value)

    # -- subclasses implement ------------------------------------------------------------------
    @abstractmethod
    def build_generator(self) -> nn.Module:
        """G(z, labels) -> (N,C,H,W) in [-1,1]."""

    @abstractmethod
    def build_discriminator(self) -> nn.Module:
        """D(x, labels) -> (N,) logits."""

    def discriminate_real(self, x: torch.Tensor, labels: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, auxiliary loss) for real images; families with self-supervised D override this."""
        return self.modules["D"](x, labels), x.new_zeros(())

    # -- the step ------------------------------------------------------------------------------
    @property
    def augment_p(self) -> float:
        return self.ada.p if self.policy else 0.0

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        return diff_augment(x, self.policy, self.ada.p)

    def _d_view(self, x: torch.Tensor) -> torch.Tensor:
        """What D sees of images ``x``: augmented, then with this step's instance noise."""
        return add_instance_noise(self._augment(x), self._noise_std)

    def _noise(self, n: int) -> torch.Tensor:
        """Latents for ``n`` images of this process's share of the step."""
        world = self.replica.world_size
        z = torch.randn(n * world, self.latent_dim, device=self.device, generator=self.noise_gen)
        return z[self.replica.rank * n : (self.replica.rank + 1) * n] if world > 1 else z

    def train_step(
        self, real: torch.Tensor, labels: torch.Tensor | None, step: int, micro_batches: int
    ) -> dict[str, float]:
        real = real.contiguous(memory_format=self.memory_format)
        chunks = list(zip(real.chunk(micro_batches), _chunk_or_none(labels, micro_batches)))
        self._noise_std = instance_noise_std(
            self.train.instance_noise, self.train.instance_noise_kimg, self.images_seen
        )
        stats = self._d_step(chunks, step)
        stats.update(self._g_step(chunks))
        if self.train.instance_noise:
            stats["instance_noise"] = self._noise_std
        batch = real.shape[0] * self.replica.world_size  # the step's images, all processes together
        self.images_seen += batch
        beta = ema_beta(batch, self.train.ema_half_life_kimg * 1000, self.images_seen)
        update_ema(self.modules["G_ema"], self.modules["G"], beta)
        self.ada.update(self.replica.sum_values)
        stats["augment_p"] = self.augment_p
        return stats

    def _d_step(self, chunks: list, step: int) -> dict[str, float]:
        """``n_critic`` updates of D on the step's real batch, each with fresh noise for G (see docs/training.md)."""
        G, D = self.modules["G"], self.modules["D"]
        do_r1 = self.train.r1_gamma > 0 and step % self.train.r1_every == 0
        D.requires_grad_(True)
        G.requires_grad_(True)
        totals = {"loss_d": 0.0, "d_real": 0.0, "d_fake": 0.0, "r1": 0.0, "gp": 0.0}
        for i in range(self.n_critic):
            self._critic_update(chunks, totals, do_r1=do_r1 and i == 0, last=i == self.n_critic - 1)
        if not do_r1:
            totals.pop("r1")
        if not self.loss.critic:
            totals.pop("gp")
        return totals

    def _critic_update(self, chunks: list, totals: dict[str, float], do_r1: bool, last: bool) -> None:
        """One optimizer step of D over every micro-batch; adds its stats to ``totals`` (means over updates)."""
        G, D = self.modules["G"], self.modules["D"]
        self.optimizers["D"].zero_grad(set_to_none=True)
        share = len(chunks) * self.n_critic
        # The last update's fakes keep their graph so the G step reuses them instead of running G again
        # (as the classic DCGAN loop does): one generator forward with gradients per step.
        self._fakes = []
        for x, y in chunks:
            with self._autocast():
                with torch.set_grad_enabled(last):
                    fake = G(self._noise(x.shape[0]), y)
                if last:
                    self._fakes.append(fake)
                real_in = self._d_view(x)
                real_logits, aux = self.discriminate_real(real_in, y)
                fake_in = self._d_view(fake.detach())
                fake_logits = D(fake_in, y)
                loss = self.d_loss_fn(real_logits.float(), fake_logits.float()) + aux
            if last:
                # Once per step, whatever n_critic is: ADA's speed is set in images, not D updates.
                self.ada.accumulate(self.loss.ada_signal(real_logits, fake_logits))
                if self.train.health:
                    self._judged(real_logits, fake_logits, totals, len(chunks))
            if do_r1:
                loss = loss + self._r1(x, y)
                totals["r1"] += self._last_r1 / len(chunks)
            if self.loss.critic and self.train.gp_gamma > 0:
                penalty = self._gradient_penalty(real_in, fake_in, y)
                loss = loss + penalty * self.train.gp_gamma
                totals["gp"] += float(penalty.detach()) / share
            self.scalers["D"].scale(loss / len(chunks)).backward()
            totals["loss_d"] += float(loss.detach()) / share
            totals["d_real"] += float(real_logits.detach().float().mean()) / share
            totals["d_fake"] += float(fake_logits.detach().float().mean()) / share
        self._optimizer_step("D")

    def _judged(self, real: torch.Tensor, fake: torch.Tensor, totals: dict[str, float], parts: int) -> None:
        """Add D's accuracy to ``totals`` (the shares of reals judged real and of fakes judged fake, on the
        loss's boundary; a critic's: the other side's mean score) and, except for a critic, its confidence;
        the training doctor (engine/training/health.py) reads them."""
        real, fake = real.detach().float(), fake.detach().float()
        real_side = self.loss.ada_signal(real, fake)  # > 0: judged real (what ADA takes the sign of)
        fake_side = fake - (real.mean() if self.loss.boundary is None else self.loss.boundary)
        parts_of = [(real_side > 0).float().mean(), (fake_side < 0).float().mean()]
        if self._guess_loss:  # confidence: 1 - D's adversarial loss / a guessing D's
            parts_of.append(1 - self.d_loss_fn(real, fake) / self._guess_loss)
        shares = torch.stack(parts_of).tolist()
        for key, value in zip(("d_acc_real", "d_acc_fake", "d_confidence"), shares):
            totals[key] = totals.get(key, 0.0) + value / parts

    def _grad_norm(self, key: str) -> float | None:
        """L2 norm of the gradients the optimizer ``key`` is about to apply (unscaled), None if not finite."""
        grads = [p.grad for group in self.optimizers[key].param_groups for p in group["params"] if p.grad is not None]
        if not grads:
            return None
        norm = float(torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads))))
        scaler = self.scalers[key]
        norm /= scaler.get_scale() if scaler.is_enabled() else 1.0
        # an fp16 overflow (the scaler skips that step) must not read as a non-finite loss and roll back
        return norm if math.isfinite(norm) else None

    def _gradient_penalty(self, real_in: torch.Tensor, fake_in: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """WGAN-GP's (||grad D|| - 1)^2 on interpolates of what D saw (augmented, noisy), in fp32."""
        # Outside autocast like R1: the double backward's squared norms lose too much in fp16.
        points = interpolates(real_in, fake_in)
        return gradient_penalty(self.modules["D"](points, y), points)

    def _r1(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        # R1 runs in fp32 outside autocast: the squared gradient norm underflows in fp16.
        x = x.detach().requires_grad_(True)
        logits = self.modules["D"](self._d_view(x), y)
        penalty = r1_penalty(logits, x)
        self._last_r1 = float(penalty.detach())
        return penalty * (self.train.r1_gamma / 2) * self.train.r1_every

    def _g_step(self, chunks: list) -> dict[str, float]:
        D, opt = self.modules["D"], self.optimizers["G"]
        D.requires_grad_(False)
        opt.zero_grad(set_to_none=True)
        total = 0.0
        fakes, self._fakes = self._fakes, []
        for (_, y), fake in zip(chunks, fakes):
            with self._autocast():
                loss = self.g_loss_fn(D(self._d_view(fake), y).float())
            self.scalers["G"].scale(loss / len(chunks)).backward()
            total += float(loss.detach()) / len(chunks)
        stats = {"loss_g": total}
        if self.train.health and (norm := self._grad_norm("G")) is not None:
            stats["g_grad_norm"] = norm
        self._optimizer_step("G")
        return stats

    @torch.no_grad()
    def sample(self, z: torch.Tensor, labels: torch.Tensor | None = None, ema: bool = True) -> torch.Tensor:
        G = self.modules["G_ema" if ema else "G"]
        return G(z.to(self.device), None if labels is None else labels.to(self.device)).float().clamp(-1, 1)

    def extra_state(self) -> dict[str, Any]:
        return {
            **super().extra_state(),
            "ada": self.ada.state_dict(),
            "images_seen": self.images_seen,
            "noise_rng": self.noise_gen.get_state(),
        }

    def load_extra_state(self, state: dict[str, Any]) -> None:
        super().load_extra_state(state)
        if "ada" in state:
            self.ada.load_state_dict(state["ada"])
        self.images_seen = int(state.get("images_seen", 0))
        if "noise_rng" in state:  # checkpoints from before drew latents from the global RNG: start afresh
            self.noise_gen.set_state(state["noise_rng"])


def _chunk_or_none(labels: torch.Tensor | None, n: int) -> list:
    return list(labels.chunk(n)) if labels is not None else [None] * n
