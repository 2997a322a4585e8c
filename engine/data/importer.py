"""import_folder: scan, validate, prepare the cache, write manifest and report, incrementally."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from engine.data.cache import CACHE_FOLDER, CacheBuilder, OpenedCache, open_cache, remove_unused_caches
from engine.data.duplicates import near_duplicate_groups
from engine.data.faces import DETECTOR_VERSION as FACES_VERSION
from engine.data.manifest import (
    MANIFEST_FORMAT_VERSION,
    MANIFEST_KIND,
    compute_fingerprint,
    manifest_path,
    read_manifest,
    write_manifest,
)
from engine.data.options import DEFAULT_DUPLICATE_DISTANCE, DEFAULT_MAX_PIXELS, ImportOptions
from engine.data.prepare import FileResult, PrepareContext, fill_hashes, run_pool
from engine.data.report import FileWarning, ImportFailed, ImportReport, SkippedFile, resolution_histogram
from engine.data.scan import IMAGE_EXTENSIONS, ScanResult, scan_folder
from engine.errors import ConfigError, DataError
from engine.fsutil import atomic_write_json

REPORT_NAME = "report.json"
# Fewer kept images than this earns a warning: GANs trained on less memorise or collapse.
FEW_IMAGES = 100


@dataclass
class _Previous:
    """What the last import into the same dataset folder left that this one can reuse."""

    manifest: dict[str, Any] | None = None
    prior: dict[str, dict[str, Any]] = field(default_factory=dict)
    cache: OpenedCache | None = None

    @property
    def reuse_rows(self) -> dict[str, int]:
        """sha256 -> row of the previous cache at the same size/fit/alpha."""
        return {} if self.cache is None else {s: i for i, s in enumerate(self.cache.meta["sha256"])}


def import_folder(
    source: Path | str,
    dataset_dir: Path | str,
    *,
    size: int = 64,
    fit: str = "crop",
    alpha: str = "white",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    progress: Callable[[int, int, str], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    duplicate_distance: int = DEFAULT_DUPLICATE_DISTANCE,
    drop_duplicates: bool = False,
) -> ImportReport:
    """Import the images under ``source`` into the prepared dataset folder ``dataset_dir``.

    Takes the training ``size``, ``fit`` ("crop", "pad", "stretch"), ``alpha`` ("white", "black",
    "keep"), the ``max_pixels`` limit, optional ``progress(done, total, file)`` and ``should_cancel()``
    callbacks, the phash ``duplicate_distance``, and ``drop_duplicates`` (keep only the largest image
    of each near-duplicate group; the others are skipped with the reason "near duplicate of <file>").
    Writes dataset.json, report.json and the cache for (size, fit, alpha); files whose sha256 was
    already prepared with these options are reused, not decoded. Returns the ImportReport. Raises
    ConfigError for bad options, DataError when the folders are unusable (ImportFailed, a DataError
    with ``.report``, when no image survives), and ImportCancelled on cancel; in every error case
    the previous dataset is left untouched.
    """
    started = time.perf_counter()
    options = ImportOptions(size=size, fit=fit, alpha=alpha, max_pixels=max_pixels, drop_duplicates=drop_duplicates)
    if not 0 <= duplicate_distance <= 64:
        raise ConfigError(
            f"duplicate_distance counts differing bits of a 64-bit hash: use 0 to 64 "
            f"(default {DEFAULT_DUPLICATE_DISTANCE}), not {duplicate_distance}."
        )
    src, out = Path(source).expanduser().resolve(), Path(dataset_dir).expanduser().resolve()
    _check_destination(src, out)
    scan = scan_folder(src, exclude=out, should_cancel=should_cancel)
    if not scan.candidates:
        raise _no_images_error(scan, out, options)
    previous = _load_previous(out, options)
    prepared = _prepare_all(scan, out, options, previous, duplicate_distance, progress, should_cancel)
    results, cache_dir, classes, groups = prepared
    created_at = (previous.manifest or {}).get("created_at")
    caches = _unchanged_caches(out, previous.manifest, results, classes)
    caches[options.cache_key] = cache_dir.name
    del previous  # release the old cache's memory map before its folder is deleted
    report = _build_report(scan, out, options, results, classes, groups)
    write_manifest(out, _manifest(scan, options, results, classes, report, caches, created_at))
    report.seconds = round(time.perf_counter() - started, 3)
    atomic_write_json(out / REPORT_NAME, report.to_dict())
    remove_unused_caches(out, set(caches.values()))
    return report


def _check_destination(src: Path, out: Path) -> None:
    if out == src:
        raise DataError(
            f"the dataset folder {out} is the source folder itself; choose a separate, "
            "new folder for the prepared dataset."
        )
    if out.exists() and not out.is_dir():
        raise DataError(f"dataset folder {out} is a file; choose a new or empty folder.")
    if out.is_dir() and any(out.iterdir()) and not manifest_path(out).exists():
        raise DataError(
            f"dataset folder {out} already holds other files and is not a GAN Studio "
            "dataset; choose a new or empty folder so nothing of yours is overwritten."
        )


def _no_images_error(scan: ScanResult, out: Path, options: ImportOptions) -> ImportFailed:
    kinds = ", ".join(sorted(IMAGE_EXTENSIONS))
    return ImportFailed(
        f"no image files found in {scan.root} (looked for {kinds}, hidden files "
        "excluded); pick the folder that holds your images.",
        _build_report(scan, out, options, [], [], []),
    )


def _load_previous(out: Path, options: ImportOptions) -> _Previous:
    try:
        manifest = read_manifest(out)
    except DataError:
        return _Previous()  # first import, or a damaged manifest that this import replaces
    max_pixels = manifest.get("options", {}).get("max_pixels")
    prior = {
        e["sha256"]: {**e, "max_pixels": max_pixels, **_usable_status(e)}
        for e in manifest.get("files", [])
        if e.get("sha256") and e.get("status") in ("kept", "skipped")
    }
    name = manifest.get("caches", {}).get(options.cache_key)
    cache = open_cache(out / CACHE_FOLDER / name, manifest.get("fingerprint", "")) if name else None
    return _Previous(manifest, prior, cache)


def _usable_status(entry: dict[str, Any]) -> dict[str, Any]:
    """A file left out as a duplicate decoded fine: to the next import it is a kept file (whose
    pixels are not in the cache), so turning drop_duplicates off brings it back."""
    return {"status": "kept", "reason": None} if entry.get("duplicate_of") else {}


def _prepare_all(
    scan: ScanResult,
    out: Path,
    options: ImportOptions,
    previous: _Previous,
    duplicate_distance: int,
    progress: Callable[[int, int, str], None] | None,
    should_cancel: Callable[[], bool] | None,
) -> tuple[list[FileResult], Path, list[str], list[list[str]]]:
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    builder = CacheBuilder(out, options, len(scan.candidates))
    try:
        thumbs = np.zeros((len(scan.candidates), 32, 32), np.uint8)
        ctx = PrepareContext(
            options,
            builder.rows,
            thumbs,
            previous.prior,
            previous.reuse_rows,
            previous.cache.images if previous.cache else None,
        )
        results = run_pool(scan.candidates, ctx, progress=progress, should_cancel=should_cancel)
        del ctx
        fill_hashes(results, thumbs)
        groups = _duplicate_groups(results, duplicate_distance)
        if options.drop_duplicates:
            leave_out_duplicates(results, groups)
        kept = [i for i, r in enumerate(results) if r.status == "kept"]
        if not kept:
            raise _nothing_kept_error(scan, out, options, results)
        classes = class_names(results[i] for i in kept)
        cache_dir = builder.publish(
            kept,
            [label_index(results[i].label, classes) for i in kept],
            _cache_meta([results[i] for i in kept], classes),
        )
    except BaseException:
        builder.abort()
        if created:
            _remove_empty_folder(out)
        raise
    return results, cache_dir, classes, groups


def _duplicate_groups(results: list[FileResult], max_distance: int) -> list[list[str]]:
    kept = [r for r in results if r.status == "kept"]
    return near_duplicate_groups([r.rel for r in kept], [r.phash or "0" for r in kept], max_distance)


def leave_out_duplicates(results: list[FileResult], groups: list[list[str]]) -> None:
    """Skip all but one file of each near-duplicate group, naming the one kept in their reason.

    The one kept is the largest original (most pixels: a resized or re-encoded copy is usually
    smaller), the first path among equals, so the choice does not depend on the scan order.
    """
    by_path = {r.rel: r for r in results}
    for group in groups:
        members = [by_path[path] for path in group]
        keeper = max(members, key=lambda r: (r.width or 0) * (r.height or 0))  # max keeps the first of equals
        for result in members:
            if result is not keeper:
                result.status, result.reason = "skipped", f"near duplicate of {keeper.rel}"
                result.duplicate_of = keeper.rel


def _unchanged_caches(
    out: Path, manifest: dict[str, Any] | None, results: list[FileResult], classes: list[str]
) -> dict[str, str]:
    """Caches at other sizes/fits that hold exactly the new kept files, in order, with the same labels.

    Keeping them means switching between sizes (64, then 32, then 64 again) never re-decodes.
    """
    if manifest is None:
        return {}
    kept = [r for r in results if r.status == "kept"]
    shas, paths = [r.sha256 for r in kept], [r.rel for r in kept]
    labels = np.array([label_index(r.label, classes) for r in kept], dtype=np.int64)
    valid = {}
    for key, name in manifest.get("caches", {}).items():
        cache = open_cache(out / CACHE_FOLDER / name, manifest.get("fingerprint", ""))
        if (
            cache
            and cache.meta.get("sha256") == shas
            and cache.meta.get("paths") == paths
            and np.array_equal(cache.labels, labels)
        ):
            valid[key] = name
    return valid


def _nothing_kept_error(scan: ScanResult, out: Path, options: ImportOptions, results: list[FileResult]) -> ImportFailed:
    report = _build_report(scan, out, options, results, [], [])
    examples = "; ".join(f"{s.path}: {s.reason}" for s in report.skipped[:3])
    return ImportFailed(
        f"none of the {len(results)} image files in {scan.root} can be used "
        f"(e.g. {examples}); fix or replace them and import again.",
        report,
    )


def _remove_empty_folder(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass  # something else is in it now; leave it


def class_names(results: Any) -> list[str]:
    """Sorted first-level folder names among the given results (files in the root have none)."""
    return sorted({r.label for r in results if r.label is not None})


def label_index(label: str | None, classes: list[str]) -> int:
    """Index of ``label`` in ``classes``; -1 for files without a (kept) class folder."""
    return classes.index(label) if label in classes else -1


def _cache_meta(kept: list[FileResult], classes: list[str]) -> dict[str, Any]:
    shas = [r.sha256 or "" for r in kept]
    return {
        "fingerprint": compute_fingerprint(shas),
        "sha256": shas,
        "paths": [r.rel for r in kept],
        "classes": classes,
    }


def _build_report(
    scan: ScanResult,
    out: Path,
    options: ImportOptions,
    results: list[FileResult],
    classes: list[str],
    duplicates: list[list[str]],
) -> ImportReport:
    kept = [r for r in results if r.status == "kept"]
    failed = [SkippedFile(r.rel, r.reason or "unknown") for r in results if r.status != "kept"]
    skipped = scan.skipped + failed
    return ImportReport(
        source=str(scan.root),
        dataset_dir=str(out),
        options=options.to_dict(),
        total=len(scan.candidates) + len(scan.skipped),
        kept=len(kept),
        skipped=sorted(skipped),
        ignored=list(scan.ignored),
        warnings=_warnings(kept, classes, options, scan.root),
        resolution_histogram=resolution_histogram([(r.width or 0, r.height or 0) for r in kept]),
        duplicates=duplicates,
        left_out_duplicates={r.rel: r.duplicate_of for r in results if r.duplicate_of},
        classes=_class_counts(kept, classes),
        unlabelled=sum(r.label is None for r in kept) if classes else 0,
        fingerprint=compute_fingerprint(r.sha256 or "" for r in kept),
        channels=options.channels,
        decoded=sum(r.decoded for r in results),
        reused=sum(r.reused for r in results),
        faces={r.rel: r.faces for r in kept if r.faces},
        private_metadata={r.rel: r.private for r in results if r.private},
        not_allowed=sorted(r.rel for r in results if r.not_allowed),
    )


def _class_counts(kept: list[FileResult], classes: list[str]) -> dict[str, int]:
    counts = dict.fromkeys(classes, 0)
    for r in kept:
        if r.label is not None:
            counts[r.label] += 1
    return counts


def _warnings(kept: list[FileResult], classes: list[str], options: ImportOptions, root: Path) -> list[FileWarning]:
    warnings = [FileWarning(r.rel, note) for r in kept for note in r.notes]
    warnings += [FileWarning(r.rel, msg) for r in kept if (msg := _small_message(r, options))]
    unlabelled = sum(r.label is None for r in kept)
    if classes and unlabelled:
        warnings.append(
            FileWarning(
                "",
                (
                    f"{unlabelled} images sit directly in {root} while class folders exist; they get no class "
                    "(label -1): move them into a class folder for class-conditional training."
                ),
            )
        )
    if 0 < len(kept) < FEW_IMAGES:
        warnings.append(
            FileWarning(
                "",
                (
                    f"only {len(kept)} usable images; GANs usually need thousands, so use a small-data "
                    "model with augmentation or add images."
                ),
            )
        )
    return warnings


def _small_message(result: FileResult, options: ImportOptions) -> str | None:
    width, height = result.width or 0, result.height or 0
    side = max(width, height) if options.fit == "pad" else min(width, height)
    if side >= options.size:
        return None
    return (
        f"{width}x{height} is smaller than the training size {options.size} px; it is "
        "upscaled and will look soft (import at a smaller size or use a larger original)"
    )


def _manifest(
    scan: ScanResult,
    options: ImportOptions,
    results: list[FileResult],
    classes: list[str],
    report: ImportReport,
    caches: dict[str, str],
    created_at: str | None,
) -> dict[str, Any]:
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    files = [_file_entry(r, classes) for r in results]
    files += [{"path": s.path, "status": "skipped", "reason": s.reason, "sha256": None} for s in scan.skipped]
    files += [{"path": s.path, "status": "ignored", "reason": s.reason, "sha256": None} for s in scan.ignored]
    return {
        "kind": MANIFEST_KIND,
        "format_version": MANIFEST_FORMAT_VERSION,
        "source": str(scan.root),
        "options": options.to_dict(),
        "channels": options.channels,
        "created_at": created_at or now,
        "updated_at": now,
        "classes": classes,
        "fingerprint": report.fingerprint,
        "counts": {"kept": report.kept, "skipped": len(report.skipped), "ignored": len(report.ignored)},
        "caches": caches,
        "files": sorted(files, key=lambda e: e["path"]),
    }


def _file_entry(result: FileResult, classes: list[str]) -> dict[str, Any]:
    return {
        "path": result.rel,
        "sha256": result.sha256,
        "label": result.label,
        "label_index": label_index(result.label, classes),
        "status": result.status,
        "reason": result.reason,
        "width": result.width,
        "height": result.height,
        "phash": result.phash,
        "notes": result.notes,
        "faces": result.faces,
        "faces_version": FACES_VERSION,
        "private": result.private,
        **({"duplicate_of": result.duplicate_of} if result.duplicate_of else {}),
        **({"not_allowed": True} if result.not_allowed else {}),
    }
