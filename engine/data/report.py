"""The import report: what was kept, what was skipped and why, and what the user should look at."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from engine.errors import DataError

REPORT_FORMAT_VERSION = 1
# Upper bounds (exclusive) of the longer-side buckets; the last bucket is open-ended.
_HISTOGRAM_EDGES: tuple[int, ...] = (32, 64, 128, 256, 512, 1024, 2048)
CLASS_IMBALANCE_RATIO = 4.0
"""Largest / smallest class count from which the report calls the classes unbalanced and names class_balance."""


class ImportFailed(DataError):
    """DataError for an import that kept no image; ``report`` tells what happened to every file."""

    def __init__(self, message: str, report: ImportReport) -> None:
        super().__init__(message)
        self.report = report


class SkippedFile(NamedTuple):
    """A file that is not in the dataset, with the human reason (relative POSIX path)."""

    path: str
    reason: str


class FileWarning(NamedTuple):
    """Something the user should know about a kept file (or the whole import when path is "")."""

    path: str
    message: str


@dataclass
class ImportReport:
    """Outcome of one import_folder call; ``to_dict()`` is what report.json holds.

    ``skipped`` lists candidate image files that could not be used (and symlinks refused);
    ``ignored`` lists entries that were never candidates (hidden entries, non-image file types).
    ``decoded`` counts files actually decoded this time; ``reused`` counts files whose prepared pixels
    came from the previous import's cache because their sha256 was already prepared.
    ``duplicates`` lists every near-duplicate group found among the usable files; with the
    ``drop_duplicates`` option, ``left_out_duplicates`` maps each file left out (it is also in
    ``skipped``) to the file of its group that was kept.
    ``faces`` maps each kept file that may show a person to its face boxes ([x, y, w, h] in its own
    pixels; see engine.data.faces); such a dataset needs the "people consented" attestation.
    ``private_metadata`` maps files to the personal metadata they held (GPS, serial numbers, owner),
    none of which reaches the prepared dataset; ``not_allowed`` lists files left out because their
    own credentials forbid training (they are also in ``skipped``).
    """

    source: str
    dataset_dir: str
    options: dict[str, Any]
    total: int = 0
    kept: int = 0
    skipped: list[SkippedFile] = field(default_factory=list)
    ignored: list[SkippedFile] = field(default_factory=list)
    warnings: list[FileWarning] = field(default_factory=list)
    resolution_histogram: dict[str, int] = field(default_factory=dict)
    duplicates: list[list[str]] = field(default_factory=list)
    left_out_duplicates: dict[str, str] = field(default_factory=dict)
    classes: dict[str, int] = field(default_factory=dict)
    unlabelled: int = 0
    fingerprint: str = ""
    channels: int = 3
    decoded: int = 0
    reused: int = 0
    faces: dict[str, list[list[int]]] = field(default_factory=dict)
    private_metadata: dict[str, list[str]] = field(default_factory=dict)
    not_allowed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    format_version: int = REPORT_FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; skipped/ignored/warnings become lists of small dicts."""
        data = dict(self.__dict__)
        data["skipped"] = [s._asdict() for s in self.skipped]
        data["ignored"] = [s._asdict() for s in self.ignored]
        data["warnings"] = [w._asdict() for w in self.warnings]
        data["class_balance"] = self.class_balance()  # derived from classes; from_dict drops it again
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImportReport:
        """Rebuild a report read from report.json (unknown keys from newer versions are dropped)."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["skipped"] = [SkippedFile(**s) for s in data.get("skipped", [])]
        known["ignored"] = [SkippedFile(**s) for s in data.get("ignored", [])]
        known["warnings"] = [FileWarning(**w) for w in data.get("warnings", [])]
        return cls(**known)

    def summary(self) -> str:
        """A few human lines for the CLI and the GUI's status area."""
        opts = self.options
        lines = [
            f"Imported {self.kept:,} of {self.total:,} image files from {self.source} into "
            f"{self.dataset_dir} ({opts.get('size')} px, fit {opts.get('fit')}, "
            f"alpha {opts.get('alpha')}) in {self.seconds:.1f} s "
            f"({self.decoded:,} decoded, {self.reused:,} reused from the previous import).",
        ]
        lines += _skip_lines(self.skipped, self.ignored)
        lines.append(_class_line(self.classes, self.unlabelled))
        if self.class_balance():
            lines.append(self.class_balance_line())
        if self.duplicates:
            lines.append(self.duplicates_line())
        if self.faces:
            lines.append(self.faces_line())
        if self.not_allowed:
            lines.append(
                f"Left out {_plural(len(self.not_allowed), 'file')} whose content credentials forbid training, "
                f"e.g. {self.not_allowed[0]}."
            )
        if self.private_metadata:
            lines.append(self.private_line())
        if self.warnings:
            lines.append(f"Warnings: {len(self.warnings):,}, e.g. {_describe(self.warnings[0])}")
        lines.append(f"Fingerprint: {self.fingerprint[:16]}")
        return "\n".join(lines)

    def class_balance(self) -> dict[str, Any]:
        """How even the class folders are: {} without classes, else each class's share of the labelled
        images (largest first), the largest and smallest class and ``ratio`` (largest / smallest count)."""
        counts = {name: count for name, count in self.classes.items() if count > 0}
        if not counts:
            return {}
        total = sum(counts.values())
        ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        (largest, most), (smallest, fewest) = ordered[0], ordered[-1]
        return {
            "shares": {name: count / total for name, count in ordered},
            "largest": largest,
            "smallest": smallest,
            "ratio": most / fewest,
        }

    def class_balance_line(self) -> str:
        """``Class balance: people-body 59.7% ... component 0.1%; the largest class has 452x the images of the
        smallest.`` plus, when that ratio is 4 or more, the training option that evens it out."""
        balance = self.class_balance()
        shares = ", ".join(f"{name} {share:.1%}" for name, share in balance["shares"].items())
        line = f"Class balance: {shares}"
        if len(balance["shares"]) < 2:
            return line + "."
        ratio = balance["ratio"]
        line += (
            f"; the largest class ({balance['largest']}) has {ratio:,.1f}x the images of the smallest "
            f"({balance['smallest']})"
        )
        if ratio >= CLASS_IMBALANCE_RATIO:
            # Without it a conditional model sees the small classes rarely and learns them last.
            line += "; unbalanced: turn on class-balanced sampling (setting class_balance) to train every class equally"
        return line + "."

    def faces_line(self) -> str:
        """``Faces: 3 images may show a person (e.g. a.jpg); training needs the "people consented" attestation.``"""
        example = next(iter(self.faces))
        return (
            f"Faces: {_plural(len(self.faces), 'image')} may show a person (e.g. {example}); training on them "
            'needs the "people consented" attestation.'
        )

    def private_line(self) -> str:
        """``Personal metadata left behind: GPS location (3 files), camera serial number (1 file).``"""
        counts: dict[str, int] = {}
        for names in self.private_metadata.values():
            for name in names:
                counts[name] = counts.get(name, 0) + 1
        parts = ", ".join(f"{name} ({_plural(n, 'file')})" for name, n in sorted(counts.items(), key=lambda i: -i[1]))
        return f"Personal metadata left behind (only pixels reach the dataset): {parts}."

    def duplicates_line(self) -> str:
        """``Near duplicates: 3 groups (7 files); 4 left out, the largest of each group kept.``"""
        n_files = sum(len(g) for g in self.duplicates)
        line = f"Near duplicates: {_plural(len(self.duplicates), 'group')} ({_plural(n_files, 'file')})"
        if self.left_out_duplicates:
            return line + f"; {len(self.left_out_duplicates):,} left out, the largest of each group kept."
        return line + "; all kept."


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def _skip_lines(skipped: list[SkippedFile], ignored: list[SkippedFile]) -> list[str]:
    lines = []
    if skipped:
        lines.append(f"Skipped {len(skipped):,}, e.g. {skipped[0].path}: {skipped[0].reason}")
    if ignored:
        lines.append(f"Ignored {len(ignored):,} hidden or non-image entries.")
    return lines


