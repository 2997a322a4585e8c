"""Multi-process training on CPU (gloo), launched the way users launch it: torchrun and the CLI.

The model is one whose step does not depend on how the batch is split (a plain MLP GAN: no batch norm, no dropout,
no augmentation), so two processes with four images each must end where one process with eight ends, up
to float rounding: that checks the sharded sampler, the shared latents and the gradient averaging.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from engine.runs.checkpoint import latest_checkpoint, load_checkpoint

from .helpers import make_dataset

pytestmark = pytest.mark.slow

TOLERANCE = 1e-4
"""Largest weight difference allowed between the 2-process and the 1-process run (float rounding only:
the gradient of a mean over 8 images vs the mean of two means over 4). Each weight moves ~1e-3 per step."""

SETTINGS = [
    "augment=",
    "ada=false",
    "health=false",
    "r1_gamma=0",
    "preview_every=0",
    "log_every=1",
    "kid_every=0",
    "checkpoint_minutes=null",
    "lr_g=0.001",
    "lr_d=0.001",
]
OPTIONS = ["latent_dim=16", "base_channels=16", "depth=2", "g_batchnorm=false", "dropout=0"]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT")}
    return {**env, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _cli_args(command: str, *args: str) -> list[str]:
    if command == "resume":
        return ["resume", *args]
    extra = [f"--set={s}" for s in SETTINGS] + [f"--option={o}" for o in OPTIONS]
    return ["train", *args, "--family", "vanilla", "--batch", "8", "--seed", "3", "--device", "cpu", *extra]


def _torchrun(nproc: int, cli: list[str], timeout: float = 240) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
    done = subprocess.run([*command, "-m", "engine", *cli], env=_env(), capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _single(cli: list[str]) -> None:
    """The same CLI command in one process: this one (a subprocess would only add seconds of start-up)."""
    from engine.cli import main

    assert main([*cli, "--json"]) == 0


def _weights(run: Path, step: int | None = None) -> dict[str, torch.Tensor]:
    path = run / "checkpoints" / f"step-{step:06d}.pt" if step else latest_checkpoint(run)
    assert path is not None and path.is_file(), f"no checkpoint {path}"
    state = load_checkpoint(path)
    modules = state["family_state"]["modules"]
    return {f"{m}.{k}": v.float() for m in ("G", "D") for k, v in modules[m].items()}


def _max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("ddp"), size=16, per_class=8)


@pytest.fixture(scope="module")
def reference(dataset, tmp_path_factory) -> Path:
    """One process, the whole batch of 8, six steps straight (checkpoints at 2, 4 and 6)."""
    run = tmp_path_factory.mktemp("one") / "run"
    _single(_cli_args("train", str(dataset), "--steps", "6", "--checkpoint-every", "2", "--out", str(run)))
    return run


def test_two_gloo_processes_match_one_process_with_the_whole_batch_and_resume(dataset, reference, tmp_path):
    run = tmp_path / "two"
    _torchrun(2, _cli_args("train", str(dataset), "--steps", "2", "--checkpoint-every", "2", "--out", str(run)))
    done = _torchrun(2, _cli_args("resume", str(run), "--steps", "4"))

    moved = _max_difference(_weights(reference, 4), _weights(reference, 2))
    assert moved > 10 * TOLERANCE  # the comparison below could fail: two steps move the weights far more
    assert _max_difference(_weights(run, 2), _weights(reference, 2)) < TOLERANCE
    assert _max_difference(_weights(run, 4), _weights(reference, 4)) < TOLERANCE  # resumed on two processes

    info = json.loads((run / "run.json").read_text())
    assert (info["world_size"], info["effective_batch"], info["batch_per_process"]) == (2, 8, 4)
    assert info["backend"] == "gloo"
    state = load_checkpoint(run / "checkpoints" / "step-000004.pt")
    assert state["world_size"] == 2 and len(state["rng_ranks"]) == 2
    # each process draws its own augmentation stream: the two RNG states differ
    assert not torch.equal(state["rng_ranks"][0]["torch"], state["rng_ranks"][1]["torch"])
    lines = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2, 3, 4]  # one writer: no line twice
    assert all(r["world_size"] == 2 and r["images_seen"] == 8 * r["step"] for r in lines)
    log = (run / "log.txt").read_text()
    assert log.count("Training 'vanilla'") == 2 and log.count("2 processes (gloo)") == 2  # train, resume
    assert done.stdout.count("Run ") == 1  # one summary, from rank 0

    _single(_cli_args("resume", str(run), "--steps", "6"))  # a different world size: one process carries on
    assert _max_difference(_weights(run, 6), _weights(reference, 6)) < TOLERANCE
    assert "trained by 2 process(es) until now" in (run / "log.txt").read_text()
    assert json.loads((run / "run.json").read_text())["world_size"] == 1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.skipif(sys.platform == "win32", reason="kills a process with SIGKILL (POSIX only)")
def test_a_process_that_dies_stops_the_run_cleanly_with_its_checkpoint_kept(dataset, tmp_path):
    run, port = tmp_path / "dies", _free_port()
    cli = _cli_args("train", str(dataset), "--steps", "100000", "--checkpoint-every", "2", "--out", str(run))
    procs = []
    for rank in (0, 1):
        env = {**_env(), "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2"}
        env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), GAN_STUDIO_DIST_TIMEOUT_S="60")
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "engine", *cli], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
        )
    try:
        deadline = time.monotonic() + 120
        while latest_checkpoint(run) is None or load_checkpoint(latest_checkpoint(run))["step"] < 4:
            assert time.monotonic() < deadline, "no checkpoint within 2 minutes"
            assert procs[0].poll() is None, procs[0].stderr.read().decode()[-2000:]
            time.sleep(0.2)
        procs[1].send_signal(signal.SIGKILL)
        _, err = procs[0].communicate(timeout=90)
    finally:
        for p in procs:
            p.kill()
    assert procs[0].returncode == 2  # an error in words, not a traceback or a hang
    message = err.decode()
    assert "another process of this 2-process run stopped" in message and "Traceback" not in message
    kept = latest_checkpoint(run)
    assert kept is not None and load_checkpoint(kept)["step"] >= 4  # verifies: nothing half-written
    _single(_cli_args("resume", str(run), "--steps", str(load_checkpoint(kept)["step"] + 2)))
