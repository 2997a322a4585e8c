"""The memory planner: mixed precision, memory layout and gradient accumulation chosen for a device.

``plan_memory(config, device)`` keeps every setting the user gave (``amp``, ``channels_last``,
``accumulate`` not None) and chooses the others:

- ``amp`` and ``channels_last``: on for CUDA (fp16 tensor cores; convolutions in NHWC), off on the CPU
  and on Apple's MPS (fp16 autocast there is slow or unsupported);
- ``accumulate``: the smallest power of two whose micro-batch (``batch_size / world_size / accumulate``
  images) is estimated to fit in 85% of the device's free memory; 1 when free memory is unknown (a CPU).
  ``batch_size`` is never changed: it is the effective batch, and changing it changes the training.

The estimate is measured on the real model. On CUDA one real ``train_step`` runs at 2 and at 4 images
and the peak allocated memory of each gives the memory per image and the fixed part (weights, gradients,
optimizer state), extrapolated linearly. Elsewhere (a CPU, or no free-memory figure) the bytes of every
module's outputs in one probe step are added up with forward hooks, times a backward factor, plus the
bytes of the weights and their gradients and Adam state, so the estimate is the same on every machine
and testable without a GPU. ``probe=False`` builds nothing and gives only the device's defaults.
"""

from __future__ import annotations

import dataclasses
import gc
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from engine.data import PreparedDataset, load_dataset
from engine.device import free_accelerator_memory, is_oom
from engine.errors import ConfigError
from engine.families import get_family
from engine.families.base import Family, ModelSpec
from engine.runs.config import TrainConfig

HEADROOM = 0.85
"""Share of the free memory a plan may fill: the caching allocator's fragmentation, cuDNN workspaces
and what the estimate misses (functional ops outside modules) take the rest."""
PROBE_BATCHES = (2, 4)
"""Images per probe step; two sizes give the per-image slope and the fixed part."""
BACKWARD_FACTOR = 3
"""Activation bytes held per forward byte during a step, for the hook estimate: the outputs kept for
backward (1), the gradients flowing back through them (about 1 more) and the second forward of D on
the fakes and the D/G steps overlapping (about 1 more). A rough, deliberately pessimistic constant."""
ADAM_COPIES = 4
"""Copies of every trained weight: the weight, its gradient, Adam's two moments."""
PLANNED_FIELDS = ("batch_size", "accumulate", "amp", "channels_last")


@dataclass(frozen=True)
class MemoryPlan:
    """What the planner chose for a run, and why; ``settings()`` are the TrainConfig overrides."""

    batch_size: int
    """Images per optimizer step, all processes together (TrainConfig.batch_size)."""
    accumulate: int
    """Micro-batches each process splits its share into (TrainConfig.accumulate)."""
    amp: bool
    """Mixed precision (TrainConfig.amp)."""
    channels_last: bool
    """TrainConfig.channels_last."""
    device: str
    world_size: int
    free_bytes: int | None
    """Free device memory when planned (None: unknown, e.g. CPU)."""
    estimated_peak_bytes: int | None
    """Estimated peak memory of one process training one micro-batch (None: not estimated)."""
    chosen: dict[str, bool]
    """Per field: True = the planner chose it, False = the user's own value kept."""
    notes: tuple[str, ...]
    """Plain words: why each choice, each starting with the setting's name."""

    def settings(self) -> dict[str, Any]:
        """The TrainConfig overrides: {batch_size, accumulate, amp, channels_last}."""
        return {name: getattr(self, name) for name in PLANNED_FIELDS}

    @property
    def micro_batch(self) -> int:
        """Images in one micro-batch of one process."""
        return math.ceil(math.ceil(self.batch_size / self.world_size) / self.accumulate)

    def describe(self) -> str:
        """A few lines for the user: the device and memory, each setting (planned or yours) and the notes."""
        processes = f"{self.world_size} process{'es' if self.world_size > 1 else ''}"
        head = f"Memory plan for {self.device} ({processes})"
        if self.free_bytes is not None:
            head += f": {_gib(self.free_bytes)} free"
        if self.estimated_peak_bytes is not None:
            head += f", estimated peak {_gib(self.estimated_peak_bytes)} per micro-batch of {self.micro_batch}"
        values = "  ".join(
            f"{name}={_word(getattr(self, name))} ({'planned' if self.chosen.get(name) else 'yours'})"
            for name in PLANNED_FIELDS
        )
        return "\n".join([head, f"  {values}", *(f"  - {note}" for note in self.notes)])

    def summary(self) -> str:
        """One line for a log: 'Memory plan for cuda:0 (1 process, 70.1 GiB free): batch_size=32 (yours), ...'."""
        where = [f"{self.world_size} process{'es' if self.world_size > 1 else ''}"]
        if self.free_bytes is not None:
            where.append(f"{_gib(self.free_bytes)} free")
        if self.estimated_peak_bytes is not None:
            where.append(f"estimated peak {_gib(self.estimated_peak_bytes)}")
        values = ", ".join(
            f"{name}={_word(getattr(self, name))} ({'planned' if self.chosen.get(name) else 'yours'})"
            for name in PLANNED_FIELDS
        )
        return f"Memory plan for {self.device} ({', '.join(where)}): {values}"

    def to_dict(self) -> dict[str, Any]:
        """Every field, JSON-ready (the CLI's --json)."""
        return {**dataclasses.asdict(self), "notes": list(self.notes), "micro_batch": self.micro_batch}


