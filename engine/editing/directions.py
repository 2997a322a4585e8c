"""Directions in a model's latent space that change one thing about its images, found without labels.

* SeFa (Shen & Zhou 2021, "Closed-Form Factorization of Latent Semantics in GANs"): the directions n that
  the first projection of the latent changes most, ||A n|| largest, are the top eigenvectors of AᵀA. In
  W+ A stacks every style affine of the synthesis network (each w_dim column normalised, as the paper
  does); in z it is the generator's first layer (its latent_dim input columns).
* GANSpace (Härkönen et al. 2020): principal components of sampled w (style models), or, for z models
  whose z is isotropic, principal components of the first layer's activations carried back to z by
  least squares (the paper's recipe for BigGAN), then orthonormalised.

Both give orthonormal unit vectors, strongest first. A :class:`DirectionSet` is named and saved per model
under ``<run>/directions/<name>.json``; the library of a run is every file there.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from engine.editing.model import EditableModel
from engine.errors import ConfigError, DataError
from engine.fsutil import atomic_write_json

METHODS = ("sefa", "ganspace")
DIRECTIONS_FOLDER = "directions"
DIRECTIONS_FORMAT_VERSION = 1


@dataclass
class DirectionSet:
    """K orthonormal directions of one model, strongest first, with their names and strengths."""

    model_id: str
    method: str
    space: str
    vectors: np.ndarray  # (K, dim)
    names: list[str] = field(default_factory=list)
    strengths: list[float] = field(default_factory=list)
    created_at: str = ""

    def __post_init__(self) -> None:
        if not self.names:
            self.names = [f"{self.method} {i + 1}" for i in range(len(self.vectors))]
        if not self.created_at:
            self.created_at = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    def __len__(self) -> int:
        return len(self.vectors)

    def index(self, key: int | str) -> int:
        """Position of direction ``key`` (its number from 0 or its name); ConfigError naming the choices."""
        if isinstance(key, int) or (isinstance(key, str) and key.isdigit()):
            k = int(key)
            if 0 <= k < len(self):
                return k
        elif key in self.names:
            return self.names.index(key)
        raise ConfigError(f"no direction {key!r}: use 0..{len(self) - 1} or one of the names {self.names}")

    def rename(self, key: int | str, name: str) -> None:
        """Give direction ``key`` a name the artist recognises ("smile", "hair colour")."""
        name = name.strip()
        if not name:
            raise ConfigError("a direction's name cannot be empty")
        self.names[self.index(key)] = name

    def to_dict(self) -> dict[str, Any]:
        """What the JSON file holds."""
        return {
            "format_version": DIRECTIONS_FORMAT_VERSION,
            "model_id": self.model_id,
            "method": self.method,
            "space": self.space,
            "created_at": self.created_at,
            "directions": [
                {"name": n, "strength": s, "vector": [round(float(x), 7) for x in v]}
                for n, s, v in zip(self.names, self.strengths, self.vectors)
            ],
        }

    def save(self, path: Path | str) -> Path:
        """Write the set as JSON (atomically)."""
        atomic_write_json(Path(path), self.to_dict())
        return Path(path)

    @classmethod
    def load(cls, path: Path | str) -> DirectionSet:
        """Read a set written by :meth:`save`; DataError naming the file when it cannot be used."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            rows = data["directions"]
            vectors = np.array([r["vector"] for r in rows], np.float32)
            return cls(
                model_id=str(data["model_id"]),
                method=str(data["method"]),
                space=str(data["space"]),
                vectors=vectors,
                names=[str(r["name"]) for r in rows],
                strengths=[float(r.get("strength", 0.0)) for r in rows],
                created_at=str(data.get("created_at", "")),
            )
        except FileNotFoundError:
            raise DataError(f"{path}: no such directions file; check the path.") from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DataError(f"{path} is not a directions file ({exc}); compute the directions again.") from None

    def check_model(self, model: EditableModel, path: Path | str = "") -> None:
        """DataError when these directions belong to another model or space."""
        if self.model_id != model.model_id or self.space != model.space or self.vectors.shape[1] != model.vector_dim:
            raise DataError(
                f"the directions {path or ''} were found for the model {self.model_id!r} ({self.space}); "
                f"this is {model.model_id!r} ({model.space}): compute directions for this model"
            )


def find_directions(
    model: EditableModel, method: str = "sefa", count: int = 8, *, samples: int = 2000, seed: int = 0
) -> DirectionSet:
    """The ``count`` strongest directions of ``model`` by ``method`` ("sefa" or "ganspace")."""
    if method not in METHODS:
        raise ConfigError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    if not 1 <= count <= model.vector_dim:
        raise ConfigError(f"count must be 1..{model.vector_dim} (the latent's size), not {count}")
    if method == "sefa":
        vectors, strengths = _sefa(model)
    else:
        vectors, strengths = _ganspace(model, samples, seed)
    return DirectionSet(model.model_id, method, model.space, vectors[:count], strengths=strengths[:count])


def _top_eigen(gram: np.ndarray) -> tuple[np.ndarray, list[float]]:
    values, vectors = np.linalg.eigh(gram.astype(np.float64))
    order = np.argsort(values)[::-1]
    return vectors[:, order].T.astype(np.float32), [float(v) for v in values[order]]


