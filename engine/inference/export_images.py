"""Write generated images to a folder: atomic PNG files named by seed, with progress and cancel.

:func:`save_images_per_class` writes a synthetic training set: one subfolder per class and a manifest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

from engine.errors import ConfigError
from engine.fsutil import atomic_write_json
from engine.inference.runner import GeneratorRunner
from engine.provenance.stamp import Provenance, provenance_for, save_png


def save_images(
    runner: GeneratorRunner,
    seeds: list[int],
    out_dir: Path,
    *,
    class_index: int | None = None,
    truncation: float = 1.0,
    batch_size: int = 16,
    progress: Callable[[int, int, str], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    provenance: Provenance | None = None,
) -> list[Path]:
    """Generate ``seeds`` with ``runner`` into ``out_dir/seed-NNNNNN.png``; returns the written paths.

    Each file is watermarked, described and signed per ``provenance`` (default: the runner's model, action
    "generate", engine/provenance/stamp.py)."""
    provenance = provenance or provenance_for(runner.identity, "generate")
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for start in range(0, len(seeds), batch_size):
        if should_cancel and should_cancel():
            break
        chunk = seeds[start : start + batch_size]
        for seed, image in zip(chunk, runner.generate(chunk, class_index=class_index, truncation=truncation)):
            path = out_dir / f"seed-{seed:06d}.png"
            save_png(image, path, provenance)
            written.append(path)
        if progress:
            progress(len(written), len(seeds), str(written[-1]))
    return written


MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT_VERSION = 1


@dataclass
class PerClassExport:
    """What :func:`save_images_per_class` wrote: the files by class and the manifest describing them."""

    out_dir: Path
    manifest: Path
    files: dict[str, list[Path]] = field(default_factory=dict)
    """Class name -> the PNG files written into ``out_dir/<class name>/``."""
    complete: bool = True
    """False when cancelled before every class had its images (the manifest lists what was written)."""

    @property
    def count(self) -> int:
        """Number of images written."""
        return sum(len(paths) for paths in self.files.values())


def save_images_per_class(
    runner: GeneratorRunner,
    per_class: int,
    out_dir: Path,
    *,
    first_seed: int = 0,
    truncation: float = 1.0,
    batch_size: int = 16,
    progress: Callable[[int, int, str], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    provenance: Provenance | None = None,
) -> PerClassExport:
    """``per_class`` images of every class of a class-conditional ``runner`` into ``out_dir/<class>/``.

    Image i of every class uses seed ``first_seed + i`` (so row i shows one latent in every class) and
    is written as ``<class>/seed-NNNNNN.png``; ``out_dir/manifest.json`` (written last, atomically) lists
    each file with its class and seed, the model it came from and the settings, in the layout an
    image-folder training set expects (one subfolder per class). Raises ConfigError for a model without
    classes or a count below 1. ``progress(done, total, path)`` follows every batch; ``should_cancel()``
    stops between batches and the manifest then lists only what was written (``complete`` false).
    A synthetic training set is made to be trained on, so its files' credentials allow AI training
    (default ``provenance``: the runner's model, action "generate", training "allowed").
    """
    if per_class < 1:
        raise ConfigError(f"images per class must be at least 1 (got {per_class})")
    if not runner.num_classes:
        raise ConfigError(
            f"{runner.source} is not class-conditional (it was trained without class folders or with "
            "conditional off), so it has no classes to export; train with class folders and conditional on",
        )
    names = [_folder_name(name) for name in runner.classes[: runner.num_classes]]
    provenance = provenance or replace(provenance_for(runner.identity, "generate"), training="allowed")
    seeds = list(range(first_seed, first_seed + per_class))
    result = PerClassExport(out_dir, out_dir / MANIFEST_NAME)
    total, done = per_class * len(names), 0
    for index, name in enumerate(names):

        def step(count: int, _total: int, path: str, before: int = done) -> None:
            if progress:
                progress(before + count, total, path)

        written = save_images(
            runner,
            seeds,
            out_dir / name,
            class_index=index,
            truncation=truncation,
            batch_size=batch_size,
            progress=step,
            should_cancel=should_cancel,
            provenance=provenance,
        )
        result.files[name] = written
        done += len(written)
        if len(written) < per_class:
            result.complete = False
            break
    _write_manifest(runner, result, seeds, truncation)
    return result


def _folder_name(name: str) -> str:
    # Class names are the training folder's subfolder names; one from elsewhere (an ONNX file's
    # metadata) must still not climb out of the export folder.
    if not name or name in {".", ".."} or any(sep in name for sep in ("/", "\\")):
        raise ConfigError(f"class name {name!r} cannot be a folder name; re-export the model with plain class names")
    return name


def _write_manifest(runner: GeneratorRunner, result: PerClassExport, seeds: list[int], truncation: float) -> None:
    files = [
        {"path": path.relative_to(result.out_dir).as_posix(), "class": name, "class_index": index, "seed": seed}
        for index, (name, paths) in enumerate(result.files.items())
        for path, seed in zip(paths, seeds)
    ]
    atomic_write_json(
        result.manifest,
        {
            "format_version": MANIFEST_FORMAT_VERSION,
            "what": "synthetic images generated per class by GAN Studio",
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "source": str(runner.source),
            "backend": runner.description,
            "family": runner.family_name,
            "resolution": runner.resolution,
            "truncation": truncation,
            "per_class": len(seeds),
            "seeds": [seeds[0], seeds[-1]],
            "classes": {name: len(paths) for name, paths in result.files.items()},
            "complete": result.complete,
            "files": files,
        },
    )
