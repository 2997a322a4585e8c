"""gan-studio-cli plan: the memory plan for a dataset and settings, as text or --json, user errors in one line."""

from __future__ import annotations

import json

import pytest
import torch

from engine.cli import main
from engine.training import planner

from .helpers import make_dataset

TINY = ["--option", "latent_dim=16", "--option", "base_channels=8", "--option", "max_channels=32"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("cli-plan"))


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_plan_prints_each_choice(dataset, capsys):
    code, out, err = run(capsys, "plan", str(dataset), "--family", "dcgan", "--set", "batch_size=16", *TINY)
    assert code == 0, err
    assert out.startswith("Memory plan for cpu (1 process), estimated peak ")
    assert "batch_size=16 (yours)" in out and "accumulate=1 (planned)" in out
    assert "amp=false (planned)" in out and "channels_last=false (planned)" in out
    assert "--set accumulate=N --set amp=true|false --set channels_last=true|false" in out


def test_plan_json_keeps_the_users_settings(dataset, capsys):
    args = ["--json", "plan", str(dataset), "--batch", "8", "--set", "amp=true", "--set", "accumulate=2", *TINY]
    code, out, err = run(capsys, *args)
    assert code == 0, err
    plan = json.loads(out)
    assert (plan["batch_size"], plan["accumulate"], plan["amp"], plan["micro_batch"]) == (8, 2, True, 4)
    assert plan["chosen"] == {"batch_size": False, "accumulate": False, "amp": False, "channels_last": True}
    assert plan["estimated_peak_bytes"] > 0 and plan["free_bytes"] is None


def test_plan_estimate_follows_the_model_options(dataset, capsys):
    def peak(width: str) -> int:
        options = ["--option", "latent_dim=16", "--option", f"base_channels={width}", "--option", "max_channels=64"]
        code, out, err = run(capsys, "plan", str(dataset), "--json", *options)
        assert code == 0, err
        return json.loads(out)["estimated_peak_bytes"]

    assert peak("16") > peak("8")


def test_quick_plan_builds_nothing(dataset, capsys, monkeypatch):
    monkeypatch.setattr(planner, "get_family", lambda name: pytest.fail("--quick must not build a model"))
    code, out, err = run(capsys, "plan", str(dataset), "--quick", "--world-size", "2", "--json")
    assert code == 0, err
    plan = json.loads(out)
    assert plan["world_size"] == 2 and plan["estimated_peak_bytes"] is None and plan["micro_batch"] == 16


def test_plan_user_errors_are_one_line(dataset, capsys, monkeypatch):
    code, _, err = run(capsys, "plan", str(dataset), "--set", "accumulate=100")
    assert code == 2 and err.count("\n") == 1 and "accumulate" in err and "batch_size (32)" in err
    code, _, err = run(capsys, "plan", str(dataset), "--set", "amp=maybe")
    assert code == 2 and "'amp'" in err and "true or false" in err
    code, _, err = run(capsys, "plan", str(dataset), "--world-size", "0")
    assert code == 2 and "--world-size" in err
    code, _, err = run(capsys, "plan", str(dataset), "--batch", "2", "--world-size", "4", "--quick")
    assert code == 2 and "batch_size" in err and "number of processes" in err
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code, _, err = run(capsys, "plan", str(dataset), "--device", "cuda")
    assert code == 2 and "no CUDA GPU" in err and "--device cpu" in err
    code, _, err = run(capsys, "plan", str(dataset), "--family", "nosuchgan")
    assert code == 2 and "nosuchgan" in err and "dcgan" in err
