"""A STOP file in the run folder stops a run after the current step, with a checkpoint (``touch RUN/STOP``);
the torchrun command lines the studio shows."""

from __future__ import annotations

from engine.runs.checkpoint import latest_checkpoint, load_checkpoint
from engine.training import Callbacks, Trainer
from engine.training.trainer import STOP_FILE

from .helpers import make_dataset, tiny_config


def test_a_stop_file_stops_the_run_with_a_checkpoint_and_is_removed(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / STOP_FILE).touch()  # left over from an earlier stop: must not stop this run at once
    config = tiny_config(make_dataset(tmp_path), steps=50, checkpoint_every=1000, preview_every=0)

    def on_step(stats):
        if stats["step"] == 3:
            (run / STOP_FILE).touch()

    result = Trainer(config, Callbacks(on_step=on_step), run_dir=run).run()
    assert result.stopped and result.step == 3  # seen before the next step begins
    assert load_checkpoint(latest_checkpoint(run))["step"] == 3
    assert not (run / STOP_FILE).exists()
    assert "Stop requested (STOP file in the run folder)" in (run / "log.txt").read_text()


def test_the_torchrun_command_line_reads_as_typed_and_the_bundle_runs_it_itself(monkeypatch):
    import sys

    from engine.distributed import format_command, torchrun_command

    command = torchrun_command("runs/a b/settings.json", "runs/a b", 4)
    assert command[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert format_command(command) == (
        "torchrun --standalone --nproc_per_node=4 -m engine train --config 'runs/a b/settings.json' --out 'runs/a b'"
    )
    several = torchrun_command("s.json", "runs/big", 8, nodes=2, endpoint="node1:29500", resume=True)
    assert "--nnodes=2" in several and "--rdzv_endpoint=node1:29500" in several
    assert several[-2:] == ["resume", "runs/big"]
    monkeypatch.setattr(sys, "frozen", True, raising=False)  # the desktop bundle: no torchrun script beside it
    assert format_command(command).startswith(f"{sys.executable} -m torch.distributed.run --standalone")
