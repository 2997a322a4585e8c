"""FD/KD sanity on a real dataset: real vs real, trained run vs real, noise vs real, side by side in one run.

Two disjoint random halves of the real images should be closest, a trained run's samples farther,
uniform noise farthest. The table prints KD (x1e3; mean and std over 100 subsets of half a set's size),
FD, precision/recall against real half A, the memorization shares (run samples, unseen real images,
real half A within itself) and the feature throughput in images/s.

    OMP_NUM_THREADS=1 python bench/metrics.py [--dataset ../shared/datasets/emoji-google-64]
        [--run /work/runs/emoji-fastgan] [--per-half 1000] [--fake 1000] [--extractor efflite0]

--dataset may be a prepared dataset or an image folder: a folder is used through the run's dataset
when that was imported from it, else imported once into --work at 64 px.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.data import import_folder, is_dataset, load_dataset  # noqa: E402
from engine.data.manifest import read_manifest  # noqa: E402
from engine.metrics import fid, get_extractor, kid, memorization, precision_recall  # noqa: E402
from engine.metrics.cache import sample_order  # noqa: E402
from engine.metrics.evaluate import generate_samples  # noqa: E402


def prepared_dataset(folder: Path, run: Path | None, work: Path) -> Path:
    """A prepared dataset for ``folder``: itself, the run's dataset imported from it, or a fresh import."""
    if is_dataset(folder):
        return folder
    if run is not None and (run / "run.json").is_file():
        run_dataset = Path(json.loads((run / "run.json").read_text())["dataset"])
        if is_dataset(run_dataset) and Path(read_manifest(run_dataset).get("source", "")).resolve() == folder.resolve():
            return run_dataset
    target = work / folder.name
    if not is_dataset(target):
        print(f"importing {folder} into {target} (once)")
        import_folder(folder, target, size=64)
    return target


class Timer:
    """Sums images and seconds over feature extractions for one throughput figure."""

    def __init__(self, extractor, batch: int) -> None:
        self.extractor, self.batch, self.images, self.seconds = extractor, batch, 0, 0.0

    def features(self, images: np.ndarray) -> np.ndarray:
        start = time.perf_counter()
        out = self.extractor.features(images, self.batch)
        self.seconds += time.perf_counter() - start
        self.images += len(images)
        return out


def run_samples(run: Path | None, dataset: Path, count: int, timer: Timer) -> tuple[np.ndarray | None, str]:
    if run is None or not (run / "checkpoints").is_dir() or not any((run / "checkpoints").glob("*.pt")):
        return None, f"no trained run at {run} (pass --run RUN): row skipped"
    from engine.inference import TorchRunner

    runner = TorchRunner(run, device="cpu")
    images = generate_samples(runner, dataset, count, seed=0)
    return timer.features(images), f"run {run.name} at step {runner.step} ({runner.family_name})"


def row(name: str, real: np.ndarray, other: np.ndarray, subset: int) -> dict:
    mean, std = kid(real, other, subsets=100, subset_size=subset)
    p, r = precision_recall(real, other)
    return {
        "pair": name,
        "kd_x1e3": mean * 1e3,
        "kd_std_x1e3": std * 1e3,
        "fd": fid(real, other),
        "precision": p,
        "recall": r,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=ROOT.parent / "shared" / "datasets" / "emoji-google-64")
    parser.add_argument("--run", type=Path, default=Path("/work/runs/emoji-fastgan"))
    parser.add_argument("--per-half", type=int, default=1000)
    parser.add_argument("--fake", type=int, default=1000)
    parser.add_argument("--extractor", default="efflite0")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--work", type=Path, default=Path("/tmp/gan-studio-bench-metrics"))
    args = parser.parse_args()

    run = args.run if args.run and args.run.exists() else None
    dataset = prepared_dataset(args.dataset, run, args.work)
    data = load_dataset(dataset, 64)
    order = sample_order(len(data))
    per_half = min(args.per_half, len(data) // 2)
    half_a, half_b = np.sort(order[:per_half]), np.sort(order[per_half : 2 * per_half])
    extractor = get_extractor(args.extractor, device=args.device)
    timer = Timer(extractor, args.batch)
    print(
        f"{extractor.label} on {torch.get_num_threads()} thread(s), device {extractor.device}; dataset {dataset} "
        f"({len(data)} images at 64 px), halves of {per_half}"
    )
    real_a = timer.features(np.asarray(data.images[half_a]))
    real_b = timer.features(np.asarray(data.images[half_b]))
    noise_images = np.random.default_rng(0).integers(0, 256, (args.fake, 64, 64, 3), dtype=np.uint8)
    noise = timer.features(noise_images)
    fake, note = run_samples(run, dataset, args.fake, timer)
    print(note)

    subset = per_half // 2  # subsets smaller than the sets, so the KD std over subsets means something
    rows = [row("real half B vs real half A", real_a, real_b, subset)]
    if fake is not None:
        rows.append(row("run samples vs real half A", real_a, fake, subset))
    rows.append(row("uniform noise vs real half A", real_a, noise, subset))
    print(f"\n{'pair':32} {'KD x1e3':>16} {'FD':>9} {'precision':>9} {'recall':>7}")
    for r in rows:
        print(
            f"{r['pair']:32} {r['kd_x1e3']:9.2f} ±{r['kd_std_x1e3']:5.2f} {r['fd']:9.2f} "
            f"{r['precision']:9.3f} {r['recall']:7.3f}"
        )
    print(
        f"\nfeature throughput: {timer.images / timer.seconds:.1f} images/s "
        f"({timer.images} images in {timer.seconds:.0f} s, batch {args.batch})"
    )
    if fake is not None:
        report = memorization(fake, real_a)
        held_out = memorization(real_b, real_a)  # unseen real images: the data's own near-copy rate
        print(
            f"memorization vs real half A (threshold {report.threshold:.3g} = 0.5 x typical distance "
            f"{report.typical_distance:.3g}): run samples {report.near_copy_share:.1%} near-copies; real half B "
            f"{held_out.near_copy_share:.1%}; half A within itself {report.training_share:.1%}"
        )
    kd = [r["kd_x1e3"] for r in rows]
    fd = [r["fd"] for r in rows]
    ordered = kd == sorted(kd) and fd == sorted(fd) and len(set(kd)) == len(kd)
    print(f"ordering halves < run < noise (KD and FD): {'holds' if ordered else 'VIOLATED'}")
    return 0 if ordered else 1


if __name__ == "__main__":
    raise SystemExit(main())