def first_layer_weight(model: EditableModel) -> np.ndarray:
    """(outputs, latent_dim): how the generator's first layer reads z (z models)."""
    dim = model.latent_dim
    for module in model.generator.modules():
        if isinstance(module, nn.ConvTranspose2d) and module.weight.shape[0] == dim:
            return module.weight.detach().float().cpu().reshape(dim, -1).T.numpy()
        if isinstance(module, (nn.Linear, nn.Conv2d)) and module.weight.shape[1] >= dim:
            weight = module.weight.detach().float().cpu()
            return (
                weight.reshape(weight.shape[0], weight.shape[1], -1)[:, :dim].permute(0, 2, 1).reshape(-1, dim).numpy()
            )
    raise ConfigError(
        f"no first layer reading the {dim}-d latent was found in this {model.runner.family_name} generator"
    )


def _style_weights(model: EditableModel) -> np.ndarray:
    rows = []
    for name, module in model.synthesis.named_modules():  # type: ignore[union-attr]
        if name.endswith("affine") and hasattr(module, "weight"):
            rows.append((module.weight * getattr(module, "weight_gain", 1.0)).detach().float().cpu().numpy())
    if not rows:
        raise ConfigError("this synthesis network has no style affines to factorise")
    return np.concatenate(rows)


def _sefa(model: EditableModel) -> tuple[np.ndarray, list[float]]:
    weight = _style_weights(model) if model.space == "w" else first_layer_weight(model)
    weight = weight / np.maximum(np.linalg.norm(weight, axis=0, keepdims=True), 1e-8)
    return _top_eigen(weight.T @ weight)


@torch.no_grad()
def _ganspace(model: EditableModel, samples: int, seed: int) -> tuple[np.ndarray, list[float]]:
    z = torch.randn(samples, model.latent_dim, generator=torch.Generator().manual_seed(seed)).numpy()
    if model.space == "w":
        classes = [None] if not model.num_classes else list(range(model.num_classes))
        chunks = np.array_split(z, len(classes))
        parts = [model.map_z(chunk, c)[:, 0] for c, chunk in zip(classes, chunks)]
        w = np.concatenate(parts)
        centred = w - w.mean(0)
        _, s, vt = np.linalg.svd(centred.astype(np.float64), full_matrices=False)
        return vt.astype(np.float32), [float(v * v / max(1, len(w) - 1)) for v in s]
    activations = _first_activations(model, z)
    centred = activations - activations.mean(0)
    _, s, vt = np.linalg.svd(centred.astype(np.float64), full_matrices=False)
    k = min(model.latent_dim, vt.shape[0])
    coefficients = centred @ vt[:k].T  # (N, k) principal coordinates
    back, *_ = np.linalg.lstsq(coefficients, z.astype(np.float64), rcond=None)  # (k, latent_dim)
    q, r = np.linalg.qr(back.T)  # orthonormal, in the same order; signs follow the regression
    q = q * np.sign(np.diag(r))[None]
    return q.T.astype(np.float32), [float(v * v / max(1, len(z) - 1)) for v in s[:k]]


def _first_activations(model: EditableModel, z: np.ndarray, batch: int = 250) -> np.ndarray:
    """The output of the generator's first nonlinearity for each z (flattened), classes taken in turn."""
    first = next((m for m in model.generator.modules() if isinstance(m, (nn.ReLU, nn.LeakyReLU, nn.GLU))), None)
    if first is None:
        raise ConfigError(f"no activation layer found in this {model.runner.family_name} generator")
    captured: list[torch.Tensor] = []

    def keep(_module: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
        captured.append(output.detach().float().flatten(1).cpu())

    handle = first.register_forward_hook(keep)
    try:
        for k, start in enumerate(range(0, len(z), batch)):
            chunk = torch.from_numpy(z[start : start + batch]).to(model.device)
            cls = k % model.num_classes if model.num_classes else None
            model.render_tensor(chunk, cls)
    finally:
        handle.remove()
    return torch.cat(captured).numpy()


def library_folder(model: EditableModel) -> Path:
    """Where a model's named direction sets live: ``<run folder>/directions``."""
    checkpoint = model.runner.checkpoint
    run = checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent
    return run / DIRECTIONS_FOLDER


def save_to_library(model: EditableModel, directions: DirectionSet, name: str) -> Path:
    """Save ``directions`` as ``name`` in the model's library; the name becomes a safe file name."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", name.strip()).strip("-.")
    if not stem:
        raise ConfigError(f"{name!r} cannot name a file; use letters, digits, '-', '_' or '.'")
    folder = library_folder(model)
    folder.mkdir(parents=True, exist_ok=True)
    return directions.save(folder / f"{stem}.json")


def library(model: EditableModel) -> dict[str, DirectionSet]:
    """The model's saved direction sets by name; unreadable or foreign files are left out."""
    found: dict[str, DirectionSet] = {}
    folder = library_folder(model)
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            directions = DirectionSet.load(path)
            directions.check_model(model, path)
        except DataError:
            continue
        found[path.stem] = directions
    return found
