"""Smoke test of the desktop bundle: build it (or take one), start it offscreen, check it loaded and quit.

    python packaging/smoke_test.py                 # builds with packaging/build.sh into packaging/dist first
    python packaging/smoke_test.py --bundle packaging/dist/gan-studio

The bundled executable is started the way a user starts it, on a fresh project with fresh settings and
user data, from a folder outside the source tree, with ``--quit-after-load``: the app shows its window,
loads the engine (PyTorch, onnxruntime, the pages), runs its self-check (a forward pass of a tiny model
of a registered family, the face cascades, ffmpeg, the feature network's weights, the content-credentials
library, its own resources) and exits. The test passes when the exit status is 0, the self-check
reports no error, and the resources it used are the bundle's own (not this checkout's). Not part of the
main test suite: building takes many minutes and gigabytes (packaging/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LOADED_MARK = "gan-studio: loaded "  # studio.app.LOADED_MARK (not imported: this must run without the app)


def executable(bundle: Path) -> Path:
    """The app's executable inside ``bundle`` (the onedir folder, a macOS .app, or the executable itself)."""
    if bundle.is_file():
        return bundle
    for candidate in (
        bundle / "gan-studio",
        bundle / "gan-studio.exe",
        bundle / "Contents" / "MacOS" / "gan-studio",
        bundle / "GAN Studio.app" / "Contents" / "MacOS" / "gan-studio",
    ):
        if candidate.is_file():
            return candidate
    raise SystemExit(f"FAIL: no gan-studio executable in {bundle}; build it with packaging/build.sh")


def build(dist: Path) -> Path:
    """Run packaging/build.sh into ``dist`` and return the bundle folder it printed."""
    print(f"building the bundle into {dist} (many minutes) ...", flush=True)
    done = subprocess.run(["bash", str(HERE / "build.sh"), str(dist)], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        print(done.stdout[-3000:], done.stderr[-6000:], sep="\n", file=sys.stderr)
        raise SystemExit(f"FAIL: packaging/build.sh exited with {done.returncode}")
    lines = [line for line in done.stdout.splitlines() if line.startswith("bundle: ")]
    return Path(lines[-1].removeprefix("bundle: ")) if lines else dist / "gan-studio"


def clean_env(home: Path) -> dict[str, str]:
    """The environment of a first start: offscreen Qt, fresh settings and user data, nothing pointing
    back into a Python installation."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON") and k != "VIRTUAL_ENV"}
    env.update(
        QT_QPA_PLATFORM="offscreen",
        GAN_STUDIO_SETTINGS=str(home / "settings.ini"),
        GAN_STUDIO_HOME=str(home / "gan-studio-home"),
        XDG_DATA_HOME=str(home / "data"),
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_CACHE_HOME=str(home / "cache"),
    )
    return env


def start(
    command: list[str], home: Path, timeout: float = 600, cwd: Path | None = None
) -> tuple[int, dict, float, str]:
    """Run ``command`` with ``--quit-after-load`` on a new project under ``home``: (exit status, the
    self-check result or {}, seconds until the result line appeared, the output)."""
    home.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [*command, "--project", str(home / "project"), "--quit-after-load"],
        cwd=cwd or home,
        env=clean_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    result: dict = {}
    seconds = float("nan")
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:  # read as it comes, so the moment of the result line is known
        lines.append(line)
        if line.startswith(LOADED_MARK) and not result:
            seconds = time.perf_counter() - t0
            result = json.loads(line.removeprefix(LOADED_MARK))
        if time.perf_counter() - t0 > timeout:
            proc.kill()
            break
    status = proc.wait(timeout=60)
    return status, result, seconds, "".join(lines)


def module_runs(exe: Path) -> list[str]:
    """What fails of ``gan-studio -m MODULE``, the form multi-process training starts (launcher.py): the
    CLI that torchrun runs per process, and torchrun itself."""
    problems = []
    for module, expected in (("engine", "gan-studio-cli"), ("torch.distributed.run", "nproc-per-node")):
        with tempfile.TemporaryDirectory(prefix="gan-studio-smoke-") as tmp:
            done = subprocess.run(
                [str(exe), "-u", "-m", module, "--help"],
                cwd=tmp,
                env=clean_env(Path(tmp)),
                capture_output=True,
                text=True,
                timeout=300,
            )
        if done.returncode != 0 or expected not in done.stdout:
            problems.append(f"'-m {module} --help' exited {done.returncode}: {(done.stdout + done.stderr)[-1500:]}")
        else:
            print(f"  -m {module}: runs inside the bundle")
    return problems


def main() -> int:
    """Build or find the bundle, start it once, print PASS or FAIL with the reasons."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, help="an existing bundle folder (skips the build)")
    parser.add_argument("--dist", type=Path, default=HERE / "dist", help="where to build (default packaging/dist)")
    args = parser.parse_args()
    bundle = args.bundle if args.bundle is not None else build(args.dist)
    if not bundle.exists():
        print(f"FAIL: no bundle at {bundle}; build it with packaging/build.sh", file=sys.stderr)
        return 1
    exe = executable(bundle.resolve())
    print(f"bundle: {exe}")
    with tempfile.TemporaryDirectory(prefix="gan-studio-smoke-") as tmp:
        status, result, seconds, output = start([str(exe)], Path(tmp))
    problems = module_runs(exe)
    if status != 0:
        problems.append(f"exit status {status} (expected 0)")
    if not result:
        problems.append(f"no '{LOADED_MARK.strip()}' line: the engine never finished loading")
    else:
        problems += [f"self-check {name}: {error}" for name, error in result.get("errors", {}).items()]
        resources = Path(result.get("resources", ""))
        if exe.parent not in resources.parents and resources.parent != exe.parent:
            problems.append(f"resources came from {resources}, not from the bundle {exe.parent}")
        if not result.get("sample"):
            problems.append("no tiny model was sampled")
    if result.get("torch"):
        print(f"  torch {result.get('torch')}; families: {', '.join(result.get('families', []))}")
        print(f"  sampled {result.get('sample')}; onnxruntime providers: {result.get('onnxruntime')}")
        print(f"  face cascades, {result.get('ffmpeg')}, {result.get('weights')} weights, c2pa {result.get('c2pa')}")
        print(f"  ONNX export -> onnxruntime max error {result.get('onnx_export')}; {result.get('libraries')}")
        print(f"  resources: {result.get('resources')}")
        print(f"  loaded and checked in {seconds:.1f} s")
    if problems:
        print(output[-6000:], file=sys.stderr)
        print("FAIL: " + "; ".join(problems))
        return 1
    print("PASS: the bundle starts offscreen, loads the engine, samples a tiny model and exits 0; -m runs work")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
