"""Super-resolution quality, speed and memory on held-back photos of photos-mate, side by side.

Nine of the twelve photos train an ``esrgan`` run at the family's CPU settings (its
``recommended_settings``) for ``--minutes`` (default 15, the CPU preset's budget); the other three
(every fourth by name, as in bench/translate.py) are never seen in training. Each held-back photo,
cropped to a multiple of the scale, is the ground truth; its input is the antialiased bicubic
downscale (the classic benchmark degradation) and, as a second row, the family's realistic
degradation (blur, noise, JPEG) drawn with a fixed seed. Printed side by side, one run:

* PSNR and SSIM on the Y channel (ITU-R BT.601 luma, ``scale`` px border shaved, as the SR
  literature reports them) and on RGB, for bicubic, Lanczos and our model;
* megapixels of output per second, PyTorch vs onnxruntime (the same run's export), alternating calls;
* peak memory (max RSS of a fresh process) upscaling a 3840x2160 input with tiling, against the size
  of the output array alone.

    python bench/upscale.py [--minutes 15] [--work /tmp/bench-upscale] [--out docs/results/upscale]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.consent import attest  # noqa: E402
from engine.data import import_folder  # noqa: E402
from engine.families import get_family  # noqa: E402
from engine.runs import TrainConfig  # noqa: E402
from engine.runs.checkpoint import list_checkpoints  # noqa: E402
from engine.training import Trainer  # noqa: E402

SOURCE = ROOT.parent / "shared" / "datasets" / "photos-mate"
TRAIN_CROP = 512
"""Side of the native-resolution squares the training photos are cut into (no resampling)."""
TARGET_DB = 1.5
"""Issue 13's bar: our model's PSNR at least this much above bicubic's."""


