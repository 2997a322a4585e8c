"""Checkpoint files of a run folder (checkpoints/step-NNNNNN.pt).

Checkpoints are written atomically (temp file + fsync + rename) so a run killed at any moment
leaves only complete files, and read with ``weights_only=True`` so opening one never executes code.
A file can still be damaged afterwards (a bad disk, a sync tool, a half-copied backup), so every
checkpoint carries the sha256 of its bytes, and the readers of a run folder fall back to the newest
checkpoint that verifies, setting each damaged one aside as ``<name>.damaged`` (never deleting it).

Format 2 (checksum) is a plain ``torch.save`` archive whose zip comment (the end-of-central-directory
record's comment field) holds ``gan-studio-sha256:<hex>``, the digest of every byte before it. Any
zip or torch reader still opens it; saving streams through the hash (no in-memory copy of the
archive) and verifying is one streamed read before ``torch.load`` (no second copy of the state).
Format 1 files (no checksum) still load.
Only saving and loading need PyTorch, and they import it themselves: listing a run's checkpoints
(project scans, run lists) must not cost the studio's start-up the seconds torch takes to import.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import struct
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, TypeVar, cast

from engine.errors import CheckpointDamaged, CheckpointError
from engine.fsutil import atomic_open

CHECKPOINT_FORMAT = 2
"""2: sha256 in the archive comment; 1: no checksum (still read)."""
CHECKPOINT_KIND = "gan-studio-checkpoint"
DAMAGED_SUFFIX = ".damaged"
"""A checkpoint that failed to verify is renamed ``step-NNNNNN.pt.damaged``; list_checkpoints skips it."""
_STEP_RE = re.compile(r"^step-(\d+)\.pt$")

_EOCD = b"PK\x05\x06"  # signature of a zip's end-of-central-directory record
_EOCD_SIZE = 22  # its fixed part; the last 2 bytes are the comment length
_DIGEST_TAG = b"gan-studio-sha256:"
_COMMENT_SIZE = len(_DIGEST_TAG) + 64
_CHUNK = 1 << 20
_log = logging.getLogger(__name__)
_T = TypeVar("_T")


def checkpoint_dir(run_dir: Path) -> Path:
    """The folder holding a run's checkpoints."""
    return Path(run_dir) / "checkpoints"


def checkpoint_path(run_dir: Path, step: int) -> Path:
    """Path of the checkpoint for ``step``."""
    return checkpoint_dir(run_dir) / f"step-{step:06d}.pt"


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Checkpoints of a run, oldest first (by step number); damaged files set aside (*.damaged) are not listed."""
    folder = checkpoint_dir(run_dir)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _STEP_RE.match(p.name))]
    return [p for _, p in sorted(found)]


def checkpoint_step(path: Path | str) -> int | None:
    """The training step a checkpoint file holds, from its name (step-000123.pt -> 123); None for others."""
    match = _STEP_RE.match(Path(path).name)
    return int(match.group(1)) if match else None


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` atomically to ``path`` as a torch.save archive carrying its own sha256 (format 2)."""
    state = {**state, "kind": CHECKPOINT_KIND, "format_version": CHECKPOINT_FORMAT}
    import torch  # on use: see the module docstring

    with atomic_open(path, "wb") as handle:
        writer = _DigestWriter(handle)
        torch.save(state, cast(IO[bytes], writer))  # torch.save needs only write() and flush()
        writer.finish()


