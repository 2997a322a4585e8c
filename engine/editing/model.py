"""A trained noise-to-image model opened for latent editing: latents per seed, rendering, saved latents.

Families with a mapping network (stylegan2) are edited in W+: a latent is ``ws`` (num_ws, w_dim), one w
per synthesis layer, which is what style mixing and layer-wise edits need. The others are edited in
z: a latent is the (latent_dim,) vector the generator takes. Either way a :class:`Latent` renders the
same image bit for bit, on this machine, every time (the EMA generator in eval mode, stored noise).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.errors import ConfigError, DataError, GanStudioError
from engine.fsutil import atomic_open
from engine.inference.runner import latents_for_seeds, to_uint8_nhwc_np
from engine.inference.torch_runner import TorchRunner

LATENT_FORMAT_VERSION = 1


@dataclass
class Latent:
    """One point of a model's latent space (``space`` "z" or "w") and the class it is drawn for."""

    vector: np.ndarray  # (latent_dim,) in z; (num_ws, w_dim) in W+
    space: str
    class_index: int | None = None
    seed: int | None = None
    truncation: float = 1.0
    noise: list[np.ndarray] | None = None
    """W+ only: the synthesis layers' noise maps (1, 1, r, r) when inversion fitted them; None: the model's."""

    def moved(self, direction: np.ndarray, amount: float, layers: slice | None = None) -> Latent:
        """This latent plus ``amount`` times ``direction`` (in W+: on ``layers``, every layer by default)."""
        vector = self.vector.astype(np.float32).copy()
        step = np.float32(amount) * np.asarray(direction, np.float32)
        if vector.ndim == 2:
            vector[layers or slice(None)] += step
        else:
            vector += step
        return Latent(vector, self.space, self.class_index, self.seed, self.truncation, self.noise)


