"""Find good settings: short training trials scored by KD, proposed by optuna's TPE sampler.

``tune(dataset, family, trials, minutes, runs_root, ...)`` trains ``trials`` short runs of a noise-to-image
family, each with learning rates, loss, augmentation and R1 drawn from a search space (see
:func:`default_space`), scores each by the project's own KD (the Trainer's periodic KID measurement, see
engine.metrics.KIDMonitor; lower is better), stops trials early whose intermediate KD is worse than the
median of the finished ones at the same step (optuna's MedianPruner, fed from the Trainer's
``on_metric`` and stopping the run through ``should_stop``), and offers the best trial's settings as
TrainConfig overrides.

The tune folder (``RUNS/tune-<name>/``):

```
study.log        optuna's journal file storage: every trial, its params, intermediate KD and state
tune.json        the summary (trials, params, settings, scores, the best settings), written atomically
trial-001/ ...   ordinary run folders (config.json, checkpoints, stats.jsonl, previews): inspect, evaluate
                 or resume them like any run
```

Running ``tune`` again with the same name and the same settings resumes the study: finished trials
(complete, pruned or failed) are kept, an interrupted trial continues from its newest checkpoint with the
same settings, and new trials are proposed until ``trials`` have finished. One tune per folder at a time.
No Qt here; the CLI ``tune`` command and the studio's "Find good settings" are thin adapters.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import ConfigError, DataError
from engine.fsutil import atomic_write_json
from engine.runs.config import LOSS_NAMES, SMOOTHABLE_LOSSES, TrainConfig

if TYPE_CHECKING:  # optuna and the training loop load only when a tune runs (fast imports for the GUI)
    import optuna

TUNE_FORMAT_VERSION = 1
SUMMARY_FILE = "tune.json"
STUDY_FILE = "study.log"
STUDY_NAME = "tune"
DEFAULT_REPORTS = 4
"""KD measurements per trial with a step budget (the last one at the final step): the pruner's checkpoints."""
MINUTES_KID_EVERY = 250
"""Steps between KD measurements with a time budget, where the number of steps is not known in advance."""
AUGMENT_POLICIES = ("", "translation", "color,translation", "color,translation,cutout")
"""DiffAugment policies the default space tries ('' = augmentation off)."""
RESERVED = ("dataset", "family", "steps", "minutes", "kid_every", "format_version")
"""Settings the tune itself sets for every trial (the budget and what is measured); not tunable, not in settings."""
TRIAL_STATES = ("running", "complete", "pruned", "failed", "interrupted")


# -- the search space --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Range:
    """A number between ``low`` and ``high``, drawn on a log scale when ``log``; ``off`` also tries 0.

    With ``off`` the sampler first chooses on or off (a parameter '<name>_on'), so "no R1 at all" is one
    choice rather than a value squeezed onto a log scale that cannot reach 0.
    """

    low: float
    high: float
    log: bool = True
    off: bool = False

    def to_dict(self) -> dict[str, Any]:
        """{'range': [low, high], 'log': ..., 'off': ...}."""
        return {"range": [self.low, self.high], "log": self.log, "off": self.off}


@dataclass(frozen=True)
class Choice:
    """One of ``options`` (strings, numbers or booleans)."""

    options: tuple[Any, ...]

    def to_dict(self) -> dict[str, Any]:
        """{'choice': [...]}."""
        return {"choice": list(self.options)}


Param = Range | Choice


def default_space(base: TrainConfig) -> dict[str, Param]:
    """The documented default search space for trials that start from ``base``:

    - ``lr_g``, ``lr_d``: log-uniform from a tenth to three times the base rate (the family's recommended
      one: 2e-5 to 6e-4 for the 2e-4 default; StyleGAN2's 0.0025 gives 2.5e-4 to 7.5e-3);
    - ``loss``: one of the registered losses (ns, hinge, wgan-gp, lsgan; only those that accept label
      smoothing when ``base.label_smoothing`` is set);
    - ``augment``: off ('') or a DiffAugment policy: translation; color,translation; color,translation,cutout;
    - ``r1_gamma``: off (0) or log-uniform from 0.001 to 10.
    """
    losses = tuple(n for n in LOSS_NAMES if not base.label_smoothing or n in SMOOTHABLE_LOSSES)
    return {
        "lr_g": Range(base.lr_g / 10, base.lr_g * 3),
        "lr_d": Range(base.lr_d / 10, base.lr_d * 3),
        "loss": Choice(losses),
        "augment": Choice(AUGMENT_POLICIES),
        "r1_gamma": Range(1e-3, 10.0, off=True),
    }


