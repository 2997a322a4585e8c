"""gan-studio-cli end to end in subprocesses: import, attest, train, info, generate, resume, hard kill;
in process (main()): --json before or after the command, settings refused in one line before anything
is printed, and bench on a tiny exported run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.cli import main
from engine.errors import ConfigError
from engine.export import export_onnx
from engine.inference import TorchRunner
from engine.provenance.watermark import embed
from engine.runs import TrainConfig
from engine.runs.checkpoint import list_checkpoints, load_checkpoint
from engine.training import Trainer

from .helpers import assert_output_provenance, make_dataset, tiny_config, watermark_payload_of, write_shapes_folder

ROOT = Path(__file__).resolve().parents[2]
TINY = [
    "--option",
    "latent_dim=16",
    "--option",
    "base_channels=8",
    "--option",
    "max_channels=32",
    "--batch",
    "8",
    "--set",
    "conditional=true",
]


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "engine", *args], cwd=ROOT, capture_output=True, text=True, timeout=240
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"cli {args} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    write_shapes_folder(tmp / "art")
    (tmp / "art" / "circles" / "broken.png").write_text("this is not an image")
    return tmp


def test_cli_end_to_end(workspace):
    data, run, out = workspace / "ds", workspace / "run", workspace / "gen"
    report = json.loads(cli("import", str(workspace / "art"), "--out", str(data), "--size", "32", "--json").stdout)
    assert report["kept"] == 24 and len(report["skipped"]) == 1

    refused = cli("train", str(data), "--out", str(run), "--steps", "2", *TINY, check=False)
    assert refused.returncode == 2
    assert "gan-studio-cli attest" in refused.stderr and "Traceback" not in refused.stderr

    cli("attest", str(data), "--rights", "own", "--people", "none", "--by", "tester")
    summary = json.loads(
        cli(
            "train",
            str(data),
            "--out",
            str(run),
            "--steps",
            "4",
            "--preview-every",
            "2",
            "--checkpoint-every",
            "2",
            *TINY,
            "--json",
        ).stdout
    )
    assert summary["step"] == 4 and not summary["stopped"]
    assert any("Training 'dcgan' on CPU" in line for line in summary["log"])

    info = json.loads(cli("info", str(run), "--json").stdout)
    assert info["family"] == "dcgan" and info["step"] == 4 and info["classes"] == ["circles", "squares"]

    cli("generate", str(run), "--count", "5", "--out", str(out), "--seed", "10", "--class", "squares")
    files = sorted(out.iterdir())
    assert [f.name for f in files] == [f"seed-{s:06d}.png" for s in range(10, 15)]
    assert Image.open(files[0]).size == (32, 32)
    # marked as PyTorch drew it, described and signed
    record = assert_output_provenance(files[0], action="generate")
    raw = TorchRunner(run, device="cpu").generate([10], class_index=1)[0]
    written = np.asarray(Image.open(files[0]).convert("RGB"))
    assert np.array_equal(written, embed(raw, watermark_payload_of(record))) and not np.array_equal(written, raw)
    plain = workspace / "gen-plain"
    seed_10 = ("--count", "1", "--seed", "10", "--class", "squares")
    cli("generate", str(run), *seed_10, "--out", str(plain), "--no-watermark")
    (unmarked,) = plain.iterdir()
    assert_output_provenance(unmarked, watermark=False)  # off is recorded, and still signed
    assert np.array_equal(np.asarray(Image.open(unmarked).convert("RGB")), raw)

    resumed = json.loads(cli("resume", str(run), "--steps", "6", "--json").stdout)
    assert resumed["step"] == 6

    exported = json.loads(cli("export", str(run), "--out", str(workspace / "g.onnx"), "--json").stdout)
    assert exported["max_abs_error"] <= 1e-4 and exported["precision"] == "fp32"
    onnx_gen = json.loads(
        cli(
            "generate", str(workspace / "g.onnx"), "--count", "2", "--out", str(workspace / "onnx-out"), "--json"
        ).stdout
    )
    assert onnx_gen["backend"].startswith("onnxruntime") and len(onnx_gen["files"]) == 2
    assert_output_provenance(Path(onnx_gen["files"][0]), action="generate")  # the graph marked it


@pytest.mark.parametrize(
    "args,needle",
    [
        (["train", "/no/such/dataset", "--steps", "1"], "/no/such/dataset"),
        (["generate", "/no/such/run", "--out", "x"], "/no/such/run"),
        (["info", "/no/such/run"], "not a GAN Studio run folder"),
        (["train", "x", "--family", "nope", "--steps", "1"], None),
    ],
)
def test_user_errors_are_one_line(args, needle, workspace):
    proc = cli(*args, check=False)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    if needle:
        assert needle in proc.stderr


def test_unknown_family_lists_known_ones(workspace):
    data = workspace / "ds2"
    cli("import", str(workspace / "art"), "--out", str(data), "--size", "32")
    cli("attest", str(data), "--rights", "own", "--people", "none")
    proc = cli("train", str(data), "--family", "nope", "--steps", "1", check=False)
    assert proc.returncode == 2 and "dcgan" in proc.stderr and "fastgan" in proc.stderr


def test_hard_kill_mid_training_resumes_cleanly(workspace):
    data, run = workspace / "ds3", workspace / "killed"
    cli("import", str(workspace / "art"), "--out", str(data), "--size", "32")
    cli("attest", str(data), "--rights", "own", "--people", "none")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "engine",
            "train",
            str(data),
            "--out",
            str(run),
            "--steps",
            "100000",
            "--checkpoint-every",
            "3",
            *TINY,
            "--json",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 120
        while len(list_checkpoints(run)) < 2 and time.time() < deadline:
            time.sleep(0.05)
        assert list_checkpoints(run), "no checkpoint appeared"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    for path in list_checkpoints(run):
        assert load_checkpoint(path)["step"] % 3 == 0  # every complete file is a valid checkpoint
    last = load_checkpoint(list_checkpoints(run)[-1])["step"]
    summary = json.loads(cli("resume", str(run), "--steps", str(last + 3), "--json").stdout)
    assert summary["step"] == last + 3
    assert not list((run / "checkpoints").glob(".*.tmp"))
    steps = [json.loads(line)["step"] for line in (run / "stats.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)), "stats history must be one consistent sequence after resume"


def test_translate_end_to_end(workspace):
    """train --task colorize, export, translate a folder (with a broken file and a hint), never overwrite."""
    data, run = workspace / "ds-colour", workspace / "colour-run"
    cli("import", str(workspace / "art"), "--out", str(data), "--size", "32")
    cli("attest", str(data), "--rights", "own", "--people", "none")
    cli(
        "train",
        str(data),
        "--family",
        "pix2pix",
        "--task",
        "colorize",
        "--out",
        str(run),
        "--steps",
        "2",
        "--batch",
        "4",
        "--option",
        "base_channels=8",
        "--option",
        "depth=2",
        "--option",
        "d_base_channels=8",
    )
    info = json.loads(cli("info", str(run), "--json").stdout)
    assert info["kind"] == "translate" and info["task"] == "colorize"
    exported = json.loads(cli("export", str(run), "--out", str(run / "exports" / "t.onnx"), "--json").stdout)
    assert exported["max_abs_error"] <= 1e-4

    inputs, out = workspace / "to-colour", workspace / "coloured"
    inputs.mkdir()
    Image.new("L", (45, 30), 128).save(inputs / "grey.png")
    Image.new("RGB", (20, 50), (10, 200, 30)).save(inputs / "green.jpg")
    (inputs / "broken.png").write_bytes(b"\x89PNG not really")
    first = json.loads(
        cli("translate", str(run), str(inputs), "--out", str(out), "--hint", "3,4,#ff0000", "--json").stdout
    )
    assert first["backend"].startswith("onnxruntime")  # the export is newer than the checkpoint
    assert sorted(Path(p).name for p in first["written"]) == ["green.png", "grey.png"]
    assert [Path(s["path"]).name for s in first["skipped"]] == ["broken.png"]
    assert Image.open(out / "grey.png").size == (45, 30)
    for name in first["written"]:  # 30 px is under the watermark's 32: described and signed, unmarked
        assert_output_provenance(Path(name), action="translate")
    second = json.loads(
        cli("translate", str(run), str(inputs / "grey.png"), "--out", str(out), "--pytorch", "--json").stdout
    )
    assert [Path(p).name for p in second["written"]] == ["grey-1.png"] and second["backend"].startswith("PyTorch")

    bad_hint = cli("translate", str(run), str(inputs / "grey.png"), "--out", str(out), "--hint", "3,4,red", check=False)
    assert bad_hint.returncode == 2 and "X,Y,#RRGGBB" in bad_hint.stderr
    wrong_task = cli("train", str(data), "--family", "dcgan", "--task", "sketch", "--steps", "1", check=False)
    assert wrong_task.returncode == 2 and "no task" in wrong_task.stderr


# -- in process: flags, settings, bench ---------------------------------------------------------------
def run_main(capsys, *args: str) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of main(args) in this process."""
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("position", ["before", "after"])
def test_json_flag_before_or_after_the_command(position, tmp_path, capsys):
    folder = write_shapes_folder(tmp_path / "art", per_class=3)
    command = ["import", str(folder), "--out", str(tmp_path / "ds"), "--size", "32"]
    code, out, _ = run_main(capsys, *(["--json", *command] if position == "before" else [*command, "--json"]))
    assert code == 0
    assert json.loads(out)["kept"] == 6  # JSON, not the text summary
    code, out, _ = run_main(
        capsys, *(["--json", "info", "/no/such/run"] if position == "before" else ["info", "/no/such/run", "--json"])
    )
    assert code == 2 and out == ""


