"""Build resources/sample/: the small bundled dataset behind "Try the sample dataset".

Copies 100 Noto emoji (64x64 RGBA PNG, Apache-2.0, Google) from each of three categories of the
emoji-google-64 collection into class folders, and writes the licence notice beside them. Run once:

    python resources/make_sample.py [--source ../shared/datasets/emoji-google-64]
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_SOURCE = HERE.parents[1] / "shared" / "datasets" / "emoji-google-64"
CLASSES = ("animals-nature", "food-drink", "smileys-emotion")
PER_CLASS = 100
APACHE_TEXT = Path("/usr/share/common-licenses/Apache-2.0")

NOTICE = """GAN Studio sample dataset
=========================

{count} emoji images in {n_classes} class folders ({classes}), 64x64 RGBA PNG.

Images: Noto Emoji by Google, from the npm package emoji-datasource-google 16.0.0 (folder
img/google/64), as collected in the emoji-google-64 dataset. Licensed under the Apache License,
Version 2.0; the full licence text is in the file LICENSE beside this notice. The files are copied
unchanged; only a subset (the first {per_class} of each category, by file name) is included.

GAN Studio records this licence as the rights basis when you train on the sample
("licensed"; no identifiable people appear in these images).
"""


def build(source: Path, out: Path) -> int:
    """Copy the first PER_CLASS PNGs of each class into ``out``; returns the number of images."""
    if out.exists():
        shutil.rmtree(out)
    count = 0
    for name in CLASSES:
        files = sorted((source / name).glob("*.png"))[:PER_CLASS]
        (out / name).mkdir(parents=True)
        for path in files:
            shutil.copy2(path, out / name / path.name)
        count += len(files)
    return count


def write_notices(out: Path, count: int) -> None:
    """NOTICE.txt (what the images are, where from) and LICENSE (the Apache-2.0 text)."""
    (out / "NOTICE.txt").write_text(
        NOTICE.format(count=count, n_classes=len(CLASSES), classes=", ".join(CLASSES), per_class=PER_CLASS),
        encoding="utf-8",
    )
    shutil.copyfile(APACHE_TEXT, out / "LICENSE")


def main() -> None:
    """Command line entry: build the sample folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--out", type=Path, default=HERE / "sample")
    args = parser.parse_args()
    count = build(args.source, args.out)
    write_notices(args.out, count)
    size = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(f"wrote {count} images to {args.out} ({size / 2**20:.1f} MiB)")


if __name__ == "__main__":
    main()
