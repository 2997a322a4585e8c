"""Face flagging at import (engine/data/faces.py): how many real faces it finds, how much art it leaves alone,
and what it costs the import.

* Faces: scikit-image's offline ``lfw_subset`` (100 face crops, 25x25 px, grey), as stored and enlarged
  (bicubic) to 64, 128, 256 and 400 px, as a resized copy in an artist's folder would be; the astronaut.
* Non-faces: the 100 non-face crops of ``lfw_subset`` at the same sizes; every emoji of emoji-google-64
  (cartoon faces and drawn people included), MNIST digits, the bundled sample and the photos-mate photos.
* Cost: one import of the same emoji folder with face detection and one with it replaced by a no-op,
  side by side in this run, and the detector's time per image on 64 px emoji and on photos.

    python bench/faces.py                              # about 2 minutes on 2 cores
    python bench/faces.py --out docs/results/faces/table.md
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATASETS = ROOT.parent / "shared" / "datasets"
SIZES = (25, 64, 128, 256, 400)


def _on_white(path: Path) -> Image.Image:
    from engine.data.decode import apply_alpha

    with Image.open(path) as image:
        return apply_alpha(image.convert("RGBA"), "white")


def _flagged(images: list[Image.Image]) -> tuple[int, float]:
    from engine.data.faces import detect_faces

    started = time.perf_counter()
    count = sum(bool(detect_faces(image)) for image in images)
    return count, (time.perf_counter() - started) / max(1, len(images)) * 1000


def _import_seconds(source: Path, detect: bool) -> float:
    import engine.data.prepare as prepare
    from engine.data import import_folder

    original = prepare.detect_faces
    if not detect:
        prepare.detect_faces = lambda *_args, **_kwargs: []  # type: ignore[assignment]
    out = Path(tempfile.mkdtemp(prefix="faces-bench-"))
    try:
        started = time.perf_counter()
        import_folder(source, out / "dataset", size=64)
        return time.perf_counter() - started
    finally:
        prepare.detect_faces = original  # type: ignore[assignment]
        shutil.rmtree(out, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="also write the table (Markdown) here")
    args = parser.parse_args(argv)
    import skimage.data

    lfw = (skimage.data.lfw_subset() * 255).round().astype(np.uint8)
    lines = ["| set | images | flagged | share | ms per image |", "|---|---:|---:|---:|---:|"]

    def row(name: str, images: list[Image.Image]) -> None:
        count, ms = _flagged(images)
        lines.append(f"| {name} | {len(images):,} | {count:,} | {count / max(1, len(images)):.1%} | {ms:.1f} |")
        print(lines[-1], flush=True)

    for side in SIZES:
        faces = [Image.fromarray(c).resize((side, side), Image.Resampling.BICUBIC) for c in lfw[:100]]
        row(f"LFW faces at {side} px (should be flagged)", faces)
    for side in SIZES:
        others = [Image.fromarray(c).resize((side, side), Image.Resampling.BICUBIC) for c in lfw[100:]]
        row(f"LFW non-faces at {side} px", others)
    row("astronaut, 512 px (should be flagged)", [Image.fromarray(skimage.data.astronaut())])
    emoji = DATASETS / "emoji-google-64"
    row("emoji-google-64, all (drawn faces and people)", [_on_white(p) for p in sorted(emoji.rglob("*.png"))])
    row("mnist-5k, all", [_on_white(p) for p in sorted((DATASETS / "mnist-5k").rglob("*.png"))])
    row("bundled sample", [_on_white(p) for p in sorted((ROOT / "resources" / "sample").rglob("*.png"))])
    photos = sorted((DATASETS / "photos-mate").glob("*.jpg"))
    row("photos-mate (up to 1280 px, no people)", [_on_white(p) for p in photos])

    with_faces, without = _import_seconds(emoji, True), _import_seconds(emoji, False)
    cost = (
        f"Import of emoji-google-64 (3,786 files, 64 px): {with_faces:.1f} s with face flagging, "
        f"{without:.1f} s without, ratio {with_faces / without:.2f}x (side by side in this run)."
    )
    print(cost)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(["# Face flagging (bench/faces.py)", "", *lines, "", cost, ""]), encoding="utf-8")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
