"""Upscale images with a super-resolution network at any size: tiles, blending, memory, alpha, 16 bits.

One interface, :class:`Upscaler`, serves our own ``upscale`` runs (:class:`TorchUpscaler`), community
model files (``engine.inference.model_files``) and ONNX exports (``engine.export.ort_runner``). A
backend only implements :meth:`Upscaler._forward`: float32 NCHW in [0, 1] -> NCHW at ``scale`` times
the size (the pixel convention of spandrel's models, so one interface fits them all).

How :meth:`Upscaler.upscale_array` works, and why:

- **Tiles.** The image is reflection-padded by the overlap on every side (so border pixels see
  plausible context rather than the network's zero padding) and cut into tiles whose neighbours
  overlap by exactly ``overlap`` input pixels. In each overlap the two tiles are blended with a
  raised-cosine ramp (``0.5 - 0.5 cos``) whose weights add up to exactly one; a tile's own edge,
  where its network saw the least context, gets a weight near zero, so no seam shows. Tiles are laid
  out so no pixel is covered by more than two tiles per axis (the overlap is under a third of a tile).
- **Bounded memory.** The result goes straight into one preallocated array of the final dtype. The
  weighted sums are kept in float32 for one band of tile rows only; rows no later tile touches are
  converted and written out as soon as a band is done. Peak memory is the output, the input, and
  one band (``tile * scale`` rows by the output width), never a list of full-size copies.
- **Tile size.** Without an explicit ``tile`` it is chosen from free memory: on CUDA from
  ``torch.cuda.mem_get_info`` and the model's own peak per pixel, measured on a small probe tile; on
  the CPU from the memory the system reports available, of which at most a quarter and at most
  2 GiB is used (a CPU's speed per pixel hardly changes above a few hundred pixels a side, while the
  rest of the desktop, the studio's previews included, needs the memory). An out-of-memory error
  halves the tile and starts the image again, with a note.
- **Alpha** is upscaled separately from the colour: through the model as grey replicated to the
  model's channels when the model is RGB, or bicubically when the model is grey (``alpha=``
  chooses otherwise); a fully opaque alpha is filled, not computed. Grey images run through an RGB
  model replicated to three channels and come back as one (the mean); colour images through a grey
  model run channel by channel.
- **Dtypes.** uint8 and uint16 images are computed in float32 from /255 and /65535 and returned in
  their own dtype; float32 images must be in [0, 1].
"""

from __future__ import annotations

import math
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.device import free_accelerator_memory, is_oom, select_device
from engine.errors import CheckpointError, ConfigError, DeviceError, UpscaleCancelled
from engine.families import get_family
from engine.families.base import ModelSpec
from engine.provenance.model_info import ModelIdentity, identity_from_checkpoint
from engine.runs.checkpoint import open_checkpoint
from engine.runs.config import TrainConfig

DEFAULT_OVERLAP = 16
"""Input pixels two neighbouring tiles share; the blend ramps over them."""
MIN_TILE = 32
"""Smallest tile side: halving on out-of-memory stops here with a DeviceError."""
MAX_TILE = 2048
"""Largest tile side chosen automatically; past this a tile costs memory without gaining speed."""
CPU_MEMORY_FRACTION = 0.25
CPU_MEMORY_CAP = 2 * 2**30
GPU_MEMORY_FRACTION = 0.6
"""Share of the free GPU memory a tile may use: the rest covers cuDNN workspaces and fragmentation."""
BAND_MEMORY_CAP = 512 * 2**20
"""Most host memory the float32 band of blended tile rows may take (automatic tile sizes only)."""
UNKNOWN_FREE_MEMORY = 2 * 2**30
"""Assumed available memory where the system does not say (no /proc/meminfo, no sysconf)."""
PROBE_SIDE = 64
ALPHA_MODES = ("auto", "model", "bicubic")

Progress = Callable[[int, int], None]
Cancel = Callable[[], bool]
Forward = Callable[[np.ndarray], np.ndarray]


