"""Image-to-image tasks, registered by name like model families: what a translation model learns.

A task says everything the code would otherwise branch on by name: its label and one-line
description for the front ends, the channels of the network's input, whether training inputs are
derived from every image alone or read from A/ and B/ folders (which DataPlan), how a training pair
is made, how an input is drawn in previews, and how an input is prepared at inference (a drawing's
lightness, an image's lightness plus colour hints) and the output finished. Families list the tasks
they can learn (``TranslationFamily.tasks``); runs, exports and front ends carry the task's name, and
code asks ``get_task(name)`` rather than comparing names.

The task list is read by the CLI's argument parser and by the GUI while it starts, before torch is
loaded, so this module imports only the standard library when it is imported; the methods that
compute import ``engine.data.pairs`` (torch) when first called.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from functools import cache
from typing import TYPE_CHECKING, Any

from engine.errors import ConfigError
from engine.registry import Registry

if TYPE_CHECKING:
    import numpy as np
    import torch

    from engine.data import PreparedDataset
    from engine.data.pairs import DataPlan


class ImageTask:
    """What one image-to-image task learns and how its inputs are made; stateless, one instance per task.

    Subclasses set the class attributes and override what differs; the defaults describe a task whose
    input is an image with the target's channels.
    """

    name: str = ""
    label: str = ""
    """Short name for a choice in the GUI ("Sketch → image")."""
    description: str = ""
    """One line: what a model of this task learns and from which data (tooltips, CLI help)."""
    usage: str = ""
    """One line for the Translate page: how to give the model its input."""
    derives_inputs: bool = False
    """True: each training example is one image and the input is derived from it; False: A/ and B/ folders."""
    draws_input: bool = False
    """The input is a drawing (the Translate page shows a canvas rather than an image)."""
    takes_hints: bool = False
    """The model follows colour hints clicked on the input."""
    predicts_colour: bool = False
    """The network predicts only Lab colour (a, b): the model keeps the input's lightness (ColorizeNet)."""

    # -- the network's input -----------------------------------------------------------------------
    def input_channels(self, channels: int) -> int:
        """Channels of the network input for images with ``channels`` channels."""
        return channels

    def check_channels(self, channels: int) -> None:
        """Raise ConfigError when this task cannot learn from images with ``channels`` channels."""

    # -- training ----------------------------------------------------------------------------------
    def data_plan(self, dataset: PreparedDataset) -> DataPlan:
        """Which rows of a prepared dataset form each training example: by default every row alone."""
        from engine.data import pairs

        return pairs.single_plan(len(dataset))

    def split_batch(
        self,
        real: torch.Tensor,
        channels: int,
        *,
        max_hints: int = 0,
        rough: bool = True,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs, targets) from a trainer batch of images with ``channels`` channels each stream.

        ``rough`` is False for previews and evaluation (deterministic inputs); ``max_hints`` is the most
        colour hints a derived example carries; randomness comes from ``generator`` (None: the global one).
        """
        return real[:, :channels], real[:, channels:]

    def visualise_input(self, inputs: torch.Tensor, channels: int) -> torch.Tensor:
        """Network inputs as (N, channels, H, W) images in [-1,1] for preview grids."""
        from engine.data import pairs

        return pairs.preview_image(inputs, channels)

    # -- inference ---------------------------------------------------------------------------------
    def full_input(self, image: np.ndarray, in_channels: int) -> torch.Tensor:
        """A uint8 (H,W[,C]) image as a (1,C,H,W) tensor in [-1,1] at full size, before resizing to the work size."""
        from engine.data import pairs

        return pairs.match_channels(pairs.image_tensor(image), in_channels)

    def network_input(self, work: torch.Tensor, hints: list[Any], scale: float) -> torch.Tensor:
        """The network's input from ``full_input`` resized to the work size (``scale`` = full / work)."""
        return work

    def finish(self, out: torch.Tensor, full: torch.Tensor) -> torch.Tensor:
        """The network's output at the work size -> the result at the input's full size, in [-1,1]."""
        from engine.data import pairs

        return pairs.resize_images(out, (full.shape[-2], full.shape[-1]))


