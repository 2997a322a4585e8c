"""The training doctor: detectors that watch a run for the usual GAN failures and say what to try.

A :class:`HealthMonitor` lives inside the Trainer. It reads the step statistics the family already
reports (losses, D's accuracy and confidence, G's gradient norm, ADA's augmentation probability), the
Trainer's NaN roll-backs and quality measurements, and every ``image_every`` steps a batch of images
drawn for fixed latents. Each detector turns its signals into a level (ok, note, warning, problem); a
:class:`Finding` is reported only when a detector's level changes, raised at once and lowered only
after several checks in a row agree (hysteresis, so a level never flaps). Findings go to
``RUN/health.jsonl`` (one JSON line each), to ``Callbacks.on_health`` and, in the CLI, to the terminal.

Every threshold below is a module constant with the reason for its value; docs/training.md (The
training doctor) explains the detectors in plain words and docs/benchmarks.md gives their measured
detection delays and false-positive counts (bench/health.py).

The monitor draws no random numbers from the training RNGs (exact resume): the real images it
compares against are chosen with its own seeded generator, and its state (signal windows, levels,
peaks) is checkpointed with the run.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from engine.families import get_family
from engine.fsutil import save_png
from engine.metrics.memorization import memorization
from engine.metrics.scores import nearest_neighbours
from engine.runs.config import TrainConfig
from engine.runs.layout import health_dir, health_path
from engine.training.previews import to_uint8_nhwc

LEVELS = ("ok", "note", "warning", "problem")
"""Ordered by severity; "ok" in a finding means the detector cleared an earlier finding."""
DETECTORS = ("collapse", "overpowering", "divergence", "overfitting", "memorization", "stalled")
DETECTOR_LABELS = {
    "collapse": "Variety",
    "overpowering": "Balance",
    "divergence": "Stability",
    "overfitting": "Overfitting",
    "memorization": "Copying",
    "stalled": "Progress",
}
AUTO_REMEDY_DETECTORS = ("divergence", "overfitting")
"""Detectors whose first fix TrainConfig.auto_remedies applies mid-run (at warning or problem)."""

FULL_AUGMENT = "color,translation,cutout"
SMALL_DATA_FAMILY = "fastgan"
"""The family suggested for small folders (FastGAN was designed for a few hundred images)."""

# -- cadence ---------------------------------------------------------------------------------------
CHECK_EVERY = 10
"""Step detectors look at their windows every 10 steps: often enough to react within tens of steps,
rare enough that the numpy work is noise next to a training step."""
LONG_WINDOW = 200
"""Per-step signals kept (the longest window a detector reads)."""
SERIES_POINTS = 120
"""Points kept per evidence chart (one per check): 1200 steps of step signals, 120 image checks."""
IMAGE_EVERY_MAX = 200
IMAGE_EVERY_MIN = 10
"""Image checks run on the preview cadence, clamped to every 10-200 steps: never more often than a
batch of 64 samples stays cheap, never so rarely that a collapse goes unseen for long."""
HEALTH_SAMPLES = 64
"""Generated images per image check (the fixed latents), and real images in the variety reference."""
FEATURE_SIZE = 16
"""Images are compared as 16x16 pixels: fine enough to tell digits, faces or emoji apart, and a
64x2048 nearest-neighbour search on 768 numbers costs a few milliseconds."""
MEMORY_BANK = 2048
"""Training images the copying check compares against (all of a smaller dataset)."""
CLEAR_AFTER_STEP_CHECKS = 5
CLEAR_AFTER_IMAGE_CHECKS = 2
"""A level is lowered only after 5 step checks (50 steps) or 2 image checks in a row below it; it is
raised at once. Windows already smooth the signals, so this is what stops a level from flapping."""

# -- collapse ----------------------------------------------------------------------------------------
COLLAPSE_WARMUP = 100
"""Steps before the variety is judged: a fresh generator makes near-identical grey images (measured:
variety 0.001 of the real images' at step 1, 0.08-0.16 by step 25-50 on MNIST)."""
COLLAPSE_PROBLEM = 0.02
COLLAPSE_WARNING = 0.05
"""Variety (mean pairwise distance of the generated images over that of real images): a generator that
ignores its input scores 0.000, healthy MNIST runs 0.13-0.6 after 100 steps; below 0.02 nearly every
image is the same, below 0.05 only a few different images remain."""
COLLAPSE_DROP_NOTE = 0.5
COLLAPSE_DROP_WARNING = 0.25
COLLAPSE_DROP_MIN_PEAK = 0.1
"""Dropping fast: variety below half (note) or a quarter (warning) of its best so far, once that best
showed real variety (0.1); healthy runs only gain variety on these time scales."""

# -- overpowering --------------------------------------------------------------------------------------
OVERPOWER_WARMUP = 200
"""Steps before the balance is judged: D leads every fresh run. The studio's Quick fastgan run on the bundled
sample (32 px, batch 8) had D 98% accurate and 83% sure with G's loss up 48% at step 100, even again by
step 160; a generator frozen from the start is still flagged by step ~210."""
OVERPOWER_WINDOW = 50
OVERPOWER_ACCURACY = 0.95
"""D's accuracy (min of its real and fake accuracy over 50 steps) must be at least 95% for any level:
healthy runs sit at 0.9-0.99 too, so accuracy alone is not enough, confidence decides."""
OVERPOWER_CONFIDENCE = 0.8
OVERPOWER_CONFIDENCE_PROBLEM = 0.9
"""D's confidence: 1 - its adversarial loss / the loss of a D that guesses. Healthy MNIST runs peak at
0.62; with G frozen (lr_g = 0) it passes 0.8 by step ~150 and 0.9 by step ~200."""
CLIMB_RISE = 0.15
"""G's loss climbing: its mean over the last 50 steps at least 15% above the 50 before."""
GRAD_COLLAPSE = 0.05
"""G's gradient collapsing: its median over the last 50 steps under 5% of the largest median seen
(vanishing gradients; a saturated generator measured 0.000 against a peak of 0.11)."""

# -- divergence ----------------------------------------------------------------------------------------
SPIKE_WINDOW = 20
"""Steps in the short window whose spread (the std of step-to-step changes / sqrt 2, which is the std of
the values for noise around a level but leaves a steady trend out) is compared with the running level."""
SPIKE_WARNING = 10.0
SPIKE_PROBLEM = 25.0
"""Spread against its running level (a slow average of earlier spreads): healthy MNIST runs stay within
4x, also while D takes the lead (the loss's spread relative to its size); 10x is a swing, 25x an
explosion."""
LOSS_FLOOR = 0.1
SPREAD_FLOOR = 0.005
"""Floors that keep a loss near 0, or a spread near 0 (a perfectly steady start), from turning noise into
a huge ratio."""
SPIKE_HISTORY = 5
"""Checks of history before a relative spike counts (a running level needs some past)."""
SPIKE_LEVEL_RATE = 0.05
"""How fast the running level follows the spread (per check): slow, so a spike stays visible."""
SWING_WARNING = 0.3
SWING_PROBLEM = 0.5
"""Absolute swing of D's confidence (std over 20 steps), needing no history: healthy runs 0.01-0.06; an
absurd learning rate 0.6-1.5 from the first steps (D flips between sure and wrong)."""
ROLLBACK_WINDOW = 500
"""NaN roll-backs within the last 500 steps: one is a warning, two or more a problem."""

# -- overfitting ---------------------------------------------------------------------------------------
OVERFIT_WINDOW = 100
OVERFIT_MARGIN = 0.1
OVERFIT_MARGIN_PROBLEM = 0.3
"""ADA's signal rt (mean sign of D on reals) over 100 steps, with the augmentation probability maxed:
above target + 0.1 is a warning, above target + 0.3 a problem (ADA holds rt at its target while it can
raise p; pinned above with p at 1 it has nothing left to give)."""
P_MAXED = 0.99
OVERFIT_BAND = 0.05
"""Once flagged, rt must fall 0.05 below the threshold (and p 0.05 below maxed) to clear: rt hovers near
its threshold for hundreds of steps, and the level should not follow every wobble."""
OVERFIT_STATIC_STEPS = 1000
OVERFIT_STATIC_RT = 0.9
"""Without adaptive augmentation: rt above 0.9 for 100 steps after step 1000 (early on every D is sure
about reals, measured rt 1.0 for the first 300 steps of healthy runs)."""

# -- memorization --------------------------------------------------------------------------------------
MEMORIZATION_RATIO = 0.5
"""A generated image is a near-copy when it is closer to a training image than half the typical distance
between training images (engine/metrics/memorization.py, its default)."""
MEMORIZATION_NOTE = 0.05
MEMORIZATION_WARNING = 0.2
MEMORIZATION_PROBLEM = 0.5
"""Share of near-copies above the data's own share (training images that close to another one): healthy
runs 0.00-0.02, a generator returning training images 1.0."""
MEMORIZATION_PAIRS = 4
"""Closest generated/training pairs saved as PNGs under RUN/health/ with a copying finding."""

# -- stalled -------------------------------------------------------------------------------------------
STALL_PATIENCE = 4
"""Quality measurements without a clear improvement before suggesting to stop."""
STALL_MIN_GAIN_STD = 0.5
"""A clear improvement beats the best by half the measurement's own spread (kid_std), not by noise."""
STALL_MIN_STEPS = 1000
"""Progress is judged from step 1000 on: early quality often gets worse before it gets better (measured on
MNIST: KD 0.37 at step 25, 0.66 at step 75, as grey blobs turn into first strokes). KID's default cadence
on a GPU is every 1000 steps, so this costs a real run nothing."""


def _rank(level: str) -> int:
    return LEVELS.index(level)


@dataclass(frozen=True)
class Fix:
    """A suggested fix: a button in the studio, a hint in the CLI."""

    label: str
    """Button text: "Turn on augmentation", "Lower the learning rates to 1e-4"."""
    settings: dict[str, Any]
    """TrainConfig overrides to apply to a resumed run ({} for pure actions)."""
    action: str = "resume"
    """"resume" (resume with settings), "stop" (stop, keep the best checkpoint) or "family" (start a new
    run with another family; settings has "family")."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        return {"label": self.label, "settings": dict(self.settings), "action": self.action}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Fix:
        """Inverse of :meth:`to_dict`."""
        return cls(str(d["label"]), dict(d.get("settings", {})), str(d.get("action", "resume")))


@dataclass(frozen=True)
class Finding:
    """What a detector found at a step: a level, one plain sentence, suggested fixes and the numbers."""

    detector: str
    level: str
    step: int
    message: str
    fixes: tuple[Fix, ...]
    evidence: dict[str, Any]
    """The numbers behind it; "series": {"name": [[step, value], ...]} for a chart; memorization's
    "pairs": [{"generated": "health/mem-STEP-0-gen.png", "neighbour": "health/mem-STEP-0-real.png",
    "distance": float}] (paths relative to the run folder); "auto_remedy" when one was applied."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (one line of health.jsonl)."""
        return {
            "detector": self.detector,
            "level": self.level,
            "step": self.step,
            "message": self.message,
            "fixes": [f.to_dict() for f in self.fixes],
            "evidence": self.evidence,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Finding:
        """Inverse of :meth:`to_dict`."""
        return cls(
            str(d["detector"]),
            str(d["level"]),
            int(d["step"]),
            str(d["message"]),
            tuple(Fix.from_dict(f) for f in d.get("fixes", [])),
            dict(d.get("evidence", {})),
        )


def read_health(run_dir: Path | str) -> list[Finding]:
    """The findings in RUN/health.jsonl, oldest first ([] without the file); a torn line is skipped."""
    path = health_path(run_dir)
    if not path.is_file():
        return []
    findings = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            findings.append(Finding.from_dict(json.loads(line)))
        except (ValueError, KeyError, TypeError):
            continue  # a hard kill can leave half a line at the end
    return findings


def current_levels(findings: Iterable[Finding]) -> dict[str, str]:
    """Detector -> the level of its latest finding ("ok" for a detector without findings)."""
    levels = dict.fromkeys(DETECTORS, "ok")
    for finding in findings:
        levels[finding.detector] = finding.level
    return levels


def describe_finding(finding: Finding) -> str:
    """One line for a terminal: "[health] warning: <message> Try: <fix labels>"."""
    text = f"[health] {finding.level}: {finding.message}"
    if finding.fixes:
        text += " Try: " + "; ".join(f.label for f in finding.fixes) + "."
    remedy = finding.evidence.get("auto_remedy")
    if remedy:
        text += f" Applied automatically: {remedy['label']}."
    return text


def append_finding(run_dir: Path | str, finding: Finding) -> None:
    """Append ``finding`` as one JSON line to RUN/health.jsonl (flushed; a torn last line is skipped on read)."""
    path = health_path(run_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(finding.to_dict()) + "\n")
        handle.flush()


def cut_health(run_dir: Path | str, step: int) -> None:
    """Drop findings after ``step`` (a resume from that step reports them again if they recur)."""
    path = health_path(run_dir)
    if path.is_file():
        kept = [f for f in read_health(run_dir) if f.step <= step]
        path.write_text("".join(json.dumps(f.to_dict()) + "\n" for f in kept), encoding="utf-8")


@dataclass
class ImageSource:
    """What the image detectors need from the Trainer (noise-to-image families only).

    ``rows(idx)`` gives dataset rows as (N,C,H,W) floats in [-1,1]; ``count`` is the number of rows;
    ``sample()`` the generated images (N,C,H,W in [-1,1]) of the fixed latents.
    """

    rows: Callable[[torch.Tensor], torch.Tensor]
    count: int
    sample: Callable[[], torch.Tensor]


@dataclass
class _Level:
    """One detector's reported level with its hysteresis: raised at once, lowered after ``clear_after``
    checks in a row below it (to the highest level seen among them)."""

    clear_after: int
    level: str = "ok"
    below: int = 0

    def update(self, raw: str) -> bool:
        """Feed this check's level; True when the reported level changed (then it is ``raw``)."""
        if _rank(raw) > _rank(self.level):
            self.level, self.below = raw, 0
            return True
        if _rank(raw) == _rank(self.level):
            self.below = 0
            return False
        self.below += 1
        if self.below >= self.clear_after:
            self.level, self.below = raw, 0
            return True
        return False


@dataclass
class _Verdict:
    """A detector's reading at one check."""

    level: str
    message: str
    fixes: tuple[Fix, ...] = ()
    evidence: dict[str, Any] = field(default_factory=dict)


def _pixels(images: torch.Tensor) -> torch.Tensor:
    """(N, C*16*16) float32 CPU features: the images average-pooled to FEATURE_SIZE pixels."""
    x = images.detach().float().cpu()
    if x.shape[-1] > FEATURE_SIZE or x.shape[-2] > FEATURE_SIZE:
        x = F.adaptive_avg_pool2d(x, FEATURE_SIZE)
    return x.flatten(1)


def _variety(features: torch.Tensor) -> float:
    """Mean pairwise Euclidean distance between the rows of ``features``."""
    n = len(features)
    if n < 2:
        return 0.0
    return float(torch.cdist(features, features).sum()) / (n * (n - 1))


def _mean(values: Iterable[float]) -> float:
    data = list(values)
    return sum(data) / len(data) if data else float("nan")


def _std(values: list[float]) -> float:
    return float(np.std(values)) if len(values) > 1 else 0.0


def _lr(value: float) -> str:
    return f"{value:.0e}".replace("e-0", "e-").replace("e+0", "e+")


class HealthMonitor:
    """The detectors of one run; the Trainer feeds it and writes out the findings it returns.

    ``images`` is None for families that draw nothing from noise (translators): only the step detectors
    (divergence and, where D reports its accuracy, overpowering) run for them.
    """

    def __init__(self, config: TrainConfig, run_dir: Path | str, images: ImageSource | None = None) -> None:
        self.config = config
        self.run_dir = Path(run_dir)
        self.images = images
        every = config.preview_every or IMAGE_EVERY_MAX
        self.image_every = max(IMAGE_EVERY_MIN, min(every, IMAGE_EVERY_MAX))
        step_clear, image_clear = CLEAR_AFTER_STEP_CHECKS, CLEAR_AFTER_IMAGE_CHECKS
        self.levels = {
            "collapse": _Level(image_clear),
            "overpowering": _Level(step_clear),
            "divergence": _Level(step_clear),
            "overfitting": _Level(step_clear),
            "memorization": _Level(image_clear),
            "stalled": _Level(1),
        }
        self.signals: dict[str, deque[float]] = {}
        self.series: dict[str, deque[list[float]]] = {}
        self.spread_level: dict[str, float] = {}
        self.spread_checks: dict[str, int] = {}
        self.grad_peak = 0.0
        self.variety_peak = 0.0
        self.rollback_steps: list[int] = []
        self.kid_best: tuple[float, int] | None = None  # (value, step) as the Trainer's best-kid.pt
        self.kid_clear: tuple[float, int] | None = None  # the last clear improvement
        self.kid_since = 0
        # the image detectors' references (empty for translators): see _prepare_references
        self.bank_rows = torch.empty(0, dtype=torch.long)
        self.bank = np.empty((0, 0), np.float32)
        self.bank_own: np.ndarray | None = None
        self.real_variety = 0.0
        if images is not None:
            self._prepare_references(images)

    # -- references (measured once, from the monitor's own generator) -----------------------------
    def _prepare_references(self, images: ImageSource) -> None:
        gen = torch.Generator().manual_seed(self.config.seed + 60013)
        order = torch.randperm(images.count, generator=gen)
        self.bank_rows = order[:MEMORY_BANK].sort().values
        bank = torch.cat([_pixels(images.rows(chunk)) for chunk in self.bank_rows.split(256)])
        self.bank = bank.numpy()
        self.real_variety = _variety(bank[:HEALTH_SAMPLES]) if len(bank) > 1 else 0.0
        # distance from each bank image to its nearest other one, once (memorization() would redo it)
        self.bank_own = (
            nearest_neighbours(self.bank, self.bank, 1, exclude_self=True)[0][:, 0] if len(bank) > 1 else None
        )

    # -- feeding ------------------------------------------------------------------------------------
    def observe_step(self, step: int, stats: dict[str, float]) -> list[Finding]:
        """Record one step's statistics; every CHECK_EVERY steps run the step detectors."""
        for key in ("d_acc_real", "d_acc_fake", "d_confidence", "loss_d", "loss_g", "g_grad_norm", "augment_p"):
            value = stats.get(key)
            if value is not None and math.isfinite(value):
                self.signals.setdefault(key, deque(maxlen=LONG_WINDOW)).append(float(value))
        if step % CHECK_EVERY:
            return []
        self._record_series(step)
        return self._judge(
            step,
            {
                "overpowering": self._overpowering,
                "divergence": self._divergence,
                "overfitting": self._overfitting,
            },
        )

    def observe_rollback(self, step: int, fatal: bool = False) -> list[Finding]:
        """Record a NaN roll-back (``fatal``: the Trainer is giving up) and judge divergence at once."""
        self.rollback_steps.append(step)
        return self._judge(step, {"divergence": lambda s: self._divergence(s, rollback=True, fatal=fatal)})

    def image_due(self, step: int) -> bool:
        """True when the Trainer should call :meth:`observe_images` at this step."""
        return self.images is not None and step % self.image_every == 0

    def observe_images(self, step: int) -> list[Finding]:
        """Draw the fixed latents' images and run the collapse and copying detectors."""
        assert self.images is not None
        generated = self.images.sample()
        features = _pixels(generated)
        return self._judge(
            step,
            {
                "collapse": lambda s: self._collapse(s, features),
                "memorization": lambda s: self._memorization(s, features, generated),
            },
        )

    def observe_metric(self, record: dict[str, Any]) -> list[Finding]:
        """Record a quality measurement ({'step', 'kid', 'kid_std', 'kid_name'}) and judge progress."""
        step, value = int(record["step"]), float(record["kid"])
        if not math.isfinite(value):
            return []
        self._append_series("kid", step, value)
        if self.kid_best is None or value < self.kid_best[0]:
            self.kid_best = (value, step)
        margin = STALL_MIN_GAIN_STD * float(record.get("kid_std") or 0.0)
        if self.kid_clear is None or value < self.kid_clear[0] - margin:
            self.kid_clear, self.kid_since = (value, step), 0
        else:
            self.kid_since += 1
        return self._judge(step, {"stalled": lambda s: self._stalled(s, str(record.get("kid_name", "KID")))})

    # -- judging ------------------------------------------------------------------------------------
    def _judge(self, step: int, detectors: dict[str, Callable[[int], _Verdict | None]]) -> list[Finding]:
        findings = []
        for name, detector in detectors.items():
            verdict = detector(step)
            if verdict is None:
                continue
            if self.levels[name].update(verdict.level):
                findings.append(self._finding(name, step, verdict))
        return findings

    def _finding(self, name: str, step: int, verdict: _Verdict) -> Finding:
        # charts and images are made only for a finding (most checks report nothing): cheap checks
        evidence = dict(verdict.evidence)
        evidence["series"] = self._chart(*evidence.pop("_chart", ()))
        save_pairs = evidence.pop("_save_pairs", None)
        if save_pairs is not None and verdict.level != "ok":
            evidence["pairs"] = save_pairs()
        return Finding(name, verdict.level, step, verdict.message, verdict.fixes, evidence)

    # -- evidence series ----------------------------------------------------------------------------
    def _append_series(self, name: str, step: int, value: float) -> None:
        self.series.setdefault(name, deque(maxlen=SERIES_POINTS)).append([step, round(value, 6)])

    def _record_series(self, step: int) -> None:
        for key, values in self.signals.items():
            recent = list(values)[-CHECK_EVERY:]
            if recent:
                self._append_series(key, step, _mean(recent))

    def _chart(self, *names: str) -> dict[str, list[list[float]]]:
        return {n: [list(p) for p in self.series[n]] for n in names if n in self.series}

    def _recent(self, key: str, n: int) -> list[float]:
        values = self.signals.get(key)
        return list(values)[-n:] if values is not None and len(values) >= n else []

    # -- fixes --------------------------------------------------------------------------------------
    def _fix_lower_lr(self, factor: float = 0.5) -> Fix:
        cfg = self.config
        lr_g, lr_d = cfg.lr_g * factor, cfg.lr_d * factor
        same = math.isclose(lr_g, lr_d)
        words = _lr(lr_g) if same else f"{_lr(lr_g)} (generator) and {_lr(lr_d)} (discriminator)"
        return Fix(f"Lower the learning rates to {words}", {"lr_g": lr_g, "lr_d": lr_d})

    def _fix_augment(self) -> Fix | None:
        cfg = self.config
        if set(cfg.augment.split(",")) >= set(FULL_AUGMENT.split(",")) and cfg.ada:
            return None
        label = "Turn on augmentation" if not cfg.augment.strip() else "Use every augmentation, adaptively"
        return Fix(label, {"augment": FULL_AUGMENT, "ada": True})

    def _fix_r1(self) -> Fix:
        gamma = max(1.0, self.config.r1_gamma * 4)
        return Fix(f"Raise the gradient penalty (R1) to {gamma:g}", {"r1_gamma": gamma})

    def _fix_family(self) -> Fix | None:
        if self.config.family == SMALL_DATA_FAMILY:
            return None
        return Fix("Start a new run with FastGAN (built for small folders)", {"family": SMALL_DATA_FAMILY}, "family")

    def _fix_minibatch_stddev(self) -> Fix | None:
        # offered only where the family has the option (looked up by field, not by family name)
        config_cls = get_family(self.config.family).Config
        names = {f.name for f in dataclasses.fields(config_cls)}
        options = self.config.family_options
        if "minibatch_stddev" not in names or options.get("minibatch_stddev"):
            return None
        return Fix(
            "Let the discriminator see each batch's variety (minibatch std-dev)",
            {"family_options": {**options, "minibatch_stddev": 4}},
        )

    # -- detectors ----------------------------------------------------------------------------------
    def _collapse(self, step: int, features: torch.Tensor) -> _Verdict | None:
        if not self.real_variety or step < COLLAPSE_WARMUP:
            return None
        ratio = _variety(features) / self.real_variety
        self._append_series("variety", step, ratio)
        peak = self.variety_peak
        self.variety_peak = max(peak, ratio)
        evidence = {"variety": round(ratio, 4), "best_variety": round(peak, 4), "_chart": ("variety",)}
        share = f"{ratio:.2f} of the real images'"
        fixes = tuple(
            f for f in (self._fix_minibatch_stddev(), self._fix_lower_lr(), self._fix_loss("wgan-gp")) if f is not None
        )
        if ratio < COLLAPSE_PROBLEM:
            return _Verdict(
                "problem",
                f"The generator makes nearly the same image whatever its input (variety {share}): it has collapsed.",
                fixes,
                evidence,
            )
        if ratio < COLLAPSE_WARNING:
            return _Verdict(
                "warning", f"The generator makes only a few different images (variety {share}).", fixes, evidence
            )
        if peak >= COLLAPSE_DROP_MIN_PEAK and ratio < COLLAPSE_DROP_NOTE * peak:
            level = "warning" if ratio < COLLAPSE_DROP_WARNING * peak else "note"
            return _Verdict(
                level,
                f"The generated images are losing variety fast ({share}, down from {peak:.2f}): the generator may be "
                "collapsing onto a few images.",
                fixes,
                evidence,
            )
        return _Verdict("ok", f"The generated images vary again ({share}).", (), evidence)

    def _fix_loss(self, loss: str) -> Fix | None:
        if self.config.loss == loss:
            return None
        return Fix(f"Use the {loss} loss (steadier, slower)", {"loss": loss})

    def _overpowering(self, step: int) -> _Verdict | None:
        if step < OVERPOWER_WARMUP:
            return None
        acc_real, acc_fake = self._recent("d_acc_real", OVERPOWER_WINDOW), self._recent("d_acc_fake", OVERPOWER_WINDOW)
        if not acc_real or not acc_fake:
            return None
        accuracy = min(_mean(acc_real), _mean(acc_fake))
        conf_values = self._recent("d_confidence", OVERPOWER_WINDOW)
        confidence = _mean(conf_values) if conf_values else None
        loss_g = self._recent("loss_g", 2 * OVERPOWER_WINDOW)
        rise = None
        if loss_g:
            before, after = _mean(loss_g[:OVERPOWER_WINDOW]), _mean(loss_g[OVERPOWER_WINDOW:])
            rise = (after - before) / max(abs(before), 0.1)
        grads = self._recent("g_grad_norm", OVERPOWER_WINDOW)
        grad = float(np.median(grads)) if grads else None
        collapsed = grad is not None and self.grad_peak > 0 and grad < GRAD_COLLAPSE * self.grad_peak
        if grad is not None:
            self.grad_peak = max(self.grad_peak, grad)
        climbing = rise is not None and rise >= CLIMB_RISE
        evidence = {
            "accuracy_real": round(_mean(acc_real), 4),
            "accuracy_fake": round(_mean(acc_fake), 4),
            "confidence": None if confidence is None else round(confidence, 4),
            "loss_g_rise": None if rise is None else round(rise, 4),
            "g_grad_norm": None if grad is None else round(grad, 6),
            "g_grad_norm_peak": round(self.grad_peak, 6),
            "_chart": ("d_acc_real", "d_acc_fake", "d_confidence", "loss_g", "g_grad_norm"),
        }
        why = []
        if climbing:
            why.append(f"the generator's loss rose {rise:.0%} in {OVERPOWER_WINDOW} steps")
        if collapsed:
            why.append("the generator's gradients have all but vanished")
        cfg = self.config
        fixes = tuple(
            f
            for f in (
                Fix(f"Slow the discriminator down (its learning rate to {_lr(cfg.lr_d / 4)})", {"lr_d": cfg.lr_d / 4})
                if cfg.lr_g > 0 and cfg.lr_g >= cfg.lr_d / 4
                else Fix(f"Raise the generator's learning rate to {_lr(cfg.lr_d)}", {"lr_g": cfg.lr_d}),
                self._fix_augment(),
                self._fix_r1() if cfg.r1_gamma < 1 else None,
            )
            if f is not None
        )
        if accuracy >= OVERPOWER_ACCURACY and confidence is not None:
            sure = f"it tells real from generated {accuracy:.0%} of the time, {confidence:.0%} sure"
            if confidence >= OVERPOWER_CONFIDENCE_PROBLEM:
                return _Verdict(
                    "problem",
                    f"The discriminator has won ({sure}), so the generator has almost nothing left to learn from.",
                    fixes,
                    evidence,
                )
            if confidence >= OVERPOWER_CONFIDENCE:
                if why:
                    return _Verdict(
                        "warning",
                        f"The discriminator is overpowering the generator ({sure}; {' and '.join(why)}).",
                        fixes,
                        evidence,
                    )
                return _Verdict("note", f"The discriminator is winning easily ({sure}).", fixes, evidence)
        elif accuracy >= OVERPOWER_ACCURACY and collapsed:  # a critic: no confidence scale, gradients tell
            return _Verdict(
                "warning",
                f"The critic separates real from generated {accuracy:.0%} of the time and {why[-1]}.",
                fixes,
                evidence,
            )
        return _Verdict("ok", "The generator and the discriminator are evenly matched again.", (), evidence)

    def _divergence(self, step: int, rollback: bool = False, fatal: bool = False) -> _Verdict | None:
        self.rollback_steps = [s for s in self.rollback_steps if s > step - ROLLBACK_WINDOW]
        keys = ("d_confidence", "loss_g") if "d_confidence" in self.signals else ("loss_d", "loss_g")
        spreads: dict[str, float] = {}
        ratios: dict[str, float] = {}
        for key in keys:
            recent = self._recent(key, SPIKE_WINDOW)
            if not recent:
                continue
            # step-to-step changes, not the values: a loss that trends (D slowly winning) is not unstable
            spread = _std(np.diff(recent).tolist()) / math.sqrt(2)
            spreads[key] = spread
            if key != "d_confidence":  # a loss's noise grows with its size: compare spreads relative to it
                spread /= max(abs(_mean(recent)), LOSS_FLOOR)
            level = self.spread_level.get(key)
            checks = self.spread_checks.get(key, 0)
            if level is not None and checks >= SPIKE_HISTORY:
                ratios[key] = spread / max(level, SPREAD_FLOOR)
            if not rollback:  # a roll-back is judged at once, between checks: only checks move the level
                self.spread_level[key] = spread if level is None else level + SPIKE_LEVEL_RATE * (spread - level)
                self.spread_checks[key] = checks + 1
                self._append_series(f"{key}_spread", step, spread)
        rollbacks = len(self.rollback_steps)
        swing = spreads.get("d_confidence", 0.0)
        ratio = max(ratios.values(), default=0.0)
        evidence = {
            "rollbacks": rollbacks,
            "rollback_steps": list(self.rollback_steps),
            "spread": {k: round(v, 6) for k, v in spreads.items()},
            "spike_ratio": round(ratio, 3),
            "_chart": (*(f"{k}_spread" for k in keys), *keys),
        }
        fixes = tuple(
            f
            for f in (
                self._fix_lower_lr(),
                self._fix_loss("hinge") if self.config.loss == "ns" else None,
                self._fix_r1() if self.config.r1_gamma < 1 else None,
            )
            if f is not None
        )
        if fatal or rollbacks >= 2:
            return _Verdict(
                "problem",
                f"Training keeps producing invalid numbers ({rollbacks} roll-backs in the last {ROLLBACK_WINDOW} "
                "steps): it is diverging.",
                fixes,
                evidence,
            )
        if swing >= SWING_PROBLEM or ratio >= SPIKE_PROBLEM:
            return _Verdict("problem", self._swing_words(swing, ratio, "is diverging"), fixes, evidence)
        if rollbacks == 1:
            return _Verdict(
                "warning",
                f"Training produced invalid numbers at step {self.rollback_steps[-1]} and was rolled back to the last "
                "good state.",
                fixes,
                evidence,
            )
        if swing >= SWING_WARNING or ratio >= SPIKE_WARNING:
            return _Verdict("warning", self._swing_words(swing, ratio, "is unstable"), fixes, evidence)
        return _Verdict("ok", "Training is stable again.", (), evidence)

    @staticmethod
    def _swing_words(swing: float, ratio: float, state: str) -> str:
        if ratio >= SPIKE_WARNING:
            return f"Training {state}: the losses swing {ratio:.0f} times more than they did."
        return (
            f"Training {state}: the discriminator flips between sure and wrong from step to step (swing {swing:.2f})."
        )

    def _overfitting(self, step: int) -> _Verdict | None:
        acc_real = self._recent("d_acc_real", OVERFIT_WINDOW)
        p_values = self._recent("augment_p", OVERFIT_WINDOW)
        if not acc_real:
            return None
        cfg = self.config
        rt = 2 * _mean(acc_real) - 1  # mean sign of D(real), ADA's overfitting signal
        p = _mean(p_values) if p_values else 0.0
        adaptive = cfg.ada and bool(cfg.augment.strip())
        self._append_series("ada_rt", step, rt)
        evidence = {
            "rt": round(rt, 4),
            "target": cfg.ada_target,
            "augment_p": round(p, 4),
            "_chart": ("ada_rt", "augment_p"),
        }
        band = OVERFIT_BAND if self.levels["overfitting"].level != "ok" else 0.0  # to clear, rt must fall further
        if adaptive:
            pinned = p >= P_MAXED - band and rt > cfg.ada_target + OVERFIT_MARGIN - band
            level = (
                "problem" if pinned and rt > cfg.ada_target + OVERFIT_MARGIN_PROBLEM else "warning" if pinned else "ok"
            )
            detail = f"it calls {(rt + 1) / 2:.0%} of them real with augmentation already at full strength"
        else:
            level = "warning" if step >= OVERFIT_STATIC_STEPS and rt > OVERFIT_STATIC_RT - band else "ok"
            detail = f"it calls {(rt + 1) / 2:.0%} of them real, and augmentation does not adapt"
        if level == "ok":
            return _Verdict("ok", "The discriminator no longer knows the training images by heart.", (), evidence)
        augment = self._fix_augment()
        fixes = tuple(f for f in (augment, self._fix_r1(), self._fix_family()) if f is not None)
        return _Verdict(
            level, f"The discriminator has learned the training images by heart ({detail}).", fixes, evidence
        )

    def _memorization(self, step: int, features: torch.Tensor, generated: torch.Tensor) -> _Verdict | None:
        if self.bank_own is None or step < COLLAPSE_WARMUP:
            return None
        gen = features.numpy()
        report = memorization(gen, self.bank, ratio=MEMORIZATION_RATIO, own_distances=self.bank_own)
        excess = report.near_copy_share - report.training_share
        self._append_series("near_copies", step, report.near_copy_share)
        closest = report.closest(MEMORIZATION_PAIRS)
        evidence = {
            "near_copy_share": round(report.near_copy_share, 4),
            "training_share": round(report.training_share, 4),
            "threshold": round(report.threshold, 6),
            "typical_distance": round(report.typical_distance, 6),
            "_chart": ("near_copies",),
        }
        pairs = [(int(i), int(self.bank_rows[report.nearest_index[i]]), float(report.distance[i])) for i in closest]
        evidence["_save_pairs"] = lambda: self._save_pairs(step, pairs, generated)
        copies = int(report.near_copy.sum())
        level = (
            "problem"
            if excess >= MEMORIZATION_PROBLEM
            else "warning"
            if excess >= MEMORIZATION_WARNING
            else "note"
            if excess >= MEMORIZATION_NOTE
            else "ok"
        )
        if level == "ok":
            return _Verdict("ok", "The generated images are no longer copies of training images.", (), evidence)
        fixes = tuple(
            f
            for f in (
                Fix(f"Stop and keep an earlier checkpoint (before step {step})", {}, "stop"),
                self._fix_augment(),
                self._fix_family(),
            )
            if f is not None
        )
        return _Verdict(
            level,
            f"{copies} of {len(gen)} generated images are near-copies of training images: the model is "
            "memorising your folder instead of learning from it.",
            fixes,
            evidence,
        )

    def _save_pairs(
        self, step: int, closest: list[tuple[int, int, float]], images: torch.Tensor
    ) -> list[dict[str, Any]]:
        """Write each (generated, nearest training) pair as PNGs under RUN/health/ (atomic); their entries."""
        assert self.images is not None
        folder = health_dir(self.run_dir)
        generated = to_uint8_nhwc(images)
        real = to_uint8_nhwc(self.images.rows(torch.tensor([row for _, row, _ in closest])))
        pairs = []
        for i, (gen_index, _, distance) in enumerate(closest):
            names = (f"mem-{step:06d}-{i}-gen.png", f"mem-{step:06d}-{i}-real.png")
            save_png(generated[gen_index], folder / names[0])
            save_png(real[i], folder / names[1])
            pairs.append(
                {"generated": f"health/{names[0]}", "neighbour": f"health/{names[1]}", "distance": round(distance, 6)}
            )
        return pairs

    def _stalled(self, step: int, name: str) -> _Verdict | None:
        assert self.kid_best is not None and self.kid_clear is not None
        best, best_step = self.kid_best
        evidence = {
            "best": best,
            "best_step": best_step,
            "checkpoint": "checkpoints/best-kid.pt",
            "measurements_without_gain": self.kid_since,
            "_chart": ("kid",),
        }
        if self.kid_since < STALL_PATIENCE or step < STALL_MIN_STEPS:
            return _Verdict("ok", f"{name} is improving again.", (), evidence)
        return _Verdict(
            "warning",
            f"{name} has not clearly improved for {self.kid_since} measurements (best {best:.4f} at step "
            f"{best_step}): more training is unlikely to help.",
            (Fix(f"Stop: the best checkpoint is step {best_step}", {}, "stop"), self._fix_lower_lr()),
            evidence,
        )

    # -- checkpoint ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Plain-value state for the checkpoint, so a resumed run judges exactly as an unbroken one."""
        return {
            "format": 1,
            "levels": {k: [v.level, v.below] for k, v in self.levels.items()},
            "signals": {k: list(v) for k, v in self.signals.items()},
            "series": {k: [list(p) for p in v] for k, v in self.series.items()},
            "spread_level": dict(self.spread_level),
            "spread_checks": dict(self.spread_checks),
            "grad_peak": self.grad_peak,
            "variety_peak": self.variety_peak,
            "rollback_steps": list(self.rollback_steps),
            "kid_best": None if self.kid_best is None else list(self.kid_best),
            "kid_clear": None if self.kid_clear is None else list(self.kid_clear),
            "kid_since": self.kid_since,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        for k, (level, below) in state["levels"].items():
            self.levels[k].level, self.levels[k].below = str(level), int(below)
        self.signals = {k: deque((float(x) for x in v), maxlen=LONG_WINDOW) for k, v in state["signals"].items()}
        self.series = {k: deque((list(p) for p in v), maxlen=SERIES_POINTS) for k, v in state["series"].items()}
        self.spread_level = {k: float(v) for k, v in state["spread_level"].items()}
        self.spread_checks = {k: int(v) for k, v in state["spread_checks"].items()}
        self.grad_peak, self.variety_peak = float(state["grad_peak"]), float(state["variety_peak"])
        self.rollback_steps = [int(s) for s in state["rollback_steps"]]
        self.kid_best = None if state["kid_best"] is None else (float(state["kid_best"][0]), int(state["kid_best"][1]))
        self.kid_clear = (
            None if state["kid_clear"] is None else (float(state["kid_clear"][0]), int(state["kid_clear"][1]))
        )
        self.kid_since = int(state["kid_since"])


def with_remedy(finding: Finding, fix: Fix, applied: list[str]) -> Finding:
    """``finding`` with the automatic remedy it triggered in its evidence."""
    remedy = {"label": fix.label, "settings": {k: fix.settings[k] for k in applied}}
    return replace(finding, evidence={**finding.evidence, "auto_remedy": remedy})