class EditableModel:
    """The EMA generator of a run (or checkpoint) with what editing needs."""

    def __init__(self, source: Path | str, device: str = "cpu") -> None:
        self.runner = TorchRunner(source, device=device)
        family = self.runner.family
        self.family = family
        modules = family.export_modules()
        self.mapping = modules.get("mapping")
        self.synthesis = modules.get("synthesis")
        self.space = "w" if self.mapping is not None and self.synthesis is not None else "z"
        self.generator = modules["generator"]
        for parameter in self.generator.parameters():
            parameter.requires_grad_(False)  # inversion differentiates through G; G itself never changes
        self.identity = self.runner.identity
        self.resolution, self.channels = self.runner.resolution, self.runner.channels
        self.num_classes, self.classes = self.runner.num_classes, self.runner.classes
        self.latent_dim = self.runner.latent_dim
        self.device = self.runner.device
        if self.space == "w":
            mapping: Any = self.mapping
            self.num_ws = int(mapping.num_ws)
            self.w_dim = int(mapping.w_avg.shape[0])
        else:
            self.num_ws, self.w_dim = 0, self.latent_dim

    @property
    def model_id(self) -> str:
        """The model card id the latents belong to (the checkpoint's file name when it has none)."""
        return self.identity.card_id or self.runner.checkpoint.name

    def attested_people(self) -> str | None:
        """What the attestation this model was trained under says about people ("none", "consented"),
        read from its dataset's consent history; None when that dataset or record is not found."""
        from engine.consent import attestation_history

        try:
            history = attestation_history(self.runner.dataset_dir)
        except GanStudioError:
            return None
        return next((r.people for r in history if r.id == self.identity.attestation_id), None)

    @property
    def vector_dim(self) -> int:
        """Length of a direction: w_dim in W+, latent_dim in z."""
        return self.w_dim if self.space == "w" else self.latent_dim

    def _labels(self, class_index: int | None, n: int) -> torch.Tensor | None:
        if not self.num_classes:
            return None
        index = 0 if class_index is None else class_index
        if not 0 <= index < self.num_classes:
            raise ConfigError(f"class index {index} is out of range: this model has classes 0..{self.num_classes - 1}")
        return torch.full((n,), index, dtype=torch.int64, device=self.device)

    @torch.no_grad()
    def map_z(self, z: np.ndarray, class_index: int | None = None, truncation: float = 1.0) -> np.ndarray:
        """W+ latents (N, num_ws, w_dim) for z (N, latent_dim); z itself for families without mapping."""
        if self.space == "z":
            return np.asarray(z, np.float32) * np.float32(truncation)
        zt = torch.from_numpy(np.asarray(z, np.float32)).to(self.device)
        mapping: Any = self.mapping
        ws = mapping(zt, self._labels(class_index, len(zt)), truncation)
        return ws.float().cpu().numpy()

    def latent(self, seed: int, class_index: int | None = None, truncation: float = 1.0) -> Latent:
        """The latent of ``seed`` (the same one Generate uses), for ``class_index`` on conditional models."""
        if not 0 < truncation <= 1:
            raise ConfigError(f"truncation must be in (0, 1], got {truncation}")
        z = latents_for_seeds([seed], self.latent_dim)
        return Latent(self.map_z(z, class_index, truncation)[0], self.space, class_index, seed, truncation)

    def mean_latent(self, class_index: int | None = None) -> Latent:
        """The centre of the latent space: w_avg in every layer, or z = 0."""
        if self.space == "w":
            mapping: Any = self.mapping
            w_avg = mapping.w_avg.float().cpu().numpy()
            return Latent(np.repeat(w_avg[None], self.num_ws, 0), "w", class_index)
        return Latent(np.zeros(self.latent_dim, np.float32), "z", class_index)

    def noise_maps(self) -> list[torch.Tensor]:
        """The synthesis layers' stored noise maps (W+ models), the ones every image uses by default."""
        synthesis: Any = self.synthesis
        return [layer.noise_const for layer in synthesis.layers]

    def render_tensor(
        self, vectors: torch.Tensor, class_index: int | None = None, noise: list[torch.Tensor] | None = None
    ) -> torch.Tensor:
        """Images in [-1, 1] (N, C, R, R) for a batch of latent vectors, differentiable (for inversion).

        ``noise`` (W+ only) replaces the stored noise maps for this call, e.g. those inversion fitted."""
        if self.space == "w":
            if noise is None:
                return self.synthesis(vectors, "const")  # type: ignore[misc]
            synthesis: Any = self.synthesis
            layers = list(synthesis.layers)
            stored = [layer.noise_const for layer in layers]
            try:
                for layer, maps in zip(layers, noise):
                    layer.noise_const = maps
                return self.synthesis(vectors, "const")  # type: ignore[misc]
            finally:
                for layer, maps in zip(layers, stored):
                    layer.noise_const = maps
        labels = self._labels(class_index, vectors.shape[0])
        return self.generator(vectors, labels)

    @torch.no_grad()
    def render(self, latents: list[Latent]) -> np.ndarray:
        """uint8 (N, H, W, C) images of ``latents`` (each with its own class)."""
        images = []
        for latent in latents:
            self._check(latent)
            vector = torch.from_numpy(latent.vector.astype(np.float32)[None]).to(self.device)
            noise = None if latent.noise is None else [torch.from_numpy(n).to(self.device) for n in latent.noise]
            images.append(self.render_tensor(vector, latent.class_index, noise).float().clamp(-1, 1).cpu().numpy())
        if not images:
            return np.zeros((0, self.resolution, self.resolution, self.channels), np.uint8)
        return to_uint8_nhwc_np(np.concatenate(images))

    def _check(self, latent: Latent) -> None:
        if latent.noise is not None:
            shapes = [tuple(n.shape) for n in self.noise_maps()] if self.space == "w" else []
            if [tuple(n.shape) for n in latent.noise] != shapes:
                raise ConfigError("this latent's noise maps do not fit this model; open the model it was saved from")
        shape = (self.num_ws, self.w_dim) if self.space == "w" else (self.latent_dim,)
        if latent.space != self.space or tuple(latent.vector.shape) != shape:
            raise ConfigError(
                f"this latent ({latent.space}, shape {tuple(latent.vector.shape)}) is not of this model "
                f"({self.space}, shape {shape}); open the model it was saved from"
            )

    # -- live previews on onnxruntime (W+ models with a current export) ---------------------------
    def attach_onnx_synthesis(self, run_dir: Path | str) -> str:
        """Render previews on onnxruntime when the run has a current ONNX export.

        W+ models use its ``-synthesis.onnx`` graph (ws -> image), z models the export itself (z -> image).
        Returns the provider that runs previews ('' when there is no current export: PyTorch then renders).
        Saved images are always rendered by :meth:`render` (PyTorch), which the watermark and metadata
        describe; previews only show.
        """
        from engine.export.onnx_export import w_graph_paths
        from engine.export.open import find_export

        self._ort: Any = None
        export = find_export(Path(run_dir)) if Path(run_dir).is_dir() else None
        if export is None:
            return ""
        if self.space == "z":
            from engine.export.ort_runner import OrtRunner

            runner = OrtRunner(export)
            if runner.latent_dim != self.latent_dim or runner.num_classes != self.num_classes:
                return ""  # an export of another configuration: keep PyTorch
            self._ort = ("z", runner)
            return str(runner.provider)
        graph = w_graph_paths(export)["synthesis"]
        if not graph.is_file():
            return ""
        import onnxruntime as ort

        session = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
        self._ort = ("w", (session, session.get_inputs()[0].name))
        return str(session.get_providers()[0])

    def preview(self, latents: list[Latent]) -> np.ndarray:
        """Like :meth:`render`, on onnxruntime when :meth:`attach_onnx_synthesis` found an export."""
        attached = getattr(self, "_ort", None)
        if attached is None or not latents or any(latent.noise is not None for latent in latents):
            return self.render(latents)
        for latent in latents:
            self._check(latent)
        vectors = np.stack([latent.vector.astype(np.float32) for latent in latents])
        kind, backend = attached
        if kind == "z":
            labels = None
            if self.num_classes:
                labels = np.array([latent.class_index or 0 for latent in latents], np.int64)
            return np.asarray(backend(vectors, labels))
        session, name = backend
        return to_uint8_nhwc_np(session.run(None, {name: vectors})[0])

    # -- style mixing (W+ only) -------------------------------------------------------------------
    def layer_groups(self) -> dict[str, slice]:
        """W+ layers by the scale they control: coarse (4-8 px: pose, shape), middle, fine (colour, texture)."""
        if self.space != "w":
            raise ConfigError("style mixing needs a model with a mapping network (stylegan2)")
        n = self.num_ws
        coarse, middle = max(1, round(n * 0.3)), max(2, round(n * 0.6))
        return {"coarse": slice(0, coarse), "middle": slice(coarse, middle), "fine": slice(middle, n)}

    def mix(self, base: Latent, other: Latent, layers: str | slice) -> Latent:
        """``base`` with ``other``'s styles on ``layers`` ("coarse", "middle", "fine" or a slice)."""
        self._check(base)
        self._check(other)
        part = self.layer_groups()[layers] if isinstance(layers, str) else layers
        vector = base.vector.astype(np.float32).copy()
        vector[part] = other.vector[part]
        return Latent(vector, "w", base.class_index, base.seed, base.truncation, base.noise)

    # -- saved latents ------------------------------------------------------------------------------
    def save_latent(self, latent: Latent, path: Path | str) -> Path:
        """Write ``latent`` as .npz with this model's id, so it regenerates the same image later."""
        self._check(latent)
        path = Path(path)
        if path.suffix.lower() != ".npz":
            raise ConfigError(f"{path}: saved latents are .npz files; give a name ending in .npz")
        meta = {
            "format_version": LATENT_FORMAT_VERSION,
            "model_id": self.model_id,
            "family": self.runner.family_name,
            "space": latent.space,
            "class_index": latent.class_index,
            "seed": latent.seed,
            "truncation": latent.truncation,
            "noise_maps": 0 if latent.noise is None else len(latent.noise),
        }
        noise: dict[str, Any] = {f"noise_{i}": n.astype(np.float32) for i, n in enumerate(latent.noise or [])}
        with atomic_open(path, "wb") as handle:
            np.savez(handle, vector=latent.vector.astype(np.float32), meta=np.array(json.dumps(meta)), **noise)
        return path

    def load_latent(self, path: Path | str) -> Latent:
        """Read a latent saved by :meth:`save_latent`; DataError when unreadable or of another model."""
        meta, vector, noise = read_latent_file(path)
        if meta.get("model_id") != self.model_id:
            raise DataError(
                f"{path} was saved from the model {meta.get('model_id')!r}, not this one ({self.model_id}); "
                "open that model to use it"
            )
        latent = Latent(vector, str(meta.get("space")), meta.get("class_index"), meta.get("seed"))
        latent.truncation = float(meta.get("truncation", 1.0))
        latent.noise = noise
        self._check(latent)
        return latent


def read_latent_file(path: Path | str) -> tuple[dict[str, Any], np.ndarray, list[np.ndarray] | None]:
    """(metadata, vector, noise maps or None) of a saved latent; never unpickles (allow_pickle=False)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            vector = np.asarray(data["vector"], np.float32)
            count = int(meta.get("noise_maps", 0))
            noise = [np.asarray(data[f"noise_{i}"], np.float32) for i in range(count)] if count else None
    except FileNotFoundError:
        raise DataError(f"{path}: no such latent file; check the path.") from None
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"{path} is not a GAN Studio latent file ({exc}); save the latent again.") from None
    if int(meta.get("format_version", 1)) > LATENT_FORMAT_VERSION:
        raise DataError(f"{path} was written by a newer GAN Studio; update to read it.")
    return meta, vector, noise