class DerivedTask(ImageTask, ABC):
    """A task whose inputs are derived from each image of an ordinary folder."""

    derives_inputs = True

    @abstractmethod
    def derive_pair(
        self, real: torch.Tensor, *, max_hints: int = 10, rough: bool = True, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(input, target) from a batch of target images (N,C,H,W) in [-1,1]."""

    def split_batch(
        self,
        real: torch.Tensor,
        channels: int,
        *,
        max_hints: int = 0,
        rough: bool = True,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.derive_pair(real, max_hints=max_hints, rough=rough, generator=generator)


class FolderTask(ImageTask):
    """A task that reads inputs from A/ and targets from B/ (a dataset imported with those subfolders)."""

    paired = True
    """True: A/ and B/ files are matched by name; False: drawn independently (unpaired)."""

    def data_plan(self, dataset: PreparedDataset) -> DataPlan:
        from engine.data import pairs

        rows = pairs.ab_rows(dataset.paths, dataset.classes, self.name)
        return pairs.paired_plan(rows) if self.paired else pairs.unpaired_plan(rows)


# Nothing to import on first lookup: the built-in tasks are registered below, in this module.
TASKS: Registry[type[ImageTask]] = Registry("image-to-image task", ConfigError, lambda: None)
register_task = TASKS.register


@cache
def get_task(name: str) -> ImageTask:
    """The task registered as ``name`` (one shared instance) or ConfigError listing the known ones."""
    return TASKS.get(name)()


def task_names() -> list[str]:
    """Names of every registered task, sorted."""
    return TASKS.names()


# --------------------------------------------------------------------------------------------------
# The built-in tasks
# --------------------------------------------------------------------------------------------------
@register_task("sketch")
class SketchTask(DerivedTask):
    """Line drawing -> image; the drawings are traced from the artist's images (engine.data.pairs)."""

    label = "Sketch → image"
    description = "Learns to turn line drawings into images like yours; the drawings are traced from your images"
    usage = "Draw on the left; the image appears on the right as you pause."
    draws_input = True

    def input_channels(self, channels: int) -> int:
        return 1

    def derive_pair(
        self, real: torch.Tensor, *, max_hints: int = 10, rough: bool = True, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        from engine.data import pairs

        return pairs.sketch_pair(real, rough=rough, generator=generator)

    def full_input(self, image: np.ndarray, in_channels: int) -> torch.Tensor:
        from engine.data import pairs

        return pairs.drawing_to_input(image)


@register_task("colorize")
class ColorizeTask(DerivedTask):
    """Greyscale + colour hints -> colour, in CIE Lab: the model predicts colour, the lightness is the input's."""

    label = "Colorize"
    description = "Learns to colour greyscale images like yours, following colour hints you click"
    usage = (
        "Open an image, then click it to add colour hints (right-click removes one, Shift+click picks "
        "a colour from the image)."
    )
    takes_hints = True
    predicts_colour = True

    def input_channels(self, channels: int) -> int:
        from engine.data import pairs

        return pairs.COLORIZE_CHANNELS

    def check_channels(self, channels: int) -> None:
        if channels != 3:
            problem = f"task '{self.name}' needs RGB images, but this dataset keeps an alpha channel; import it again"
            raise ConfigError(
                f"{problem} with transparency composited (--alpha white)",
                gui=f"{problem}: on the Dataset page set Transparency to white and click Import folder…",
            )

    def derive_pair(
        self, real: torch.Tensor, *, max_hints: int = 10, rough: bool = True, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        from engine.data import pairs

        return pairs.colorize_pair(real, max_hints=max_hints, generator=generator)

    def visualise_input(self, inputs: torch.Tensor, channels: int) -> torch.Tensor:
        from engine.data import pairs

        return pairs.preview_image(pairs.colorize_hints_rgb(inputs), channels)

    def full_input(self, image: np.ndarray, in_channels: int) -> torch.Tensor:
        from engine.data import pairs

        return pairs.match_channels(pairs.image_tensor(image), 3)  # only its lightness is used

    def network_input(self, work: torch.Tensor, hints: list[Any], scale: float) -> torch.Tensor:
        from engine.data import pairs

        channels = pairs.hints_to_channels(hints, work.shape[-2], work.shape[-1], scale=scale)
        return pairs.colorize_input(work, channels)

    def finish(self, out: torch.Tensor, full: torch.Tensor) -> torch.Tensor:
        from engine.data import pairs

        return pairs.colorize_result(out, full)


@register_task("paired")
class PairedTask(FolderTask):
    """A/ -> B/ with files matched by name."""

    label = "A/ → B/ folders (paired)"
    description = "Learns A → B from a dataset imported from a folder with A/ and B/ subfolders of same-named files"
    usage = "Open an image like those in your A/ folder; the right side shows it translated."


@register_task("unpaired")
class UnpairedTask(FolderTask):
    """A/ <-> B/ without correspondences (CycleGAN)."""

    label = "A/ ↔ B/ folders (unpaired)"
    description = "Learns A ↔ B from A/ and B/ subfolders whose files need not correspond"
    usage = "Open an image like those in your A/ folder; the right side shows it translated."
    paired = False
