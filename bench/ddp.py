"""Multi-process training throughput: 1 process vs N processes (torchrun) on the same run, side by side.

Each round trains the same family on the same dataset with the same batch (all processes together), once
with one process and once with N under ``torchrun --standalone``; the rates are read from the runs'
stats.jsonl (steady state: the second half of the steps). Rounds alternate the two so machine noise hits
both alike; medians are reported with the ratio. On CPUs the cores are shared out: one process gets
all ``--threads`` threads, each of N processes gets threads / N (gloo). On a GPU machine pass
``--device cuda --procs <GPUs>``: one process per GPU (NCCL).

The desktop bundle's size and start-up time come from bench/bundle.py when ``--bundle`` names a built
bundle (packaging/build.sh).

    python bench/ddp.py [--family dcgan] [--procs 2] [--batch 32] [--steps 30] [--rounds 3] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.consent import attest  # noqa: E402
from engine.data import import_folder  # noqa: E402

SHARED = ROOT.parent / "shared" / "datasets" / "emoji-google-64"


def prepare_dataset(folder: Path, size: int) -> Path:
    """The shared emoji (or, without ../shared, written shapes) imported and attested at ``size`` px."""
    dataset = folder / "dataset"
    if SHARED.is_dir():
        import_folder(SHARED, dataset, size=size)
    else:  # pragma: no cover - CI always has ../shared; this keeps the benchmark runnable elsewhere
        sys.path.insert(0, str(ROOT / "tests" / "engine"))
        from helpers import write_shapes_folder  # type: ignore[import-not-found]

        import_folder(write_shapes_folder(folder / "shapes", per_class=64), dataset, size=size)
    attest(dataset, rights="own", people="none", attested_by="bench")
    return dataset


def train(procs: int, args: argparse.Namespace, dataset: Path, out: Path) -> dict:
    """One run with ``procs`` processes; its steady-state images/s and seconds per epoch."""
    threads = max(1, args.threads // procs) if args.device == "cpu" else 1
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    cli = ["train", str(dataset), "--family", args.family, "--batch", str(args.batch), "--steps", str(args.steps)]
    cli += ["--device", args.device, "--out", str(out), "--set=health=false", "--set=preview_every=0"]
    cli += ["--set=log_every=1", "--set=kid_every=0", "--checkpoint-every", str(10 * args.steps)]
    launcher = [sys.executable, "-m", "engine"]
    if procs > 1:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}"]
        launcher += ["-m", "engine"]
    done = subprocess.run([*launcher, *cli, "--json"], env=env, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"the {procs}-process run failed:\n{done.stderr[-2000:]}")
    lines = [json.loads(line) for line in (out / "stats.jsonl").read_text().splitlines() if line.strip()]
    steady = [r for r in lines if "img_per_sec" in r][len(lines) // 2 :]
    return {
        "img_per_sec": statistics.median(r["img_per_sec"] for r in steady),
        "seconds_per_epoch": statistics.median(r["seconds_per_epoch"] for r in steady if r["seconds_per_epoch"]),
        "world_size": steady[-1]["world_size"],
        "threads_per_process": threads,
    }


def bundle_figures(bundle: Path) -> str:
    """bench/bundle.py's table for a built bundle, or a line saying how to build one."""
    if not bundle.exists():
        return f"no desktop bundle at {bundle}: build one with packaging/build.sh, then pass --bundle"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bundle.py"), "--bundle", str(bundle)], capture_output=True, text=True
    )
    return done.stdout + (done.stderr if done.returncode else "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", default="dcgan")
    parser.add_argument("--procs", type=int, default=2, help="processes of the multi-process run (GPUs with cuda)")
    parser.add_argument("--batch", type=int, default=32, help="images per step, all processes together")
    parser.add_argument("--size", type=int, default=32, help="training resolution")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cpu", help="cpu (gloo) or cuda (NCCL, one process per GPU)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2, help="CPU threads shared out")
    parser.add_argument("--bundle", type=Path, default=ROOT / "packaging" / "dist" / "gan-studio")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        dataset = prepare_dataset(Path(tmp), args.size)
        results: dict[int, list[dict]] = {1: [], args.procs: []}
        for r in range(args.rounds):
            order = (1, args.procs) if r % 2 == 0 else (args.procs, 1)
            for procs in order:
                results[procs].append(train(procs, args, dataset, Path(tmp) / f"run-{procs}-{r}"))
    one, many = (statistics.median(x["img_per_sec"] for x in results[k]) for k in (1, args.procs))
    print(f"{args.family} at {args.size} px, batch {args.batch} (all processes together), {args.steps} steps, ")
    print(f"{args.rounds} alternating rounds on {args.device}; medians of the steady-state rates")
    print(f"{'processes':>9}  {'img/s':>8}  {'s/epoch':>8}  {'threads each':>12}")
    for procs in (1, args.procs):
        rows = results[procs]
        epoch = statistics.median(x["seconds_per_epoch"] for x in rows)
        rate = statistics.median(x["img_per_sec"] for x in rows)
        print(f"{procs:>9}  {rate:>8.1f}  {epoch:>8.2f}  {rows[0]['threads_per_process']:>12}")
    print(f"ratio {args.procs} processes / 1 process: {many / one:.2f}x")
    print()
    print(bundle_figures(args.bundle))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
