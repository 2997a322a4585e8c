"""Inference latency per family: PyTorch eager vs onnxruntime, side by side in one run.

For each registered family a generator is built at the given resolution (default options, the weights
do not matter for speed), exported with our exporter, and timed at batch 1 and 8: the median of
``--runs`` calls after warm-up, alternating the two backends call by call so machine noise hits both.

    python bench/inference.py [--resolution 64] [--runs 30] [--fp16]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.export import OrtRunner, export_onnx  # noqa: E402
from engine.families import family_names, get_family  # noqa: E402
from engine.families.base import ModelSpec  # noqa: E402
from engine.inference import TorchRunner  # noqa: E402
from engine.runs import TrainConfig  # noqa: E402
from engine.runs.checkpoint import save_checkpoint  # noqa: E402


def make_checkpoint(name: str, resolution: int, folder: Path) -> Path:
    """A checkpoint of an untrained family at default options (speed does not depend on the weights)."""
    cls = get_family(name)
    resolution = max(resolution, cls.min_resolution)
    cfg = TrainConfig(dataset="bench", family=name)
    torch.manual_seed(0)
    fam = cls(ModelSpec(resolution, 3, 0), cfg, torch.device("cpu"))
    path = folder / f"{name}.pt"
    save_checkpoint(
        path,
        {
            "family": name,
            "spec": vars(fam.spec),
            "classes": [],
            "config": cfg.to_dict(),
            "step": 0,
            "family_state": fam.state_dict(),
        },
    )
    return path


def median_ms(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def bench_family(name: str, args: argparse.Namespace, folder: Path) -> None:
    ckpt = make_checkpoint(name, args.resolution, folder)
    result = export_onnx(ckpt, folder / f"{name}{'-fp16' if args.fp16 else ''}.onnx", fp16=args.fp16)
    torch_runner, ort_runner = TorchRunner(ckpt, device="cpu" if args.cpu else "auto"), OrtRunner(result.path)
    for batch in (1, 8):
        z = np.random.default_rng(batch).standard_normal((batch, torch_runner.latent_dim)).astype(np.float32)
        diff = np.abs(torch_runner._forward(z, None) - ort_runner._forward(z, None)).max()
        for _ in range(5):  # warm-up
            torch_runner._forward(z, None)
            ort_runner._forward(z, None)
        t_ms, o_ms = [], []
        for _ in range(args.runs):
            t_ms.append(median_ms(lambda z=z: torch_runner._forward(z, None), 1))
            o_ms.append(median_ms(lambda z=z: ort_runner._forward(z, None), 1))
        t, o = statistics.median(t_ms), statistics.median(o_ms)
        print(
            f"{name:<8} {torch_runner.resolution:>4}px batch {batch}:  PyTorch {t:8.2f} ms   "
            f"onnxruntime[{ort_runner.provider.replace('ExecutionProvider', '')}] {o:8.2f} ms   "
            f"speed-up {t / o:5.2f}x   max abs diff {diff:.2e}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--fp16", action="store_true", help="export fp16 (compare on GPU)")
    parser.add_argument("--cpu", action="store_true", help="run PyTorch on CPU even where a GPU exists")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; median of {args.runs} runs after warm-up")
    with tempfile.TemporaryDirectory() as tmp:
        for name in family_names():
            if get_family(name).kind == "generate":  # translators are timed by bench/translate.py
                bench_family(name, args, Path(tmp))


if __name__ == "__main__":
    main()