def split_photos() -> tuple[list[Path], list[Path]]:
    """(training photos, held-back photos): every fourth photo by name is held back."""
    photos = sorted(p for p in SOURCE.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    held = photos[3::4]
    return [p for p in photos if p not in held], held


def write_training_squares(photos: list[Path], folder: Path) -> int:
    """Overlapping TRAIN_CROP squares of each training photo at its own pixels (a photo is not shrunk:
    the model must learn the detail of real full-resolution pixels, not of a resampled copy)."""
    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    for photo in photos:
        image = Image.open(photo).convert("RGB")
        xs = np.linspace(0, image.width - TRAIN_CROP, 3).astype(int)
        ys = np.linspace(0, image.height - TRAIN_CROP, 2).astype(int)
        for x in xs:
            for y in ys:
                image.crop((int(x), int(y), int(x) + TRAIN_CROP, int(y) + TRAIN_CROP)).save(
                    folder / f"{photo.stem}-{x}-{y}.png"
                )
                count += 1
    return count


def held_back(photos: list[Path], scale: int) -> list[tuple[str, np.ndarray]]:
    """The held-back photos cropped to a multiple of ``scale`` (uint8 HxWx3)."""
    out = []
    for photo in photos:
        image = np.asarray(Image.open(photo).convert("RGB"))
        h, w = image.shape[0] // scale * scale, image.shape[1] // scale * scale
        out.append((photo.stem, np.ascontiguousarray(image[:h, :w])))
    return out


# -- degradations of the ground truth ---------------------------------------------------------------
def bicubic_down(image: np.ndarray, scale: int) -> np.ndarray:
    h, w = image.shape[:2]
    return np.asarray(Image.fromarray(image).resize((w // scale, h // scale), Image.BICUBIC))


def realistic_down(image: np.ndarray, scale: int, seed: int) -> np.ndarray:
    from engine.data.degrade import degrade

    hr = torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float() / 255
    lr = degrade(hr, scale, torch.Generator().manual_seed(seed), mode="realistic")
    return (lr[0].permute(1, 2, 0).clamp(0, 1).numpy() * 255).round().astype(np.uint8)


def resize_up(image: np.ndarray, scale: int, method: int) -> np.ndarray:
    h, w = image.shape[:2]
    return np.asarray(Image.fromarray(image).resize((w * scale, h * scale), method))


# -- measures ----------------------------------------------------------------------------------------
def luma(image: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 Y in [16, 235] as float64 (what SR papers score)."""
    rgb = image.astype(np.float64) / 255
    return 16 + 65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    from torchmetrics.functional.image import structural_similarity_index_measure

    def t(x: np.ndarray) -> torch.Tensor:
        x = x[..., None] if x.ndim == 2 else x
        return torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)[None].double() / 255

    return float(structural_similarity_index_measure(t(a), t(b), data_range=1.0))


def scores(out: np.ndarray, truth: np.ndarray, border: int) -> dict[str, float]:
    """PSNR/SSIM on Y and RGB with ``border`` px shaved on every side."""
    crop = (slice(border, -border), slice(border, -border)) if border else (slice(None), slice(None))
    o, t = out[crop], truth[crop]
    yo, yt = luma(o), luma(t)
    return {"psnr_y": psnr(yo, yt), "ssim_y": ssim(yo, yt), "psnr_rgb": psnr(o, t), "ssim_rgb": ssim(o, t)}


# -- training ----------------------------------------------------------------------------------------
def train(dataset: Path, run: Path, minutes: float, scale: int) -> dict[str, Any]:
    family = get_family("esrgan")
    settings = dict(family.recommended_settings(TRAIN_CROP, "cpu"))
    options = {**settings.pop("family_options", {}), "scale": scale}
    resolution = int(settings.pop("resolution", 128))
    cfg = TrainConfig(
        dataset=str(dataset),
        family="esrgan",
        family_options=options,
        resolution=resolution,
        steps=None,
        minutes=minutes,
        preview_every=200,
        checkpoint_every=500,
        seed=0,
        **{k: v for k, v in settings.items() if k not in ("steps", "minutes")},
    )
    result = Trainer(cfg, run_dir=run).run()
    print(f"  trained esrgan x{scale}: {result.step} steps in {result.seconds / 60:.1f} min")
    return {"steps": result.step, "minutes": result.seconds / 60, "options": options, "resolution": resolution}


def save_comparison(name: str, lr: np.ndarray, outs: dict[str, np.ndarray], truth: np.ndarray, folder: Path) -> None:
    """A 256-px crop from the middle of each result, side by side: nearest input, bicubic, ours, truth."""
    h, w = truth.shape[:2]
    side = min(256, h, w)
    y, x = (h - side) // 2, (w - side) // 2
    scale = truth.shape[0] // lr.shape[0]
    nearest = np.repeat(np.repeat(lr, scale, 0), scale, 1)
    tiles = [nearest, outs["bicubic"], outs["ours"], truth]
    strip = np.concatenate([t[y : y + side, x : x + side] for t in tiles], 1)
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(strip).save(folder / f"{name}-nearest-bicubic-ours-truth.png")


def evaluate(run: Path, photos: list[tuple[str, np.ndarray]], scale: int, out: Path) -> dict[str, Any]:
    from engine.export import open_upscaler

    upscaler = open_upscaler(run, device="cpu")
    rows: dict[str, dict[str, list[float]]] = {}
    for input_kind in ("bicubic", "realistic"):
        for i, (name, truth) in enumerate(photos):
            lr = bicubic_down(truth, scale) if input_kind == "bicubic" else realistic_down(truth, scale, seed=i)
            outs = {
                "bicubic": resize_up(lr, scale, Image.BICUBIC),
                "lanczos": resize_up(lr, scale, Image.LANCZOS),
                "ours": upscaler.upscale_array(lr),
            }
            if input_kind == "bicubic":
                save_comparison(name, lr, outs, truth, out)
            for method, image in outs.items():
                for key, value in scores(image, truth, scale).items():
                    rows.setdefault(f"{input_kind}/{method}", {}).setdefault(key, []).append(value)
    return {row: {k: statistics.fmean(v) for k, v in values.items()} for row, values in rows.items()}


def throughput(run: Path, lr: np.ndarray, repeats: int) -> dict[str, Any]:
    """Output megapixels per second, PyTorch vs onnxruntime, alternating calls, medians."""
    from engine.export import OrtUpscaler, export_onnx
    from engine.inference.upscale import TorchUpscaler

    onnx = run / "exports" / "bench-upscaler.onnx"
    export_onnx(run, onnx)
    torch_up, ort_up = TorchUpscaler(run, device="cpu"), OrtUpscaler(onnx)
    times: dict[str, list[float]] = {"pytorch": [], "onnxruntime": []}
    for backend in (torch_up, ort_up):  # warm-up
        backend.upscale_array(lr)
    for _ in range(repeats):
        for key, backend in (("pytorch", torch_up), ("onnxruntime", ort_up)):
            start = time.perf_counter()
            backend.upscale_array(lr)
            times[key].append(time.perf_counter() - start)
    megapixels = lr.shape[0] * lr.shape[1] * torch_up.scale**2 / 1e6
    medians = {k: statistics.median(v) for k, v in times.items()}
    return {
        "output_mp": megapixels,
        "mp_per_s": {k: megapixels / v for k, v in medians.items()},
        "ort_backend": ort_up.backend,
        "torch_backend": torch_up.backend,
    }


def peak_memory(run: Path, width: int, height: int) -> dict[str, Any]:
    """Peak resident memory (VmHWM) of a fresh process that upscales a width x height image with tiling.

    VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so a child of this (large) process would
    report the parent's high-water mark."""
    code = f"""
import sys, time, numpy as np
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
sys.path.insert(0, {str(ROOT)!r})
from engine.export import open_upscaler
up = open_upscaler({str(run)!r}, device="cpu")
rng = np.random.default_rng(0)
yy, xx = np.mgrid[0:{height}, 0:{width}]
image = np.stack([(xx * 255 // {width}), (yy * 255 // {height}), rng.integers(0, 256, ({height}, {width}))], -1)
image = image.astype(np.uint8)
base = hwm()
start = time.perf_counter()
out = up.upscale_array(image)
peak = hwm()
print(base, peak, out.shape[0], out.shape[1], out.nbytes, time.perf_counter() - start)
"""
    line = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.split()
    base_kb, peak_kb, h, w, nbytes, seconds = (float(v) for v in line[-6:])
    return {
        "input": f"{width}x{height}",
        "output": f"{int(w)}x{int(h)}",
        "peak_rss_gb": peak_kb / 2**20,
        "rss_before_gb": base_kb / 2**20,
        "output_array_gb": nbytes / 2**30,
        "seconds": seconds,
    }


def print_report(result: dict[str, Any]) -> None:
    t = result["training"]
    print(f"\nesrgan x{result['scale']} trained {t['minutes']:.1f} min ({t['steps']} steps) on 9 photos; ")
    print("3 held-back photos (full size), Y: BT.601 luma, border shaved\n")
    print("| input | method | PSNR Y (dB) | SSIM Y | PSNR RGB (dB) | SSIM RGB |")
    print("|---|---|---|---|---|---|")
    for row, s in result["quality"].items():
        kind, method = row.split("/")
        cells = f"{s['psnr_y']:.2f} | {s['ssim_y']:.4f} | {s['psnr_rgb']:.2f} | {s['ssim_rgb']:.4f}"
        print(f"| {kind} | {method} | {cells} |")
    q = result["quality"]
    gain = q["bicubic/ours"]["psnr_y"] - q["bicubic/bicubic"]["psnr_y"]
    verdict = "met" if gain >= TARGET_DB else "not met"
    print(f"\nours vs bicubic on bicubic inputs: {gain:+.2f} dB PSNR Y (target +{TARGET_DB} dB: {verdict})")
    s = result["speed"]
    mp = s["mp_per_s"]
    print(
        f"speed ({s['output_mp']:.2f} MP output): PyTorch {mp['pytorch']:.3f} MP/s ({s['torch_backend']}), "
        f"onnxruntime {mp['onnxruntime']:.3f} MP/s ({s['ort_backend']}), ratio ORT/PyTorch "
        f"{mp['onnxruntime'] / mp['pytorch']:.2f}x"
    )
    if "memory" in result:
        m = result["memory"]
        print(
            f"memory: {m['input']} -> {m['output']} with tiling: peak RSS {m['peak_rss_gb']:.2f} GB "
            f"(process before upscaling {m['rss_before_gb']:.2f} GB, the uint8 output array alone "
            f"{m['output_array_gb']:.2f} GB), {m['seconds']:.0f} s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=15.0, help="training minutes (default 15)")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench-upscale"))
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "upscale")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: on a shared 2-core machine, 2 threads got under half the steps)",
    )
    parser.add_argument("--retrain", action="store_true", help="train again even when the run exists")
    parser.add_argument("--no-memory", action="store_true", help="skip the 4K memory measurement")
    parser.add_argument("--memory-size", default="3840x2160", help="input of the memory measurement")
    args = parser.parse_args()
    if not SOURCE.is_dir():
        sys.exit(f"photos-mate not found at {SOURCE}: this benchmark needs ../shared/datasets")
    torch.set_num_threads(args.threads)
    train_photos, held_photos = split_photos()
    work = args.work
    run = work / f"run-x{args.scale}-{args.minutes:g}min"
    info_path = run / "bench-training.json"
    if args.retrain or not list_checkpoints(run) or not info_path.exists():
        import shutil

        shutil.rmtree(work, ignore_errors=True)
        count = write_training_squares(train_photos, work / "photos")
        print(f"{count} training squares of {TRAIN_CROP} px from {len(train_photos)} photos")
        import_folder(work / "photos", work / "dataset", size=TRAIN_CROP)
        attest(work / "dataset", rights="licensed", people="none", attested_by="bench (photos-mate, see its README)")
        info = train(work / "dataset", run, args.minutes, args.scale)
        info_path.write_text(json.dumps(info))
    result: dict[str, Any] = {"scale": args.scale, "training": json.loads(info_path.read_text())}
    photos = held_back(held_photos, args.scale)
    result["quality"] = evaluate(run, photos, args.scale, args.out)
    result["speed"] = throughput(run, bicubic_down(photos[0][1], args.scale), args.repeats)
    if not args.no_memory:
        width, height = (int(v) for v in args.memory_size.split("x"))
        result["memory"] = peak_memory(run, width, height)
    result["bench_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "upscale.json").write_text(json.dumps(result, indent=2))
    print_report(result)


if __name__ == "__main__":
    main()
