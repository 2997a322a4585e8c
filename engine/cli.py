"""gan-studio-cli: the engine, headless and scriptable. Every command accepts --json (before or after it).

User errors print one line and exit with status 2; unexpected errors print one line (the traceback
only with --debug) and exit with status 1. Settings given as KEY=VALUE (``--set``, ``--option``) are
typed like the dataclass field they set, and checked (names, finite numbers, ranges) before anything
is printed or trained.
"""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import json
import math
import os
import signal
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from types import FrameType, NoneType, UnionType
from typing import TYPE_CHECKING, Any, Union, get_args, get_origin, get_type_hints

from engine.errors import ConfigError, GanStudioError
from engine.runs.config import LOSS_NAMES  # torch-free, like the two imports around it
from engine.tasks import get_task, task_names

if TYPE_CHECKING:  # the commands import their modules when run, so `--help` stays fast
    from engine.families.base import Family
    from engine.runs import TrainConfig
    from engine.training import Callbacks, Trainer
    from engine.training.health import Finding


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _settings(pairs: list[str], config_cls: type, flag: str, what: str, owner: str = "") -> dict[str, Any]:
    """``KEY=VALUE`` pairs -> {key: value typed like ``config_cls``'s field}; ConfigError for an unknown key.

    ``what`` and ``owner`` name the settings in messages ("training setting"; "option", " of family 'dcgan'").
    """
    known = [f.name for f in dataclasses.fields(config_cls) if f.name != "format_version"]
    try:
        hints = get_type_hints(config_cls)
    except (NameError, TypeError):  # an annotation that cannot be resolved: read values as JSON
        hints = {}
    out = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"{flag} expects KEY=VALUE, got {pair!r}")
        if key not in known:
            raise ConfigError(f"unknown {what} {key!r}{owner} in {flag}; the known {what}s{owner}: {', '.join(known)}")
        out[key] = _typed(key, text, hints.get(key), flag)
    return out


def _typed(key: str, text: str, hint: Any, flag: str) -> Any:
    """``text`` as the field type ``hint`` wants: bool, int, float (nan/inf kept for validation), str or JSON."""
    options = get_args(hint) if get_origin(hint) in (Union, UnionType) else (hint,)
    if NoneType in options and text.strip().lower() in ("none", "null"):
        return None
    kinds = [k for k in options if k is not NoneType]
    kind = kinds[0] if len(kinds) == 1 else None
    if kind is bool:
        word = text.strip().lower()
        if word not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
            raise ConfigError(f"setting {key!r} ({flag}) is true or false, got {text!r}")
        return word in ("true", "1", "yes", "on")
    if kind in (int, float):
        try:
            return kind(text.strip())
        except ValueError:
            number = "a whole number" if kind is int else "a number"
            raise ConfigError(f"setting {key!r} ({flag}) must be {number}, got {text!r}") from None
    if kind is str:
        return text
    return _parse_value(text)


def _finite_options(options: dict[str, Any], family: str) -> None:
    # TrainConfig.validate() knows the ranges of its own settings; a family's options are checked here.
    for key, value in options.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"option {key!r} of family '{family}' (--option) must be a finite number, got {value}")


def _emit(args: argparse.Namespace, summary: dict[str, Any], text: str) -> None:
    print(json.dumps(summary, indent=2, default=str) if args.json else text)


# -- commands ---------------------------------------------------------------------------------------
def cmd_import(args: argparse.Namespace) -> int:
    from engine.data import import_folder

    out = Path(args.out) if args.out else Path("datasets") / Path(args.folder).resolve().name
    bar = _progress_bar(args, "Importing", "file")
    report = import_folder(
        args.folder,
        out,
        size=args.size,
        fit=args.fit,
        alpha=args.alpha,
        drop_duplicates=args.drop_duplicates,
        progress=bar.update_to if bar is not None else None,
    )
    if bar is not None:
        bar.close()
    people = "consented" if report.faces else "none"
    next_step = f"\nNext: gan-studio-cli attest {out} --rights own --people {people}"
    _emit(args, report.to_dict(), report.summary() + next_step)
    return 0


def cmd_attest(args: argparse.Namespace) -> int:
    from engine.consent import attest

    record = attest(
        args.dataset,
        rights=args.rights,
        people=args.people,
        attested_by=args.by,
        note=args.note,
        faces_reviewed=args.faces_reviewed,
    )
    reviewed = f"; {record.faces} flagged face image(s) reviewed" if record.faces_reviewed else ""
    _emit(
        args,
        record.to_dict(),
        f"Recorded attestation {record.id} for dataset {args.dataset} "
        f"(rights: {record.rights}, people: {record.people}, by {record.attested_by}{reviewed})",
    )
    return 0


