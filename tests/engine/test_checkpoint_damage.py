"""Checkpoints that survive damage: every checkpoint carries a sha256; readers of a run folder fall back
to the newest checkpoint that verifies, say so in one line and rename the damaged file *.damaged; the
Trainer also checkpoints on training time (checkpoint_minutes)."""

from __future__ import annotations

import json
import shutil
import time
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.errors import CheckpointDamaged, CheckpointError, ConfigError
from engine.runs import TrainConfig
from engine.runs.checkpoint import (
    CHECKPOINT_KIND,
    checkpoint_path,
    list_checkpoints,
    load_checkpoint,
    load_latest_checkpoint,
    newest_verified_checkpoint,
    save_checkpoint,
    verify_checkpoint,
)
from engine.runs.info import run_info
from engine.training import Callbacks, Trainer

from .helpers import make_dataset, tiny_config

STEPS = dict(steps=6, checkpoint_every=2, keep_checkpoints=5, preview_every=0, checkpoint_minutes=None)


def truncate(data: bytes) -> bytes:
    return data[: len(data) // 2]


def flip_bit(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0x10]) + data[middle + 1 :]


def zero_fill(data: bytes) -> bytes:
    return bytes(len(data))


DAMAGE = {"truncate": truncate, "bit-flip": flip_bit, "zero-fill": zero_fill}
REASON = {"truncate": "unreadable: ", "bit-flip": "checksum mismatch", "zero-fill": "unreadable: "}


def damage(path: Path, how: str) -> bytes:
    """Damage a file in place the way a bad disk or an interrupted copy would; returns the damaged bytes."""
    data = DAMAGE[how](path.read_bytes())
    path.write_bytes(data)  # deliberately not atomic: this is the damage
    return data


def tensors(obj, prefix: str = ""):
    """(name, tensor) for every tensor in a nested state."""
    if isinstance(obj, torch.Tensor):
        yield prefix, obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield from tensors(value, f"{prefix}.{key}")
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            yield from tensors(value, f"{prefix}[{i}]")


def assert_same_state(a: dict, b: dict) -> None:
    ta, tb = dict(tensors(a["family_state"])), dict(tensors(b["family_state"]))
    assert ta.keys() == tb.keys() and len(ta) > 10
    for name in ta:
        assert torch.equal(ta[name], tb[name]), f"{name} differs"