@dataclass(frozen=True)
class MemoryEstimate:
    """Peak memory of one training step as ``fixed_bytes + per_image_bytes * images``."""

    fixed_bytes: int
    per_image_bytes: int
    method: str
    """How it was found, in words (for the notes)."""

    def peak(self, images: int) -> int:
        """Estimated peak bytes for a micro-batch of ``images``."""
        return self.fixed_bytes + self.per_image_bytes * images

    @classmethod
    def fit(cls, measured: dict[int, int], method: str) -> MemoryEstimate:
        """The line through two (images, bytes) measurements; the slope is never negative."""
        (small, low), (large, high) = sorted(measured.items())
        per_image = max(0, (high - low) // (large - small))
        return cls(max(0, low - per_image * small), per_image, method)


def plan_memory(
    config: TrainConfig,
    device: torch.device,
    *,
    world_size: int = 1,
    free_bytes: int | None = None,
    probe: bool = True,
) -> MemoryPlan:
    """Plan ``config``'s memory settings for training on ``device`` with ``world_size`` processes.

    ``free_bytes``: the device's free memory (None: read it on CUDA, unknown elsewhere). ``probe``:
    build the model and estimate its memory (False: the device defaults only, instantly). Returns a
    MemoryPlan; a batch that does not fit even one image at a time gives a note, not an error. Raises
    ConfigError when the batch is smaller than the number of processes.
    """
    if world_size < 1 or config.batch_size < world_size or config.batch_size % world_size:
        raise ConfigError(
            f"setting 'batch_size' ({config.batch_size}) must be a multiple of the number of processes "
            f"({world_size}), at least 1 each: each process trains batch_size / {world_size} images per step"
        )
    amp, amp_note = _flag("amp", config.amp, device, "fp16 mixed precision")
    channels_last, layout_note = _flag("channels_last", config.channels_last, device, "channels-last layout")
    notes = [_batch_note(config.batch_size, world_size), "", amp_note, layout_note]
    per_process = math.ceil(config.batch_size / world_size)
    if free_bytes is None and probe and device.type == "cuda":
        free_bytes = _free_cuda_memory(device)
    estimate = None
    if probe:
        planned = dataclasses.replace(config, amp=amp, channels_last=channels_last)
        estimate, problem = estimate_memory(planned, device)
        if problem:
            notes.append(problem)
    accumulate, notes[1] = _accumulation(config.accumulate, per_process, estimate, free_bytes, probe)
    return MemoryPlan(
        batch_size=config.batch_size,
        accumulate=accumulate,
        amp=amp,
        channels_last=channels_last,
        device=str(device),
        world_size=world_size,
        free_bytes=free_bytes,
        estimated_peak_bytes=estimate.peak(math.ceil(per_process / accumulate)) if estimate else None,
        chosen={
            "batch_size": False,
            "accumulate": config.accumulate is None,
            "amp": config.amp is None,
            "channels_last": config.channels_last is None,
        },
        notes=tuple(notes),
    )


# -- the choices --------------------------------------------------------------------------------------
def _flag(name: str, value: bool | None, device: torch.device, words: str) -> tuple[bool, str]:
    """(value, note) for a setting that is on for CUDA by default: the user's value when set."""
    if value is not None:
        return value, f"{name}: {words} {_on(value)}, your setting (kept)"
    on = device.type == "cuda"
    gains = {"amp": "faster, and activations take half the memory", "channels_last": "faster convolutions"}
    why = f"on by default on a GPU ({gains[name]})" if on else f"off on {_device_words(device)} (it helps on CUDA GPUs)"
    return on, f"{name}: {words} {why}"


def _batch_note(batch_size: int, world_size: int) -> str:
    share = f", {math.ceil(batch_size / world_size)} per process" if world_size > 1 else ""
    return (
        f"batch_size: {batch_size} images per step{share}, your setting (kept: it is the effective batch, "
        "and changing it would change the training)"
    )


def _accumulation(
    given: int | None, per_process: int, estimate: MemoryEstimate | None, free: int | None, probe: bool
) -> tuple[int, str]:
    """(accumulate, note): the user's value, or the smallest power of two whose micro-batch fits."""
    budget = None if free is None else int(free * HEADROOM)
    if given is not None:
        return given, "accumulate: " + _fit_words(given, per_process, estimate, budget, "your setting (kept)")
    if probe and estimate is None:  # the probe itself ran out of memory
        return per_process, f"accumulate: {per_process} (one image at a time), as even the probe did not fit"
    if estimate is None or budget is None:
        why = "memory was not measured (quick plan)" if not probe else "free memory is unknown here"
        return 1, f"accumulate: 1 micro-batch, {why}; if memory runs out the trainer splits the batch further"
    for accumulate in _candidates(per_process):
        if estimate.peak(math.ceil(per_process / accumulate)) <= budget:
            return accumulate, "accumulate: " + _fit_words(accumulate, per_process, estimate, budget, "planned")
    return per_process, (
        f"accumulate: {per_process} (one image at a time) and still does not fit: estimated "
        f"{_gib(estimate.peak(1))} for one image, {_gib(budget)} usable; lower the training size (--size / "
        "setting 'resolution') or the model size (--option base_channels=...), or free the GPU"
    )


def _fit_words(accumulate: int, per_process: int, estimate: MemoryEstimate | None, budget: int | None, who: str) -> str:
    micro = math.ceil(per_process / accumulate)
    text = f"{accumulate} micro-batch{'es' if accumulate > 1 else ''} of {micro} image{'s' if micro > 1 else ''}"
    text += f", {who}"
    if estimate is None:
        return text
    peak = estimate.peak(micro)
    text += f"; estimated peak {_gib(peak)} ({estimate.method})"
    if budget is not None:
        fits = peak <= budget
        text += f", {'within' if fits else 'more than'} the {_gib(budget)} usable ({HEADROOM:.0%} of free)"
        text += "" if fits else ": expect the trainer to split the batch further"
    return text


def _candidates(per_process: int) -> Iterator[int]:
    """1, 2, 4, ... below ``per_process``, then ``per_process`` itself (one image per micro-batch)."""
    accumulate = 1
    while accumulate < per_process:
        yield accumulate
        accumulate *= 2
    yield per_process


# -- the estimate -----------------------------------------------------------------------------------
def estimate_memory(config: TrainConfig, device: torch.device) -> tuple[MemoryEstimate | None, str]:
    """(estimate, problem) for training ``config`` on ``device``: measured peaks on CUDA, forward hooks
    elsewhere; (None, why) when the probe itself runs out of memory."""
    family_cls = get_family(config.family)
    dataset = load_dataset(config.dataset, family_cls.data_resolution(config))
    devices = [device] if device.type == "cuda" else []
    # what this process held before the probe model is already out of the free memory: not the model's
    before = torch.cuda.memory_allocated(device) if device.type == "cuda" else 0
    with torch.random.fork_rng(devices=devices):  # planning leaves the run's random streams untouched
        torch.manual_seed(config.seed)
        try:
            return _probe(family_cls, dataset, config, device, before), ""
        except RuntimeError as exc:
            if not is_oom(exc):
                raise
            return None, (
                f"the probe ran out of memory at {max(PROBE_BATCHES)} images: lower the training size "
                "(setting 'resolution') or the model size, or free the GPU"
            )
        finally:  # the probe model is gone by now: its memory goes back before training builds its own
            gc.collect()
            free_accelerator_memory(device)


def _probe(
    family_cls: type[Family], dataset: PreparedDataset, config: TrainConfig, device: torch.device, before: int
) -> MemoryEstimate:
    """Build the model and measure it (its own function, so the model is freed when it returns)."""
    family = family_cls(_spec(dataset, config, family_cls.kind), config, device)
    batches = {n: _probe_batch(dataset, family, n, device) for n in PROBE_BATCHES}
    if device.type == "cuda":
        return _measure_cuda(family, batches, device, before)
    return _measure_hooks(family, batches)


def _spec(dataset: PreparedDataset, config: TrainConfig, kind: str) -> ModelSpec:
    """The model's spec as the Trainer derives it (classes only for a conditional noise-to-image run)."""
    num_classes = len(dataset.classes) if config.conditional and kind == "generate" else 0
    if num_classes and (np.asarray(dataset.labels) < 0).any():
        num_classes = 0
    return ModelSpec(dataset.size, dataset.channels, num_classes)


Batch = tuple[torch.Tensor, torch.Tensor | None]


def _probe_batch(dataset: PreparedDataset, family: Family, n: int, device: torch.device) -> Batch:
    """``n`` real examples as train_step takes them: the data plan's streams along channels, in [-1, 1]."""
    streams = family.data_plan(dataset).streams
    rows = [np.asarray(stream)[np.arange(n) % len(stream)] for stream in streams]
    images = [torch.from_numpy(np.asarray(dataset.images[r])) for r in rows]
    x = torch.cat(images, dim=3).to(device).permute(0, 3, 1, 2).float().div(127.5).sub(1)
    labels = torch.from_numpy(np.asarray(dataset.labels)[rows[0]]).to(device) if family.spec.num_classes else None
    return x, labels


def _step(family: Family, batch: Batch) -> None:
    # step 0 takes every lazy regulariser (R1, path length), the heaviest step of a run
    family.train_step(batch[0], batch[1], 0, 1)


def _measure_cuda(family: Family, batches: dict[int, Batch], device: torch.device, before: int) -> MemoryEstimate:
    """Peak allocated bytes of a real step at each probe size (after one warm-up step that creates the
    optimizer state), the model's own weights included and the ``before`` bytes held already left out."""
    torch.cuda.synchronize(device)
    _step(family, batches[min(batches)])  # Adam's moments and cuDNN's workspaces are made at the first step
    peaks = {}
    for n, batch in batches.items():
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        _step(family, batch)
        torch.cuda.synchronize(device)
        peaks[n] = torch.cuda.max_memory_allocated(device) - before
    return MemoryEstimate.fit(peaks, f"measured on {device}")


def _measure_hooks(family: Family, batches: dict[int, Batch]) -> MemoryEstimate:
    """Forward-hook estimate: per network, the largest sum of its layers' output bytes in one call, times
    BACKWARD_FACTOR, plus the weights (ADAM_COPIES for trained ones, one for the averaged generator)."""
    activations = {n: BACKWARD_FACTOR * _activation_bytes(family, batch) for n, batch in batches.items()}
    weights = _weight_bytes(family)
    return MemoryEstimate.fit({n: weights + a for n, a in activations.items()}, "forward-hook estimate")


def _activation_bytes(family: Family, batch: Batch) -> int:
    """Output bytes of every leaf layer, summed per call of each network and maxed over its calls."""
    current: dict[str, int] = {}
    largest: dict[str, int] = {}
    with _hooks(family.modules, current, largest):
        _step(family, batch)
    return sum(largest.values())


@contextmanager
def _hooks(modules: dict[str, nn.Module], current: dict[str, int], largest: dict[str, int]) -> Iterator[None]:
    handles = []
    seen: set[int] = set()
    for key, module in modules.items():
        current[key] = largest[key] = 0
        handles.append(module.register_forward_pre_hook(_start(key, current)))
        handles.append(module.register_forward_hook(_finish(key, current, largest)))
        for layer in module.modules():
            if next(layer.children(), None) is None and id(layer) not in seen:  # leaves only: no double count
                seen.add(id(layer))
                handles.append(layer.register_forward_hook(_count(key, current)))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _start(key: str, current: dict[str, int]) -> Callable[..., None]:
    def hook(module: nn.Module, inputs: Any) -> None:
        current[key] = 0

    return hook


def _finish(key: str, current: dict[str, int], largest: dict[str, int]) -> Callable[..., None]:
    def hook(module: nn.Module, inputs: Any, output: Any) -> None:
        largest[key] = max(largest[key], current[key])

    return hook


def _count(key: str, current: dict[str, int]) -> Callable[..., None]:
    def hook(module: nn.Module, inputs: Any, output: Any) -> None:
        current[key] += _tensor_bytes(output)

    return hook


def _tensor_bytes(value: Any) -> int:
    """Bytes of the tensors in ``value`` (a tensor, or tuples/lists/dicts of them)."""
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, list | tuple):
        return sum(_tensor_bytes(v) for v in value)
    if isinstance(value, dict):
        return sum(_tensor_bytes(v) for v in value.values())
    return 0


def _weight_bytes(family: Family) -> int:
    """Weights and buffers of every network; trained weights (in an optimizer) also count their gradient
    and Adam's two moments."""
    trained = {id(p) for opt in family.optimizers.values() for group in opt.param_groups for p in group["params"]}
    total = 0
    for module in family.modules.values():
        for p in module.parameters():
            total += p.numel() * p.element_size() * (ADAM_COPIES if id(p) in trained else 1)
        total += sum(b.numel() * b.element_size() for b in module.buffers())
    return total


def _free_cuda_memory(device: torch.device) -> int | None:
    """Free bytes on a CUDA device (every process's use counted), None when it cannot be read."""
    try:
        free, _total = torch.cuda.mem_get_info(device)
    except (RuntimeError, AssertionError):  # no driver, or a torch built without CUDA
        return None
    return int(free)


# -- words ------------------------------------------------------------------------------------------
def _gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**28 else f"{n / 2**20:.1f} MiB"


def _on(value: bool) -> str:
    return "on" if value else "off"


def _word(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _device_words(device: torch.device) -> str:
    return {"cpu": "the CPU", "mps": "Apple's MPS"}.get(device.type, f"a {device.type} device")