def _train_config(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig the flags describe, validated (family, options, every setting) before training."""
    from engine.families import get_family
    from engine.families.base import build_family_config
    from engine.runs import TrainConfig

    if args.config:
        return _config_from_file(args)
    if not args.dataset:
        raise ConfigError("train needs a dataset folder (gan-studio-cli train DATASET ...) or --config SETTINGS.json")
    settings = _settings(args.set, TrainConfig, "--set", "training setting")
    family_name = settings.get("family", args.family)
    family = get_family(family_name)  # an unknown family is answered (with the known ones) before anything runs
    options = {
        **settings.pop("family_options", {}),
        **_settings(args.option, family.Config, "--option", "option", f" of family '{family_name}'"),
    }
    _finite_options(options, family_name)
    # the family's own recommendations (StyleGAN2's learning rates, R1, CPU-sized model) under the flags
    recommended = _recommended_settings(family, args, settings)
    fields: dict[str, Any] = {
        **recommended,
        "dataset": str(args.dataset),
        "family": family_name,
        # a family may recommend a size of its own (esrgan: its training crop); --size overrides it
        "resolution": args.size if args.size is not None else recommended.get("resolution"),
        "steps": args.steps,
        "minutes": args.minutes,
        "device": args.device,
        "family_options": {**recommended.get("family_options", {}), **options},
    }
    if args.minutes is not None and args.steps is None:
        fields["steps"] = None
    optional = {
        "batch_size": args.batch,
        "seed": args.seed,
        "loss": args.loss,
        "r1_gamma": args.r1,
        "augment": args.augment,
        "preview_every": args.preview_every,
        "checkpoint_every": args.checkpoint_every,
        "lr_g": args.lr,
        "lr_d": args.lr,
    }
    fields.update({k: v for k, v in optional.items() if v is not None})
    if args.no_ada:
        fields["ada"] = False
    fields.update(settings)
    if args.task:
        _apply_task(fields, args.task)
    if args.scale is not None:
        _apply_scale(fields, args.scale)
    config = TrainConfig(**fields)
    config.validate()
    build_family_config(family.Config, config.family_options)  # names an unknown option the same way training would
    return config


def _config_from_file(args: argparse.Namespace) -> TrainConfig:
    """--config FILE: the TrainConfig stored there exactly (no family recommendations), with the flags on top."""
    from engine.runs import TrainConfig

    path = Path(args.config)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"--config {path} cannot be read ({exc}); give a JSON file of training settings") from None
    if not isinstance(data, dict):
        raise ConfigError(f"--config {path} must hold a JSON object of training settings")
    flags = {"steps": args.steps, "minutes": args.minutes, "batch_size": args.batch, "seed": args.seed}
    data.update({k: v for k, v in flags.items() if v is not None})
    if args.device != "auto":
        data["device"] = args.device
    if args.dataset:
        data["dataset"] = str(args.dataset)
    data.update(_settings(args.set, TrainConfig, "--set", "training setting"))
    if "dataset" not in data:
        raise ConfigError(f'--config {path} names no dataset; add "dataset" to it or give the dataset folder')
    config = TrainConfig.from_dict(data)
    config.validate()
    return config


def _recommended_settings(family: type[Family], args: argparse.Namespace, settings: dict[str, Any]) -> dict[str, Any]:
    """``family.recommended_settings`` for the run's size (--size, else the dataset's) and device."""
    from engine.data.manifest import read_manifest
    from engine.device import select_device

    size = settings.get("resolution", args.size)
    try:
        size = size or int(read_manifest(args.dataset).get("options", {}).get("size", 64))
        device_type = select_device(settings.get("device", args.device)).type
    except GanStudioError:  # not a dataset, no such device: training reports it in its own words
        size, device_type = size or 64, "cpu"
    return dict(family.recommended_settings(size, device_type))


def _apply_task(fields: dict[str, Any], task: str) -> None:
    """--task becomes the family's 'task' option; a family with one fixed task accepts only that one."""
    from engine.families import get_family

    family = get_family(fields["family"])
    if "task" in getattr(family.Config, "__dataclass_fields__", {}):
        fields["family_options"]["task"] = task
    elif task not in getattr(family, "tasks", ()):
        known = ", ".join(getattr(family, "tasks", ())) or "none (it draws images from noise)"
        raise ConfigError(f"family '{fields['family']}' has no task {task!r}; its tasks: {known}")


def _apply_scale(fields: dict[str, Any], scale: int) -> None:
    """--scale becomes the family's 'scale' option (upscaling families); other families refuse it."""
    from engine.families import get_family

    if "scale" not in {f.name for f in dataclasses.fields(get_family(fields["family"]).Config)}:
        raise ConfigError(f"--scale is for upscaling families such as esrgan; family '{fields['family']}' has no scale")
    fields["family_options"]["scale"] = scale


def cmd_train(args: argparse.Namespace) -> int:
    from engine.training import Trainer

    config = _train_config(args)
    return _run_trainer(args, lambda cb: Trainer(config, cb, run_dir=args.out), config.steps)


def cmd_resume(args: argparse.Namespace) -> int:
    from engine.training import Trainer

    def make(cb: Callbacks) -> Trainer:
        return Trainer.resume(args.run, cb, steps=args.steps, minutes=args.minutes, device=args.device)

    return _run_trainer(args, make, args.steps)


def _run_trainer(args: argparse.Namespace, make: Callable, total_steps: int | None) -> int:
    from engine.training import Callbacks

    stop = {"flag": False}
    # under torchrun every process runs this command; the main one (rank 0) alone talks to the user
    quiet = _process_rank() > 0

    # First Ctrl+C: checkpoint and stop cleanly; second: abort.
    def on_sigint(signum: int, frame: FrameType | None) -> None:
        if stop["flag"]:
            raise KeyboardInterrupt
        stop["flag"] = True
        print("\nStopping after this step (a checkpoint is written); press Ctrl+C again to abort.", file=sys.stderr)

    def on_sigterm(signum: int, frame: FrameType | None) -> None:  # torchrun passes its stop on as SIGTERM
        stop["flag"] = True

    previous = signal.signal(signal.SIGINT, on_sigint)
    previous_term = signal.signal(signal.SIGTERM, on_sigterm) if _process_rank() >= 0 else None
    bars: list[Any] = []  # created at the first step, so set-up errors print one clean line
    logs: list[str] = []

    def on_step(stats: dict[str, Any]) -> None:
        if not bars:
            bars.append(_tqdm()(total=total_steps, initial=stats["step"] - 1, unit="step", dynamic_ncols=True))
        _bar_step(bars[0], stats)

    def on_log(message: str) -> None:
        logs.append(message)
        if not args.json and not quiet:
            (bars[0].write if bars else print)(message)

    findings: list[dict[str, Any]] = []

    def on_health(finding: Finding) -> None:  # the training doctor: "[health] warning: ... Try: ..."
        from engine.training.health import describe_finding

        findings.append(finding.to_dict())
        if not args.json and not quiet:
            (bars[0].write if bars else print)(describe_finding(finding))

    callbacks = Callbacks(
        on_step=None if args.json or quiet else on_step,
        on_log=on_log,
        on_health=on_health,
        should_stop=lambda: stop["flag"],
    )
    try:
        result = make(callbacks).run()
    finally:
        signal.signal(signal.SIGINT, previous)
        if previous_term is not None:
            signal.signal(signal.SIGTERM, previous_term)
        for bar in bars:
            bar.close()
    if quiet:
        return 0
    summary = {
        "run": str(result.run_dir),
        "step": result.step,
        "stopped": result.stopped,
        "checkpoint": str(result.checkpoint),
        "train_seconds": round(result.seconds, 1),
        "log": logs,
        "health": findings,
    }
    _emit(args, summary, f"Run {result.run_dir}: step {result.step}, checkpoint {result.checkpoint}")
    return 0


def _process_rank() -> int:
    """This process's rank under torchrun (0: the main process), or -1 when torchrun did not start it."""
    from engine.distributed import launched_by_torchrun

    return int(os.environ.get("RANK", "0")) if launched_by_torchrun() else -1


def _bar_step(bar: Any, stats: dict[str, Any]) -> None:
    bar.update(stats["step"] - bar.n)
    if stats["step"] % 5 == 0:
        bar.set_postfix(
            img_s=f"{stats['img_per_sec']:.0f}",
            D=f"{stats.get('loss_d', 0):.3f}",
            G=f"{stats.get('loss_g', 0):.3f}",
            p=f"{stats.get('augment_p', 0):.2f}",
            refresh=False,
        )


