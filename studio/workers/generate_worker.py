"""GenerateWorker: a trained model on a long-lived QThread, answering gallery and export requests.

The page sends requests through queued signals; the worker opens the engine's runner once per source
(open_runner: onnxruntime for a run whose ONNX export is current, PyTorch otherwise and for a chosen
checkpoint), skips gallery requests that a newer one has replaced, and writes exports with the
engine's save_images (progress throttled, cancel from the GUI thread).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal, Slot

from engine.export.open import open_runner
from engine.inference.export_images import save_images, save_images_per_class
from studio.workers.model_host import ModelHost, backend_note
from studio.workers.upscale_worker import UpscaledRunner, open_upscaler_for


def describe_runner(runner: Any, source: str | None = None) -> dict[str, Any]:
    """What the page needs to know about a loaded model, including which backend runs it and why."""
    backend = str(getattr(runner, "backend", "") or "")
    return {
        "checkpoint": str(runner.checkpoint),
        "family": runner.family_name,
        "step": runner.step,
        "resolution": runner.resolution,
        "classes": list(runner.classes),
        "latent_dim": runner.latent_dim,
        "supports_truncation": bool(getattr(runner, "supports_truncation", False)),
        "backend": backend,
        "description": str(getattr(runner, "description", backend)),
        "backend_note": backend_note(backend, source),
        "notes": list(getattr(runner, "notes", []) or []),
        "identity": runner.identity.to_dict(),  # what its images' watermark and metadata say
    }


class GenerateWorker(ModelHost):
    """Holds one generator runner (``self.model``) and answers gallery and export requests."""

    sig_images = Signal(object, object, int)
    """Generated images (uint8 NHWC numpy), their seeds, and the id of the request they answer."""
    sig_exported = Signal(object, bool)
    """An export ended (after each export request, also a failed one): the files written, and whether it
    was cancelled."""

    what = "Generating"

    def __init__(self, progress_interval: float = 0.05) -> None:
        super().__init__(progress_interval)
        self.export_upscaler: str = ""  # "Upscale on export": a run folder / model file, '' for none
        self._upscaler: tuple[str, Any] | None = None  # the opened one, kept for the next export

    @Slot(str)
    def set_export_upscaler(self, source: str) -> None:
        """Exports from now on go through the upscaler ``source`` ('' : written at the model's size)."""
        self.export_upscaler = source

    def _export_runner(self) -> Any:
        """The runner exports use: the model's, or wrapped so its images come out upscaled."""
        if not self.export_upscaler:
            return self.model
        if self._upscaler is None or self._upscaler[0] != self.export_upscaler:
            self._upscaler = (self.export_upscaler, open_upscaler_for(self.export_upscaler))
        return UpscaledRunner(self.model, self._upscaler[1])

    def open_model(self, source: str) -> Any:
        # A run folder gets onnxruntime when its export is current; a chosen checkpoint file runs in PyTorch.
        return open_runner(source)

    def describe(self, source: str) -> dict[str, Any]:
        return describe_runner(self.model, source)

    @Slot(object, object, float, int)
    def generate(self, seeds: list[int], class_index: int | None, truncation: float, request_id: int) -> None:
        """Images for ``seeds``, unless a newer request (higher id) is already waiting."""
        if request_id < self.latest_request or self.model is None:
            return
        result: list[Any] = []
        if self._guard(
            lambda: result.append(self.model.generate(seeds, class_index=class_index, truncation=truncation))
        ):
            self.sig_images.emit(result[0], list(seeds), request_id)

    @Slot(object, str, object, float)
    def export(self, seeds: list[int], out_dir: str, class_index: int | None, truncation: float) -> None:
        """Write ``seeds`` as PNG files into ``out_dir`` with progress; cancel() ends it early."""
        if self.model is None:
            self.sig_failed.emit("Load a model before exporting images.", "")
            self.sig_exported.emit([], False)
            return
        written: list[Path] = []
        ok = self._guard(
            lambda: written.extend(
                save_images(
                    self._export_runner(),
                    list(seeds),
                    Path(out_dir),
                    class_index=class_index,
                    truncation=truncation,
                    progress=self._progress,
                    should_cancel=self._cancel.is_set,
                )
            )
        )
        # Every export request ends with exactly one sig_exported, failed or not (a failure also sends
        # sig_failed first): the page ends its export on this signal only, never on another request's failure.
        self.sig_exported.emit([str(p) for p in written], self._cancel.is_set() and ok)

    @Slot(int, str, int, float)
    def export_per_class(self, per_class: int, out_dir: str, first_seed: int, truncation: float) -> None:
        """Write ``per_class`` images of every class into ``out_dir/<class>/`` with a manifest.json."""
        if self.model is None:
            self.sig_failed.emit("Load a model before exporting images.", "")
            self.sig_exported.emit([], False)
            return
        written: list[Path] = []
        ok = self._guard(
            lambda: written.extend(
                path
                for paths in save_images_per_class(
                    self._export_runner(),
                    per_class,
                    Path(out_dir),
                    first_seed=first_seed,
                    truncation=truncation,
                    progress=self._progress,
                    should_cancel=self._cancel.is_set,
                ).files.values()
                for path in paths
            )
        )
        # Every export request ends with exactly one sig_exported, failed or not (a failure also sends
        # sig_failed first): the page ends its export on this signal only, never on another request's failure.
        self.sig_exported.emit([str(p) for p in written], self._cancel.is_set() and ok)
