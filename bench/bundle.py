"""The desktop bundle's size on disk and start-up time, beside ``python main.py`` from the source tree.

Size: the whole bundle folder, its 10 biggest parts (the top-level folders and files of its _internal/
folder) and its 10 biggest single files. Start-up: fresh processes started the way packaging/smoke_test.py
starts the bundle (offscreen, fresh settings and user data, a new project) with ``--quit-after-load``,
timed from the spawn to the moment the app prints that its window is up and the engine loaded, less
the self-check the flag runs afterwards (the app reports its length). Bundle and source starts
alternate so machine noise hits both alike, after one uncounted start of each to warm the file cache
(hence "cold-ish"). For reference, bench/startup.py's instrumented source-tree start (first expose of
the window, engine ready) is measured in the same rounds.

    python bench/bundle.py [--bundle packaging/dist/gan-studio] [--runs 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench"), str(ROOT / "packaging")]

import startup  # noqa: E402  (bench/startup.py)
from smoke_test import executable, start  # noqa: E402  (packaging/smoke_test.py)

DEFAULT_BUNDLE = ROOT / "packaging" / "dist" / "gan-studio"
MB = 1024 * 1024


def tree_size(path: Path) -> int:
    """Bytes on disk of a file or of everything under a folder (links not followed)."""
    if path.is_symlink():
        return 0
    if path.is_file():
        return path.stat().st_size
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            file = Path(root) / name
            if not file.is_symlink():
                total += file.stat().st_size
    return total


def bundle_size(bundle: Path, top: int = 10) -> dict:
    """Total MB, the ``top`` biggest parts of the bundle's library folder and its ``top`` biggest files."""
    internal = bundle / "_internal" if (bundle / "_internal").is_dir() else bundle
    parts = sorted(((p.name, tree_size(p)) for p in internal.iterdir()), key=lambda kv: -kv[1])
    files = sorted(
        (
            (str(p.relative_to(bundle)), p.stat().st_size)
            for p in bundle.rglob("*")
            if p.is_file() and not p.is_symlink()
        ),
        key=lambda kv: -kv[1],
    )
    return {
        "total_mb": tree_size(bundle) / MB,
        "files": len(files),
        "parts_mb": {name: size / MB for name, size in parts[:top]},
        "biggest_files_mb": {name: size / MB for name, size in files[:top]},
    }


def startup_times(exe: Path, runs: int) -> dict:
    """Median seconds to a loaded window: the bundle, ``python main.py`` and bench/startup.py's marks."""
    source = [sys.executable, str(ROOT / "main.py")]
    times: dict[str, list[float]] = {"bundle": [], "source": [], "source_window": [], "source_ready": []}

    def loaded(command: list[str], home: Path) -> float:
        status, result, seconds, output = start(command, home, cwd=home)
        if status != 0 or not result:
            raise SystemExit(f"{command[0]} did not start cleanly (exit {status}):\n{output[-3000:]}")
        return seconds - float(result.get("check_s", 0.0))

    with tempfile.TemporaryDirectory(prefix="bundle-bench-") as tmp:
        work = Path(tmp)
        loaded([str(exe)], work / "warm-bundle")  # the file cache; not counted
        loaded(source, work / "warm-source")
        for i in range(runs):
            times["bundle"].append(loaded([str(exe)], work / f"bundle-{i}"))
            times["source"].append(loaded(source, work / f"source-{i}"))
            marks = startup.one_start("app", work, i, "offscreen")
            times["source_window"].append(marks["shown"])
            times["source_ready"].append(marks["ready"])
    medians = {f"{name}_s": statistics.median(values) for name, values in times.items()}
    return {**medians, "runs": runs, "all": times}


def main() -> int:
    """Measure and print the table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=DEFAULT_BUNDLE, help="the bundle folder (packaging/build.sh)")
    parser.add_argument("--runs", type=int, default=3, help="starts of each kind (median reported)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    if not args.bundle.exists():
        print(f"bench/bundle.py: no bundle at {args.bundle}; build one with packaging/build.sh", file=sys.stderr)
        return 2
    bundle = args.bundle.resolve()
    exe = executable(bundle)
    size = bundle_size(exe.parent)
    timing = startup_times(exe, args.runs)
    if args.json:
        print(json.dumps({"bundle": str(bundle), "size": size, "startup": timing}, indent=2))
        return 0
    print(f"desktop bundle {bundle} (cpus: {os.cpu_count()})")
    print(f"  size on disk                         {size['total_mb']:9.0f} MB in {size['files']} files")
    print("  biggest parts of _internal/:")
    for name, mb in size["parts_mb"].items():
        print(f"    {name:<34} {mb:9.0f} MB")
    print("  biggest files:")
    for name, mb in size["biggest_files_mb"].items():
        print(f"    {name:<60} {mb:7.0f} MB")
    print(f"start-up to a loaded window, median of {args.runs} fresh processes (offscreen, --quit-after-load)")
    print(f"  bundle                               {timing['bundle_s']:6.2f} s")
    print(
        f"  python main.py (source tree)         {timing['source_s']:6.2f} s   "
        f"bundle/source {timing['bundle_s'] / timing['source_s']:.2f}x"
    )
    print(
        f"  bench/startup.py marks (source):     window {timing['source_window_s']:.2f} s, "
        f"engine ready {timing['source_ready_s']:.2f} s"
    )
    print(
        "  each run: "
        + ", ".join(f"{b:.2f}/{s:.2f}" for b, s in zip(timing["all"]["bundle"], timing["all"]["source"]))
        + " (bundle/source)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