def space_to_dict(space: dict[str, Param]) -> dict[str, dict[str, Any]]:
    """The space as JSON (tune.json, the resume check)."""
    return {name: p.to_dict() for name, p in space.items()}


def _check_space(space: dict[str, Param]) -> None:
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    for name, p in space.items():
        if name not in fields or name in RESERVED or name == "family_options":
            raise ConfigError(
                f"search space entry {name!r} is not a training setting the tune can vary; use settings of "
                f"TrainConfig other than {', '.join(RESERVED)} and family_options"
            )
        if isinstance(p, Range):
            if not (math.isfinite(p.low) and math.isfinite(p.high) and p.low < p.high) or (p.log and p.low <= 0):
                raise ConfigError(
                    f"search space entry {name!r} needs finite low < high{' and low > 0 (log scale)' if p.log else ''}"
                    f" (got {p.low}, {p.high})"
                )
        elif not isinstance(p, Choice) or not p.options:
            raise ConfigError(f"search space entry {name!r} must be a Range or a Choice with at least one option")


def _round(value: float) -> float:
    # four significant digits: the same numbers in the run's config.json, tune.json and the train command
    return float(f"{value:.4g}")


def _suggest(trial: optuna.trial.Trial, space: dict[str, Param]) -> dict[str, Any]:
    """The trial's settings; a resumed trial gets back the values stored for it (optuna keeps them)."""
    settings: dict[str, Any] = {}
    for name, p in space.items():
        if isinstance(p, Choice):
            settings[name] = trial.suggest_categorical(name, list(p.options))
        elif p.off and not trial.suggest_categorical(f"{name}_on", [True, False]):
            settings[name] = 0.0
        else:
            settings[name] = _round(trial.suggest_float(name, p.low, p.high, log=p.log))
    return settings