def cmd_generate(args: argparse.Namespace) -> int:
    from engine.export import open_runner
    from engine.inference.export_images import save_images

    if args.latent:
        return _generate_from_latent(args)
    runner = open_runner(args.run, device=args.device, prefer_onnx=False)
    if args.per_class is not None:
        return _generate_per_class(args, runner)
    class_index = _class_index(runner.classes, args.class_name)
    seeds = list(range(args.seed, args.seed + args.count))
    bar = _progress_bar(args, "Generating", "img")
    paths = save_images(
        runner,
        seeds,
        Path(args.out),
        class_index=class_index,
        truncation=args.truncation,
        progress=bar.update_to if bar is not None else None,
        provenance=_provenance(args, runner.identity, "generate"),
    )
    if bar is not None:
        bar.close()
    _emit(
        args,
        {
            "out": str(args.out),
            "files": [str(p) for p in paths],
            "source": str(runner.source),
            "backend": runner.description,
            "notes": list(getattr(runner, "notes", [])),  # e.g. a damaged newest checkpoint was set aside
        },
        "\n".join([f"Wrote {len(paths)} images to {args.out} ({runner.description})", *getattr(runner, "notes", [])]),
    )
    return 0


def _generate_from_latent(args: argparse.Namespace) -> int:
    """generate --latent FILE.npz: the saved latent's image, bit for bit, to OUT (a .png file or a folder)."""
    from engine.editing import EditableModel

    model = EditableModel(args.run, device=args.device)
    latent = model.load_latent(args.latent)
    out = Path(args.out)
    path = out if out.suffix.lower() == ".png" else out / f"{Path(args.latent).stem}.png"
    _save_edit_png(args, model, latent, path, "generate")
    _emit(args, {"out": str(path), "latent": str(args.latent)}, f"Wrote {path} from {args.latent}")
    return 0


def _save_edit_png(args: argparse.Namespace, model: Any, latent: Any, path: Path, action: str) -> None:
    from engine.provenance.stamp import provenance_for, save_png

    provenance = _provenance(args, model.identity, action) or provenance_for(model.identity, action)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_png(model.render([latent])[0], path, provenance)


def _seed_list(text: str) -> list[int]:
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"--seeds takes whole numbers separated by commas (e.g. 3,17,42), not {text!r}") from None
    return seeds


def _direction_arg(text: str) -> tuple[Path, str]:
    path, _, key = text.rpartition(":")
    if not path or not key:
        raise ConfigError(f"--direction takes FILE.json:K (a direction number or name), not {text!r}")
    return Path(path), key


def cmd_interpolate(args: argparse.Namespace) -> int:
    from engine.editing import EditableModel, keyframe_path, write_animation

    model = EditableModel(args.run, device=args.device)
    class_index = _class_index(model.classes, args.class_name)
    keyframes = [model.latent(seed, class_index, args.truncation) for seed in _seed_list(args.seeds)]
    frames = args.frames or 24 * (len(keyframes) - (0 if args.loop else 1))
    path = keyframe_path(keyframes, frames, loop=args.loop)
    bar = _progress_bar(args, "Rendering", "frame")
    out = write_animation(
        model,
        path,
        Path(args.out),
        fps=args.fps,
        size=args.size,
        progress=(lambda done, _total: bar.update_to(done, len(path), "")) if bar is not None else None,
        provenance=_provenance(args, model.identity, "interpolate"),
    )
    if bar is not None:
        bar.close()
    _emit(
        args,
        {"out": str(out), "frames": len(path), "fps": args.fps, "size": args.size or model.resolution},
        f"Wrote {out}: {len(path)} frames at {args.fps:g} fps",
    )
    return 0


def cmd_directions(args: argparse.Namespace) -> int:
    from engine.editing import EditableModel, find_directions, save_to_library

    model = EditableModel(args.run, device=args.device)
    directions = find_directions(model, args.method, args.count)
    out = directions.save(Path(args.out))
    saved = save_to_library(model, directions, args.name) if args.name else None
    strengths = ", ".join(f"{s:.3g}" for s in directions.strengths)
    _emit(
        args,
        {"out": str(out), "library": str(saved) if saved else None, **directions.to_dict()},
        f"Wrote {len(directions)} {args.method} directions ({model.space} space) to {out}; strengths {strengths}",
    )
    return 0


def cmd_edit(args: argparse.Namespace) -> int:
    from engine.editing import DirectionSet, EditableModel

    model = EditableModel(args.run, device=args.device)
    if args.latent:
        latent = model.load_latent(args.latent)
    else:
        latent = model.latent(args.seed, _class_index(model.classes, args.class_name), args.truncation)
    if len(args.amount or []) != len(args.direction):
        raise ConfigError("give one --amount per --direction (e.g. --direction d.json:0 --amount 2.5)")
    for text, amount in zip(args.direction, args.amount or []):
        file, key = _direction_arg(text)
        directions = DirectionSet.load(file)
        directions.check_model(model, file)
        layers = model.layer_groups()[args.layers] if args.layers else None
        latent = latent.moved(directions.vectors[directions.index(key)], amount, layers)
    if args.mix_seed is not None:
        latent = model.mix(latent, model.latent(args.mix_seed, latent.class_index), args.mix_layers)
    out = Path(args.out)
    _save_edit_png(args, model, latent, out, "edit")
    saved = model.save_latent(latent, out.with_suffix(".npz")) if args.save_latent else None
    _emit(
        args,
        {"out": str(out), "latent": str(saved) if saved else None},
        f"Wrote {out}" + (f" and its latent {saved}" if saved else ""),
    )
    return 0


def cmd_invert(args: argparse.Namespace) -> int:
    from engine.editing import EditableModel, invert

    model = EditableModel(args.run, device=args.device)
    bar = _progress_bar(args, "Inverting", "step")
    result = invert(
        model,
        args.image,
        steps=args.steps,
        class_index=_class_index(model.classes, args.class_name),
        attestation_people=model.attested_people(),
        noise=args.noise,
        progress=(lambda step, total, _error: bar.update_to(step, total, "")) if bar is not None else None,
    )
    if bar is not None:
        bar.close()
    out = model.save_latent(result.latent, Path(args.out))
    summary = {
        "out": str(out),
        "start_error": result.start_error,
        "final_error": result.final_error,
        "improvement": result.improvement,
        "steps": result.steps,
        "seconds": result.seconds,
    }
    text = (
        f"Wrote {out}: reconstruction error {result.start_error:.4f} -> {result.final_error:.4f} "
        f"({result.improvement:.1f}x smaller) in {result.steps} steps, {result.seconds:.1f} s; "
        f"render it with: gan-studio-cli generate {args.run} --latent {out} --out image.png"
    )
    _emit(args, summary, text)
    return 0


