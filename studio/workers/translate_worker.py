"""TranslateWorker: an image-to-image model on a long-lived QThread, answering live and batch requests.

The Translate page sends a request whenever the drawing or the hints settle; each carries an id and
only the newest waiting one is computed, so a quick series of strokes costs one translation. Batches
write files with the engine's translate_files (progress throttled, cancel from the GUI thread).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Signal, Slot

from engine.data.pairs import trace_drawing
from engine.export.open import open_translator
from engine.inference.translate_files import collect_inputs, read_image, translate_files
from studio.workers.model_host import ModelHost, backend_note


class TranslateWorker(ModelHost):
    """Holds one translator (``self.model``) and answers live, file-reading and batch requests."""

    sig_result = Signal(object, int, float)
    """A translated image (uint8 HxWxC), the id of the request it answers, and milliseconds it took."""
    sig_image_read = Signal(object, str)
    """An image file was read for the page (uint8 HxWxC, or HxW line art when traced) and its path."""
    sig_batch_done = Signal(object)
    """A batch ended: dict of written paths, skipped (path, reason) and whether it was cancelled."""

    what = "Translating"

    def open_model(self, source: str) -> Any:
        return open_translator(source)

    def describe(self, source: str) -> dict[str, Any]:
        info = self.model.info()
        info["backend_note"] = backend_note(self.model.backend, source)
        return info

    @Slot(object, object, object, int)
    def translate(self, image: np.ndarray, hints: list, work_size: int | None, request_id: int) -> None:
        """Translate ``image``, unless a newer request (higher id) is already waiting."""
        if request_id < self.latest_request or self.model is None:
            return
        result: list[Any] = []
        start = time.perf_counter()
        if self._guard(lambda: result.append(self.model.translate(image, hints, work_size=work_size))):
            self.sig_result.emit(result[0], request_id, (time.perf_counter() - start) * 1000)

    @Slot(str, bool)
    def read(self, path: str, trace: bool) -> None:
        """Read an image file robustly (EXIF orientation, 16-bit, CMYK...); ``trace``: as its line art."""
        result: list[Any] = []
        if self._guard(lambda: result.append(_read_or_explain(path))):
            image = trace_drawing(result[0]) if trace else result[0]
            self.sig_image_read.emit(image, path)

    @Slot(object, str, object, object)
    def batch(self, inputs: list[str], out_dir: str, hints: list, work_size: int | None) -> None:
        """Translate files and folders into ``out_dir`` with progress; cancel() ends it early."""
        if self.model is None:
            self.sig_failed.emit("Load a model before translating a folder.", "")
            return
        result: list[Any] = []
        ok = self._guard(
            lambda: result.append(
                translate_files(
                    self.model,
                    collect_inputs(inputs),
                    Path(out_dir),
                    hints=hints,
                    work_size=work_size,
                    progress=self._progress,
                    should_cancel=self._cancel.is_set,
                )
            )
        )
        if ok:
            self.sig_batch_done.emit(result[0].to_dict())


def _read_or_explain(path: str) -> np.ndarray:
    from engine.data.decode import BadImage
    from engine.errors import DataError

    try:
        return read_image(Path(path))
    except BadImage as exc:
        raise DataError(f"{path} cannot be opened: {exc}") from None