# -- results -----------------------------------------------------------------------------------------
@dataclass
class TrialInfo:
    """One trial as the front ends show it (and as tune.json stores it)."""

    trial: int
    """1-based trial number; the run folder is trial-NNN."""
    run_dir: Path
    state: str
    """running, complete, pruned (stopped early: worse than the others at the same step), failed
    (diverged or refused settings: see ``error``) or interrupted (stopped by the user; resumed next time)."""
    params: dict[str, Any]
    """What optuna drew (incl. '<name>_on' switches)."""
    settings: dict[str, Any]
    """The TrainConfig overrides the trial trained with."""
    score: float | None = None
    """The final KD (lower is better); None unless complete."""
    step: int = 0
    scores: list[tuple[int, float]] = field(default_factory=list)
    """The KD measured along the way: (step, KD)."""
    seconds: float = 0.0
    """Training seconds (measurements not included)."""
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (the run folder relative to the tune folder's parent is not assumed: full path)."""
        return {
            "trial": self.trial,
            "run_dir": str(self.run_dir),
            "state": self.state,
            "params": self.params,
            "settings": self.settings,
            "score": self.score,
            "step": self.step,
            "scores": [[s, v] for s, v in self.scores],
            "seconds": round(self.seconds, 2),
            "error": self.error,
        }


@dataclass
class TuneResult:
    """What a tune left behind: its folder, every trial and the best settings."""

    tune_dir: Path
    summary_path: Path
    trials: list[TrialInfo]
    best: TrialInfo | None
    """The complete trial with the lowest KD; None when no trial completed."""
    best_settings: dict[str, Any]
    """TrainConfig overrides for a full run: the caller's settings plus the best trial's; {} without a best."""
    train_command: str | None
    """``gan-studio-cli train ... --set k=v`` with ``best_settings`` (add --steps or --minutes)."""
    stopped: bool
    """True when should_stop() ended the tune before ``trials`` trials finished."""
    metric: str
    """What the score is called ('KD (EffLite0)')."""

    def to_dict(self) -> dict[str, Any]:
        """The tune.json content without the study's identity fields."""
        return {
            "tune_dir": str(self.tune_dir),
            "metric": self.metric,
            "stopped": self.stopped,
            "trials": [t.to_dict() for t in self.trials],
            "best": self.best.to_dict() if self.best else None,
            "best_settings": self.best_settings,
            "train_command": self.train_command,
        }


@dataclass
class TuneCallbacks:
    """Hooks for front ends; every field optional.

    on_trial_start(info) before a trial trains (state 'running'; a resumed one has its earlier scores);
    on_trial_end(info) when it is complete, pruned, failed or interrupted; on_progress(record) every
    training step: {'trial', 'trials', 'step', 'steps' (None with a time budget), 'seconds', 'kd' (the
    trial's latest KD or None)}; should_stop() is polled every step: the current trial stops cleanly
    with a checkpoint and continues when the tune is run again.
    """

    on_trial_start: Callable[[TrialInfo], None] | None = None
    on_trial_end: Callable[[TrialInfo], None] | None = None
    on_progress: Callable[[dict[str, Any]], None] | None = None
    should_stop: Callable[[], bool] | None = None


def tune_dir_for(runs_root: Path | str, name: str) -> Path:
    """RUNS/tune-<name>."""
    return Path(runs_root) / f"tune-{name}"


def trial_dir(tune_dir: Path, number: int) -> Path:
    """The run folder of 1-based trial ``number``: TUNE/trial-NNN."""
    return tune_dir / f"trial-{number:03d}"


# -- the tune ----------------------------------------------------------------------------------------
def tune(
    dataset: Path | str,
    family: str,
    trials: int,
    minutes: float | None = None,
    runs_root: Path | str | None = None,
    *,
    steps: int | None = None,
    settings: dict[str, Any] | None = None,
    space: dict[str, Param] | None = None,
    name: str | None = None,
    seed: int = 0,
    reports: int = DEFAULT_REPORTS,
    kid_every: int | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
    callbacks: TuneCallbacks | None = None,
) -> TuneResult:
    """Run (or resume) a tune of ``family`` on ``dataset`` until ``trials`` trials have finished.

    Budget per trial: ``minutes`` of training or ``steps`` (exactly one). ``settings`` are TrainConfig
    overrides every trial starts from (on top of the family's recommended settings; e.g. batch_size,
    kid_samples, family_options); a setting given there is fixed and taken out of the default space.
    ``space`` replaces the default search space (:func:`default_space`). The tune folder is
    ``runs_root/tune-<name>`` (default root: ``runs`` beside the dataset; default name:
    ``<dataset folder>-<family>``). KD is measured every ``kid_every`` steps (default: ``steps`` split
    into ``reports`` measurements ending at the final step; with a time budget every
    MINUTES_KID_EVERY steps, plus a final measurement). ``pruner`` replaces the default MedianPruner
    (no pruning before 2 trials completed, nor at a trial's first measurement). ``seed`` seeds the
    sampler; every trial trains with the same TrainConfig seed so trials differ by their settings only.
    Raises ConfigError for bad input (unknown or non-generating family, trials < 1, no budget, a resumed
    tune folder started with other settings) and DataError/ConsentError for an unusable dataset.
    """
    import optuna

    from engine.consent import require_attestation
    from engine.data import is_dataset
    from engine.families import family_names, get_family

    cb = callbacks or TuneCallbacks()
    family_cls = get_family(family)  # ConfigError naming the known families
    if family_cls.kind != "generate":
        makers = ", ".join(n for n in family_names() if get_family(n).kind == "generate")
        raise ConfigError(
            f"family '{family}' translates images, and tune scores models that draw images from noise by KD; "
            f"choose one of: {makers}"
        )
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ConfigError(f"the number of trials must be a whole number of at least 1 (got {trials!r})")
    steps, minutes = _budget(steps, minutes)
    if reports < 1:
        raise ConfigError(f"reports (KD measurements per trial) must be at least 1 (got {reports})")
    if kid_every is not None and kid_every < 1:
        raise ConfigError(f"kid_every (steps between KD measurements) must be at least 1 (got {kid_every})")
    settings = dict(settings or {})
    reserved = sorted(set(settings) & set(RESERVED))
    if reserved:
        raise ConfigError(
            f"setting(s) {', '.join(reserved)} are the tune's own (dataset, family and the budget per trial: "
            "steps or minutes); give them as the tune's arguments (--steps/--minutes), not as settings"
        )
    if not is_dataset(dataset):
        raise DataError(
            f"{dataset} is not a prepared dataset; create it with "
            f"gan-studio-cli import YOUR_IMAGE_FOLDER --out {dataset}",
            gui=f"{dataset} is not a prepared dataset; click Import folder… on the Dataset page to make one",
        )
    require_attestation(dataset)  # before any folder is made: trials would only fail one by one
    every = kid_every or (_kid_every_for_steps(steps, reports) if steps else MINUTES_KID_EVERY)
    base_fields = _base_fields(dataset, family_cls, settings, steps, minutes, every)
    base = TrainConfig(**base_fields)
    base.validate()  # the caller's settings, before any trial: a bad one is theirs, not a trial's
    if space is None:
        space = {k: v for k, v in default_space(base).items() if k not in settings}
    _check_space(space)

    root = Path(runs_root) if runs_root is not None else Path(dataset).resolve().parent / "runs"
    folder = tune_dir_for(root, name or f"{Path(dataset).resolve().name}-{family}")
    identity = {
        "dataset": str(Path(dataset).resolve()),
        "family": family,
        "steps": steps,
        "minutes": minutes,
        "kid_every": every,
        "settings": settings,
        "space": space_to_dict(space),
    }
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own lines say what happens; optuna's repeat them
    study = _open_study(folder, identity, seed, trials, pruner or _default_pruner(every))
    runner = _TrialRunner(study, folder, base_fields, space, trials, steps, cb)
    stopped = False
    while _finished_count(study) < trials:
        if cb.should_stop and cb.should_stop():
            stopped = True
            break
        leftover = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.RUNNING]
        # An interrupted trial continues first (same settings, from its checkpoint), then new ones are
        # asked for. optuna has no public way to reopen a RUNNING trial of a stored study: Trial(study,
        # trial_id) is what study.ask() itself builds, with the id that FrozenTrial keeps privately.
        trial = optuna.trial.Trial(study, leftover[0]._trial_id) if leftover else study.ask()
        if not runner.run(trial):
            stopped = True
            break
    return _write_summary(study, folder, current=None, stopped=stopped)


