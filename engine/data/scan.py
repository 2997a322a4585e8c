"""Walk a source folder and list the image files to import, with the entries refused or ignored."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from engine.data.report import SkippedFile
from engine.errors import DataError, ImportCancelled

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".webp", ".bmp", ".dib", ".tif", ".tiff", ".gif"}
)


@dataclass(frozen=True)
class Candidate:
    """An image file to import. ``rel`` is the POSIX path under the source (a link's own path);
    ``path`` is the file to read (the link target); ``label`` the first-level folder or None."""

    rel: str
    path: Path
    label: str | None


@dataclass
class ScanResult:
    """Everything found under a source folder, sorted by relative path."""

    root: Path
    candidates: list[Candidate] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    ignored: list[SkippedFile] = field(default_factory=list)


def scan_folder(
    source: Path | str, *, exclude: Path | None = None, should_cancel: Callable[[], bool] | None = None
) -> ScanResult:
    """List image candidates under ``source`` recursively.

    Hidden entries (dot names, or the hidden attribute on Windows) are ignored; symlinks are followed
    only when their target lies inside ``source`` (others are skipped with the reason); ``exclude``
    (the dataset folder, when it sits inside the source) is not scanned. Raises DataError when
    ``source`` is not a readable folder and ImportCancelled when ``should_cancel()`` turns true.
    """
    root = Path(source).expanduser()
    if not root.is_dir():
        raise DataError(f"source folder {root} does not exist or is not a folder; pick a folder of images.")
    result = ScanResult(root=root.resolve())
    walker = _Walker(result, exclude.resolve() if exclude else None, should_cancel)
    walker.walk(result.root, "")
    result.candidates.sort(key=lambda candidate: candidate.rel)
    result.skipped.sort()
    result.ignored.sort()
    return result


class _Walker:
    """Walk with an explicit stack (no recursion limit on deep trees) and symlink-loop protection."""

    def __init__(self, result: ScanResult, exclude: Path | None, should_cancel: Callable[[], bool] | None) -> None:
        self.result = result
        self.exclude = exclude
        self.should_cancel = should_cancel
        self.visited: set[Path] = set()
        self.pending: list[tuple[Path, str]] = []

    def walk(self, folder: Path, prefix: str) -> None:
        self.pending.append((folder, prefix))
        while self.pending:
            if self.should_cancel is not None and self.should_cancel():
                raise ImportCancelled("import cancelled while scanning; the previous dataset is untouched.")
            self.list_folder(*self.pending.pop())

    def list_folder(self, folder: Path, prefix: str) -> None:
        if folder in self.visited:
            return  # a symlink loop or two links to one folder: import its files once
        self.visited.add(folder)
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            reason = f"cannot read folder: {exc.strerror or exc}"
            self.result.skipped.append(SkippedFile(prefix.rstrip("/") or ".", reason))
            return
        for entry in entries:
            self.visit(entry, prefix + entry.name)

    def visit(self, entry: os.DirEntry[str], rel: str) -> None:
        if _is_hidden(entry):
            kind = "folder (not scanned)" if entry.is_dir() else "file"
            self.result.ignored.append(SkippedFile(rel, f"hidden {kind}"))
        elif entry.is_symlink():
            self.visit_link(entry, rel)
        elif entry.is_dir(follow_symlinks=False):
            self.visit_dir(Path(entry.path).resolve(), rel)
        elif entry.is_file(follow_symlinks=False):
            self.visit_file(Path(entry.path), rel)
        else:
            self.result.ignored.append(SkippedFile(rel, "not a regular file"))

    def visit_dir(self, real: Path, rel: str) -> None:
        if self.exclude is not None and real == self.exclude:
            self.result.ignored.append(SkippedFile(rel, "the prepared dataset folder itself (not scanned)"))
            return
        self.pending.append((real, rel + "/"))

    def visit_link(self, entry: os.DirEntry[str], rel: str) -> None:
        target = Path(entry.path).resolve()
        if not target.exists():
            self.result.skipped.append(SkippedFile(rel, f"broken symlink (target {target} is missing)"))
        elif not target.is_relative_to(self.result.root):
            self.result.skipped.append(
                SkippedFile(
                    rel,
                    f"symlink points outside the source folder (to {target}); "
                    "copy the file into the folder to include it",
                )
            )
        elif target.is_dir():
            self.visit_dir(target, rel)
        else:
            self.visit_file(target, rel)

    def visit_file(self, path: Path, rel: str) -> None:
        suffix = Path(rel).suffix.lower()
        if suffix not in IMAGE_EXTENSIONS:
            why = f"not an image file type ({suffix or 'no extension'})"
            self.result.ignored.append(SkippedFile(rel, why))
            return
        label = rel.split("/", 1)[0] if "/" in rel else None
        self.result.candidates.append(Candidate(rel=rel, path=path, label=label))


def _is_hidden(entry: os.DirEntry[str]) -> bool:
    if entry.name.startswith("."):
        return True
    if os.name != "nt":
        return False
    try:
        attrs = entry.stat(follow_symlinks=False).st_file_attributes  # type: ignore[attr-defined]
    except OSError:
        return False
    return bool(attrs & stat.FILE_ATTRIBUTE_HIDDEN)