class _DigestWriter:
    """The file torch.save writes to: passes bytes on while hashing them, and holds back the archive's
    last record (end of central directory) so :meth:`finish` can write it with the digest as comment."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle
        self.digest = hashlib.sha256()
        self.tail = bytearray()  # the newest _EOCD_SIZE bytes, not written yet

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        if len(view) >= _EOCD_SIZE:
            self._emit(self.tail)
            self._emit(view[:-_EOCD_SIZE])
            self.tail = bytearray(view[-_EOCD_SIZE:])
        else:
            self.tail += view
            extra = len(self.tail) - _EOCD_SIZE
            if extra > 0:
                self._emit(self.tail[:extra])
                del self.tail[:extra]
        return len(view)

    def flush(self) -> None:
        self.handle.flush()

    def _emit(self, chunk: bytes | bytearray | memoryview) -> None:
        if len(chunk):
            self.handle.write(chunk)
            self.digest.update(chunk)

    def finish(self) -> None:
        """Write the end record with ``gan-studio-sha256:<hex>`` as its comment."""
        end = bytes(self.tail)
        if end[:4] != _EOCD or end[20:] != b"\0\0":
            raise RuntimeError("torch.save no longer ends its archive with a comment-free end record")
        self.digest.update(end[:20])
        comment = _DIGEST_TAG + self.digest.hexdigest().encode("ascii")
        self.handle.write(end[:20] + struct.pack("<H", len(comment)) + comment)


def verify_checkpoint(path: Path | str) -> bool:
    """Check a checkpoint file's sha256 against the one it carries, streaming it (constant memory).

    Returns True when it matches, False when the file carries no checksum (format 1, or a file cut
    short: loading it tells which). Raises CheckpointDamaged on a mismatch or a read error.
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            stored, covered = _stored_digest(handle, size)
            if stored is None:
                return False
            actual = _digest_of(handle, covered)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} does not exist") from None
    except OSError as exc:
        raise _damaged(path, f"read error: {exc.strerror or type(exc).__name__}") from None
    if actual != stored:
        raise _damaged(path, "checksum mismatch")
    return True


def _stored_digest(handle: IO[bytes], size: int) -> tuple[str | None, int]:
    """(hex digest from the archive comment, bytes it covers), or (None, 0) when there is none."""
    start = size - _EOCD_SIZE - _COMMENT_SIZE
    if start < 0:
        return None, 0
    handle.seek(start)
    end = handle.read()
    if end[:4] != _EOCD or end[20:22] != struct.pack("<H", _COMMENT_SIZE) or not end[22:].startswith(_DIGEST_TAG):
        return None, 0
    return end[22 + len(_DIGEST_TAG) :].decode("ascii", errors="replace"), start + 20


def _digest_of(handle: IO[bytes], length: int) -> str:
    handle.seek(0)
    digest, buffer = hashlib.sha256(), bytearray(min(_CHUNK, max(length, 1)))
    view = memoryview(buffer)
    while length > 0:
        n = handle.readinto(view[: min(length, len(buffer))])  # type: ignore[attr-defined]
        if not n:
            break  # the file is shorter than its own record says: the digest will not match
        digest.update(view[:n])
        length -= n
    return digest.hexdigest()


def _damaged(path: Path, reason: str) -> CheckpointDamaged:
    return CheckpointDamaged(
        f"{path} is not a readable GAN Studio checkpoint ({reason}); it is damaged or from another "
        "program: choose another checkpoint of the run",
        reason=reason,
    )