def _budget(steps: int | None, minutes: float | None) -> tuple[int | None, float | None]:
    if (steps is None) == (minutes is None):
        raise ConfigError("give each trial a budget: steps (--steps N) or minutes (--minutes M), one of the two")
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise ConfigError(f"steps per trial must be a whole number of at least 1 (got {steps!r})")
    if minutes is not None and not (isinstance(minutes, int | float) and math.isfinite(minutes) and minutes > 0):
        raise ConfigError(f"minutes per trial must be a finite number > 0 (got {minutes!r})")
    return steps, None if minutes is None else float(minutes)


def _kid_every_for_steps(steps: int, reports: int) -> int:
    """The largest interval up to steps/reports that divides ``steps``, so the last measurement is the final step."""
    limit = max(1, math.ceil(steps / reports))
    return max(d for d in range(1, limit + 1) if steps % d == 0)


def _base_fields(
    dataset: Path | str,
    family_cls: Any,
    settings: dict[str, Any],
    steps: int | None,
    minutes: float | None,
    kid_every: int,
) -> dict[str, Any]:
    """TrainConfig fields every trial shares: the family's recommendations, the caller's settings, the budget."""
    from engine.data.manifest import read_manifest
    from engine.device import select_device

    size = settings.get("resolution") or int(read_manifest(dataset).get("options", {}).get("size", 64))
    recommended = dict(family_cls.recommended_settings(size, select_device(settings.get("device", "auto")).type))
    options = {**recommended.get("family_options", {}), **settings.get("family_options", {})}
    return {
        **recommended,
        **settings,
        "dataset": str(dataset),
        "family": family_cls.name,
        "family_options": options,
        "steps": steps,
        "minutes": minutes,
        "kid_every": kid_every,
    }