def _generate_per_class(args: argparse.Namespace, runner: Any) -> int:
    """generate --per-class N: N images of every class into OUT/<class>/ and OUT/manifest.json."""
    from engine.inference.export_images import save_images_per_class

    if args.class_name is not None:
        raise ConfigError("--per-class writes every class; leave out --class (or use --count with --class)")
    bar = _progress_bar(args, "Generating", "img")
    result = save_images_per_class(
        runner,
        args.per_class,
        Path(args.out),
        first_seed=args.seed,
        truncation=args.truncation,
        progress=bar.update_to if bar is not None else None,
        provenance=_provenance(args, runner.identity, "generate", training="allowed"),
    )
    if bar is not None:
        bar.close()
    counts = ", ".join(f"{name} {len(paths)}" for name, paths in result.files.items())
    _emit(
        args,
        {
            "out": str(args.out),
            "manifest": str(result.manifest),
            "classes": {name: [str(p) for p in paths] for name, paths in result.files.items()},
            "source": str(runner.source),
            "backend": runner.description,
            "notes": list(getattr(runner, "notes", [])),
        },
        "\n".join(
            [
                f"Wrote {result.count} images ({counts}) into class folders of {args.out} with "
                f"{result.manifest.name} ({runner.description})",
                *getattr(runner, "notes", []),
            ]
        ),
    )
    return 0


def _add_editing_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    """interpolate, directions, edit, invert: latent editing on a noise-to-image run (docs/editing.md)."""

    def base(name: str, text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=text)
        p.add_argument("run", help="run folder or checkpoint file of a noise-to-image model")
        p.add_argument("--device", default="cpu")
        return p

    p = base("interpolate", "an animation walking between seeds (GIF, WebP or MP4)")
    p.add_argument("--seeds", required=True, help="keyframe seeds, e.g. 3,17,42")
    p.add_argument("--frames", type=int, help="frames in all (default 24 per leg)")
    p.add_argument("--loop", action="store_true", help="walk back to the first seed, for a seamless loop")
    p.add_argument("--fps", type=float, default=24.0)
    p.add_argument("--size", type=int, help="frame size in px (default: the model's)")
    p.add_argument("--class", dest="class_name", help="class folder name for conditional models")
    p.add_argument("--truncation", type=float, default=1.0)
    p.add_argument("--no-watermark", action="store_true", help="leave the invisible watermark out of the frames")
    p.add_argument("--out", required=True, help="FILE.gif, FILE.webp or FILE.mp4")
    p.set_defaults(func=cmd_interpolate)

    p = base("directions", "find directions that change one thing (SeFa or GANSpace)")
    p.add_argument("--method", choices=["sefa", "ganspace"], default="sefa")
    p.add_argument("--count", type=int, default=8)
    p.add_argument("--name", help="also save them in the run's library (RUN/directions/NAME.json)")
    p.add_argument("--out", required=True, help="DIRS.json")
    p.set_defaults(func=cmd_directions)

    p = base("edit", "move a seed (or saved latent) along directions and write the image")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--latent", help="start from a saved latent (.npz) instead of --seed")
    p.add_argument("--direction", action="append", default=[], metavar="DIRS.json:K", help="repeatable")
    p.add_argument("--amount", action="append", type=float, metavar="A", help="one per --direction")
    p.add_argument("--layers", choices=["coarse", "middle", "fine"], help="W models: move only these layers")
    p.add_argument("--mix-seed", type=int, help="W models: take this seed's styles on --mix-layers")
    p.add_argument("--mix-layers", choices=["coarse", "middle", "fine"], default="fine")
    p.add_argument("--class", dest="class_name", help="class folder name for conditional models")
    p.add_argument("--truncation", type=float, default=1.0)
    p.add_argument("--save-latent", action="store_true", help="also write OUT.npz, which regenerates the image")
    p.add_argument("--no-watermark", action="store_true", help="leave the invisible watermark out")
    p.add_argument("--out", required=True, help="FILE.png")
    p.set_defaults(func=cmd_edit)

    p = base("invert", "find the latent of your own image, to edit it")
    p.add_argument("image")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--noise", action="store_true", help="stylegan2: also fit the noise maps (finer detail)")
    p.add_argument("--class", dest="class_name", help="class folder name for conditional models")
    p.add_argument("--out", required=True, help="LATENT.npz")
    p.set_defaults(func=cmd_invert)


def _provenance(args: argparse.Namespace, model: Any, action: str, training: str | None = None) -> Any:
    """None (the writer's default: marked as the model's settings say), or with --no-watermark the same
    provenance with the watermark off, which the files' metadata and credentials record."""
    if not getattr(args, "no_watermark", False) and training is None:
        return None
    from dataclasses import replace

    from engine.provenance.stamp import provenance_for

    provenance = provenance_for(model, action, watermark=False if args.no_watermark else None)
    if args.no_watermark and not args.json:
        print("note: watermark off for these images (their metadata and content credentials say so)", file=sys.stderr)
    return replace(provenance, training=training) if training else provenance


def cmd_export(args: argparse.Namespace) -> int:
    from engine.export import export_onnx

    result = export_onnx(
        args.checkpoint or args.run,
        args.out,
        fp16=args.fp16,
        w_graphs=False if args.no_w_graphs else None,
        progress=None if args.json else (lambda m: print(m, file=sys.stderr)),
    )
    text = (
        f"Exported {result.path} ({result.precision}, {result.exporter} exporter): parity max abs error "
        f"{result.max_abs_error:.2e} (bound {result.bound:g}), PSNR {result.psnr_db:.1f} dB; card {result.card_path}"
    )
    graphs = [
        f"  {g.name} graph {g.path}: parity max abs error {g.max_abs_error:.2e} (bound {g.bound:g})"
        for g in result.graphs
    ]
    _emit(args, result.to_dict(), "\n".join([text, *graphs, *result.notes]))
    return 0


