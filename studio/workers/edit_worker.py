"""EditWorker: a model opened for latent editing on a long-lived QThread (the Edit page's engine side).

Every request is an engine call (engine.editing); previews answer only the newest request, long jobs
(animation, inversion) report throttled progress and stop on cancel.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Signal, Slot

from engine.editing import (
    AnimationCancelled,
    DirectionSet,
    EditableModel,
    InversionCancelled,
    Latent,
    find_directions,
    invert,
    keyframe_path,
    library,
    save_to_library,
    write_animation,
)
from engine.provenance.stamp import provenance_for, save_png
from studio.workers.model_host import ModelHost


def build_latent(model: EditableModel, spec: dict[str, Any]) -> Latent:
    """The latent a page state describes: a base (saved latent or seed), direction moves, a style mix.

    ``spec``: ``base`` (a Latent) or ``seed``, ``class_index``, ``truncation``; ``moves``: list of
    (vector, amount); ``mix_seed`` and ``mix_layers`` (W+ models).
    """
    base = spec.get("base")
    latent = (
        base
        if isinstance(base, Latent)
        else model.latent(int(spec.get("seed", 0)), spec.get("class_index"), float(spec.get("truncation", 1.0)))
    )
    for vector, amount in spec.get("moves", []):
        if amount:
            latent = latent.moved(vector, float(amount))
    if spec.get("mix_seed") is not None and model.space == "w":
        other = model.latent(int(spec["mix_seed"]), latent.class_index, float(spec.get("truncation", 1.0)))
        latent = model.mix(latent, other, str(spec.get("mix_layers", "fine")))
    return latent


class EditWorker(ModelHost):
    """Holds one EditableModel (``self.model``) and answers the Edit page's requests."""

    sig_preview = Signal(object, object, int)
    """A preview: image (uint8 HWC), its Latent, and the id of the request it answers."""
    sig_directions = Signal(object)
    """A DirectionSet computed or loaded for the model."""
    sig_library = Signal(object)
    """The model's saved direction sets: {name: DirectionSet}."""
    sig_grid = Signal(object)
    """A style-mixing grid: uint8 (rows+1, cols+1, H, W, C), row 0 / column 0 the sources."""
    sig_done = Signal(str, str)
    """A long job ended: what ("animation", "inversion", "save"), and a message for the status bar."""
    sig_inverted = Signal(object, object)
    """An inversion's Latent and its engine.editing.InversionResult."""

    what = "Editing"

    def open_model(self, source: str) -> Any:
        model = EditableModel(source, device="auto")
        model.preview_provider = model.attach_onnx_synthesis(source)  # type: ignore[attr-defined]
        return model

    def describe(self, source: str) -> dict[str, Any]:
        model: EditableModel = self.model
        return {
            "family": model.runner.family_name,
            "step": model.runner.step,
            "space": model.space,
            "resolution": model.resolution,
            "classes": list(model.classes),
            "num_ws": model.num_ws,
            "layer_groups": list(model.layer_groups()) if model.space == "w" else [],
            "preview": getattr(model, "preview_provider", "") or f"PyTorch ({model.device})",
            "identity": model.identity.to_dict(),
            "library": sorted(library(model)),
        }

    @Slot(object, int)
    def preview(self, spec: dict[str, Any], request_id: int) -> None:
        """Render the page's current latent unless a newer request already waits."""
        if request_id < self.latest_request or self.model is None:
            return  # the page set latest_request when it sent a newer one

        def job() -> None:
            latent = build_latent(self.model, spec)
            image = self.model.preview([latent])[0]
            if request_id == self.latest_request:
                self.sig_preview.emit(image, latent, request_id)

        self._guard(job)

    @Slot(str, int)
    def compute_directions(self, method: str, count: int) -> None:
        """SeFa or GANSpace directions of the model."""
        if self.model is not None:
            self._guard(lambda: self.sig_directions.emit(find_directions(self.model, method, count)))

    @Slot(object, str)
    def save_directions(self, directions: DirectionSet, name: str) -> None:
        """Save ``directions`` in the run's library under ``name``, then send the library."""

        def job() -> None:
            path = save_to_library(self.model, directions, name)
            self.sig_library.emit(library(self.model))
            self.sig_done.emit("save", f"Saved the directions as {path.name} in {path.parent}.")

        self._guard(job)

    @Slot(str)
    def load_directions(self, name: str) -> None:
        """Send the library's direction set ``name``."""
        self._guard(lambda: self.sig_directions.emit(library(self.model)[name]))

    @Slot(object, object, str, object)
    def mix_grid(self, row_seeds: list[int], col_seeds: list[int], layers: str, class_index: int | None) -> None:
        """Row i, column j: row seed i with column seed j's styles on ``layers``; row 0 and column 0 the sources."""

        def job() -> None:
            model = self.model
            rows = [model.latent(s, class_index) for s in row_seeds]
            cols = [model.latent(s, class_index) for s in col_seeds]
            blank = np.zeros((model.resolution, model.resolution, model.channels), np.uint8)
            grid = [[blank, *model.preview(cols)]]
            for base in rows:
                mixed = model.preview([model.mix(base, other, layers) for other in cols])
                grid.append([model.preview([base])[0], *mixed])
            self.sig_grid.emit(np.array(grid))

        self._guard(job)

    @Slot(object, int, bool, float, int, str)
    def animate(self, keyframes: list[Latent], frames: int, loop: bool, fps: float, size: int, out: str) -> None:
        """Write a walk through ``keyframes`` to ``out`` (GIF, WebP or MP4)."""

        def job() -> None:
            path = keyframe_path(keyframes, frames, loop)
            try:
                write_animation(
                    self.model,
                    path,
                    Path(out),
                    fps=fps,
                    size=size or None,
                    progress=lambda d, t: self._progress(d, t, out),
                    should_cancel=self._cancel.is_set,
                )
            except AnimationCancelled as exc:
                self.sig_done.emit("animation", str(exc))
                return
            self.sig_done.emit("animation", f"Wrote {Path(out).name}: {len(path)} frames at {fps:g} fps.")

        self._guard(job)

    @Slot(str, int, object, bool)
    def invert(self, image: str, steps: int, class_index: int | None, noise: bool = False) -> None:
        """Find the latent of ``image`` (faces need the model's data attested "people consented")."""

        def job() -> None:
            try:
                result = invert(
                    self.model,
                    image,
                    steps=steps,
                    class_index=class_index,
                    attestation_people=self.model.attested_people(),
                    noise=noise,
                    progress=lambda s, t, e: self._progress(s, t, f"error {e:.4f}"),
                    should_cancel=self._cancel.is_set,
                )
            except InversionCancelled as exc:
                result = exc.result
            self.sig_inverted.emit(result.latent, result)
            self.sig_done.emit(
                "inversion",
                f"Inverted {Path(image).name}: error {result.start_error:.4f} → {result.final_error:.4f} "
                f"({result.improvement:.1f}x smaller) in {result.steps} steps.",
            )

        self._guard(job)

    @Slot(object, str)
    def save(self, latent: Latent, out: str) -> None:
        """Write the latent's image (.png, watermarked and signed) or the latent itself (.npz)."""

        def job() -> None:
            path = Path(out)
            if path.suffix.lower() == ".npz":
                self.model.save_latent(latent, path)
            else:
                save_png(self.model.render([latent])[0], path, provenance_for(self.model.identity, "edit"))
            self.sig_done.emit("save", f"Saved {path.name} to {path.parent}.")

        self._guard(job)

    @Slot(str)
    def open_latent(self, path: str) -> None:
        """Send a saved latent of this model as a preview base (sig_preview with request id -1)."""

        def job() -> None:
            latent = self.model.load_latent(path)
            self.sig_preview.emit(self.model.render([latent])[0], latent, -1)

        self._guard(job)
