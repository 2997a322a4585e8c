"""Write generated images to a folder: atomic PNG files named by seed, with progress and cancel."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from engine.fsutil import save_png
from engine.inference.runner import GeneratorRunner


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
) -> list[Path]:
    """Generate ``seeds`` with ``runner`` into ``out_dir/seed-NNNNNN.png``; returns the written paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for start in range(0, len(seeds), batch_size):
        if should_cancel and should_cancel():
            break
        chunk = seeds[start : start + batch_size]
        for seed, image in zip(chunk, runner.generate(chunk, class_index=class_index, truncation=truncation)):
            path = out_dir / f"seed-{seed:06d}.png"
            save_png(image, path)
            written.append(path)
        if progress:
            progress(len(written), len(seeds), str(written[-1]))
    return written