def test_text_output_without_json(tmp_path, capsys):
    folder = write_shapes_folder(tmp_path / "art", per_class=2)
    code, out, _ = run_main(capsys, "import", str(folder), "--out", str(tmp_path / "ds"), "--size", "32")
    assert code == 0 and out.startswith("Imported 4 of 4") and "gan-studio-cli attest" in out


@pytest.fixture(scope="module")
def attested(tmp_path_factory):
    """An imported, attested dataset: without the up-front checks these commands would start training."""
    return make_dataset(tmp_path_factory.mktemp("attested"), per_class=3)


@pytest.mark.parametrize(
    "flags,needles",
    [
        (["--lr", "nan"], ["'lr_g'", "finite number > 0", "nan"]),
        (["--lr", "inf"], ["'lr_g'", "finite number > 0", "inf"]),
        (["--minutes", "nan"], ["'minutes'", "> 0"]),
        (["--r1=-inf"], ["'r1_gamma'", ">= 0"]),
        (["--set", "lr_g=nan"], ["'lr_g'", "finite number > 0"]),
        (["--set", "lr_d=inf"], ["'lr_d'", "finite number > 0"]),
        (["--set", "beta2=1.5"], ["'beta2'", "in [0, 1)"]),
        (["--set", "lr_g=fast"], ["'lr_g'", "must be a number", "'fast'"]),
        (["--set", "bogus=1"], ["unknown training setting 'bogus' in --set", "lr_g", "batch_size", "r1_gamma"]),
        (["--option", "bogus=1"], ["unknown option 'bogus' of family 'dcgan'", "base_channels", "latent_dim"]),
        (["--family", "fastgan", "--option", "recon_weight=nan"], ["'recon_weight'", "fastgan", "finite"]),
        (["--family", "nope"], ["unknown model family 'nope'", "dcgan", "fastgan", "pix2pix"]),
        (["--set", "family=nope"], ["unknown model family 'nope'", "dcgan"]),
    ],
)
def test_bad_settings_are_one_line_before_anything_is_printed(flags, needles, attested, tmp_path, capsys):
    code, out, err = run_main(capsys, "train", str(attested), "--out", str(tmp_path / "run"), "--steps", "1", *flags)
    assert code == 2
    assert out == ""  # nothing printed before the error: no "Training 'x' on CPU"
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err and "__init__" not in err and "unexpected" not in err
    for needle in needles:
        assert needle in err, (needle, err)
    assert not (tmp_path / "run").exists()