def cmd_translate(args: argparse.Namespace) -> int:
    from engine.export.open import open_translator
    from engine.inference.translate_files import collect_inputs, translate_files

    translator = open_translator(args.run, device=args.device, prefer_onnx=not args.pytorch)
    inputs = collect_inputs(args.inputs)
    if not inputs:
        raise ConfigError(f"no image files found in {', '.join(args.inputs)}")
    hints = [_parse_hint(text) for text in args.hint]
    bar = _progress_bar(args, "Translating", "img")
    result = translate_files(
        translator,
        inputs,
        Path(args.out),
        hints=hints,
        work_size=args.size,
        overwrite=args.overwrite,
        progress=bar.update_to if bar is not None else None,
        provenance=_provenance(args, translator.identity, "translate"),
    )
    if bar is not None:
        bar.close()
    lines = [f"Wrote {len(result.written)} image(s) to {args.out} ({translator.task}, {translator.description})"]
    lines += [f"skipped {path}: {reason}" for path, reason in result.skipped]
    lines += translator.notes  # e.g. a damaged newest checkpoint was set aside
    summary = {**result.to_dict(), "backend": translator.description, "task": translator.task}
    _emit(args, {**summary, "notes": list(translator.notes)}, "\n".join(lines))
    return 1 if result.skipped and not result.written else 0


def cmd_upscale(args: argparse.Namespace) -> int:
    from engine.export.open import open_upscaler
    from engine.inference.upscale_files import upscale_files

    if args.tile is not None and args.tile < 32:
        raise ConfigError(f"--tile must be at least 32 px, got {args.tile}")
    if args.overlap < 0 or (args.tile is not None and 3 * args.overlap >= args.tile):
        raise ConfigError(f"--overlap must be 0 or more and under a third of --tile, got {args.overlap}")
    upscaler = open_upscaler(args.source, device=args.device, prefer_onnx=not args.pytorch)
    if not args.json:
        print(f"Model: {upscaler.name} on {upscaler.backend}", *upscaler.notes, sep="\n", file=sys.stderr)
    bar = _progress_bar(args, "Upscaling", "img")
    result = upscale_files(
        upscaler,
        [Path(p) for p in args.inputs],
        Path(args.out),
        tile=args.tile,
        overlap=args.overlap,
        progress=bar.update_to if bar is not None else None,
        provenance=_provenance(args, upscaler.identity, "upscale"),
    )
    if bar is not None:
        bar.close()
    lines = [f"Upscaled x{upscaler.scale} with {upscaler.name} ({upscaler.backend}):"]
    lines += [f"wrote {path}" for path in result.written]
    lines += [f"skipped {path}: {reason}" for path, reason in result.skipped]
    lines += [f"note: {note}" for note in [*upscaler.notes, *result.notes]]
    summary = {**result.to_dict(), **{k: v for k, v in upscaler.info().items() if k != "notes"}}
    summary["notes"] = [*upscaler.notes, *result.notes]
    _emit(args, summary, "\n".join(lines))
    return 1 if result.skipped and not result.written else 0


def cmd_verify(args: argparse.Namespace) -> int:
    from engine.provenance.verify import verify_image

    results: list[dict[str, Any]] = []
    unreadable = 0
    for index, name in enumerate(args.images):
        try:
            report = verify_image(Path(name))
        except GanStudioError as exc:  # this file only: the others are still checked
            unreadable += 1
            results.append({"path": name, "error": str(exc)})
            if not args.json:
                print(f"error: {exc}", file=sys.stderr, flush=True)
            continue
        results.append(report.to_dict())
        if not args.json:  # one block per image as it is checked (a long list shows progress)
            print(("\n" if index else "") + "\n".join([f"{name}:", *(f"  {line}" for line in report.lines())]))
            sys.stdout.flush()
    if args.json:
        _emit(args, {"images": results, "checked": len(results) - unreadable, "unreadable": unreadable}, "")
    return 2 if unreadable else 0


def _parse_hint(text: str) -> tuple[float, float, tuple[int, int, int]]:
    """'X,Y,#RRGGBB' -> (x, y, (r, g, b))."""
    try:
        x, y, colour = text.split(",")
        colour = colour.strip().lstrip("#")
        if len(colour) != 6:
            raise ValueError
        r, g, b = (int(colour[i : i + 2], 16) for i in (0, 2, 4))
        return float(x), float(y), (r, g, b)
    except ValueError:
        raise ConfigError(f"--hint expects X,Y,#RRGGBB (pixels of the input and a hex colour), got {text!r}") from None


def _class_index(classes: list[str], name: str | None) -> int | None:
    if name is None:
        return None
    if name not in classes:
        raise ConfigError(f"class {name!r} is not in this model; choose one of: {', '.join(classes) or '(none)'}")
    return classes.index(name)


def cmd_bench(args: argparse.Namespace) -> int:
    from engine.export.benchmark import benchmark_run

    batches = _batch_sizes(args.batches)
    say = None if args.json else (lambda message: print(message, file=sys.stderr))
    report = benchmark_run(
        args.run, batches=batches, runs=args.runs, warmup=args.warmup, device=args.device, progress=say
    )
    _emit(args, report.to_dict(), _bench_table(report))
    return 0


def _batch_sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise ConfigError(f"--batches expects comma-separated batch sizes of at least 1, e.g. 1,8; got {text!r}")
    return sizes


def _bench_table(report: Any) -> str:
    """The benchmark as a table: ms and images/s per backend, and the ratio, one row per batch size."""
    lines = [
        f"{report.run_dir}: {report.checkpoint.name} in {report.torch_backend} vs {report.onnx.name} in "
        f"{report.ort_backend}; median of {report.runs} alternating runs after {report.warmup} warm-up",
        f"{'batch':>5}  {'PyTorch ms':>10}  {'img/s':>8}  {'onnxruntime ms':>14}  {'img/s':>8}  PyTorch/onnxruntime",
    ]
    for row in report.rows:
        faster = "onnxruntime faster" if row.speedup >= 1 else "PyTorch faster"
        lines.append(
            f"{row.batch:>5}  {row.torch_ms:>10.2f}  {row.torch_images_per_s:>8.1f}  {row.ort_ms:>14.2f}  "
            f"{row.ort_images_per_s:>8.1f}  {row.speedup:.2f}x ({faster})"
        )
    lines.append(f"onnxruntime provider that ran: {report.ort_provider}")
    return "\n".join(lines + [f"Note: {note}" for note in report.notes])


