"""Per-file work of an import (read, hash, decode, fit, store one cache row) and the thread pool.

Decoding runs in threads: Pillow's decoders and resamplers release the GIL, so photos decode in
parallel without the start-up and pickling cost of processes (for thumbnail-sized images Python
overhead dominates and threads add little). Callbacks (progress, cancel) are only ever called from
the thread that called :func:`run_pool`, never from a worker.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.data.decode import BadImage, apply_alpha, check_geometry, decode_image
from engine.data.duplicates import hash_thumbnail, phash_batch
from engine.data.faces import DETECTOR_VERSION, detect_faces
from engine.data.fit import fit_image, to_array
from engine.data.options import ImportOptions
from engine.data.scan import Candidate
from engine.errors import DataError, ImportCancelled
from engine.provenance.credentials import training_allowed

ProgressFn = Callable[[int, int, str], None]
CancelFn = Callable[[], bool]
_MAX_CHUNK = 16  # files per task: enough to amortise a future, few enough for smooth progress


@dataclass
class FileResult:
    """What happened to one candidate; becomes a manifest entry."""

    rel: str
    label: str | None
    status: str = "skipped"  # "kept" or "skipped"
    reason: str | None = None
    sha256: str | None = None
    width: int | None = None
    height: int | None = None
    phash: str | None = None
    notes: list[str] = field(default_factory=list)
    decoded: bool = False
    reused: bool = False
    duplicate_of: str | None = None  # set when a usable file is left out as a near duplicate of this one
    faces: list[list[int]] = field(default_factory=list)  # [x, y, w, h] in the original's pixels
    private: list[str] = field(default_factory=list)  # personal metadata the file held (not carried over)
    not_allowed: bool = False  # its own credentials forbid training


@dataclass
class PrepareContext:
    """Shared, read-only inputs of the workers plus the output rows they fill.

    ``prior`` maps sha256 to the previous manifest's entry (with its ``max_pixels``); ``reuse_rows``
    maps sha256 to a row of ``reuse_images`` (previous cache at the same size/fit/alpha);
    ``expected`` maps relative path to the sha256 a file must still have (cache rebuilds).
    ``thumbs`` (N, 32, 32) receives the phash thumbnail of every decoded file, when given.
    """

    options: ImportOptions
    rows: np.ndarray
    thumbs: np.ndarray | None = None
    prior: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    reuse_rows: Mapping[str, int] = field(default_factory=dict)
    reuse_images: np.ndarray | None = None
    expected: Mapping[str, str] | None = None


def prepare_file(candidate: Candidate, row: int, ctx: PrepareContext) -> FileResult:
    """Process one candidate into ``ctx.rows[row]``; never raises for a bad file."""
    result = FileResult(rel=candidate.rel, label=candidate.label)
    try:
        _prepare(candidate, row, ctx, result)
    except BadImage as exc:
        result.status, result.reason = "skipped", str(exc)
    except MemoryError:
        result.status, result.reason = "skipped", "not enough memory to process this image"
    except Exception as exc:  # a bug or an exotic file must cost one file, not the whole import
        result.status, result.reason = "skipped", f"unexpected error: {type(exc).__name__}: {exc}"
    return result


def _prepare(candidate: Candidate, row: int, ctx: PrepareContext, result: FileResult) -> None:
    data = _read(candidate)
    if not data:
        raise BadImage("empty file (0 bytes)")
    result.sha256 = hashlib.sha256(data).hexdigest()
    if ctx.expected is not None and ctx.expected.get(candidate.rel) != result.sha256:
        raise BadImage("changed since the import (its sha256 differs)")
    prior = ctx.prior.get(result.sha256)
    if prior is not None and _reuse_prior(prior, result, row, ctx):
        return
    _refuse_if_not_allowed(candidate, data, result)
    result.decoded = True
    decoded = decode_image(data, max_pixels=ctx.options.max_pixels, min_decode_size=ctx.options.size)
    opts = ctx.options
    on_white = apply_alpha(decoded.image, "white")  # the hash is always taken on white
    prepared = on_white if opts.alpha == "white" else apply_alpha(decoded.image, opts.alpha)
    ctx.rows[row] = to_array(fit_image(prepared, opts.size, opts.fit, opts.alpha), opts.channels)
    if ctx.thumbs is not None:
        ctx.thumbs[row] = hash_thumbnail(on_white)
    result.status, result.width, result.height = "kept", decoded.width, decoded.height
    result.notes, result.private = decoded.notes, decoded.private
    result.faces = [list(face) for face in detect_faces(on_white, (decoded.width, decoded.height))]


# Bytes without any of these cannot carry a training permission (C2PA's JUMBF boxes, XMP's PLUS
# DataMining), so most files skip the slower credential reader entirely.
_RIGHTS_MARKERS = (b"jumb", b"c2pa", b"DataMining")


def _refuse_if_not_allowed(candidate: Candidate, data: bytes, result: FileResult) -> None:
    if not any(marker in data for marker in _RIGHTS_MARKERS):
        return
    try:
        allowed = training_allowed(candidate.path)
    except DataError as exc:
        raise BadImage(
            f"its content credentials cannot be read ({exc}), so whether training is allowed is unknown; "
            "if the image is yours, save a copy without credentials and import that"
        ) from None
    if allowed is False:
        result.not_allowed = True
        raise BadImage(
            "its content credentials say it must not be used to train AI models; leave it out, or ask its "
            "owner for a copy that allows training"
        )


def _read(candidate: Candidate) -> bytes:
    try:
        return candidate.path.read_bytes()
    except OSError as exc:
        raise BadImage(f"cannot read file: {exc.strerror or exc}") from None


def _reuse_prior(prior: dict[str, Any], result: FileResult, row: int, ctx: PrepareContext) -> bool:
    """Fill ``result`` from an earlier import of identical bytes; False when it must be decoded."""
    if prior["status"] == "skipped":
        if prior.get("max_pixels") != ctx.options.max_pixels:
            return False  # the size limit changed, so the verdict may too
        result.reason = prior["reason"]
        result.not_allowed = bool(prior.get("not_allowed"))
        return True
    check_geometry(prior["width"], prior["height"], ctx.options.max_pixels)
    if prior.get("faces_version") != DETECTOR_VERSION:
        return False  # prepared before faces were looked for (or by an older detector)
    source_row = ctx.reuse_rows.get(result.sha256 or "")
    if source_row is None or ctx.reuse_images is None:
        return False  # known good, but not prepared at this size/fit/alpha yet
    ctx.rows[row] = ctx.reuse_images[source_row]
    result.status, result.reused = "kept", True
    result.width, result.height = prior["width"], prior["height"]
    result.phash, result.notes = prior["phash"], list(prior.get("notes", []))
    result.faces, result.private = [list(f) for f in prior.get("faces", [])], list(prior.get("private", []))
    return True


def worker_count() -> int:
    """Threads to decode with: the CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def fill_hashes(results: Sequence[FileResult], thumbs: np.ndarray) -> None:
    """Set ``phash`` of every newly decoded kept result from its thumbnail (row i = result i), batched."""
    todo = [i for i, r in enumerate(results) if r.status == "kept" and r.phash is None]
    for i, value in zip(todo, phash_batch(thumbs[todo])):
        results[i].phash = value


