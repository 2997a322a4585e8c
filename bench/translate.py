"""Translate quality and speed on held-back photos of photos-mate, side by side with baselines.

Nine of the twelve photos train a pix2pix model per task (random crops, so the models see many
views of few photos); the other three (every fourth by name) are never seen in training and are
evaluated at 512x512:

* colorize: PSNR against the photo, and colourfulness (Hasler & Suesstrunk 2003), for the model with
  no hints and with 10 true-colour hint clicks, against the "greyscale copy" baseline;
* sketch: line art extracted from the held-back photo -> image; PSNR and SSIM for the model against
  the greyscale copy and against the sketch itself;
* latency per 512x512 image, PyTorch vs onnxruntime (each median of --repeats), same model.

    python bench/translate.py [--minutes 10] [--size 64] [--work /tmp/bench-translate] [--out docs/results/translate]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.consent import attest  # noqa: E402
from engine.data import import_folder  # noqa: E402
from engine.data.pairs import clean_sketch, line_art  # noqa: E402
from engine.export import OrtTranslator, export_onnx  # noqa: E402
from engine.inference import TorchTranslator  # noqa: E402
from engine.runs import TrainConfig
from engine.training import Trainer  # noqa: E402

SOURCE = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "photos-mate"
EVAL = 512


def split_photos() -> tuple[list[Path], list[Path]]:
    """(training photos, held-back photos): every fourth photo by name is held back."""
    photos = sorted(p for p in SOURCE.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    held = photos[3::4]
    return [p for p in photos if p not in held], held


def write_crops(photos: list[Path], folder: Path, per_photo: int) -> None:
    """Random square crops (35-100% of the short side) of each training photo, as PNG files."""
    rng = random.Random(0)
    folder.mkdir(parents=True, exist_ok=True)
    for photo in photos:
        image = Image.open(photo).convert("RGB")
        short = min(image.size)
        for i in range(per_photo):
            side = int(short * rng.uniform(0.35, 1.0))
            x, y = rng.randint(0, image.width - side), rng.randint(0, image.height - side)
            image.crop((x, y, x + side, y + side)).resize((256, 256), Image.LANCZOS).save(
                folder / f"{photo.stem}-{i:02d}.png"
            )


def held_back_images(photos: list[Path]) -> list[np.ndarray]:
    """Centre squares of the held-back photos at 512x512."""
    out = []
    for photo in photos:
        image = Image.open(photo).convert("RGB")
        short = min(image.size)
        left, top = (image.width - short) // 2, (image.height - short) // 2
        out.append(np.asarray(image.crop((left, top, left + short, top + short)).resize((EVAL, EVAL), Image.LANCZOS)))
    return out


def train(dataset: Path, task: str, run: Path, minutes: float, batch: int) -> None:
    options = {"task": task, "base_channels": 32, "max_channels": 256}
    cfg = TrainConfig(
        dataset=str(dataset),
        family="pix2pix",
        family_options=options,
        batch_size=batch,
        steps=None,
        minutes=minutes,
        preview_every=100,
        checkpoint_every=200,
        seed=0,
    )
    result = Trainer(cfg, run_dir=run).run()
    print(f"  trained {task}: {result.step} steps in {result.seconds / 60:.1f} min")


# -- measures ----------------------------------------------------------------------------------------
def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    from torchmetrics.functional.image import structural_similarity_index_measure

    t = lambda x: torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)[None].float() / 255  # noqa: E731
    return float(structural_similarity_index_measure(t(a), t(b), data_range=1.0))


def colourfulness(image: np.ndarray) -> float:
    """Hasler & Suesstrunk's M: 0 for grey images, ~30-60 for typical colour photos."""
    r, g, b = (image[..., i].astype(np.float64) for i in range(3))
    rg, yb = r - g, 0.5 * (r + g) - b
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def grey_copy(image: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(image).convert("L").convert("RGB"))


def true_hints(image: np.ndarray, count: int, seed: int) -> list:
    """``count`` hint clicks at random points with the photo's own (3x3 mean) colour there."""
    rng = np.random.default_rng(seed)
    hints = []
    for _ in range(count):
        x, y = (int(v) for v in rng.integers(8, EVAL - 8, 2))
        colour = image[y - 1 : y + 2, x - 1 : x + 2].reshape(-1, 3).mean(0)
        hints.append((x, y, tuple(int(c) for c in colour)))
    return hints


def sketch_of(image: np.ndarray, size: int) -> np.ndarray:
    """The clean line art of an image, extracted at the model's training size, as a 512 px drawing."""
    small = np.asarray(Image.fromarray(image).resize((size, size), Image.LANCZOS))
    x = torch.tensor(small).permute(2, 0, 1)[None].float() / 127.5 - 1
    drawing = ((clean_sketch(line_art(x))[0, 0] + 1) * 127.5).round().byte().numpy()
    return np.asarray(Image.fromarray(drawing).resize((EVAL, EVAL), Image.NEAREST))


def latency(translator, image: np.ndarray, repeats: int, hints=()) -> float:
    translator.translate(image, hints, work_size=EVAL)  # warm-up (session creation, allocations)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        translator.translate(image, hints, work_size=EVAL)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