def cmd_info(args: argparse.Namespace) -> int:
    from engine.runs.info import run_info

    info = run_info(args.run)
    lines = [f"{k}: {v}" for k, v in info.items() if k != "last_stats"]
    if info.get("last_stats"):
        lines.append("last stats: " + ", ".join(f"{k}={v}" for k, v in info["last_stats"].items()))
    _emit(args, info, "\n".join(lines))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from engine.metrics import download_inception_weights, evaluate
    from engine.metrics.evaluate import format_result

    if args.download_inception:
        print(f"Inception weights: {download_inception_weights()}", file=sys.stderr)
    bars: list[Any] = []
    stage: dict[str, str | None] = {"name": None}

    def progress(done: int, total: int, message: str) -> None:
        if total <= 0:  # a step of unknown length (loading, scoring): say what it is
            if stage["name"] != message:
                stage["name"] = message
                _tqdm().write(f"{message}...", file=sys.stderr)  # above a running bar, not through it
            return
        if not bars:
            bars.append(_tqdm()(total=total, desc=message, unit="img", dynamic_ncols=True))
            stage["name"] = message
        elif stage["name"] != message:
            stage["name"] = message
            bars[0].reset(total=total)
            bars[0].set_description(message)
        bars[0].update(done - bars[0].n)

    try:
        result = evaluate(
            args.run,
            dataset_dir=args.dataset,
            metrics=args.metrics,
            extractor=args.extractor,
            num_samples=args.num_samples,
            max_real=args.max_real,
            device=args.device,
            seed=args.seed,
            inception_weights=args.inception_weights,
            progress=None if args.json else progress,
        )
    finally:
        for bar in bars:
            bar.close()
    _emit(args, result, format_result(result))
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from engine.families import get_family
    from engine.runs import TrainConfig
    from engine.tune import TrialInfo, TuneCallbacks, tune

    settings = _settings(args.set, TrainConfig, "--set", "training setting")
    family = get_family(args.family)  # an unknown family is answered (with the known ones) before anything runs
    options = {
        **settings.pop("family_options", {}),
        **_settings(args.option, family.Config, "--option", "option", f" of family '{args.family}'"),
    }
    _finite_options(options, args.family)
    if options:
        settings["family_options"] = options
    stop = {"flag": False}

    def on_sigint(signum: int, frame: FrameType | None) -> None:  # first Ctrl+C: stop the trial cleanly
        if stop["flag"]:
            raise KeyboardInterrupt
        stop["flag"] = True
        print("\nStopping this trial (a checkpoint is written); press Ctrl+C again to abort.", file=sys.stderr)

    bars: list[Any] = []

    def say(message: str) -> None:
        if not args.json:
            (bars[0].write if bars else print)(message)

    def on_trial_start(info: TrialInfo) -> None:
        say(f"Trial {info.trial}/{args.trials} ({info.run_dir.name}): {_tuned(info.settings)}")

    def on_progress(record: dict[str, Any]) -> None:
        if args.json:
            return
        if not bars:
            bars.append(_tqdm()(total=record["steps"], initial=record["step"] - 1, unit="step", dynamic_ncols=True))
        bars[0].update(record["step"] - bars[0].n)
        if record["kd"] is not None:
            bars[0].set_postfix(KD=f"{record['kd'] * 1e3:.2f}e-3", refresh=False)

    def on_trial_end(info: TrialInfo) -> None:
        while bars:
            bars.pop().close()
        outcome = {
            "complete": f"KD {info.score * 1e3:.2f} x1e-3" if info.score is not None else "complete",
            "pruned": "stopped early (worse than the median of the finished trials at the same step)",
            "failed": f"failed: {info.error}",
            "interrupted": "interrupted; run the same command again to continue it",
        }[info.state]
        say(f"Trial {info.trial}: {outcome} at step {info.step}")

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        result = tune(
            args.dataset,
            args.family,
            args.trials,
            args.minutes,
            args.runs,
            steps=args.steps,
            settings=settings,
            name=args.name,
            seed=args.seed,
            kid_every=args.kid_every,
            callbacks=TuneCallbacks(
                on_trial_start=on_trial_start,
                on_trial_end=on_trial_end,
                on_progress=on_progress,
                should_stop=lambda: stop["flag"],
            ),
        )
    finally:
        signal.signal(signal.SIGINT, previous)
        for bar in bars:
            bar.close()
    lines = [f"Tune {result.tune_dir}: {len(result.trials)} trial(s), summary {result.summary_path}"]
    for t in result.trials:
        score = f"{t.score * 1e3:8.2f}" if t.score is not None else f"{t.state:>8}"
        lines.append(f"  {t.run_dir.name}  {score}  {_tuned(t.settings)}")
    if result.best is not None:
        best = result.best
        limit = "--steps N" if args.steps else "--minutes M"  # a trial stops at its own kind of limit
        lines += [
            f"Best: {best.run_dir.name}, {result.metric} {(best.score or 0.0) * 1e3:.2f} x1e-3 (lower is better): "
            + _tuned(best.settings),
            f"Train with them (add --steps or --minutes):\n  {result.train_command}",
            f"or continue the best trial: gan-studio-cli resume {best.run_dir} {limit} (a new total)",
        ]
    else:
        lines.append("No trial completed yet, so there are no best settings.")
    if result.stopped:
        lines.append("Stopped: run the same command again to resume (finished trials are kept).")
    _emit(args, {**result.to_dict(), "summary": str(result.summary_path)}, "\n".join(lines))
    return 0


def _tuned(settings: dict[str, Any]) -> str:
    """'lr_g=0.0002, loss='hinge', augment=''' for a trial's settings."""
    return ", ".join(f"{k}={v!r}" for k, v in settings.items())


def cmd_plan(args: argparse.Namespace) -> int:
    from engine.device import select_device
    from engine.training.planner import plan_memory

    if args.world_size < 1:
        raise ConfigError(f"--world-size is the number of training processes, at least 1 (got {args.world_size})")
    config = _train_config(_train_args(args))  # the settings exactly as `train` takes these flags
    plan = plan_memory(config, select_device(config.device), world_size=args.world_size, probe=not args.quick)
    forms = {"accumulate": "N", "amp": "true|false", "channels_last": "true|false"}
    planned = [f"--set {k}={form}" for k, form in forms.items() if plan.chosen[k]]
    text = plan.describe()
    if planned:
        text += f"\nTo choose for yourself, give train: {' '.join(planned)}"
    _emit(args, plan.to_dict(), text)
    return 0


def _train_args(args: argparse.Namespace) -> argparse.Namespace:
    """The `train` command's namespace for plan's flags (every train default included), so plan reads a
    configuration through the same code as train."""
    # the step limit does not change the memory a step needs; train insists on one
    argv = ["train", str(args.dataset), f"--family={args.family}", f"--device={args.device}", "--steps=1"]
    argv += [f"--size={args.size}"] if args.size is not None else []
    argv += [f"--batch={args.batch}"] if args.batch is not None else []
    argv += [f"--task={args.task}"] if args.task else []
    argv += [f"--set={pair}" for pair in args.set] + [f"--option={pair}" for pair in args.option]
    return build_parser().parse_args(argv)