def _default_pruner(kid_every: int) -> optuna.pruners.BasePruner:
    import optuna

    # a trial's first measurement says little (every model starts bad); later ones are compared with the
    # median of the completed trials at the same step
    return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=kid_every + 1)


def _open_study(
    folder: Path, identity: dict[str, Any], seed: int, trials: int, pruner: optuna.pruners.BasePruner
) -> optuna.Study:
    """The folder's study (created, or loaded and checked against ``identity``)."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    folder.mkdir(parents=True, exist_ok=True)
    path = str(folder / STUDY_FILE)
    # the open-file lock works on every platform (the symlink lock does not on Windows)
    storage = JournalStorage(JournalFileBackend(path, lock_obj=JournalFileOpenLock(path)))
    study = optuna.create_study(storage=storage, study_name=STUDY_NAME, direction="minimize", load_if_exists=True)
    stored = study.user_attrs.get("identity")
    if stored is None:
        study.set_user_attr("identity", json.loads(json.dumps(identity)))
        study.set_user_attr("format_version", TUNE_FORMAT_VERSION)
    else:
        differ = [k for k in identity if json.loads(json.dumps(identity[k])) != stored.get(k)]
        if differ:
            raise ConfigError(
                f"tune folder {folder} was started with other {', '.join(differ)}; run it with the same "
                "ones to resume it, or give the new tune another name (--name)"
            )
    done = len(study.get_trials(deepcopy=False))
    # a resumed tune must not replay the random start-up proposals of the first session: seed by progress
    study.sampler = optuna.samplers.TPESampler(seed=seed + done, n_startup_trials=max(2, min(10, trials // 3)))
    study.pruner = pruner
    return study


def _finished_count(study: optuna.Study) -> int:
    return sum(1 for t in study.get_trials(deepcopy=False) if t.state.is_finished())


class _TrialRunner:
    """Trains one trial as an ordinary run, reporting its KD to optuna and pruning through should_stop."""

    def __init__(
        self,
        study: optuna.Study,
        folder: Path,
        base_fields: dict[str, Any],
        space: dict[str, Param],
        trials: int,
        steps: int | None,
        cb: TuneCallbacks,
    ) -> None:
        self.study, self.folder, self.base_fields, self.space = study, folder, base_fields, space
        self.trials, self.steps, self.cb = trials, steps, cb

    def run(self, trial: optuna.trial.Trial) -> bool:
        """Train ``trial`` to its end; False when the user stopped it (it stays resumable)."""
        import optuna

        from engine.runs.checkpoint import latest_checkpoint
        from engine.training import Callbacks, Trainer
        from engine.training.trainer import TrainingDiverged

        number = trial.number + 1
        settings = _suggest(trial, self.space)
        trial.set_user_attr("settings", settings)
        run_dir = trial_dir(self.folder, number)
        # the stored trial: its params, and the intermediate KD a resumed trial reported before
        frozen = next(t for t in self.study.get_trials(deepcopy=False) if t.number == trial.number)
        reported: dict[int, float] = dict(frozen.intermediate_values)
        info = TrialInfo(number, run_dir, "running", dict(frozen.params), settings, scores=sorted(reported.items()))
        try:
            config = TrainConfig(**{**self.base_fields, **settings})
            config.validate()
        except ConfigError as exc:  # a combination the space allows but training refuses
            return self._end(trial, info, optuna.trial.TrialState.FAIL, error=str(exc))
        _write_summary(self.study, self.folder, current=trial.number)
        if self.cb.on_trial_start:
            self.cb.on_trial_start(info)
        flags = {"pruned": False, "user": False}

        def on_metric(record: dict[str, Any]) -> None:
            step, kd = int(record["step"]), float(record["kid"])
            self.study.set_user_attr("metric", record.get("kid_name", "KD"))
            if not math.isfinite(kd) or step in reported:  # a resume re-measures a step it reported
                return
            trial.report(kd, step)
            reported[step] = kd
            info.scores = sorted(reported.items())
            flags["pruned"] = trial.should_prune()

        def should_stop() -> bool:
            if flags["pruned"]:
                return True
            if self.cb.should_stop and self.cb.should_stop():
                flags["user"] = True
                return True
            return False

        def on_step(record: dict[str, Any]) -> None:
            if self.cb.on_progress:
                latest = info.scores[-1][1] if info.scores else None
                self.cb.on_progress(
                    {
                        "trial": number,
                        "trials": self.trials,
                        "step": record["step"],
                        "steps": self.steps,
                        "seconds": record.get("seconds"),
                        "kd": latest,
                    }
                )

        callbacks = Callbacks(on_step=on_step, on_metric=on_metric, should_stop=should_stop)
        trainer = (
            Trainer.resume(run_dir, callbacks) if latest_checkpoint(run_dir) else Trainer(config, callbacks, run_dir)
        )
        try:
            result = trainer.run()
        except TrainingDiverged as exc:  # the settings' own fault: a result for the sampler, not a crash
            return self._end(trial, info, optuna.trial.TrialState.FAIL, error=str(exc), step=trainer.step)
        info.step, info.seconds = result.step, result.seconds
        trial.set_user_attr("step", result.step)
        trial.set_user_attr("seconds", round(result.seconds, 2))
        if flags["pruned"] and result.stopped:  # a trial pruned at its last measurement has finished anyway
            return self._end(trial, info, optuna.trial.TrialState.PRUNED)
        if result.stopped and flags["user"]:  # by the user: the trial stays RUNNING in the study and resumes next time
            info.state = "interrupted"
            _write_summary(self.study, self.folder, current=None)
            if self.cb.on_trial_end:
                self.cb.on_trial_end(info)
            return False
        if result.step not in reported:  # a time budget ends between measurements: measure the final model
            kd, metric = _final_kd(run_dir, config)
            self.study.set_user_attr("metric", metric)
            if math.isfinite(kd):
                trial.report(kd, result.step)
                reported[result.step] = kd
                info.scores = sorted(reported.items())
        score = reported.get(result.step, math.nan)
        if not math.isfinite(score):
            return self._end(trial, info, optuna.trial.TrialState.FAIL, error="the final KD is not a finite number")
        self.study.tell(trial, score)
        info.state, info.score = "complete", score
        _write_summary(self.study, self.folder, current=None)
        if self.cb.on_trial_end:
            self.cb.on_trial_end(info)
        return not flags["user"]

    def _end(
        self,
        trial: optuna.trial.Trial,
        info: TrialInfo,
        state: optuna.trial.TrialState,
        error: str | None = None,
        step: int | None = None,
    ) -> bool:
        """Finish ``trial`` as pruned or failed, write the summary and tell the front end."""
        if error is not None:
            trial.set_user_attr("error", error)
        if step is not None:
            trial.set_user_attr("step", step)
            info.step = step
        self.study.tell(trial, state=state)
        info.state, info.error = state.name.lower(), error
        _write_summary(self.study, self.folder, current=None)
        if self.cb.on_trial_end:
            self.cb.on_trial_end(info)
        return not (self.cb.should_stop and self.cb.should_stop())


def _final_kd(run_dir: Path, config: TrainConfig) -> tuple[float, str]:
    """(KD, its name) of the run's newest checkpoint, measured like the Trainer does (same extractor, sample
    count and seed; the latents of seeds 0..n-1, as ``generate`` draws them)."""
    from engine.inference.torch_runner import TorchRunner
    from engine.metrics import KIDMonitor

    runner = TorchRunner(run_dir, device=config.device)
    monitor = KIDMonitor(
        config.dataset, num_fake=config.kid_samples, device=str(runner.device), size=runner.resolution, seed=config.seed
    )
    return monitor.measure(lambda n: runner.generate(list(range(n)))), monitor.name


# -- the summary -------------------------------------------------------------------------------------
def _trial_info(frozen: optuna.trial.FrozenTrial, folder: Path, current: int | None) -> TrialInfo:
    import optuna

    states = {
        optuna.trial.TrialState.COMPLETE: "complete",
        optuna.trial.TrialState.PRUNED: "pruned",
        optuna.trial.TrialState.FAIL: "failed",
    }
    state = states.get(frozen.state, "running" if frozen.number == current else "interrupted")
    attrs = frozen.user_attrs
    return TrialInfo(
        trial=frozen.number + 1,
        run_dir=trial_dir(folder, frozen.number + 1),
        state=state,
        params=dict(frozen.params),
        settings=dict(attrs.get("settings", {})),
        score=frozen.value if state == "complete" else None,
        step=int(attrs.get("step", max(frozen.intermediate_values, default=0))),
        scores=sorted(frozen.intermediate_values.items()),
        seconds=float(attrs.get("seconds", 0.0)),
        error=attrs.get("error"),
    )


def _result(study: optuna.Study, folder: Path, stopped: bool, current: int | None = None) -> TuneResult:
    identity = study.user_attrs["identity"]
    infos = [_trial_info(t, folder, current) for t in study.get_trials(deepcopy=False)]
    complete = [t for t in infos if t.state == "complete" and t.score is not None]
    best = min(complete, key=lambda t: t.score if t.score is not None else math.inf) if complete else None
    best_settings = {**identity["settings"], **best.settings} if best else {}
    command = train_command(identity["dataset"], identity["family"], best_settings) if best else None
    metric = str(study.user_attrs.get("metric", "KD"))
    return TuneResult(folder, folder / SUMMARY_FILE, infos, best, best_settings, command, stopped, metric)


def _write_summary(study: optuna.Study, folder: Path, current: int | None, stopped: bool = False) -> TuneResult:
    result = _result(study, folder, stopped, current)
    identity = study.user_attrs["identity"]
    summary = {
        "format_version": TUNE_FORMAT_VERSION,
        "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **{k: identity[k] for k in ("dataset", "family", "steps", "minutes", "kid_every", "settings", "space")},
        **result.to_dict(),
    }
    atomic_write_json(result.summary_path, summary)
    return result


def read_tune(tune_dir: Path | str) -> dict[str, Any]:
    """The tune.json of a tune folder, or ConfigError saying what is missing or damaged."""
    path = Path(tune_dir) / SUMMARY_FILE
    if not path.is_file():
        raise ConfigError(
            f"{tune_dir} is not a tune folder (no {SUMMARY_FILE}); run gan-studio-cli tune first",
            gui=f"{tune_dir} is not a tune folder (no {SUMMARY_FILE}); use Find good settings on the Train page first",
        )
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path} cannot be read ({exc}); run the tune again to rewrite it") from None
    return data


def _cli_value(value: Any) -> str:
    """A setting as the CLI's --set reads it back (strings raw, the rest as JSON)."""
    return value if isinstance(value, str) else json.dumps(value)


def train_command(dataset: str, family: str, settings: dict[str, Any]) -> str:
    """``gan-studio-cli train DATASET --family F --option k=v --set k=v ...`` for ``settings``."""
    parts = ["gan-studio-cli", "train", shlex.quote(str(dataset)), "--family", shlex.quote(family)]
    for key, value in settings.get("family_options", {}).items():
        parts += ["--option", shlex.quote(f"{key}={_cli_value(value)}")]
    for key, value in settings.items():
        if key != "family_options":
            parts += ["--set", shlex.quote(f"{key}={_cli_value(value)}")]
    return " ".join(parts)