# -- the report --------------------------------------------------------------------------------------
def evaluate_colorize(run: Path, held: list[np.ndarray], out: Path, repeats: int) -> dict:
    torch_t = TorchTranslator(run, device="cpu")
    export_onnx(run, run / "exports" / "colorize.onnx")
    ort_t = OrtTranslator(run / "exports" / "colorize.onnx")
    rows = {"grey copy": [], "model, no hints": [], "model, 10 hints": []}
    colour = {"photo": [], **{k: [] for k in rows}}
    tiles = []
    for i, image in enumerate(held):
        grey = grey_copy(image)
        outputs = {
            "grey copy": grey,
            "model, no hints": ort_t.translate(grey),
            "model, 10 hints": ort_t.translate(grey, true_hints(image, 10, i)),
        }
        for name, result in outputs.items():
            rows[name].append(psnr(result, image))
            colour[name].append(colourfulness(result))
        colour["photo"].append(colourfulness(image))
        tiles.append(np.concatenate([grey, outputs["model, no hints"], outputs["model, 10 hints"], image], 1))
    Image.fromarray(np.concatenate(tiles, 0)).resize((4 * 256, len(held) * 256)).save(out / "colorize.png")
    ms = {"pytorch": latency(torch_t, held[0], repeats), "onnxruntime": latency(ort_t, held[0], repeats)}
    return {
        "psnr": {k: float(np.mean(v)) for k, v in rows.items()},
        "colourfulness": {k: float(np.mean(v)) for k, v in colour.items()},
        "latency_ms": ms,
        "provider": ort_t.provider,
    }


def evaluate_sketch(run: Path, held: list[np.ndarray], size: int, out: Path, repeats: int) -> dict:
    torch_t = TorchTranslator(run, device="cpu")
    export_onnx(run, run / "exports" / "sketch.onnx")
    ort_t = OrtTranslator(run / "exports" / "sketch.onnx")
    scores = {name: {"psnr": [], "ssim": []} for name in ("sketch itself", "grey copy", "model")}
    tiles = []
    for image in held:
        drawing = sketch_of(image, size)
        outputs = {
            "sketch itself": np.repeat(drawing[..., None], 3, 2),
            "grey copy": grey_copy(image),
            "model": ort_t.translate(drawing),
        }
        for name, result in outputs.items():
            scores[name]["psnr"].append(psnr(result, image))
            scores[name]["ssim"].append(ssim(result, image))
        tiles.append(np.concatenate([outputs["sketch itself"], outputs["model"], image], 1))
    Image.fromarray(np.concatenate(tiles, 0)).resize((3 * 256, len(held) * 256)).save(out / "sketch.png")
    drawing = sketch_of(held[0], size)
    ms = {"pytorch": latency(torch_t, drawing, repeats), "onnxruntime": latency(ort_t, drawing, repeats)}
    return {
        "scores": {k: {m: float(np.mean(v)) for m, v in d.items()} for k, d in scores.items()},
        "latency_ms": ms,
        "provider": ort_t.provider,
    }


def print_report(colorize: dict, sketch: dict, args: argparse.Namespace) -> None:
    print(f"\nHeld-back photos, {EVAL}x{EVAL}; models trained {args.minutes} min each at {args.size} px on CPU\n")
    print("| colorize | PSNR (dB) | colourfulness |\n|---|---|---|")
    print(f"| photo itself | - | {colorize['colourfulness']['photo']:.1f} |")
    for name, value in colorize["psnr"].items():
        print(f"| {name} | {value:.2f} | {colorize['colourfulness'][name]:.1f} |")
    print("\n| sketch -> photo | PSNR (dB) | SSIM |\n|---|---|---|")
    for name, value in sketch["scores"].items():
        print(f"| {name} | {value['psnr']:.2f} | {value['ssim']:.3f} |")
    print(f"\n| latency per {EVAL}x{EVAL} image | PyTorch | onnxruntime ({colorize['provider']}) | speed-up |")
    print("|---|---|---|---|")
    for task, result in (("colorize", colorize), ("sketch", sketch)):
        ms = result["latency_ms"]
        print(
            f"| {task} | {ms['pytorch']:.1f} ms | {ms['onnxruntime']:.1f} ms "
            f"| {ms['pytorch'] / ms['onnxruntime']:.2f}x |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="training time per task")
    parser.add_argument("--size", type=int, default=64, help="training resolution")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--crops", type=int, default=24, help="random crops per training photo")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--work", default="/tmp/bench-translate")
    parser.add_argument("--out", default="docs/results/translate")
    parser.add_argument("--reuse", action="store_true", help="evaluate existing runs in --work without training")
    parser.add_argument("--retrain", default="", help="with --reuse: retrain these tasks (comma-separated) first")
    args = parser.parse_args()
    if not SOURCE.is_dir():
        raise SystemExit(f"needs {SOURCE}")
    work, out = Path(args.work), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    training, held_paths = split_photos()
    print(f"training photos: {', '.join(p.stem for p in training)}\nheld back: {', '.join(p.stem for p in held_paths)}")
    if not args.reuse:
        shutil.rmtree(work, ignore_errors=True)
        write_crops(training, work / "crops", args.crops)
        import_folder(work / "crops", work / "dataset", size=args.size)
        attest(work / "dataset", rights="licensed", people="none", attested_by="bench (photos-mate, GPL-2+)")
        for task in ("colorize", "sketch"):
            train(work / "dataset", task, work / task, args.minutes, args.batch)
    for task in filter(None, args.retrain.split(",")):
        shutil.rmtree(work / task, ignore_errors=True)
        train(work / "dataset", task, work / task, args.minutes, args.batch)
    held = held_back_images(held_paths)
    colorize = evaluate_colorize(work / "colorize", held, out, args.repeats)
    sketch = evaluate_sketch(work / "sketch", held, args.size, out, args.repeats)
    print_report(colorize, sketch, args)
    (out / "results.json").write_text(
        json.dumps({"colorize": colorize, "sketch": sketch, "args": vars(args)}, indent=2)
    )


if __name__ == "__main__":
    main()