def load_checkpoint(path: Path, family: str | None = None) -> dict[str, Any]:
    """Read a checkpoint safely after verifying its checksum (format 1 files have none and still load).

    Raises CheckpointDamaged for a damaged or foreign file, CheckpointError for a missing file, a
    newer format or another family's checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    import torch  # on use: see the module docstring

    verified = verify_checkpoint(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt or foreign files
        raise _damaged(path, f"unreadable: {type(exc).__name__}") from None
    if not isinstance(state, dict) or state.get("kind") != CHECKPOINT_KIND:
        raise _damaged(path, "not a GAN Studio checkpoint")
    version = int(state.get("format_version", 0))
    if version > CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path} was written by a newer GAN Studio (checkpoint format "
            f"{state['format_version']}, this version reads up to {CHECKPOINT_FORMAT}); update GAN Studio"
        )
    if version >= 2 and not verified:
        raise _damaged(path, "checksum missing")
    if family is not None and state.get("family") != family:
        raise CheckpointError(
            f"{path} holds a '{state.get('family')}' model, not '{family}'; pick a checkpoint of a {family} run"
        )
    return state


def load_latest_checkpoint(
    run_dir: Path | str, family: str | None = None, on_note: Callable[[str], None] | None = None
) -> tuple[Path, dict[str, Any]]:
    """(path, state) of the newest checkpoint of ``run_dir`` that verifies: the one reader of a run folder.

    Walks the checkpoints newest to oldest. Each damaged one is renamed ``<name>.damaged`` (never
    deleted) and reported as one line through ``on_note`` (default: a logging warning), e.g.
    "checkpoints/step-000040.pt is damaged (checksum mismatch); renamed to step-000040.pt.damaged;
    using step-000020.pt". Raises CheckpointError when the run has no checkpoint or none verifies;
    refusals that an older file would not mend (another family, a newer format) propagate at once.
    """
    return _newest_good(run_dir, lambda path: (path, load_checkpoint(path, family)), on_note)


def newest_verified_checkpoint(run_dir: Path | str, on_note: Callable[[str], None] | None = None) -> Path:
    """The path :func:`load_latest_checkpoint` would load, found by checksum alone (no unpickling).

    A format-1 file has no checksum and is loaded to be checked. Same renaming, notes and errors.
    """
    return _newest_good(run_dir, _checked_path, on_note)


def open_checkpoint(
    source: Path | str, family: str | None = None, on_note: Callable[[str], None] | None = None
) -> tuple[Path, dict[str, Any]]:
    """(path, state) for a run folder (its newest good checkpoint, see load_latest_checkpoint) or a file.

    A file chosen by name is never replaced by another one: a damaged file raises CheckpointDamaged.
    """
    source = Path(source)
    if source.is_dir():
        return load_latest_checkpoint(source, family, on_note)
    if source.is_file():
        return source, load_checkpoint(source, family)
    raise CheckpointError(f"{source} is neither a run folder nor a checkpoint file")


def _checked_path(path: Path) -> Path:
    if not verify_checkpoint(path):
        load_checkpoint(path)  # no checksum: only loading tells a format-1 file from a truncated one
    return path


def _newest_good(run_dir: Path | str, open_one: Callable[[Path], _T], on_note: Callable[[str], None] | None) -> _T:
    run_dir = Path(run_dir)
    found = list_checkpoints(run_dir)
    if not found:
        raise CheckpointError(f"run folder {run_dir} has no checkpoints yet; train or resume it first")
    damaged: list[str] = []  # "name is damaged (reason); renamed to ..." for each file set aside
    for path in reversed(found):
        if not path.exists():
            continue  # pruned by a run training right now
        try:
            result = open_one(path)
        except CheckpointDamaged as exc:
            damaged.append(f"{path.parent.name}/{path.name} is damaged ({exc.reason}); {_set_aside(path)}")
            continue
        _report(damaged, f"using {path.name}", on_note)
        return result
    _report(damaged, "no older checkpoint is readable", on_note)
    raise CheckpointError(
        f"no checkpoint in {checkpoint_dir(run_dir)} is readable ({len(damaged)} damaged, renamed to "
        f"*{DAMAGED_SUFFIX}); start a new run, or copy a good checkpoint (e.g. from a backup) back into that folder"
    )


def _set_aside(path: Path) -> str:
    """Rename a damaged checkpoint to <name>.damaged (<name>.2.damaged, ... when taken); say what happened."""
    target, n = path.with_name(path.name + DAMAGED_SUFFIX), 2
    while target.exists():
        target, n = path.with_name(f"{path.name}.{n}{DAMAGED_SUFFIX}"), n + 1
    try:
        os.rename(path, target)
    except OSError as exc:
        return f"could not rename it ({exc.strerror or type(exc).__name__})"
    return f"renamed to {target.name}"


def _report(damaged: list[str], outcome: str, on_note: Callable[[str], None] | None) -> None:
    say = on_note or _log.warning
    for line in damaged:
        say(f"{line}; {outcome}")


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest checkpoint file of a run by name (not verified; see load_latest_checkpoint), or None."""
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def prune_checkpoints(run_dir: Path, keep: int, protect: set[Path] | None = None) -> None:
    """Delete all but the newest ``keep`` checkpoints (never those in ``protect``)."""
    protect = protect or set()
    for path in list_checkpoints(run_dir)[:-keep]:
        if path not in protect:
            path.unlink(missing_ok=True)