def _prepare_chunk(start: int, chunk: Sequence[Candidate], ctx: PrepareContext) -> tuple[int, list[FileResult]]:
    return start, [prepare_file(candidate, start + k, ctx) for k, candidate in enumerate(chunk)]


def run_pool(
    candidates: Sequence[Candidate],
    ctx: PrepareContext,
    *,
    progress: ProgressFn | None = None,
    should_cancel: CancelFn | None = None,
) -> list[FileResult]:
    """Prepare every candidate (row i for candidate i) in a thread pool; results in candidate order.

    Calls ``progress(done, total, rel_path)`` after each file and polls ``should_cancel()`` after
    each file; on cancel, pending files are dropped and ImportCancelled is raised. Files go to the
    workers in small chunks because one future per tiny image costs about as much as decoding it.
    """
    total, workers = len(candidates), worker_count()
    step = max(1, min(_MAX_CHUNK, total // (workers * 8)))
    results: list[FileResult | None] = [None] * total
    done = 0
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gan-import")
    try:
        futures = [pool.submit(_prepare_chunk, i, candidates[i : i + step], ctx) for i in range(0, total, step)]
        for future in as_completed(futures):
            start, chunk = future.result()
            for k, result in enumerate(chunk):
                results[start + k] = result
                done += 1
                _after_file(progress, should_cancel, done, total, result.rel)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return [r for r in results if r is not None]


def _after_file(progress: ProgressFn | None, should_cancel: CancelFn | None, done: int, total: int, rel: str) -> None:
    if progress is not None:
        progress(done, total, rel)
    if should_cancel is not None and should_cancel():
        raise ImportCancelled("import cancelled; the previous dataset (if any) is untouched.")