def test_resume_refuses_a_non_finite_time_limit(tmp_path, capsys):
    dataset = make_dataset(tmp_path, per_class=2)
    Trainer(tiny_config(dataset, steps=1), run_dir=tmp_path / "run").run()
    code, out, err = run_main(capsys, "resume", str(tmp_path / "run"), "--minutes", "inf")
    assert code == 2 and out == "" and "'minutes'" in err and "> 0" in err


def test_train_config_validate_checks_every_float_setting():
    """The GUI calls validate() too: every float field of TrainConfig refuses NaN and infinity."""
    import dataclasses

    floats = [f.name for f in dataclasses.fields(TrainConfig) if "float" in str(f.type)]
    assert {"lr_g", "lr_d", "minutes", "r1_gamma", "beta1", "ema_half_life_kimg", "grad_clip"} <= set(floats)
    TrainConfig(dataset="d").validate()
    for name in floats:
        for bad in (float("nan"), float("inf")):
            with pytest.raises(ConfigError, match=f"'{name}' must be a finite number"):
                TrainConfig(dataset="d", **{name: bad}).validate()
    with pytest.raises(ConfigError, match="'lr_d' must be a finite number > 0"):
        TrainConfig(dataset="d", lr_d=0.0).validate()


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    Trainer(tiny_config(make_dataset(tmp, per_class=2), steps=2), run_dir=tmp / "run").run()
    return tmp / "run"


