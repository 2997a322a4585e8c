"""Latent editing (engine/editing): slider latency on PyTorch and onnxruntime side by side, the time to
find directions, and inversion time and error.

Trains a stylegan2 model on the bundled sample (32 px, the family's CPU settings; ``--steps``), exports it
to ONNX with its W graphs, then:

* slider latency: one preview of a moved W+ latent, PyTorch (``render``) and onnxruntime (the export's
  ``-synthesis.onnx``, ``preview``) interleaved in one loop, median and p90 over ``--repeats``;
* directions: SeFa and GANSpace (2,000 samples), seconds;
* inversion: ``--inversion-steps`` steps on held-back emoji (emoji-google-64 images that are not in the
  sample), mean squared error (pixels in [-1, 1]) before and after, the factor, seconds.

    python bench/edit.py                       # about 3 minutes on 2 cores
    python bench/edit.py --out docs/results/edit/table.md
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATASETS = ROOT.parent / "shared" / "datasets"
SAMPLE = ROOT / "resources" / "sample"


def _train(work: Path, steps: int) -> Path:
    from engine.consent import attest
    from engine.data import import_folder
    from engine.families import get_family
    from engine.runs import TrainConfig
    from engine.training import Trainer

    dataset = work / "dataset"
    import_folder(SAMPLE, dataset, size=32)
    attest(dataset, rights="licensed", people="none", attested_by="bench (Noto Emoji, Apache-2.0)")
    settings = dict(get_family("stylegan2").recommended_settings(32, "cpu"))
    options = settings.pop("family_options")
    config = TrainConfig(
        dataset=str(dataset), family="stylegan2", family_options=options, resolution=32, steps=steps,
        checkpoint_every=10_000, preview_every=10_000, seed=3, **settings,
    )  # fmt: skip
    return Path(Trainer(config, run_dir=work / "run").run().run_dir)


def _held_back(count: int) -> list[Path]:
    in_sample = {p.name for p in SAMPLE.rglob("*.png")}
    candidates = sorted((DATASETS / "emoji-google-64" / "smileys-emotion").glob("*.png"))
    return [p for p in candidates if p.name not in in_sample][::7][:count]


def _inversion_sheet(model: object, pairs: list, out: Path) -> None:
    """Top row the held-back targets (as the model sees them), bottom row their reconstructions, 4x enlarged."""
    import numpy as np
    from PIL import Image

    from engine.editing.invert import load_target

    side = 4 * model.resolution  # type: ignore[attr-defined]
    sheet = Image.new("RGB", (side * len(pairs), 2 * side), "white")
    for i, (path, rendered) in enumerate(pairs):
        target = ((load_target(path, model)[0].permute(1, 2, 0).numpy() + 1) * 127.5).round().clip(0, 255)
        for row, pixels in enumerate((target.astype(np.uint8), rendered)):
            tile = Image.fromarray(pixels.squeeze()).resize((side, side), Image.Resampling.NEAREST)
            sheet.paste(tile, (i * side, row * side))
    sheet.save(out)
    print(f"wrote {out}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400, help="training steps of the benchmarked model")
    parser.add_argument("--repeats", type=int, default=60)
    parser.add_argument("--inversion-steps", type=int, default=200)
    parser.add_argument("--images", type=int, default=4, help="held-back images to invert")
    parser.add_argument("--out", type=Path, help="also write the table (Markdown) here")
    args = parser.parse_args(argv)
    from engine.editing import EditableModel, find_directions, invert
    from engine.export import export_onnx

    work = Path(tempfile.mkdtemp(prefix="edit-bench-"))
    started = time.perf_counter()
    run = _train(work, args.steps)
    trained = time.perf_counter() - started
    export_onnx(run, run / "exports" / "model.onnx", w_graphs=True)
    model = EditableModel(run)
    provider = model.attach_onnx_synthesis(run)
    lines = [
        f"stylegan2 on the sample, 32 px, {args.steps} steps ({trained:.0f} s to train here); previews: {provider}",
        "",
    ]

    sefa = find_directions(model, "sefa", 8)
    base = model.latent(3)
    torch_times, ort_times = [], []
    for k in range(args.repeats):
        moved = base.moved(sefa.vectors[k % 8], (k % 10 - 5) * 0.5)
        t = time.perf_counter()
        model.render([moved])
        torch_times.append(time.perf_counter() - t)
        t = time.perf_counter()
        model.preview([moved])
        ort_times.append(time.perf_counter() - t)

    def ms(values: list[float]) -> str:
        ordered = sorted(values)
        return f"{statistics.median(ordered) * 1000:.1f} ms (p90 {ordered[int(0.9 * (len(ordered) - 1))] * 1000:.1f})"

    ratio = statistics.median(torch_times) / statistics.median(ort_times)
    lines += [
        "| measure | value |",
        "|---|---|",
        f"| slider preview, PyTorch | {ms(torch_times)} |",
        f"| slider preview, onnxruntime ({provider}) | {ms(ort_times)} |",
        f"| PyTorch / onnxruntime | {ratio:.2f}x |",
    ]
    for method in ("sefa", "ganspace"):
        t = time.perf_counter()
        find_directions(model, method, 8)
        lines.append(f"| {method} directions (8) | {time.perf_counter() - t:.2f} s |")
    results, pairs = [], []
    for image in _held_back(args.images):
        result = invert(model, image, steps=args.inversion_steps, attestation_people="none")
        results.append(result)
        pairs.append((image, model.render([result.latent])[0]))
        lines.append(
            f"| invert {image.name} ({args.inversion_steps} steps) | error {result.start_error:.4f} -> "
            f"{result.final_error:.4f} ({result.improvement:.1f}x smaller), {result.seconds:.1f} s |"
        )
    if results:
        factors = [r.improvement for r in results]
        seconds = [r.seconds for r in results]
        lines.append(
            f"| inversion, median of {len(results)} | {statistics.median(factors):.1f}x smaller error, "
            f"{statistics.median(seconds):.1f} s |"
        )
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(f"# Latent editing (bench/edit.py)\n\n{text}\n", encoding="utf-8")
        print(f"wrote {args.out}")
        if pairs:
            _inversion_sheet(model, pairs, args.out.with_name("inversion.png"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