def _class_line(classes: dict[str, int], unlabelled: int) -> str:
    if not classes:
        return "No class folders: unconditional dataset."
    parts = ", ".join(f"{name} {count:,}" for name, count in classes.items())
    extra = f"; {unlabelled:,} without class (files in the top folder)" if unlabelled else ""
    return f"Classes ({len(classes)}): {parts}{extra}"


def _describe(warning: FileWarning) -> str:
    return f"{warning.path}: {warning.message}" if warning.path else warning.message


def histogram_bucket(width: int, height: int) -> str:
    """Name of the resolution bucket for an image, by its longer side (e.g. ``"64-127"``)."""
    longer = max(width, height)
    lower = 0
    for edge in _HISTOGRAM_EDGES:
        if longer < edge:
            return f"<{edge}" if lower == 0 else f"{lower}-{edge - 1}"
        lower = edge
    return f">={lower}"


def resolution_histogram(sizes: list[tuple[int, int]]) -> dict[str, int]:
    """Count images per longer-side bucket, buckets in ascending order, empty ones left out."""
    counts: dict[str, int] = {}
    for w, h in sorted(sizes, key=max):
        bucket = histogram_bucket(w, h)
        counts[bucket] = counts.get(bucket, 0) + 1
    return counts


def read_report(dataset_dir: Path | str) -> ImportReport:
    """Load report.json of a prepared dataset; DataError naming the file when missing or corrupt."""
    path = Path(dataset_dir) / "report.json"
    try:
        return ImportReport.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise DataError(f"{path} does not exist; import the folder again to write it.") from None
    except (ValueError, TypeError) as exc:
        raise DataError(f"{path} cannot be read ({exc}); import the folder again to rewrite it.") from None
