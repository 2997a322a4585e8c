"""Checkpoint save/load cost with checksums (format 2) vs without (format 1), side by side in one run.

Format 1 is what GAN Studio wrote before checksums: torch.save into an in-memory buffer, then an
atomic write. Format 2 (save_checkpoint) streams torch.save through a sha256 into the atomic file and
puts the digest into the zip comment; load_checkpoint streams the file once through the hash, then
torch.load. Each mode runs in its own subprocess so peak memory (ru_maxrss above the state itself)
is measured per mode; times are medians of ``--repeats`` runs, alternating the formats.

    python bench/checkpoint_io.py [--mb 256] [--repeats 3]
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MODES = ("save1", "save2", "load1", "load2")


def _state(mb: int) -> dict:
    import torch

    gen = torch.Generator().manual_seed(0)
    floats = mb * (1 << 20) // 4
    per = 1 << 20
    return {"family": "bench", "family_state": {f"w{i}": torch.randn(per, generator=gen) for i in range(floats // per)}}


def _one(mode: str, mb: int, folder: Path) -> dict:
    """Run one mode in this process; returns seconds and peak memory above the state's own."""
    import torch

    from engine.fsutil import atomic_open
    from engine.runs.checkpoint import CHECKPOINT_KIND, load_checkpoint, save_checkpoint

    old, new = folder / "format1.pt", folder / "format2.pt"
    state = _state(mb) if mode.startswith("save") else None
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    if mode == "save1":
        buffer = io.BytesIO()
        torch.save({"kind": CHECKPOINT_KIND, "format_version": 1, **state}, buffer)
        with atomic_open(old, "wb") as handle:
            handle.write(buffer.getbuffer())
    elif mode == "save2":
        save_checkpoint(new, state)
    else:
        load_checkpoint(old if mode == "load1" else new)
    seconds = time.perf_counter() - start
    extra_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
    return {"seconds": seconds, "extra_mb": extra_mb}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=256, help="size of the state's tensors in MB")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("MODE", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_one(args.child[0], args.mb, Path(args.child[1]))))
        return
    results: dict[str, list[dict]] = {m: [] for m in MODES}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            for mode in MODES:  # alternating, so machine noise hits both formats
                cmd = [sys.executable, __file__, "--mb", str(args.mb), "--child", mode, tmp]
                proc = subprocess.run(cmd, capture_output=True, text=True)
                if proc.returncode:
                    raise SystemExit(f"{mode} failed:\n{proc.stderr}")
                results[mode].append(json.loads(proc.stdout))
        size = {p.name: p.stat().st_size for p in Path(tmp).iterdir()}
    print(f"state: {args.mb} MB of tensors; files: {size}")
    for what in ("save", "load"):
        t1, t2 = (statistics.median(r["seconds"] for r in results[f"{what}{v}"]) for v in (1, 2))
        m1, m2 = (max(r["extra_mb"] for r in results[f"{what}{v}"]) for v in (1, 2))
        print(
            f"{what}: format 1 {t1:.3f} s (+{m1:.0f} MB peak), format 2 {t2:.3f} s (+{m2:.0f} MB peak); "
            f"time ratio 2/1 = {t2 / t1:.2f}"
        )


if __name__ == "__main__":
    main()
