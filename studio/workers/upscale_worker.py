"""UpscaleWorker: an upscaler on a long-lived QThread, answering read, upscale and batch requests.

The Upscale page sends requests through queued signals; the worker opens the model with the engine's
open_upscaler (a run folder: its current ONNX export, else PyTorch; an .onnx; a .pth/.safetensors
model file), upscales one image tile by tile with progress (per tile) and cancel, and writes folders
with the engine's upscale_files (progress per file, cancel, never overwriting). It never touches a widget.

``UpscaledRunner`` wraps a generator runner so that the images it generates go through an upscaler:
the Generate page's "Upscale on export" hands it to the engine's save_images unchanged.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Signal, Slot

from engine.data.decode import BadImage
from engine.errors import DataError, UpscaleCancelled
from engine.export.open import open_upscaler
from engine.inference.upscale_files import SourceImage, read_source, upscale_files
from studio.workers.model_host import ModelHost, backend_note

DEVICES = ("auto", "cpu", "cuda")


def display_image(image: np.ndarray) -> np.ndarray:
    """A uint8 copy of an image for the screen (16-bit and float images scaled down; alpha dropped)."""
    if image.dtype == np.uint16:
        shown = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        shown = (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    else:
        shown = image
    if shown.ndim == 3 and shown.shape[2] == 4:
        shown = shown[:, :, :3]
    elif shown.ndim == 3 and shown.shape[2] == 2:  # grey + alpha: the grey
        shown = shown[:, :, 0]
    return np.ascontiguousarray(shown)


def describe_upscaler(upscaler: Any, source: str | None = None) -> dict[str, Any]:
    """What the page shows about a loaded upscaler: its name, architecture, scale, channels and backend."""
    backend = str(getattr(upscaler, "backend", "") or "")
    architecture = str(getattr(upscaler, "architecture", "") or "")
    return {
        "source": source or "",
        "name": str(getattr(upscaler, "name", "") or Path(source or "model").name),
        "architecture": architecture,
        "scale": int(upscaler.scale),
        "channels": int(getattr(upscaler, "channels", 3)),
        "backend": backend,
        # a run folder run by PyTorch says why (no current export); onnxruntime or a chosen file needs no note
        "backend_note": backend_note(backend if backend.lower().startswith("pytorch") else "onnxruntime", source),
        "notes": [str(n) for n in (getattr(upscaler, "notes", None) or [])],
        "identity": upscaler.identity.to_dict(),  # what its images' watermark and metadata say
    }


class UpscaledRunner:
    """A generator runner whose images come out ``upscaler.scale`` times larger (everything else delegated)."""

    def __init__(self, runner: Any, upscaler: Any, tile: int | None = None) -> None:
        self.runner, self.upscaler, self.tile = runner, upscaler, tile

    def __getattr__(self, name: str) -> Any:
        return getattr(self.runner, name)

    def generate(self, seeds: list[int], **kwargs: Any) -> np.ndarray:
        """The runner's images (uint8 NHWC), each upscaled."""
        images = self.runner.generate(seeds, **kwargs)
        return np.stack([self.upscaler.upscale_array(image, tile=self.tile) for image in images])


def open_upscaler_for(source: str, device: str = "auto") -> Any:
    """The engine's opener: a run folder (its current export, else PyTorch), an .onnx or a model file."""
    return open_upscaler(source, device=device)


class UpscaleWorker(ModelHost):
    """Holds one upscaler (``self.model``) on ``self.device``; answers read, upscale and batch requests."""

    sig_image_read = Signal(object, object, str)
    """An image file was read: the engine's SourceImage (pixels as stored, uint8/uint16, with its ICC
    profile, EXIF and text), a uint8 copy to show, and its path."""
    sig_result = Signal(object, object, int, float, object)
    """An upscaled image (same dtype as the input), a uint8 copy to show, the request id, milliseconds,
    and the engine's notes on what it chose (tile size, retries, how alpha was upscaled)."""
    sig_tile = Signal(int, int)
    """Tiles done and in total of the image being upscaled (throttled)."""
    sig_cancelled = Signal(int)
    """The upscale of request ``id`` was cancelled (nothing was produced)."""
    sig_batch_done = Signal(object)
    """A batch ended: dict of written paths, skipped (path, reason) pairs, and whether it was cancelled."""

    what = "Upscaling"

    def __init__(self, progress_interval: float = 0.05) -> None:
        super().__init__(progress_interval)
        self.device = "auto"
        self._last_tile = 0.0

    def open_model(self, source: str) -> Any:
        return open_upscaler_for(source, self.device)

    def describe(self, source: str) -> dict[str, Any]:
        info = describe_upscaler(self.model, source)
        info["device"] = self.device
        return info

    @Slot(str, str)
    def load_on(self, source: str, device: str) -> None:
        """Load ``source`` on ``device`` ('auto', 'cpu', 'cuda'); reloads when either changed."""
        if device != self.device:
            self.model, self.source, self.device = None, None, device
        self.load(source)

    @Slot(str)
    def read(self, path: str) -> None:
        """Read an image file as stored (EXIF orientation applied; 16-bit kept when the engine keeps it)."""
        result: list[Any] = []
        if self._guard(lambda: result.append(read_for_upscale(path))):
            self.sig_image_read.emit(result[0], display_image(result[0].pixels), path)

    @Slot(object, object, int)
    def upscale(self, image: np.ndarray, tile: int | None, request_id: int) -> None:
        """Upscale ``image`` with progress per tile, unless a newer request is waiting; cancel() stops it."""
        if request_id < self.latest_request or self.model is None:
            return
        result: list[Any] = []
        start = time.perf_counter()

        def job() -> None:
            try:
                result.append(
                    self.model.upscale_array(
                        image, tile=tile, progress=self._tile_progress, should_cancel=self._cancel.is_set
                    )
                )
            except UpscaleCancelled:
                result.append(None)

        if not self._guard(job):
            return
        if result[0] is None:
            self.sig_cancelled.emit(request_id)
            return
        ms = (time.perf_counter() - start) * 1000
        notes = [str(n) for n in (getattr(self.model, "run_notes", None) or [])]
        self.sig_result.emit(result[0], display_image(result[0]), request_id, ms, notes)

    @Slot(object, str, object)
    def batch(self, inputs: list[str], out_dir: str, tile: int | None) -> None:
        """Upscale files and folders into ``out_dir`` (never overwriting) with progress; cancel() ends it early."""
        if self.model is None:
            self.sig_failed.emit("Load a model before upscaling a folder.", "")
            return
        result: list[Any] = []
        ok = self._guard(
            lambda: result.append(
                upscale_files(
                    self.model,
                    [Path(p) for p in inputs],
                    Path(out_dir),
                    tile=tile,
                    progress=lambda done, total, current: self._progress(done, total, str(current)),
                    should_cancel=self._cancel.is_set,
                    tile_progress=self._tile_progress,
                )
            )
        )
        if ok:
            self.sig_batch_done.emit(result[0].to_dict())

    def _tile_progress(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done == total or now - self._last_tile >= self.progress_interval:
            self._last_tile = now
            self.sig_tile.emit(int(done), int(total))


def read_for_upscale(path: str) -> SourceImage:
    """An image file as upscale_files reads it (16-bit kept, ICC/EXIF/text carried); DataError in words."""
    try:
        return read_source(Path(path))
    except BadImage as exc:
        raise DataError(f"{path} cannot be opened: {exc}") from None