# -- plumbing ----------------------------------------------------------------------------------------
def _tqdm() -> Any:  # tqdm ships no type information
    from tqdm import tqdm

    return tqdm


def _progress_bar(args: argparse.Namespace, desc: str, unit: str) -> Any:
    if args.json:
        return None
    bar = _tqdm()(desc=desc, unit=unit, dynamic_ncols=True)

    def update_to(done: int, total: int, *_: Any) -> None:
        bar.total = total
        bar.update(done - bar.n)

    bar.update_to = update_to
    return bar


def _global_flags(default: Any) -> argparse.ArgumentParser:
    flags = argparse.ArgumentParser(add_help=False)
    flags.add_argument("--json", action="store_true", default=default, help="print a machine-readable JSON summary")
    flags.add_argument("--debug", action="store_true", default=default, help="show tracebacks for unexpected errors")
    return flags


def build_parser() -> argparse.ArgumentParser:
    """The argparse tree for every command."""
    # --json/--debug work before and after the command. A subcommand parses into a fresh namespace
    # whose defaults are copied over the main parser's, so there they default to SUPPRESS (absent
    # unless given): a flag given before the command is then not reset to False.
    common = _global_flags(argparse.SUPPRESS)
    parser = argparse.ArgumentParser(
        prog="gan-studio-cli", description="Train and use GANs on your own images.", parents=[_global_flags(False)]
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("import", parents=[common], help="check and prepare an image folder")
    p.add_argument("folder")
    p.add_argument("--out", help="dataset folder to create (default: datasets/<folder name>)")
    p.add_argument("--size", type=int, default=64, help="training resolution in pixels")
    p.add_argument("--fit", choices=["crop", "pad", "stretch"], default="crop")
    p.add_argument(
        "--alpha",
        choices=["white", "black", "keep"],
        default="white",
        help="composite transparent images on white/black, or keep the alpha channel",
    )
    p.add_argument(
        "--drop-duplicates",
        action="store_true",
        help="leave near duplicates out: keep the largest image of each group (reasons in the report)",
    )
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("attest", parents=[common], help="record who holds the rights to a dataset")
    p.add_argument("dataset")
    p.add_argument("--rights", required=True, choices=["own", "licensed", "public-domain"])
    p.add_argument(
        "--people",
        required=True,
        choices=["none", "consented"],
        help="none: no identifiable people; consented: they appear and agreed",
    )
    p.add_argument("--by", default=getpass.getuser(), help="who attests (default: your user name)")
    p.add_argument("--note", default="")
    p.add_argument(
        "--faces-reviewed",
        action="store_true",
        help="with --people none: you looked at the images the import flagged as faces and none shows a real, "
        "identifiable person (they are listed in the import report)",
    )
    p.set_defaults(func=cmd_attest)

    p = sub.add_parser("train", parents=[common], help="train a model on a prepared dataset")
    p.add_argument("dataset", nargs="?", help="prepared dataset folder (optional with --config)")
    p.add_argument(
        "--config",
        help="every setting from this JSON file (a run's config.json, or what the studio writes for torchrun); "
        "--set, --steps, --minutes, --batch, --seed and --device still apply on top",
    )
    p.add_argument(
        "--family",
        default="dcgan",
        help="dcgan, fastgan, stylegan2, vanilla (noise -> image); pix2pix, cyclegan (image -> image); "
        "esrgan (image -> the image enlarged x2/x4)",
    )
    p.add_argument(
        "--task",
        choices=task_names(),
        help="image-to-image families: what to learn. "
        + "; ".join(f"{name}: {get_task(name).description}" for name in task_names()),
    )
    p.add_argument("--size", type=int, help="training resolution (default: the dataset's; esrgan: the crop size)")
    p.add_argument("--scale", type=int, help="esrgan: upscaling factor, 2 or 4 (the option scale; default 4)")
    p.add_argument("--steps", type=int)
    p.add_argument("--minutes", type=float, help="time limit in minutes (> 0)")
    p.add_argument("--out", help="run folder (default: runs/<family>-<time> beside the dataset)")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--lr", type=float, help="learning rate of G and D (settings lr_g and lr_d, > 0)")
    p.add_argument(
        "--loss", choices=LOSS_NAMES, help="adversarial loss (setting loss; wgan-gp: also n_critic, gp_gamma)"
    )
    p.add_argument("--r1", type=float, help="R1 penalty weight (setting r1_gamma, >= 0; 0 = off)")
    p.add_argument("--augment", help="DiffAugment policy, e.g. color,translation,cutout ('' = off)")
    p.add_argument("--no-ada", action="store_true", help="always augment instead of adapting the probability")
    p.add_argument("--preview-every", type=int)
    p.add_argument("--checkpoint-every", type=int)
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="family option")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any training setting")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("resume", parents=[common], help="continue a run from its newest checkpoint")
    p.add_argument("run")
    p.add_argument("--steps", type=int, help="new total step limit")
    p.add_argument("--minutes", type=float, help="new total time limit")
    p.add_argument("--device")
    p.set_defaults(func=cmd_resume)

    p = sub.add_parser("generate", parents=[common], help="write PNG images from a trained run")
    p.add_argument("run", help="run folder, checkpoint file or exported .onnx file")
    p.add_argument("--count", type=int, default=16)
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0, help="first seed; image i uses seed+i")
    p.add_argument("--class", dest="class_name", help="class folder name for conditional models")
    p.add_argument(
        "--per-class",
        type=int,
        metavar="N",
        help="N images of every class into OUT/<class>/ plus OUT/manifest.json (conditional models; replaces --count)",
    )
    p.add_argument("--truncation", type=float, default=1.0)
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--no-watermark",
        action="store_true",
        help="leave the invisible watermark out of these images (recorded in their metadata and credentials)",
    )
    p.add_argument("--latent", help="a latent saved by invert or edit (.npz): write its image exactly")
    p.set_defaults(func=cmd_generate)

    _add_editing_commands(sub, common)

    p = sub.add_parser("translate", parents=[common], help="translate images with a pix2pix/cyclegan run or export")
    p.add_argument("run", help="run folder, checkpoint file or exported .onnx file")
    p.add_argument("inputs", nargs="+", help="image files or folders (sketches, images to colorize, A-side images)")
    p.add_argument("--out", required=True, help="folder for the results (existing files are never overwritten)")
    p.add_argument(
        "--hint",
        action="append",
        default=[],
        metavar="X,Y,#RRGGBB",
        help="colorize: a colour hint at pixel X,Y of the input (repeatable)",
    )
    p.add_argument("--size", type=int, help="long side the network runs at (default: the training resolution)")
    p.add_argument("--overwrite", action="store_true", help="replace results of the same name")
    p.add_argument("--pytorch", action="store_true", help="use PyTorch even when a current ONNX export exists")
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--no-watermark",
        action="store_true",
        help="leave the invisible watermark out of these images (recorded in their metadata and credentials)",
    )
    p.set_defaults(func=cmd_translate)

    p = sub.add_parser(
        "upscale", parents=[common], help="enlarge images with an upscale run, an .onnx upscaler or a model file"
    )
    p.add_argument(
        "source",
        help="upscale run folder, .onnx file, or a model file (.pth/.pt/.ckpt/.safetensors: Real-ESRGAN, SwinIR, ...)",
    )
    p.add_argument("inputs", nargs="+", help="image files or folders")
    p.add_argument("--out", required=True, help="folder for <name>-x<scale>.png results (never overwritten)")
    p.add_argument("--tile", type=int, help="tile side in input pixels (default: chosen from free memory)")
    p.add_argument("--overlap", type=int, default=16, help="pixels neighbouring tiles share and blend (default 16)")
    p.add_argument("--pytorch", action="store_true", help="a run folder: use PyTorch even when a current export exists")
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--no-watermark",
        action="store_true",
        help="leave the invisible watermark out of these images (recorded in their metadata and credentials)",
    )
    p.set_defaults(func=cmd_upscale)

    p = sub.add_parser(
        "export", parents=[common], help="export a run's generator, translator or upscaler to ONNX with a parity check"
    )
    p.add_argument("run", help="run folder")
    p.add_argument("--checkpoint", help="a specific checkpoint file (default: the newest)")
    p.add_argument("--fp16", action="store_true", help="half-precision weights (smaller, faster on GPUs)")
    p.add_argument("--out", required=True, help="target .onnx file")
    p.add_argument(
        "--no-w-graphs",
        action="store_true",
        help="stylegan2: skip the OUT-mapping.onnx and OUT-synthesis.onnx W-space graphs written beside OUT",
    )
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "bench", parents=[common], help="time a run's checkpoint in PyTorch against its ONNX export in onnxruntime"
    )
    p.add_argument("run", help="run folder with a current export (see the export command)")
    p.add_argument(
        "--batches", default="1,8", help="comma-separated batch sizes to time (default: 1,8)", metavar="N,N,..."
    )
    p.add_argument("--runs", type=int, default=15, help="timed calls per backend and batch size (median reported)")
    p.add_argument("--warmup", type=int, default=3, help="untimed calls per backend first")
    p.add_argument("--device", default="auto", help="device of the PyTorch side")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser(
        "verify",
        parents=[common],
        help="check images for GAN Studio's watermark, metadata and content credentials (and tampering)",
    )
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files to check")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("info", parents=[common], help="describe a run folder")
    p.add_argument("run")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("evaluate", parents=[common], help="score generated images against the training images")
    p.add_argument("run", help="run folder, checkpoint file or exported .onnx file")
    p.add_argument("--dataset", help="dataset to compare with (default: the run's; required for .onnx files)")
    p.add_argument(
        "--metrics", default="kid", help="comma-separated: kid, fid, pr, is, memorization, classes (default: kid)"
    )
    p.add_argument(
        "--extractor",
        choices=["efflite0", "inception"],
        default="efflite0",
        help="efflite0: offline, scores labelled FD/KD (EffLite0); inception: standard FID/KID/IS, "
        "needs the pytorch-fid weights file",
    )
    p.add_argument("--num-samples", type=int, default=1000, help="generated images to score")
    p.add_argument("--max-real", type=int, default=5000, help="at most this many real images (cached)")
    p.add_argument("--seed", type=int, default=0, help="first seed of the generated images")
    p.add_argument("--device", default="auto")
    p.add_argument("--inception-weights", help="path of pt_inception-2015-12-05-6726825d.pth")
    p.add_argument(
        "--download-inception", action="store_true", help="download the Inception weights first (needs internet)"
    )
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "tune", parents=[common], help="find good settings: short trials scored by KD (optuna's TPE), the best offered"
    )
    p.add_argument("dataset")
    p.add_argument("--family", default="dcgan", help="a noise-to-image family: dcgan, fastgan, stylegan2, vanilla")
    p.add_argument("--trials", type=int, default=12, help="trials to finish (a resumed tune counts the earlier ones)")
    p.add_argument("--minutes", type=float, help="training minutes per trial")
    p.add_argument("--steps", type=int, help="training steps per trial (instead of --minutes)")
    p.add_argument(
        "--name", help="the tune folder is RUNS/tune-NAME (default: <dataset>-<family>); the same name resumes"
    )
    p.add_argument("--runs", help="folder that holds the tune folder (default: runs beside the dataset)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampler (every trial trains with setting seed)")
    p.add_argument("--kid-every", type=int, help="steps between KD measurements (default: 4 per trial with --steps)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="family option, every trial")
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="training setting for every trial (not tuned)"
    )
    p.set_defaults(func=cmd_tune)

    p = sub.add_parser(
        "plan",
        parents=[common],
        help="plan memory for training: mixed precision, memory layout and gradient accumulation for the device",
    )
    p.add_argument("dataset", help="prepared dataset folder")
    p.add_argument("--family", default="dcgan", help="model family (as for train)")
    p.add_argument("--task", choices=task_names(), help="image-to-image families: what to learn (as for train)")
    p.add_argument("--size", type=int, help="training resolution (default: the dataset's)")
    p.add_argument("--batch", type=int, help="images per step, all processes together (setting batch_size)")
    p.add_argument("--device", default="auto")
    p.add_argument("--world-size", type=int, default=1, help="training processes (torchrun --nproc_per_node)")
    p.add_argument("--quick", action="store_true", help="the device's defaults only: build and measure no model")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="family option")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="training setting; amp, channels_last and accumulate given here are kept, the others planned",
    )
    p.set_defaults(func=cmd_plan)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except GanStudioError as exc:
        rank = _process_rank()
        print(f"{f'[process {rank}] ' if rank > 0 else ''}error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("aborted", file=sys.stderr)
        return 130
    except Exception as exc:  # the last line of defence: one line for the user, details on request
        if args.debug:
            traceback.print_exc()
        print(f"unexpected error: {type(exc).__name__}: {exc} (run again with --debug for details)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