def stats_steps(run: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run / "stats.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("damage"))


@pytest.fixture(scope="module")
def trained(dataset, tmp_path_factory) -> Path:
    """A finished 6-step run with checkpoints at steps 2, 4 and 6 (kept read-only: tests copy it)."""
    run = tmp_path_factory.mktemp("trained") / "run"
    Trainer(tiny_config(dataset, **STEPS), run_dir=run).run()
    assert [p.name for p in list_checkpoints(run)] == ["step-000002.pt", "step-000004.pt", "step-000006.pt"]
    return run


@pytest.fixture(scope="module")
def reference(trained, tmp_path_factory) -> dict:
    """The final state of an undamaged run resumed from step 4 (its step-6 checkpoint removed)."""
    run = tmp_path_factory.mktemp("reference") / "run"
    shutil.copytree(trained, run)
    checkpoint_path(run, 6).unlink()
    assert Trainer.resume(run).run().step == 6
    return load_checkpoint(checkpoint_path(run, 6))


def copy_run(trained: Path, tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    return run


# -- resume ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("how", list(DAMAGE))
def test_resume_falls_back_to_the_previous_checkpoint_and_matches_an_undamaged_resume(
    how, trained, reference, tmp_path
):
    run = copy_run(trained, tmp_path)
    newest = checkpoint_path(run, 6)
    damaged_bytes = damage(newest, how)
    logs: list[str] = []

    result = Trainer.resume(run, Callbacks(on_log=logs.append)).run()

    notes = [line for line in logs if "is damaged" in line]
    assert len(notes) == 1, logs
    assert notes[0].startswith(f"checkpoints/step-000006.pt is damaged ({REASON[how]}")
    assert notes[0].endswith("); renamed to step-000006.pt.damaged; using step-000004.pt")
    assert "Resumed from step-000004.pt (step 4)" in logs
    assert notes[0] in (run / "log.txt").read_text()
    # the damaged file is kept, byte for byte, beside the new step-6 checkpoint
    assert (run / "checkpoints" / "step-000006.pt.damaged").read_bytes() == damaged_bytes
    assert [p.name for p in list_checkpoints(run)] == ["step-000002.pt", "step-000004.pt", "step-000006.pt"]
    assert result.step == 6 and verify_checkpoint(newest)
    assert_same_state(load_checkpoint(newest), reference)
    assert stats_steps(run) == [1, 2, 3, 4, 5, 6]  # lines after step 4 were cut, then written again


def test_a_format_1_checkpoint_still_loads_and_resumes_identically(trained, reference, tmp_path):
    run = copy_run(trained, tmp_path)
    checkpoint_path(run, 6).unlink()
    old = checkpoint_path(run, 4)
    state = load_checkpoint(old)
    state["format_version"] = 1
    torch.save(state, old)  # what GAN Studio wrote before checksums: a plain torch.save, no digest
    assert verify_checkpoint(old) is False  # no checksum to check ...
    assert load_checkpoint(old)["step"] == 4  # ... and still read (migrated, not rejected)
    assert Trainer.resume(run).run().step == 6
    assert_same_state(load_checkpoint(checkpoint_path(run, 6)), reference)
    assert load_checkpoint(checkpoint_path(run, 6))["format_version"] == 2


# -- the other readers ----------------------------------------------------------------------------
def test_torch_runner_and_cli_generate_use_the_newest_good_checkpoint(trained, tmp_path, capsys):
    from engine.cli import main
    from engine.inference import TorchRunner

    run = copy_run(trained, tmp_path)
    damage(checkpoint_path(run, 6), "bit-flip")
    runner = TorchRunner(run, device="cpu")
    assert runner.step == 4 and runner.checkpoint == checkpoint_path(run, 4)
    assert runner.notes == [
        "checkpoints/step-000006.pt is damaged (checksum mismatch); renamed to step-000006.pt.damaged; "
        "using step-000004.pt"
    ]
    same = TorchRunner(checkpoint_path(run, 4), device="cpu")
    assert np.array_equal(runner.generate([1, 2]), same.generate([1, 2]))
    assert same.notes == []

    damage(checkpoint_path(run, 4), "truncate")
    assert main(["generate", str(run), "--out", str(tmp_path / "images"), "--count", "2", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "checkpoints/step-000004.pt is damaged (unreadable: " in out and "using step-000002.pt" in out
    assert len(list((tmp_path / "images").glob("*.png"))) == 2


def test_export_uses_the_newest_good_checkpoint_and_says_so(trained, tmp_path):
    from engine.export import export_onnx

    run = copy_run(trained, tmp_path)
    damage(checkpoint_path(run, 6), "zero-fill")
    result = export_onnx(run, tmp_path / "g.onnx")
    assert result.notes[0].startswith("checkpoints/step-000006.pt is damaged (unreadable: ")
    assert result.notes[0].endswith("using step-000004.pt")
    assert json.loads((tmp_path / "g.json").read_text())["step"] == 4
    assert (run / "checkpoints" / "step-000006.pt.damaged").is_file()


def test_translator_opens_a_run_whose_newest_checkpoint_is_damaged(tmp_path):
    from engine.families import get_family
    from engine.families.base import ModelSpec
    from engine.inference import TorchTranslator

    cls = get_family("pix2pix")
    config = TrainConfig(dataset="unused", family="pix2pix", family_options=dict(cls.tiny_options), batch_size=2)
    family = cls(ModelSpec(32, 3, 0), config, torch.device("cpu"))
    run = tmp_path / "run"
    for step in (1, 2):
        save_checkpoint(
            checkpoint_path(run, step),
            {"family": "pix2pix", "spec": vars(family.spec), "config": config.to_dict(), "step": step}
            | {"family_state": family.state_dict()},
        )
    damage(checkpoint_path(run, 2), "bit-flip")
    translator = TorchTranslator(run, device="cpu")
    assert translator.step == 1 and translator.info()["notes"][0].endswith("using step-000001.pt")
    assert translator.translate(np.full((20, 24, 3), 128, np.uint8)).shape == (20, 24, 3)


# -- the walk itself ------------------------------------------------------------------------------
def _small_run(tmp_path: Path, steps=(1, 2, 3)) -> Path:
    run = tmp_path / "run"
    for step in steps:
        save_checkpoint(checkpoint_path(run, step), {"family": "dcgan", "step": step, "w": torch.full((64,), step)})
    return run


def test_when_no_checkpoint_verifies_the_error_names_the_folder_and_the_fix(tmp_path):
    run = _small_run(tmp_path)
    for step, how in zip((1, 2, 3), DAMAGE):
        damage(checkpoint_path(run, step), how)
    notes: list[str] = []
    with pytest.raises(CheckpointError) as caught:
        load_latest_checkpoint(run, on_note=notes.append)
    message = str(caught.value)
    assert str(run / "checkpoints") in message and "3 damaged" in message
    assert "start a new run" in message and "copy a good checkpoint" in message
    assert len(notes) == 3 and all(n.endswith("no older checkpoint is readable") for n in notes)
    # renamed, never deleted
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "step-000001.pt.damaged",
        "step-000002.pt.damaged",
        "step-000003.pt.damaged",
    ]
    assert list_checkpoints(run) == []
    assert run_info_damaged(run) == ["step-000001.pt.damaged", "step-000002.pt.damaged", "step-000003.pt.damaged"]


def run_info_damaged(run: Path) -> list[str]:
    (run / "config.json").write_text(json.dumps(TrainConfig(dataset="unused").to_dict()))
    return run_info(run)["damaged_checkpoints"]


def test_walk_skips_to_the_newest_good_one_and_never_overwrites_an_earlier_damaged_file(tmp_path, caplog):
    run = _small_run(tmp_path)
    earlier = run / "checkpoints" / "step-000003.pt.damaged"
    earlier.write_bytes(b"set aside last week")
    damage(checkpoint_path(run, 3), "bit-flip")
    damage(checkpoint_path(run, 2), "truncate")
    with caplog.at_level("WARNING"):
        path, state = load_latest_checkpoint(run)  # no on_note: the notes go to the log
    assert path == checkpoint_path(run, 1) and state["step"] == 1 and torch.equal(state["w"], torch.full((64,), 1))
    assert earlier.read_bytes() == b"set aside last week"
    assert (run / "checkpoints" / "step-000003.pt.2.damaged").is_file()
    assert [r.getMessage().split(";")[1].strip() for r in caplog.records] == [
        "renamed to step-000003.pt.2.damaged",
        "renamed to step-000002.pt.damaged",
    ]
    assert newest_verified_checkpoint(run) == checkpoint_path(run, 1)


def test_a_chosen_damaged_file_is_refused_and_left_in_place(tmp_path):
    from engine.inference import TorchRunner

    run = _small_run(tmp_path)
    newest = checkpoint_path(run, 3)
    damage(newest, "bit-flip")
    with pytest.raises(CheckpointDamaged, match="checksum mismatch") as caught:
        TorchRunner(newest, device="cpu")
    assert caught.value.reason == "checksum mismatch" and str(newest) in str(caught.value)
    assert newest.is_file() and not list((run / "checkpoints").glob("*.damaged"))


def test_refusals_an_older_file_would_not_mend_are_not_damage(tmp_path):
    run = _small_run(tmp_path, steps=(1, 2))
    with pytest.raises(CheckpointError, match="'dcgan' model, not 'fastgan'"):
        load_latest_checkpoint(run, family="fastgan")
    torch.save({"kind": CHECKPOINT_KIND, "format_version": 99, "step": 2}, checkpoint_path(run, 2))
    with pytest.raises(CheckpointError, match="newer GAN Studio"):
        load_latest_checkpoint(run)
    assert checkpoint_path(run, 2).is_file() and not list((run / "checkpoints").glob("*.damaged"))


def test_a_format_2_file_without_its_checksum_is_damaged(tmp_path):
    path = tmp_path / "step-000001.pt"
    torch.save({"kind": CHECKPOINT_KIND, "format_version": 2, "family": "dcgan", "step": 1}, path)
    with pytest.raises(CheckpointDamaged) as caught:
        load_checkpoint(path)
    assert caught.value.reason == "checksum missing"


def test_a_checkpoint_is_a_plain_torch_archive_with_its_digest_in_the_zip_comment(tmp_path):
    import hashlib
    import zipfile

    path = tmp_path / "c.pt"
    save_checkpoint(path, {"family": "dcgan", "w": torch.arange(1000.0)})
    comment = zipfile.ZipFile(path).comment  # any zip reader opens it
    assert comment.startswith(b"gan-studio-sha256:")
    data = path.read_bytes()
    covered = data[: len(data) - len(comment) - 2]  # everything but the comment and its length
    assert hashlib.sha256(covered).hexdigest() == comment.split(b":")[1].decode()
    plain = torch.load(path, weights_only=True)  # and so does torch without GAN Studio
    assert plain["format_version"] == 2 and torch.equal(plain["w"], torch.arange(1000.0))


# -- checkpoint_minutes ---------------------------------------------------------------------------
class FakeClock:
    """perf_counter advancing ``tick`` seconds per call; sleep advances it by an hour (a long pause)."""

    def __init__(self, tick: float) -> None:
        self.now, self.tick = 0.0, tick

    def perf_counter(self) -> float:
        self.now += self.tick
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += 3600.0
        time.sleep(0.001)


def _timed_run(dataset, run: Path, monkeypatch, pause_polls: int = 0) -> dict[int, float]:
    clock = FakeClock(tick=10.0)  # two calls per step: 10 s of training per step
    fake_time = types.SimpleNamespace(**{name: getattr(time, name) for name in dir(time) if not name.startswith("_")})
    fake_time.perf_counter, fake_time.sleep = clock.perf_counter, clock.sleep
    monkeypatch.setattr("engine.training.trainer.time", fake_time)  # only the trainer's clock is fake
    polls = {"n": 0}

    def should_pause() -> bool:  # pause at the 4th step for ``pause_polls`` polls
        polls["n"] += 1
        return 4 <= polls["n"] < 4 + pause_polls

    config = tiny_config(dataset, steps=9, checkpoint_every=1000, checkpoint_minutes=0.5, keep_checkpoints=20)
    config.preview_every = 0
    Trainer(config, Callbacks(should_pause=should_pause), run_dir=run).run()
    return {load_checkpoint(p)["step"]: load_checkpoint(p)["train_seconds"] for p in list_checkpoints(run)}


def test_checkpoint_minutes_writes_checkpoints_on_training_time_not_pauses(dataset, tmp_path, monkeypatch):
    seconds = _timed_run(dataset, tmp_path / "timed", monkeypatch)
    steps = sorted(seconds)
    assert steps[-1] == 9 and len(steps) >= 3, seconds  # at least two by time, then the final one
    per_step = seconds[9] / 9
    previous = 0.0
    for step in steps[:-1]:
        assert seconds[step] - previous >= 30  # due: 0.5 minutes of training since the last one ...
        assert seconds[step] - previous < 30 + per_step  # ... and written at the first step past it
        previous = seconds[step]
    # An hour-long pause (the fake sleep) is no training time: the same checkpoints are written.
    assert _timed_run(dataset, tmp_path / "paused", monkeypatch, pause_polls=3) == seconds
    assert "Paused at step 3" in (tmp_path / "paused" / "log.txt").read_text()


def test_checkpoint_minutes_setting_is_validated_and_defaults_for_old_runs():
    assert TrainConfig(dataset="x").checkpoint_minutes == 10.0
    TrainConfig(dataset="x", checkpoint_minutes=None).validate()
    for bad in (0, -1.0, float("nan")):
        with pytest.raises(ConfigError, match="checkpoint_minutes"):
            TrainConfig(dataset="x", checkpoint_minutes=bad).validate()
    old = TrainConfig(dataset="x").to_dict()
    del old["checkpoint_minutes"]  # a config.json written before the setting existed
    assert TrainConfig.from_dict(old).checkpoint_minutes == 10.0
