"""The prepared cache: uint8 NHWC images.npy + int64 labels.npy + meta.json per (size, fit, alpha).

A cache is built in a hidden temporary folder and published by renaming the folder, so a reader
never sees a half-written cache; the manifest names the published folder and is written last.
Folder names carry a random suffix, so a new build never overwrites files a reader may have mapped.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.data.options import ImportOptions
from engine.fsutil import atomic_write_bytes, atomic_write_json, fsync_dir

CACHE_FOLDER = "cache"
CACHE_FORMAT_VERSION = 1
_TMP_PREFIX = ".tmp-"
_STALE_TMP_SECONDS = 6 * 3600  # an unfinished build this old belongs to a crashed process
_COPY_ROWS = 1024


@dataclass
class OpenedCache:
    """A published cache, memory-mapped."""

    folder: Path
    images: np.ndarray
    labels: np.ndarray
    meta: dict[str, Any]


class CacheBuilder:
    """Collects one row per candidate in a scratch memmap, then publishes the kept rows.

    Worker threads write disjoint rows of ``rows`` concurrently, which numpy allows.
    """

    def __init__(self, dataset_dir: Path, options: ImportOptions, n_rows: int) -> None:
        self.options = options
        self.cache_root = dataset_dir / CACHE_FOLDER
        self.tmp = self.cache_root / f"{_TMP_PREFIX}{uuid.uuid4().hex}"
        self.tmp.mkdir(parents=True)
        shape = (n_rows, options.size, options.size, options.channels)
        self._rows: np.memmap | None = np.lib.format.open_memmap(
            self.tmp / "rows.npy", mode="w+", dtype=np.uint8, shape=shape
        )

    @property
    def rows(self) -> np.memmap:
        """The scratch rows the workers fill, one per candidate; gone once published or aborted."""
        if self._rows is None:
            raise RuntimeError("this cache build was already published or aborted")
        return self._rows

    def publish(self, keep: list[int], labels: list[int], meta: dict[str, Any]) -> Path:
        """Write images.npy (kept rows, in order), labels.npy and meta.json, then rename into place.

        Returns the published folder. ``meta`` gets format_version, size, fit, alpha, channels, count.
        """
        assert self._rows is not None
        images = self.tmp / "images.npy"
        if keep == list(range(len(self._rows))):
            self._rows.flush()
            self._rows = None  # drop the map before renaming (Windows refuses to rename mapped files)
            (self.tmp / "rows.npy").replace(images)
        else:
            self._compact(keep, images)
        _fsync_file(images)
        atomic_write_bytes(self.tmp / "labels.npy", _npy_bytes(np.asarray(labels, dtype=np.int64)))
        atomic_write_json(self.tmp / "meta.json", {**meta, **self._meta_fields(len(keep))}, indent=None)
        final = self.cache_root / f"{self.options.cache_key}-{uuid.uuid4().hex[:12]}"
        self.tmp.rename(final)
        fsync_dir(self.cache_root)
        return final

    def _compact(self, keep: list[int], target: Path) -> None:
        assert self._rows is not None
        out = np.lib.format.open_memmap(target, mode="w+", dtype=np.uint8, shape=(len(keep), *self._rows.shape[1:]))
        for start in range(0, len(keep), _COPY_ROWS):
            out[start : start + _COPY_ROWS] = self._rows[keep[start : start + _COPY_ROWS]]
        out.flush()
        del out
        self._rows = None
        (self.tmp / "rows.npy").unlink()

    def _meta_fields(self, count: int) -> dict[str, Any]:
        opts = self.options
        return {
            "format_version": CACHE_FORMAT_VERSION,
            "size": opts.size,
            "fit": opts.fit,
            "alpha": opts.alpha,
            "channels": opts.channels,
            "count": count,
        }

    def abort(self) -> None:
        """Remove the unfinished build; the dataset folder is as it was before."""
        self._rows = None
        shutil.rmtree(self.tmp, ignore_errors=True)
        _remove_if_empty(self.cache_root)


def open_cache(folder: Path, fingerprint: str) -> OpenedCache | None:
    """Memory-map a published cache; None when it is missing, damaged or for other files."""
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        images = np.load(folder / "images.npy", mmap_mode="r")
        labels = np.load(folder / "labels.npy")
    except (OSError, ValueError):
        return None
    consistent = (
        meta.get("fingerprint") == fingerprint
        and images.dtype == np.uint8
        and images.ndim == 4
        and len(images) == len(labels) == meta.get("count")
    )
    return OpenedCache(folder, images, labels, meta) if consistent else None


def remove_unused_caches(dataset_dir: Path, in_use: set[str]) -> None:
    """Delete cache folders the manifest no longer names, and builds abandoned by crashed runs.

    Best effort: a folder still mapped by another process (Windows) is left for next time.
    """
    cache_root = dataset_dir / CACHE_FOLDER
    if not cache_root.is_dir():
        return
    for folder in cache_root.iterdir():
        if folder.name in in_use or not folder.is_dir():
            continue
        if folder.name.startswith(_TMP_PREFIX) and not _older_than(folder, _STALE_TMP_SECONDS):
            continue  # probably another process building right now
        shutil.rmtree(folder, ignore_errors=True)


def _older_than(path: Path, seconds: float) -> bool:
    try:
        return time.time() - path.stat().st_mtime > seconds
    except OSError:
        return False


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass  # not empty (earlier caches) or already gone
