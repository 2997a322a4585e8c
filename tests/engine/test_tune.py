"""tune(): short trials of a tiny model on a tiny written dataset, scored by KD, pruned, interrupted and resumed."""

from __future__ import annotations

import json
import math
import shlex

import optuna
import pytest

from engine import cli
from engine.errors import ConfigError, DataError
from engine.families import get_family
from engine.runs import read_run_config
from engine.runs.checkpoint import latest_checkpoint
from engine.runs.config import LOSS_NAMES
from engine.tune import AUGMENT_POLICIES, Range, TuneCallbacks, read_tune, tune
from tests.engine.helpers import make_dataset

TINY = dict(
    family_options=dict(get_family("dcgan").tiny_options),
    batch_size=8,
    kid_samples=16,
    preview_every=1000,
    preview_count=4,
    checkpoint_every=2,
    log_every=1,
)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("tune"), size=16, per_class=8)


def kid_lines(run_dir):
    lines = [json.loads(x) for x in (run_dir / "stats.jsonl").read_text().splitlines()]
    return [(x["step"], x["kid"]) for x in lines if "kid" in x]


class Recorder:
    """TuneCallbacks that remember what they were told; ``stop_at`` = (trial, step) to stop there."""

    def __init__(self, stop_at=None):
        self.started, self.ended, self.progress, self.stop_at, self.stop = [], [], [], stop_at, False

    def callbacks(self):
        return TuneCallbacks(self.started.append, self.ended.append, self.on_progress, lambda: self.stop)

    def on_progress(self, record):
        self.progress.append((record["trial"], record["step"]))
        if self.stop_at and (record["trial"], record["step"]) >= self.stop_at:
            self.stop = True


def test_tune_trains_real_runs_scores_them_and_offers_the_best(dataset, tmp_path):
    rec = Recorder()
    result = tune(dataset, "dcgan", 3, None, tmp_path, steps=4, reports=2, settings=TINY, callbacks=rec.callbacks())

    assert not result.stopped and [t.state for t in result.trials] == ["complete"] * 3
    assert [i.trial for i in rec.started] == [1, 2, 3] and [i.state for i in rec.ended] == ["complete"] * 3
    assert [s for t, s in rec.progress if t == 2] == [1, 2, 3, 4]
    for t in result.trials:
        assert t.run_dir == tmp_path / f"tune-{dataset.name}-dcgan" / f"trial-{t.trial:03d}"
        config = read_run_config(t.run_dir)  # an ordinary run folder, with the trial's settings in it
        for key, value in t.settings.items():
            assert getattr(config, key) == value
        assert config.steps == 4 and config.batch_size == 8
        assert latest_checkpoint(t.run_dir).name == "step-000004.pt"
        measured = kid_lines(t.run_dir)  # the Trainer's own KD measurements are the trial's scores
        assert [s for s, _ in measured] == [2, 4] and t.scores == measured
        assert t.score == measured[-1][1] and math.isfinite(t.score)
        # drawn from the documented default space
        assert 2e-5 <= config.lr_g <= 6e-4 and 2e-5 <= config.lr_d <= 6e-4
        assert config.loss in LOSS_NAMES and config.augment in AUGMENT_POLICIES
        assert config.r1_gamma == 0 or 1e-3 <= config.r1_gamma <= 10
    assert len({t.settings["lr_g"] for t in result.trials}) == 3  # the sampler proposes, not one fixed setting

    best = min(result.trials, key=lambda t: t.score)
    assert result.best.trial == best.trial and result.best_settings == {**TINY, **best.settings}
    summary = read_tune(result.tune_dir)
    assert summary == json.loads(result.summary_path.read_text())
    assert summary["best"]["trial"] == best.trial and summary["best"]["score"] == best.score
    assert [t["score"] for t in summary["trials"]] == [t.score for t in result.trials]
    assert summary["family"] == "dcgan" and summary["steps"] == 4 and summary["metric"] == "KD (EffLite0)"

    # the offered command trains with exactly the best settings
    argv = shlex.split(result.train_command)
    assert argv[:2] == ["gan-studio-cli", "train"]
    config = cli._train_config(cli.build_parser().parse_args(argv[1:] + ["--steps", "10"]))
    for key, value in {**best.settings, "batch_size": 8, "kid_samples": 16}.items():
        assert getattr(config, key) == value
    assert config.family_options == TINY["family_options"]


class PruneLaterTrials(optuna.pruners.BasePruner):
    """Deterministic: the first trial runs to the end, every later one is pruned at its first measurement."""

    def prune(self, study, trial):
        return trial.number >= 1 and trial.last_step is not None


