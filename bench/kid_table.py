"""KID of `dcgan` vs `fastgan`, each with and without DiffAugment, on a 500-image subset.

Every run sees the same number of images (steps x batch) from the same 500 emoji, unconditional, at
the same resolution; KID is then measured with the offline EfficientNet-Lite0 features against the
500 training images. Prints a Markdown table (also written to --out).

    python bench/kid_table.py [--size 32] [--steps 500] [--batch 32] [--work /tmp/kid-table]
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.consent import attest  # noqa: E402
from engine.data import import_folder  # noqa: E402
from engine.metrics import evaluate  # noqa: E402
from engine.runs import TrainConfig
from engine.training import Trainer  # noqa: E402

SOURCE = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "emoji-google-64"
RUNS = [("dcgan", "color,translation,cutout"), ("dcgan", ""), ("fastgan", "color,translation,cutout"), ("fastgan", "")]


def subset(work: Path, count: int) -> Path:
    """Copy ``count`` emoji chosen with a fixed seed into one flat folder (unconditional)."""
    files = sorted(SOURCE.rglob("*.png"))
    chosen = random.Random(0).sample(files, count)
    folder = work / "emoji500"
    folder.mkdir(parents=True, exist_ok=True)
    for i, path in enumerate(chosen):
        shutil.copyfile(path, folder / f"{i:04d}-{path.name}")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--work", default="/tmp/kid-table")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if not SOURCE.is_dir():
        raise SystemExit(f"needs {SOURCE}")
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    dataset = work / "dataset"
    import_folder(subset(work, 500), dataset, size=args.size)
    attest(dataset, rights="licensed", people="none", attested_by="bench (Noto Emoji, Apache-2.0)")
    rows = []
    for family, augment in RUNS:
        cfg = TrainConfig(
            dataset=str(dataset),
            family=family,
            augment=augment,
            ada=False,
            batch_size=args.batch,
            steps=args.steps,
            preview_every=0,
            checkpoint_every=args.steps,
            seed=0,
            loss="hinge" if family == "fastgan" else "ns",
        )
        run = work / f"{family}-{'da' if augment else 'noaug'}"
        start = time.perf_counter()
        Trainer(cfg, run_dir=run).run()
        seconds = time.perf_counter() - start
        result = evaluate(run, metrics=("kid",), num_samples=500, max_real=500, kid_subset_size=250)
        kid = result["kid"]
        rows.append(
            f"| {family} | {'on (p=1)' if augment else 'off'} | {args.steps * args.batch:,} | "
            f"{kid['mean'] * 1e3:.1f} ± {kid['std'] * 1e3:.1f} | {seconds:.0f} s |"
        )
        print(rows[-1], flush=True)
    table = "\n".join(
        [
            f"KD (EffLite0) x1e3 vs the 500 training images, {args.size} px, lower is better",
            "",
            "| family | DiffAugment | images seen | KD x1e3 | train time |",
            "|---|---|---|---|---|",
            *rows,
        ]
    )
    print("\n" + table)
    if args.out:
        Path(args.out).write_text(table + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
