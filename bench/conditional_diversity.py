"""Does a class-conditional run stay as varied as an unconditional one? (issue 11, docs/training.md)

Three classes of emoji-google-64 (animals-nature, food-drink, smileys-emotion: 459 images) at 32 px.
For each family, one unconditional run and one conditional run per ``--class-input`` (``norm``: the
class sets G's batch-norm gains and biases, the fix; ``latent``: the class embedding added to z, the
code before it) train the same steps with the same seed. Then, with 64 fixed latents:

- within-class std: the per-pixel standard deviation across the latents of one class's images
  (the unconditional run: across all its images), averaged over pixels;
- separation: the mean RMS distance between the classes' mean images, as a share of the real
  classes' (0 = the generator ignores the class);
- agreement: the share of samples whose 5 nearest training images (EffLite0 features) mostly carry the
  class they were asked for (the real images score ``real`` on the same check; chance is 1/3).

    python bench/conditional_diversity.py [--families dcgan,fastgan] [--steps 300] [--batch 32]
        [--class-input norm,latent] [--work /tmp/conditional-diversity]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.consent import attest  # noqa: E402
from engine.data import import_folder, load_dataset  # noqa: E402
from engine.metrics import get_extractor, real_statistics  # noqa: E402
from engine.metrics.classes import class_frequencies  # noqa: E402
from engine.runs import TrainConfig  # noqa: E402
from engine.training import Trainer  # noqa: E402

SOURCE = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "emoji-google-64"
CLASSES = ("animals-nature", "food-drink", "smileys-emotion")


def dataset(work: Path, size: int) -> Path:
    """The three classes imported at ``size`` px and attested (reused when present)."""
    out = work / f"emoji3-{size}"
    if not (out / "dataset.json").is_file():
        for name in CLASSES:
            shutil.copytree(SOURCE / name, work / "src" / name, dirs_exist_ok=True)
        import_folder(work / "src", out, size=size)
        attest(out, rights="licensed", people="none", attested_by="bench")
    return out


def train(data: Path, run: Path, family: str, conditional: bool, options: dict, args: argparse.Namespace):
    """The trained family object of one run (fresh run folder)."""
    shutil.rmtree(run, ignore_errors=True)
    cfg = TrainConfig(
        dataset=str(data),
        family=family,
        family_options=options,
        conditional=conditional,
        steps=args.steps,
        batch_size=args.batch,
        seed=args.seed,
        preview_every=0,
        checkpoint_every=10**6,
        checkpoint_minutes=None,
        log_every=50,
    )
    trainer = Trainer(cfg, run_dir=run)
    trainer.run()
    return trainer.family


def std(images: torch.Tensor) -> float:
    return float(images.std(0).mean())


def separation(means: list[torch.Tensor]) -> float:
    pairs = [(a, b) for i, a in enumerate(means) for b in means[i + 1 :]]
    return sum(float((a - b).pow(2).mean().sqrt()) for a, b in pairs) / len(pairs)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    return ((x.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--families", default="dcgan,fastgan")
    parser.add_argument("--class-input", default="norm,latent")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=Path("/tmp/conditional-diversity"))
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    args.work.mkdir(parents=True, exist_ok=True)
    data = dataset(args.work, args.size)
    prepared = load_dataset(data)
    real = torch.from_numpy(np.asarray(prepared.images, np.float32) / 127.5 - 1).permute(0, 3, 1, 2)
    labels = torch.from_numpy(np.asarray(prepared.labels))
    real_sep = separation([real[labels == c].mean(0) for c in range(len(CLASSES))])
    extractor = get_extractor("efflite0")
    feats = real_statistics(data, extractor, args.size, 5000)
    real_labels = np.asarray(prepared.labels)[feats.indices]
    print(f"real images: within-class std {[round(std(real[labels == c]), 3) for c in range(3)]}, all {std(real):.3f}")
    rows = []
    for family in args.families.split(","):
        started = time.perf_counter()
        uncond = train(data, args.work / f"{family}-uncond", family, False, {}, args)
        z = torch.randn(64, uncond.latent_dim, generator=torch.Generator().manual_seed(123))
        reference = std(uncond.sample(z))
        rows.append(
            {"family": family, "run": "unconditional", "std": [reference], "seconds": time.perf_counter() - started}
        )
        for class_input in args.class_input.split(","):
            started = time.perf_counter()
            cond = train(data, args.work / f"{family}-{class_input}", family, True, {"class_input": class_input}, args)
            images = [cond.sample(z, torch.full((64,), c, dtype=torch.long)) for c in range(len(CLASSES))]
            fake = extractor.features(np.concatenate([to_uint8(x) for x in images]))
            asked = np.repeat(np.arange(len(CLASSES)), 64)
            check = class_frequencies(feats.features, real_labels, fake, list(CLASSES), asked)
            rows.append(
                {
                    "family": family,
                    "run": f"conditional, class_input={class_input}",
                    "std": [std(x) for x in images],
                    "ratio": min(std(x) for x in images) / reference,
                    "separation": separation([x.mean(0) for x in images]) / real_sep,
                    "agreement": check["agreement"],
                    "real_agreement": check["real_agreement"],
                    "seconds": time.perf_counter() - started,
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    print(f"\n{args.steps} steps, batch {args.batch}, {args.size} px, seed {args.seed}\n")
    print("| family | run | within-class std | lowest / unconditional | separation | agreement |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        stds = ", ".join(f"{v:.3f}" for v in row["std"])
        extra = (
            f"{row['ratio']:.2f} | {row['separation']:.2f} | {row['agreement']:.2f} (real {row['real_agreement']:.2f})"
            if "ratio" in row
            else "– | – | –"
        )
        print(f"| {row['family']} | {row['run']} | {stds} | {extra} |")


if __name__ == "__main__":
    main()
