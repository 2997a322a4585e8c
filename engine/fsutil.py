"""Atomic file writes shared by the whole engine.

A crash, a full disk or a cancelled import must never leave a half-written manifest, cache or
checkpoint behind: readers either see the old file or the complete new one. Every writer here puts the
data into a temporary file in the *same folder* (so ``os.replace`` is a rename on one filesystem, which
is atomic on POSIX and Windows), fsyncs it, then renames it over the target.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image

__all__ = [
    "save_png",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_json",
    "atomic_open",
    "fsync_dir",
]


def _read_umask() -> int:
    # /proc avoids os.umask's set-and-restore, which briefly changes the mask for every thread.
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# mkstemp creates 0600 files; a replaced file should get the mode a plain open() would have given.
_NEW_FILE_MODE = 0o666 & ~_read_umask()


def _mode_for(target: Path) -> int:
    try:
        return target.stat().st_mode & 0o7777  # keep the mode of the file being replaced
    except OSError:
        return _NEW_FILE_MODE


def fsync_dir(folder: Path | str) -> None:
    """Flush a folder's entry table so a rename inside it survives a power cut (no-op on Windows)."""
    if os.name == "nt":
        return  # Windows cannot open folders as files; NTFS journals the rename itself.
    fd = os.open(str(folder), os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems (network, FUSE) refuse fsync on folders; the rename still happened
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(path: Path | str, mode: str = "wb", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temp file beside ``path`` for writing; on clean exit fsync it and rename it onto ``path``.

    Takes the target path and a write mode ("wb" or "w", plus open() keyword arguments such as
    ``encoding``). Yields the open file. If the block raises, the temp file is removed and ``path`` is
    left exactly as it was.
    """
    if "r" in mode or "a" in mode or "+" in mode:
        raise ValueError(f"atomic_open only writes whole files; mode {mode!r} is not supported")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        if os.name != "nt":  # Windows has no POSIX permission bits to carry over
            os.fchmod(fd, _mode_for(target))
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(target.parent)


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same folder, fsync, os.replace)."""
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def atomic_write_text(path: Path | str, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically; newlines are written as given (no platform translation)."""
    atomic_write_bytes(path, text.encode(encoding))


def atomic_write_json(path: Path | str, obj: Any, *, indent: int | None = 2) -> None:
    """Serialise ``obj`` as UTF-8 JSON (sorted keys for stable diffs) and write it to ``path`` atomically."""
    text = json.dumps(obj, indent=indent, sort_keys=True, ensure_ascii=False, allow_nan=False)
    atomic_write_text(path, text + "\n")


def save_png(array: np.ndarray, path: Path) -> None:
    """Write an (H,W,C) uint8 array as PNG atomically."""
    image = Image.fromarray(array.squeeze(2) if array.shape[2] == 1 else array)
    with atomic_open(path, "wb") as handle:
        image.save(handle, format="PNG")