def test_bench_needs_an_export_then_prints_both_backends(tiny_run, capsys):
    code, out, err = run_main(capsys, "bench", str(tiny_run))
    assert code == 2 and out == ""
    assert "export it to ONNX first" in err and "gan-studio-cli export" in err and len(err.strip().splitlines()) == 1

    export_onnx(tiny_run, tiny_run / "exports" / "generator.onnx")
    code, out, _ = run_main(
        capsys, "--json", "bench", str(tiny_run), "--batches", "1,3", "--runs", "2", "--warmup", "1"
    )
    assert code == 0
    report = json.loads(out)
    assert [row["batch"] for row in report["rows"]] == [1, 3]
    for row in report["rows"]:
        assert row["torch_ms"] > 0 and row["ort_ms"] > 0
        assert row["speedup"] == pytest.approx(row["torch_ms"] / row["ort_ms"])
        assert row["ort_images_per_s"] == pytest.approx(row["batch"] * 1000 / row["ort_ms"])
    assert report["ort_provider"].endswith("ExecutionProvider") and report["ort_provider"] in report["ort_backend"]
    assert report["torch_backend"].startswith("PyTorch") and report["onnx"].endswith("generator.onnx")
    assert report["runs"] == 2 and report["warmup"] == 1

    code, out, _ = run_main(capsys, "bench", str(tiny_run), "--batches", "2", "--runs", "1")
    assert code == 0
    lines = out.splitlines()
    assert "PyTorch ms" in lines[1] and "onnxruntime ms" in lines[1] and "img/s" in lines[1]
    assert lines[2].split()[0] == "2" and lines[2].rstrip().endswith("faster)")
    assert f"provider that ran: {report['ort_provider']}" in out

    code, out, err = run_main(capsys, "bench", str(tiny_run), "--batches", "0,x")
    assert code == 2 and "--batches" in err and "'0,x'" in err