def test_a_pruned_trial_stops_at_its_measurement(dataset, tmp_path):
    result = tune(dataset, "dcgan", 2, None, tmp_path, steps=6, reports=3, settings=TINY, pruner=PruneLaterTrials())
    first, second = result.trials
    assert (first.state, first.step, [s for s, _ in first.scores]) == ("complete", 6, [2, 4, 6])
    assert (second.state, second.step, second.score) == ("pruned", 2, None)
    assert latest_checkpoint(second.run_dir).name == "step-000002.pt"  # stopped cleanly with a checkpoint
    assert [s for s, _ in kid_lines(second.run_dir)] == [2]
    assert result.best.trial == 1
    assert [t["state"] for t in read_tune(result.tune_dir)["trials"]] == ["complete", "pruned"]


def test_an_interrupted_tune_resumes_without_redoing_finished_trials(dataset, tmp_path):
    kwargs = dict(steps=4, reports=2, settings=TINY, name="resume")
    rec = Recorder(stop_at=(2, 2))
    first = tune(dataset, "dcgan", 2, None, tmp_path, callbacks=rec.callbacks(), **kwargs)
    assert first.stopped and [t.state for t in first.trials] == ["complete", "interrupted"]
    assert [t["state"] for t in read_tune(first.tune_dir)["trials"]] == ["complete", "interrupted"]
    done, cut = first.trials
    assert latest_checkpoint(cut.run_dir).name == "step-000002.pt"
    finished_checkpoint = latest_checkpoint(done.run_dir)
    mtime = finished_checkpoint.stat().st_mtime_ns

    rec = Recorder()
    second = tune(dataset, "dcgan", 2, None, tmp_path, callbacks=rec.callbacks(), **kwargs)
    assert not second.stopped and [t.state for t in second.trials] == ["complete", "complete"]
    assert [i.trial for i in rec.started] == [2]  # trial 1 is not trained again
    assert [s for _, s in rec.progress] == [3, 4]  # trial 2 continues from its checkpoint
    assert finished_checkpoint.stat().st_mtime_ns == mtime and second.trials[0].score == done.score
    assert second.trials[1].settings == cut.settings
    assert [s for s, _ in kid_lines(cut.run_dir)] == [2, 4]
    assert second.best.score == min(t.score for t in second.trials)

    with pytest.raises(ConfigError, match="other steps"):  # another budget would make scores incomparable
        tune(dataset, "dcgan", 3, None, tmp_path, **{**kwargs, "steps": 6})


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        (("nosuch", 2), {"steps": 2}, "unknown model family 'nosuch'"),
        (("pix2pix", 2), {"steps": 2}, "family 'pix2pix' translates images"),
        (("dcgan", 0), {"steps": 2}, "at least 1"),
        (("dcgan", 2), {}, "budget"),
        (("dcgan", 2, 1.0), {"steps": 2}, "budget"),
        (("dcgan", 2), {"steps": 0}, "steps per trial"),
        (("dcgan", 2), {"steps": 2, "settings": {"steps": 9}}, "tune's own"),
        (("dcgan", 2), {"steps": 2, "settings": {"lr_g": -1.0}}, "lr_g"),
        (("dcgan", 2), {"steps": 2, "space": {"nonsense": Range(1, 2)}}, "'nonsense' is not a training setting"),
        (("dcgan", 2), {"steps": 2, "space": {"lr_g": Range(0, 1)}}, "low > 0"),
    ],
)
def test_bad_input_is_refused_before_any_trial(dataset, tmp_path, args, kwargs, match):
    family, trials, *minutes = args
    with pytest.raises(ConfigError, match=match):
        tune(dataset, family, trials, minutes[0] if minutes else None, tmp_path, **kwargs)
    assert not list(tmp_path.iterdir())


def test_an_unprepared_dataset_is_refused(tmp_path):
    with pytest.raises(DataError, match="not a prepared dataset"):
        tune(tmp_path / "nothing", "dcgan", 2, None, tmp_path, steps=2)


def test_cli_tune_prints_the_best_settings_and_how_to_train_with_them(dataset, tmp_path, capsys):
    options = [f"--option={k}={v}" for k, v in TINY["family_options"].items()]
    sets = [f"--set={k}={v}" for k, v in TINY.items() if k != "family_options"]
    # 3 steps with KD every 2: the final KD is measured from the last checkpoint
    argv = ["tune", str(dataset), "--trials", "1", "--steps", "3", "--kid-every", "2", "--runs", str(tmp_path)]
    argv += ["--name", "cli", *options, *sets]
    assert cli.main([*argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    (trial,) = out["trials"]
    assert trial["state"] == "complete" and [s for s, _ in trial["scores"]] == [2, 3]
    assert trial["score"] == trial["scores"][-1][1] and out["best"]["trial"] == 1
    assert "--set lr_g=" in out["train_command"] and out["summary"].endswith("tune.json")

    assert cli.main(argv) == 0  # every trial finished: nothing trains again, the best is printed
    text = capsys.readouterr().out
    assert "Best: trial-001" in text and "Train with them" in text and out["train_command"] in text

    assert cli.main(["tune", str(dataset), "--family", "pix2pix", "--steps", "2"]) == 2
    assert "translates images" in capsys.readouterr().err
