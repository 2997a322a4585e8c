"""Translate image files into a folder: robust reading, atomic PNG writing, progress, cancel, no overwrites."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.data.decode import BadImage, decode_image
from engine.data.options import DEFAULT_MAX_PIXELS
from engine.data.scan import IMAGE_EXTENSIONS
from engine.errors import ConfigError
from engine.inference.translate import Hint, Translator
from engine.provenance.stamp import Provenance, provenance_for, save_png


@dataclass
class BatchResult:
    """Files written, and inputs skipped with the reason (a bad file costs that file, not the batch)."""

    written: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    cancelled: bool = False

    def to_dict(self) -> dict:
        """JSON-able summary."""
        return {
            "written": [str(p) for p in self.written],
            "cancelled": self.cancelled,
            "skipped": [{"path": str(p), "reason": r} for p, r in self.skipped],
        }


def collect_inputs(paths: Iterable[Path | str]) -> list[Path]:
    """Image files among ``paths``; folders contribute their images (recursively), sorted by path."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found += sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and p.suffix.lower() in IMAGE_EXTENSIONS
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        elif path.is_file():
            found.append(path)
        else:
            raise ConfigError(f"input {path} does not exist; give image files or folders")
    return found


def read_image(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """An image file as uint8 (H,W,3|4) with EXIF orientation applied; BadImage says why it cannot be read."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise BadImage(f"cannot read the file ({exc.strerror or exc})") from None
    decoded = decode_image(data, max_pixels=max_pixels)
    return np.asarray(decoded.image)


def free_path(path: Path, first: int = 1) -> Path:
    """``path``, or ``name-<first>.png``, ``name-<first+1>.png``... when it is taken: a batch never
    overwrites a file."""
    candidate, n = path, first
    while candidate.exists():
        candidate, n = path.with_name(f"{path.stem}-{n}{path.suffix}"), n + 1
    return candidate


def translate_files(
    translator: Translator,
    inputs: Sequence[Path],
    out_dir: Path | str,
    *,
    hints: Sequence[Hint] = (),
    work_size: int | None = None,
    overwrite: bool = False,
    progress: Callable[[int, int, str], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    provenance: Provenance | None = None,
) -> BatchResult:
    """Translate each input into ``out_dir/<stem>.png`` (atomically); unreadable inputs are skipped with a reason.

    Each result is watermarked, described and signed per ``provenance`` (default: the translator's model,
    action "translate")."""
    provenance = provenance or provenance_for(translator.identity, "translate")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result = BatchResult()
    for done, path in enumerate(inputs, 1):
        if should_cancel and should_cancel():
            result.cancelled = True
            break
        try:
            image = translator.translate(read_image(path), hints, work_size=work_size)
        except BadImage as exc:
            result.skipped.append((Path(path), str(exc)))
        else:
            target = out / f"{Path(path).stem}.png"
            target = target if overwrite else free_path(target)
            save_png(image, target, provenance)
            result.written.append(target)
        if progress:
            progress(done, len(inputs), str(path))
    return result
