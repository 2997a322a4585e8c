"""What image-to-image families share: tasks, data plans, input derivation, previews, EMA.

A translation family maps an input image (a sketch, a greyscale image with colour hints, or an image
from an A/ folder) to an output image with the target's channels. Its exported ``generator`` module
takes (N, in_channels, H, W) and returns (N, out_channels, H, W) in [-1, 1] for any H, W that are
multiples of ``multiple``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from engine.data.pairs import DataPlan
from engine.errors import ConfigError
from engine.families.base import ExampleLoader, Family, ModelSpec
from engine.nn.color import decode_lab
from engine.nn.ema import ema_beta, make_ema, update_ema
from engine.nn.losses import LOSSES, adversarial_loss, get_loss
from engine.nn.unet import PatchDiscriminator, UNet, unet_depth
from engine.runs.config import TrainConfig
from engine.tasks import ImageTask, get_task

if TYPE_CHECKING:
    from engine.data import PreparedDataset

_PREVIEW_EXAMPLES = 8


class ColorizeNet(nn.Module):
    """Wraps a network that predicts Lab colour (a, b) so the model outputs RGB.

    The lightness of the output is exactly the input's: only colour is predicted, which is what keeps
    colorized images as sharp as their greyscale source.
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.multiple = getattr(net, "multiple", 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ab = self.net(x)
        # colour conversion in fp32 even under autocast: powers and cube roots lose too much in fp16
        with torch.autocast(x.device.type, enabled=False):
            return decode_lab(x[:, :1].float(), ab.float())


class TranslationFamily(Family):
    """Base of image-to-image families: subclasses create modules and optimizers and implement ``train_step``."""

    kind = "translate"
    tasks: tuple[str, ...] = ()
    """Names of the registered tasks (engine/tasks.py) this family can learn; the first is the default."""

    def __init__(self, spec: ModelSpec, train: TrainConfig, device: torch.device) -> None:
        super().__init__(ModelSpec(spec.resolution, spec.channels, 0), train, device)
        self.task = self._check_task()
        self.image_task: ImageTask = get_task(self.task)
        self.image_task.check_channels(spec.channels)
        self.in_channels = self.image_task.input_channels(spec.channels)
        self.out_channels = spec.channels
        self._check_adversarial_settings(train)
        self.d_loss_fn, self.g_loss_fn = get_loss(train.loss, train.label_smoothing)
        self.images_seen = 0

    def _check_adversarial_settings(self, train: TrainConfig) -> None:
        """Refuse the noise-to-image settings this step does not have (a critic, D updates, instance noise)."""
        if adversarial_loss(train.loss).critic:
            usable = ", ".join(name for name, loss in LOSSES.items() if not loss.critic)
            raise ConfigError(
                f"family '{self.name}' has no critic step for loss '{train.loss}' (setting 'loss'); "
                f"use one of: {usable}"
            )
        for name in ("n_critic", "instance_noise"):
            if getattr(train, name):
                raise ConfigError(
                    f"setting '{name}' is for noise-to-image families; family '{self.name}' does not use it, "
                    "leave it unset"
                )

    def _check_task(self) -> str:
        task = getattr(self.cfg, "task", self.tasks[0])
        if task not in self.tasks:
            raise ConfigError(
                f"family '{self.name}' has no task {task!r} (option 'task'); use one of: {', '.join(self.tasks)}"
            )
        return task

    # -- networks (families may override; their Config must then still carry these fields) ----------
    def build_translator(self, in_channels: int, out_channels: int) -> nn.Module:
        """A U-Net (N, in, H, W) -> (N, out, H, W) in [-1, 1] with a ``multiple`` attribute.

        Uses the Config fields base_channels, depth and max_channels.
        """
        cfg = self.cfg
        return UNet(
            in_channels, out_channels, cfg.base_channels, unet_depth(cfg.depth, self.spec.resolution), cfg.max_channels
        )

    def build_patch_discriminator(self, in_channels: int) -> nn.Module:
        """A PatchGAN over ``in_channels`` (d_base_channels, d_layers capped to fit the training size)."""
        layers = max(1, min(self.cfg.d_layers, int(math.log2(self.spec.resolution)) - 2))
        return PatchDiscriminator(in_channels, self.cfg.d_base_channels, layers, self.cfg.max_channels)

    def _generator(self, in_channels: int, out_channels: int) -> nn.Module:
        """The translator, wrapped to output RGB when it predicts colour only."""
        if self.image_task.predicts_colour and in_channels == self.in_channels:
            return ColorizeNet(self.build_translator(in_channels, 2))
        return self.build_translator(in_channels, out_channels)

    # -- data --------------------------------------------------------------------------------------
    def data_plan(self, dataset: PreparedDataset) -> DataPlan:
        return self.image_task.data_plan(dataset)

    def split_batch(
        self, real: torch.Tensor, generator: torch.Generator | None = None, training: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs, targets) from a trainer batch: derived from the images, or its A and B halves."""
        hints = getattr(self.cfg, "max_hints", 0)
        return self.image_task.split_batch(
            real, self.spec.channels, max_hints=hints, rough=training, generator=generator
        )

    @staticmethod
    def random_flip(*batches: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Mirror the same random half of the examples in every batch (pairs stay aligned)."""
        flip = torch.rand(batches[0].shape[0], device=batches[0].device) < 0.5
        return tuple(torch.where(flip[:, None, None, None], b.flip(-1), b) for b in batches)

    # -- inference ---------------------------------------------------------------------------------
    @property
    def latent_dim(self) -> int:
        return 0

    @property
    def multiple(self) -> int:
        """Input height and width must be multiples of this (the runners pad and crop)."""
        return int(getattr(self.modules["G_ema"], "multiple", 1))

    @torch.no_grad()
    def translate(self, x: torch.Tensor, ema: bool = True) -> torch.Tensor:
        """(N, in_channels, H, W) in [-1,1] -> (N, out_channels, H, W) in [-1,1]; H, W multiples of ``multiple``."""
        G = self.modules["G_ema" if ema else "G"]
        return G(x.to(self.device)).float().clamp(-1, 1)

    def sample(self, z: torch.Tensor, labels: torch.Tensor | None = None, ema: bool = True) -> torch.Tensor:
        problem = f"'{self.name}' translates images and draws nothing from noise"
        raise ConfigError(
            f"{problem}; use gan-studio-cli translate or the Translate page",
            gui=f"{problem}; open the Translate page and choose this run there",
        )

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "latent_dim": 0,
            "task": self.task,
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "multiple": self.multiple,
        }

    # -- previews ----------------------------------------------------------------------------------
    def preview_inputs(self, count: int, seed: int, first_examples: ExampleLoader) -> Any:
        """The first examples of the data plan, with inputs derived by a private, seeded generator."""
        real = first_examples(max(1, min(count, _PREVIEW_EXAMPLES)))
        gen = torch.Generator().manual_seed(seed + 7919)
        return self.split_batch(real, generator=gen, training=False)

    def render_preview(self, inputs: Any) -> tuple[torch.Tensor, int | None]:
        """Rows of (input, output, target) triplets, two examples per row."""
        a, b = inputs
        out = self.translate(a)
        shown = self.image_task.visualise_input(a.to(out.device), self.out_channels)
        triplets = torch.stack([shown, out, b.to(out.device)], 1).flatten(0, 1)
        return triplets, 6 if a.shape[0] > 1 else 3

    # -- shared step pieces ------------------------------------------------------------------------
    def _finish_step(self, batch: int) -> None:
        batch *= self.replica.world_size  # the step's images, all processes together
        self.images_seen += batch
        beta = ema_beta(batch, self.train.ema_half_life_kimg * 1000, self.images_seen)
        update_ema(self.modules["G_ema"], self.modules["G"], beta)

    def _add_ema(self) -> None:
        self.modules["G_ema"] = make_ema(self.modules["G"])

    def extra_state(self) -> dict[str, Any]:
        return {**super().extra_state(), "images_seen": self.images_seen}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        super().load_extra_state(state)
        self.images_seen = int(state.get("images_seen", 0))