def _unit_float(image: np.ndarray) -> tuple[np.ndarray, float]:
    """(H, W, C) float32 in [0, 1] and the dtype's full-scale value (255, 65535, or 1 for float32)."""
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0, 255.0
    if image.dtype == np.uint16:
        return image.astype(np.float32) / 65535.0, 65535.0
    if image.dtype == np.float32:
        if image.size and (float(image.min()) < -1e-6 or float(image.max()) > 1 + 1e-6):
            raise ConfigError(
                f"a float32 image must hold values in [0, 1]; this one spans {float(image.min()):.3g} to "
                f"{float(image.max()):.3g}"
            )
        return np.clip(image, 0.0, 1.0), 1.0
    raise ConfigError(f"images to upscale are uint8, uint16 or float32; got {image.dtype}")


def _from_unit(values: np.ndarray, full_scale: float, dtype: np.dtype) -> np.ndarray:
    clipped = np.clip(values, 0.0, 1.0)
    if full_scale == 1.0:
        return clipped.astype(dtype, copy=False)
    return np.rint(clipped * full_scale).astype(dtype)


def axis_tiles(length: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    """(start, end) spans covering [0, length) with at most ``tile`` pixels each.

    Neighbours overlap by exactly ``overlap``, spans are as even as possible, and no pixel lies in
    three spans (this needs ``3 * overlap < tile``, which the callers check).
    """
    if length <= tile:
        return [(0, length)]
    count = math.ceil((length - overlap) / (tile - overlap))
    starts = [k * (length - overlap) // count for k in range(count)]
    ends = [s + overlap for s in starts[1:]] + [length]
    return list(zip(starts, ends))


def _ramp(length: int) -> np.ndarray:
    """Raised-cosine weights rising from ~0 to ~1 over ``length`` pixels (pixel centres)."""
    t = (np.arange(length, dtype=np.float64) + 0.5) / length
    return (0.5 - 0.5 * np.cos(np.pi * t)).astype(np.float32)


def blend_weights(spans: list[tuple[int, int]], index: int, overlap: int, scale: int) -> np.ndarray:
    """Output-resolution weights of span ``index``: 1 inside, ramps over the overlaps with its neighbours.

    In every overlap the falling ramp of one span and the rising ramp of the next add up to exactly 1.
    """
    start, end = spans[index]
    weights = np.ones((end - start) * scale, dtype=np.float32)
    ramp_len = overlap * scale
    if ramp_len and index > 0:
        weights[:ramp_len] *= _ramp(ramp_len)
    if ramp_len and index < len(spans) - 1:
        weights[-ramp_len:] *= 1.0 - _ramp(ramp_len)
    return weights


def _out_of_memory(exc: BaseException) -> bool:
    """Out of memory on any backend: CUDA/MPS (engine.device), the CPU allocator, numpy, onnxruntime."""
    if isinstance(exc, MemoryError) or is_oom(exc):
        return True
    text = str(exc).lower()
    return "can't allocate memory" in text or "failed to allocate memory" in text or "bad_alloc" in text


def available_host_memory() -> tuple[int, str]:
    """(bytes of RAM available to a new allocation, where the figure comes from)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024, "MemAvailable in /proc/meminfo"
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "free pages (sysconf)"
    except (AttributeError, ValueError, OSError):
        return UNKNOWN_FREE_MEMORY, "unknown; assumed 2 GiB"


@dataclass
class _Pass:
    """One run of the tiler: a (C, H, W) source, what to do with each tile's output, where it goes."""

    source: np.ndarray
    forward: Forward
    channels: slice
    post: Callable[[np.ndarray], np.ndarray] | None = None


class Upscaler(ABC):
    """``upscaler.upscale_array(image)`` over some backend; subclasses implement :meth:`_forward`.

    Attributes: ``scale``, ``channels`` (1 or 3), ``name`` (shown to the user), ``backend`` (what
    really runs it, e.g. "PyTorch (cpu)" or an onnxruntime provider), ``notes`` (about the model:
    a damaged checkpoint set aside...), ``run_notes`` (what the last call chose: tile size, retries,
    how alpha was upscaled), ``identity`` (which model: what its images' watermark and metadata say).
    """

    scale: int
    channels: int
    name: str
    backend: str
    notes: list[str]
    run_notes: list[str]
    identity: ModelIdentity
    _auto_tile: tuple[int, str] | None = None  # (tile, why): chosen once, lowered after an out-of-memory error

    @abstractmethod
    def _forward(self, x: np.ndarray) -> np.ndarray:
        """float32 (N, channels, h, w) in [0, 1] -> float32 (N, channels, h*scale, w*scale) in [0, 1]."""

    # -- memory -------------------------------------------------------------------------------------
    def free_memory(self) -> tuple[int, str]:
        """(bytes a tile may use, how that was worked out); the host's RAM unless a backend knows better."""
        available, source = available_host_memory()
        budget = int(min(available * CPU_MEMORY_FRACTION, CPU_MEMORY_CAP))
        return budget, f"a quarter of {available / 2**30:.1f} GiB available ({source}), at most 2 GiB"

    def bytes_per_pixel(self) -> float:
        """Working memory per input pixel of a tile; a generic estimate unless a backend measures it.

        Sized for an ESRGAN-style network: 64 float32 feature maps alive a few at a time at the input's
        resolution and a few after upsampling, at scale**2 times as many pixels.
        """
        return 4.0 * 64 * (8 + 4 * self.scale**2)

    def choose_tile(self) -> tuple[int, str]:
        """(tile side in input pixels, one line saying why) from free memory and the model's cost per pixel."""
        budget, why = self.free_memory()
        per_pixel = max(self.bytes_per_pixel(), 1.0)
        side = int(math.sqrt(budget / per_pixel)) // 8 * 8
        tile = max(MIN_TILE, min(MAX_TILE, side))
        return (
            tile,
            f"tiles of {tile} px chosen for {budget / 2**20:.0f} MiB ({why}; ~{per_pixel / 1024:.1f} KiB/pixel)",
        )

    # -- the public call ----------------------------------------------------------------------------
    def upscale_array(
        self,
        image: np.ndarray,
        *,
        tile: int | None = None,
        overlap: int = DEFAULT_OVERLAP,
        progress: Progress | None = None,
        should_cancel: Cancel | None = None,
        alpha: str = "auto",
    ) -> np.ndarray:
        """Upscale an (H, W) or (H, W, C) image, C in 1-4 (2 and 4 carry alpha) -> same dtype, H*scale x W*scale.

        ``image`` is uint8, uint16 or float32 in [0, 1]. ``tile``: tile side in input pixels (None:
        chosen from free memory, halved on out-of-memory); ``overlap``: input pixels shared by
        neighbouring tiles (under a third of the tile). ``progress(done_tiles, total_tiles)`` after
        each tile; ``should_cancel()`` is polled before each and raises UpscaleCancelled.
        ``alpha``: "auto" (the model when it is RGB, bicubic when it is grey), "model" or "bicubic".
        What was chosen is in ``run_notes`` afterwards.
        """
        array = np.asarray(image)
        squeeze = array.ndim == 2
        if squeeze:
            array = array[:, :, None]
        if array.ndim != 3 or array.shape[2] not in (1, 2, 3, 4) or min(array.shape[:2]) < 1:
            raise ConfigError(f"expected an (H, W) or (H, W, C) image with C in 1-4, got shape {array.shape}")
        if alpha not in ALPHA_MODES:
            raise ConfigError(f"alpha must be one of {', '.join(ALPHA_MODES)}, got {alpha!r}")
        if overlap < 0:
            raise ConfigError(f"overlap must be 0 or more pixels, got {overlap}")
        self.run_notes = []
        if tile is not None:
            _check_tile(tile, overlap)
        values, full_scale = _unit_float(array)
        h, w, c = values.shape
        out = np.empty((h * self.scale, w * self.scale, c), dtype=array.dtype)
        passes = self._passes(values, out, full_scale, alpha)
        self._run_passes(passes, out, full_scale, (h, w), tile, overlap, progress, should_cancel)
        return out[:, :, 0] if squeeze else out

    # -- planning -----------------------------------------------------------------------------------
    def _passes(self, values: np.ndarray, out: np.ndarray, full_scale: float, alpha: str) -> list[_Pass]:
        """The tiler runs to make: colour (one, or one per channel for a grey model) and alpha."""
        c = values.shape[2]
        colour_channels = 3 if c >= 3 else 1
        colour = values[:, :, :colour_channels].transpose(2, 0, 1)
        passes = self._colour_passes(colour)
        if c in (2, 4):
            passes += self._alpha_pass(values[:, :, c - 1], out, c - 1, full_scale, alpha)
        return passes

    def _colour_passes(self, colour: np.ndarray) -> list[_Pass]:
        if colour.shape[0] == self.channels:
            return [_Pass(colour, self._forward, slice(0, colour.shape[0]))]
        if colour.shape[0] == 1:  # grey image, RGB model: replicate in, average out
            self.run_notes.append("grey image: run through the RGB model as three equal channels")
            return [_Pass(np.repeat(colour, self.channels, axis=0), self._forward, slice(0, 1), _mean_channels)]
        self.run_notes.append("colour image through a grey model: each channel upscaled on its own")
        return [_Pass(colour[i : i + 1], self._forward, slice(i, i + 1)) for i in range(colour.shape[0])]

    def _alpha_pass(self, alpha: np.ndarray, out: np.ndarray, index: int, full_scale: float, mode: str) -> list[_Pass]:
        if float(alpha.min()) == float(alpha.max()):  # opaque (or uniform): nothing to compute
            out[:, :, index] = _from_unit(alpha[:1, :1], full_scale, out.dtype)[0, 0]
            self.run_notes.append("alpha is uniform: filled, not upscaled")
            return []
        if mode == "auto":
            mode = "model" if self.channels == 3 else "bicubic"
        plane = alpha[None]
        if mode == "bicubic":
            self.run_notes.append("alpha upscaled bicubically")
            return [_Pass(plane, _bicubic(self.scale), slice(index, index + 1))]
        self.run_notes.append("alpha upscaled through the model as a grey image")
        source = np.repeat(plane, self.channels, axis=0) if self.channels > 1 else plane
        return [_Pass(source, self._forward, slice(index, index + 1), _mean_channels if self.channels > 1 else None)]

    # -- running ------------------------------------------------------------------------------------
    def _run_passes(
        self,
        passes: list[_Pass],
        out: np.ndarray,
        full_scale: float,
        size: tuple[int, int],
        tile: int | None,
        overlap: int,
        progress: Progress | None,
        should_cancel: Cancel | None,
    ) -> None:
        automatic = tile is None
        if tile is None:
            # chosen once per model: free memory hardly changes between images, and on CUDA it costs a probe
            self._auto_tile = self._auto_tile or self.choose_tile()
            tile, why = self._auto_tile
            self.run_notes.append(why)
            tile = self._fit_band(tile, size[1] + 2 * overlap, out.shape[2])
        while True:
            overlap = self._fit_overlap(tile, overlap)
            try:
                self._tile_all(passes, out, full_scale, size, tile, overlap, progress, should_cancel)
                return
            except UpscaleCancelled:
                raise
            except Exception as exc:
                if not _out_of_memory(exc):
                    raise
                tile = self._after_oom(tile, automatic, exc)

    def _fit_band(self, tile: int, padded_width: int, channels: int) -> int:
        """The tile, lowered if need be so the float32 band (tile rows at output size) fits the host budget.

        A wide image at x4 makes the band the biggest buffer after the output itself; bounding it
        keeps the peak for a 4K input at the output plus a few hundred MiB.
        """
        available, _ = available_host_memory()
        budget = min(available * CPU_MEMORY_FRACTION, BAND_MEMORY_CAP)
        row_bytes = padded_width * self.scale**2 * channels * 4  # one input row of tiles, blended at output size
        limit = max(MIN_TILE, int(budget // max(row_bytes, 1)) // 8 * 8)
        if limit >= tile:
            return tile
        self.run_notes.append(
            f"tiles lowered to {limit} px so one band of tiles takes at most {budget / 2**20:.0f} MiB"
        )
        return limit

    def _fit_overlap(self, tile: int, overlap: int) -> int:
        if 3 * overlap < tile:
            return overlap
        fitted = (tile - 1) // 3
        self.run_notes.append(f"overlap lowered from {overlap} to {fitted} px to fit {tile} px tiles")
        return fitted

    def _after_oom(self, tile: int, automatic: bool, exc: BaseException) -> int:
        device = getattr(self, "device", None)
        if isinstance(device, torch.device):
            free_accelerator_memory(device)
        half = tile // 2 // 8 * 8
        if half < MIN_TILE:
            raise DeviceError(
                f"not enough memory to upscale with {self.name} even in {tile} px tiles "
                f"({str(exc).splitlines()[0][:120]}); close other programs or use a smaller model"
            ) from None
        self.run_notes.append(f"out of memory with {tile} px tiles; started again with {half} px")
        if automatic:
            self._auto_tile = (half, f"tiles of {half} px after running out of memory with {tile} px")
        return half

    def _tile_all(
        self,
        passes: list[_Pass],
        out: np.ndarray,
        full_scale: float,
        size: tuple[int, int],
        tile: int,
        overlap: int,
        progress: Progress | None,
        should_cancel: Cancel | None,
    ) -> None:
        h, w = size
        rows, cols = axis_tiles(h + 2 * overlap, tile, overlap), axis_tiles(w + 2 * overlap, tile, overlap)
        total, counter = len(rows) * len(cols) * len(passes), [0]

        def tick() -> None:
            counter[0] += 1
            if progress:
                progress(counter[0], total)

        for job in passes:
            target = out[:, :, job.channels]
            _Tiler(self.scale, job, target, full_scale, overlap, rows, cols).run(tick, should_cancel)

    def info(self) -> dict[str, Any]:
        """What a front end shows about the loaded model."""
        return {
            "name": self.name,
            "backend": self.backend,
            "scale": self.scale,
            "channels": self.channels,
            "notes": list(self.notes),
            "identity": self.identity.to_dict(),
        }


def _check_tile(tile: int, overlap: int) -> None:
    if tile < MIN_TILE:
        raise ConfigError(f"tile must be at least {MIN_TILE} px, got {tile}")
    if 3 * overlap >= tile:
        raise ConfigError(
            f"overlap ({overlap} px) must be under a third of the tile ({tile} px); lower the overlap or raise the tile"
        )


def _mean_channels(tile: np.ndarray) -> np.ndarray:
    return tile.mean(axis=0, keepdims=True)


def _bicubic(scale: int) -> Forward:
    def forward(x: np.ndarray) -> np.ndarray:
        y = F.interpolate(torch.from_numpy(x), scale_factor=scale, mode="bicubic", align_corners=False)
        return y.clamp_(0, 1).numpy()

    return forward


class _Tiler:
    """One pass over the padded image, tile row by tile row, blending into a float32 band."""

    def __init__(
        self,
        scale: int,
        job: _Pass,
        target: np.ndarray,
        full_scale: float,
        overlap: int,
        rows: list[tuple[int, int]],
        cols: list[tuple[int, int]],
    ) -> None:
        self.scale, self.job, self.target, self.full_scale, self.overlap = scale, job, target, full_scale, overlap
        self.rows, self.cols = rows, cols
        pad = ((0, 0), (overlap, overlap), (overlap, overlap))
        # reflection (not zeros) gives border pixels context that looks like the image
        self.padded = np.pad(job.source, pad, mode="reflect") if overlap else job.source
        self.col_weights = [blend_weights(cols, i, overlap, scale) for i in range(len(cols))]
        band_rows = max(end - start for start, end in rows) * scale
        self.band = np.zeros((target.shape[2], band_rows, self.padded.shape[2] * scale), dtype=np.float32)
        self.band_top = 0  # padded output row of the band's first row

    def run(self, tick: Callable[[], None], should_cancel: Cancel | None) -> None:
        s = self.scale
        for j, (y0, y1) in enumerate(self.rows):
            row_weights = blend_weights(self.rows, j, self.overlap, s)[:, None]
            for i, (x0, x1) in enumerate(self.cols):
                if should_cancel and should_cancel():
                    raise UpscaleCancelled("upscale cancelled")
                result = self._run_tile(y0, y1, x0, x1)
                top = y0 * s - self.band_top
                result *= row_weights  # in place: a tile-sized temporary less at every step
                result *= self.col_weights[i][None, :]
                self.band[:, top : top + result.shape[1], x0 * s : x1 * s] += result
                tick()
            done_until = self.rows[j + 1][0] * s if j + 1 < len(self.rows) else y1 * s
            self._flush(done_until, y1 * s)

    def _run_tile(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        x = np.ascontiguousarray(self.padded[None, :, y0:y1, x0:x1], dtype=np.float32)
        y = self.job.forward(x)
        expected = (1, x.shape[1], (y1 - y0) * self.scale, (x1 - x0) * self.scale)
        if y.shape != expected:
            raise ConfigError(
                f"the model returned {tuple(y.shape)} for a {tuple(x.shape)} tile; expected {expected} "
                f"(x{self.scale}, same channels)"
            )
        return self.job.post(y[0]) if self.job.post else y[0]

    def _flush(self, done_until: int, filled_until: int) -> None:
        """Write rows [band_top, done_until) to the target (cropping the padding) and slide the rest up.

        Rows from ``done_until`` to ``filled_until`` (the overlap with the next tile row) stay in the band.
        The finished rows are converted in place in the band (they are cleared next), so flushing
        allocates nothing the size of the band.
        """
        pad = self.overlap * self.scale
        height, width = self.target.shape[:2]
        first, last = max(self.band_top, pad), min(done_until, pad + height)
        if last > first:
            block = self.band[:, first - self.band_top : last - self.band_top, pad : pad + width]
            np.clip(block, 0.0, 1.0, out=block)
            if self.full_scale != 1.0:
                block *= self.full_scale
                np.rint(block, out=block)
            self.target[first - pad : last - pad] = block.transpose(1, 2, 0)  # cast to the target's dtype
        shift, keep = done_until - self.band_top, filled_until - done_until
        if keep > 0:
            self.band[:, :keep] = self.band[:, shift : shift + keep]
        self.band[:, max(keep, 0) :] = 0.0
        self.band_top = done_until


# -- PyTorch ----------------------------------------------------------------------------------------
class TorchUpscaler(Upscaler):
    """A super-resolution network run with PyTorch: an ``upscale`` run folder or checkpoint, or a module.

    ``source``: a run folder (its newest checkpoint that verifies), a checkpoint file, or an
    ``nn.Module`` following the pixel convention (``scale`` from the argument or ``module.scale``;
    ``channels`` from ``module.channels``, else 3).
    """

    def __init__(
        self, source: Path | str | nn.Module, device: str = "cpu", scale: int | None = None, *, name: str | None = None
    ) -> None:
        self.notes: list[str] = []
        self.run_notes: list[str] = []
        self.device = select_device(device)
        self.family: Any = None
        if isinstance(source, nn.Module):
            self._adopt_module(source, scale, name)
        else:
            self._open_run(Path(source), scale)
        self.backend = f"PyTorch ({self.device})"

    def _adopt_module(self, module: nn.Module, scale: int | None, name: str | None) -> None:
        own: Any = getattr(module, "scale", None)
        if scale is not None and own is not None and int(own) != scale:
            raise ConfigError(f"scale {scale} was given but the module says it upscales x{own}")
        if scale is None and own is None:
            raise ConfigError("give scale= for a module without a 'scale' attribute")
        self.scale = int(own if scale is None else scale)
        self.channels = int(getattr(module, "channels", 3))
        self.module = module.to(self.device).eval()
        self.name = name or f"{type(module).__name__} x{self.scale}"
        self.identity = ModelIdentity(card_id=f"module/{self.name}", name=self.name, family=type(module).__name__)
        self._run = self.module

    def _open_run(self, source: Path, scale: int | None) -> None:
        self.checkpoint, state = open_checkpoint(source, on_note=self.notes.append)
        family_cls = get_family(state["family"])
        if family_cls.kind != "upscale":
            problem = f"{self.checkpoint} holds a '{state['family']}' model, which does not upscale images"
            raise CheckpointError(
                f"{problem}; open an upscale run (family esrgan) or a model file instead",
                gui=f"{problem}; pick an upscale run or a model file on the Upscale page",
            )
        spec = ModelSpec(**state["spec"])
        self.family = family_cls(spec, TrainConfig.from_dict(state["config"]), self.device)
        self.family.load_state_dict(state["family_state"])
        described = self.family.describe()
        self.scale, self.channels = int(described["scale"]), int(described["channels"])
        if scale is not None and scale != self.scale:
            raise ConfigError(f"{self.checkpoint} upscales x{self.scale}, not x{scale}")
        self.module = self.family.export_modules()["upscaler"].eval()
        self.family_name, self.step, self.resolution = state["family"], int(state["step"]), spec.resolution
        self.identity = identity_from_checkpoint(self.checkpoint, state)
        arch = described.get("arch")
        run = self.checkpoint.parent.parent.name if self.checkpoint.parent.name == "checkpoints" else source.name
        label = f"{self.family_name}-{arch}" if arch else self.family_name
        self.name = f"{label} x{self.scale} (run {run}, step {self.step})"
        self._run = self.family.upscale

    def _forward(self, x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            y = self._run(torch.from_numpy(x).to(self.device)).float().clamp_(0, 1)
        return y.cpu().numpy()

    def free_memory(self) -> tuple[int, str]:
        """On CUDA: the free device memory plus what PyTorch holds cached but unused; else the host's RAM."""
        if self.device.type != "cuda":
            return super().free_memory()
        free, total = torch.cuda.mem_get_info(self.device)
        cached = torch.cuda.memory_reserved(self.device) - torch.cuda.memory_allocated(self.device)
        budget = int((free + cached) * GPU_MEMORY_FRACTION)
        return budget, f"60% of {(free + cached) / 2**30:.1f} GiB free of {total / 2**30:.0f} GiB on the GPU"

    def bytes_per_pixel(self) -> float:
        """Measured on a probe tile: CUDA's peak allocation, or on the CPU the largest activations (hooks).

        A probe that itself runs out of memory falls back to the generic estimate (the tiler then halves).
        """
        try:
            return self._measure_bytes_per_pixel()
        except Exception as exc:
            if not _out_of_memory(exc):
                raise
            free_accelerator_memory(self.device)
            return super().bytes_per_pixel()

    def _measure_bytes_per_pixel(self) -> float:
        probe = np.random.default_rng(0).random((1, self.channels, PROBE_SIDE, PROBE_SIDE), dtype=np.float32)
        pixels = PROBE_SIDE * PROBE_SIDE
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            base = torch.cuda.memory_allocated(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._forward(probe)
            peak = torch.cuda.max_memory_allocated(self.device) - base
            return 1.5 * peak / pixels  # headroom: algorithms (and their workspaces) change with the size
        largest = _largest_activation(self.module, lambda: self._forward(probe))
        # an activation, the next layer's output and a skip connection are alive at once
        return 3.0 * 4 * largest / pixels if largest else super().bytes_per_pixel()


def _largest_activation(module: nn.Module, run: Callable[[], Any]) -> int:
    """The most elements any leaf module of ``module`` outputs during ``run()`` (0 if none reported)."""
    largest = [0]

    def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
        if isinstance(output, torch.Tensor):
            largest[0] = max(largest[0], output.numel())

    handles = [m.register_forward_hook(hook) for m in module.modules() if not any(True for _ in m.children())]
    try:
        run()
    finally:
        for handle in handles:
            handle.remove()
    return largest[0]
