"""Training presets (quick / balanced / quality) as generic overrides sized to the device's memory.

A preset never names a family: it starts from the family's own ``recommended_settings`` for the size
and device (learning rates, a CPU-sized model...), sets TrainConfig fields and scales the family's width
options (any Config field listed in WIDTH_FIELDS) from the recommended or default width.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from studio.widgets.config_form import field_default, field_labels

GIB = 2**30
TIERS = ("cpu", "gpu-small", "gpu-large")
"""Device tiers: no GPU; a GPU with under LARGE_GPU bytes of memory; a bigger GPU."""
LARGE_GPU = 12 * GIB
WIDTH_FIELDS = ("base_channels",)
"""Family Config fields that set network width; presets scale them."""
PREFERRED_FAMILY = "fastgan"
"""Family selected first when registered (built for small datasets, which is what artists have)."""


@dataclass(frozen=True)
class Preset:
    """Per-tier training settings; ``width_scale`` multiplies the family's width options."""

    label: str
    summary: str
    steps: dict[str, int]
    batch_size: dict[str, int]
    max_resolution: dict[str, int | None]
    width_scale: float
    preview_every: int
    checkpoint_every: int


PRESETS: dict[str, Preset] = {
    "quick": Preset(
        "Quick",
        "A first look: a small, fast model; on a CPU, images start to form within a minute.",
        steps={"cpu": 600, "gpu-small": 2000, "gpu-large": 3000},
        batch_size={"cpu": 16, "gpu-small": 32, "gpu-large": 64},
        max_resolution={"cpu": 32, "gpu-small": 64, "gpu-large": 64},
        width_scale=0.5,
        preview_every=20,
        checkpoint_every=200,
    ),
    "balanced": Preset(
        "Balanced",
        "The family's full-size model for a while: recognisable results.",
        steps={"cpu": 3000, "gpu-small": 10000, "gpu-large": 20000},
        batch_size={"cpu": 32, "gpu-small": 64, "gpu-large": 64},
        max_resolution={"cpu": 64, "gpu-small": 128, "gpu-large": 256},
        width_scale=1.0,
        preview_every=100,
        checkpoint_every=500,
    ),
    "quality": Preset(
        "Quality",
        "Long training at the dataset's full size: best results, hours on a GPU.",
        steps={"cpu": 10000, "gpu-small": 40000, "gpu-large": 80000},
        batch_size={"cpu": 32, "gpu-small": 64, "gpu-large": 128},
        max_resolution={"cpu": 64, "gpu-small": 256, "gpu-large": None},
        width_scale=1.0,
        preview_every=250,
        checkpoint_every=1000,
    ),
}
DEFAULT_PRESET = "quick"


def device_tier(gpu_memory: int | None) -> str:
    """The tier for a GPU with ``gpu_memory`` bytes, or "cpu" for None (no GPU)."""
    if gpu_memory is None:
        return "cpu"
    return "gpu-large" if gpu_memory >= LARGE_GPU else "gpu-small"


def preferred_family(names: list[str]) -> str:
    """The family the Train page selects first."""
    return PREFERRED_FAMILY if PREFERRED_FAMILY in names else names[0]


def _floor_pow2(value: int) -> int:
    return 1 << (max(1, int(value)).bit_length() - 1)


def pick_resolution(dataset_size: int, cap: int | None, family_cls: type) -> int:
    """Training size: the dataset's size, capped by the preset, a power of two within the family's range."""
    size = dataset_size if cap is None else min(dataset_size, cap)
    size = _floor_pow2(size)
    return max(family_cls.min_resolution, min(size, family_cls.max_resolution))


def scaled_family_options(config_cls: type, scale: float, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """The family's width options (WIDTH_FIELDS) scaled from ``base`` or its defaults; others untouched."""
    options = {}
    for field in dataclasses.fields(config_cls):
        default = (base or {}).get(field.name, field_default(field))
        if field.name in WIDTH_FIELDS and isinstance(default, int) and scale != 1.0:
            options[field.name] = max(4, int(round(default * scale)))
    return options


def preset_settings(name: str, family_cls: type, tier: str, dataset_size: int) -> dict[str, Any]:
    """TrainConfig overrides for preset ``name`` (family_options included) on a ``tier`` device."""
    preset = PRESETS[name]
    resolution = pick_resolution(dataset_size, preset.max_resolution[tier], family_cls)
    recommended = dict(family_cls.recommended_settings(resolution, "cpu" if tier == "cpu" else "cuda"))
    options = dict(recommended.pop("family_options", {}))
    steps, batch = preset.steps[tier], preset.batch_size[tier]
    family_batch = recommended.pop("batch_size", None)
    if family_batch is not None and family_batch < batch:
        # A family that learns more per image from more, smaller steps (measured for fastgan on the CPU,
        # docs/benchmarks.md) keeps its batch; the preset's images seen, and so its time, stay the same.
        steps, batch = int(math.ceil(steps * batch / family_batch)), int(family_batch)
    return {
        **recommended,
        "steps": steps,
        "batch_size": batch,
        "resolution": resolution,
        "preview_every": preset.preview_every,
        "checkpoint_every": preset.checkpoint_every,
        "family_options": {**options, **scaled_family_options(family_cls.Config, preset.width_scale, options)},
    }


def describe_settings(settings: dict[str, Any], config_cls: type | None = None) -> str:
    """One line such as ``32 px, batch 16, 600 steps, network width 16`` (options named by their labels)."""
    labels = field_labels(config_cls) if config_cls is not None else {}
    parts = [f"{settings['resolution']} px", f"batch {settings['batch_size']}", f"{settings['steps']:,} steps"]
    parts += [f"{labels.get(k, k).lower()} {v}" for k, v in settings.get("family_options", {}).items()]
    return ", ".join(parts)
