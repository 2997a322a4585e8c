"""PreparedDataset and load_dataset: what training reads, built on demand at new sizes."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from engine.data.cache import CACHE_FOLDER, CacheBuilder, OpenedCache, open_cache
from engine.data.manifest import read_manifest, write_manifest
from engine.data.options import ImportOptions, check_size
from engine.data.prepare import FileResult, PrepareContext, run_pool
from engine.data.scan import Candidate
from engine.errors import DataError


@dataclass
class PreparedDataset:
    """A prepared dataset at one resolution: memory-mapped uint8 NHWC images plus int64 labels.

    ``labels`` is -1 where an image has no class; ``classes`` is [] for unconditional datasets.
    ``paths`` gives each row's file, relative to the source folder.
    """

    root: Path
    images: np.ndarray
    labels: np.ndarray
    classes: list[str]
    fingerprint: str
    size: int
    channels: int
    fit: str = "crop"
    alpha: str = "white"
    paths: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        """Number of images."""
        return int(self.images.shape[0])


def load_dataset(dataset_dir: Path | str, size: int | None = None) -> PreparedDataset:
    """Open the prepared cache of ``dataset_dir`` at ``size`` (None: the size of the last import).

    When no cache exists at that size, it is built from the source files with the last import's fit
    and alpha, after checking every file still has the sha256 recorded at import. Raises DataError
    saying how to re-import when the folder is not a dataset or the cache cannot be built, and
    ConfigError for an invalid size.
    """
    root = Path(dataset_dir).expanduser().resolve()
    manifest = read_manifest(root)
    base = ImportOptions.from_dict(manifest.get("options", {}))
    options = base if size is None else replace(base, size=check_size(size))
    cache = _find_cache(root, manifest, options) or _build_cache(root, manifest, options)
    return PreparedDataset(
        root=root,
        images=cache.images,
        labels=np.asarray(cache.labels, dtype=np.int64),
        classes=list(manifest.get("classes", [])),
        fingerprint=manifest["fingerprint"],
        size=options.size,
        channels=options.channels,
        fit=options.fit,
        alpha=options.alpha,
        paths=list(cache.meta.get("paths", [])),
    )


def _find_cache(root: Path, manifest: dict[str, Any], options: ImportOptions) -> OpenedCache | None:
    name = manifest.get("caches", {}).get(options.cache_key)
    return open_cache(root / CACHE_FOLDER / name, manifest["fingerprint"]) if name else None


def _reimport_hint(manifest: dict[str, Any], root: Path, size: int) -> str:
    source = manifest.get("source", "FOLDER")
    return f"gan-studio-cli import {source} --out {root} --size {size}"


def _reimport_gui_hint(manifest: dict[str, Any], size: int) -> str:
    source = manifest.get("source", "the image folder")
    return f"on the Dataset page choose Size {size} px, click Import folder… and choose {source}"


def _build_cache(root: Path, manifest: dict[str, Any], options: ImportOptions) -> OpenedCache:
    source = Path(manifest.get("source", ""))
    kept = [e for e in manifest.get("files", []) if e.get("status") == "kept"]
    if not source.is_dir():
        problem = (
            f"{root} has no {options.size} px cache and its source folder {source} is gone; import the images again"
        )
        raise DataError(
            f"{problem}: {_reimport_hint(manifest, root, options.size)}",
            gui=f"{problem}: {_reimport_gui_hint(manifest, options.size)}",
        )
    candidates = [Candidate(e["path"], source / e["path"], e.get("label")) for e in kept]
    builder = CacheBuilder(root, options, len(candidates))
    try:
        ctx = PrepareContext(options, builder.rows, expected={e["path"]: e["sha256"] for e in kept})
        results = run_pool(candidates, ctx)
        del ctx
        _check_rebuilt(results, root, manifest, options)
        meta = {
            "fingerprint": manifest["fingerprint"],
            "sha256": [e["sha256"] for e in kept],
            "paths": [e["path"] for e in kept],
            "classes": manifest.get("classes", []),
        }
        labels = [int(e.get("label_index", -1)) for e in kept]
        folder = builder.publish(list(range(len(kept))), labels, meta)
    except BaseException:
        builder.abort()
        raise
    return _register_cache(root, folder, options)


def _check_rebuilt(results: list[FileResult], root: Path, manifest: dict[str, Any], options: ImportOptions) -> None:
    failed = [r for r in results if r.status != "kept"]
    if failed:
        examples = "; ".join(f"{r.rel}: {r.reason}" for r in failed[:3])
        problem = (
            f"cannot prepare {root} at {options.size} px: {len(failed)} source file(s) changed or "
            f"became unreadable since the import ({examples}); import the folder again"
        )
        raise DataError(
            f"{problem}: {_reimport_hint(manifest, root, options.size)}",
            gui=f"{problem}: {_reimport_gui_hint(manifest, options.size)}",
        )


def _register_cache(root: Path, folder: Path, options: ImportOptions) -> OpenedCache:
    # Re-read the manifest: another process may have imported meanwhile; only add to the same files.
    manifest = read_manifest(root)
    opened = open_cache(folder, manifest["fingerprint"])
    if opened is None:
        raise DataError(f"{root} changed while its {options.size} px cache was being built; load it again.")
    manifest.setdefault("caches", {})[options.cache_key] = folder.name
    write_manifest(root, manifest)
    return opened
