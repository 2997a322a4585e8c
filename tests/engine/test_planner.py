"""The memory planner: the user's values kept, the device's defaults chosen, accumulation from the
estimated memory of the real (tiny) model, and plain words for every choice. CPU only: the CUDA
defaults are planned with probe=False, which builds nothing."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from engine.errors import ConfigError
from engine.training import planner
from engine.training.planner import HEADROOM, MemoryEstimate, plan_memory

from .helpers import make_dataset, tiny_config

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("planner"))


def peak(dataset, batch_size: int, **overrides) -> int:
    """The estimated peak of one step at ``batch_size`` images in one micro-batch."""
    plan = plan_memory(tiny_config(dataset, batch_size=batch_size, **overrides), CPU)
    assert plan.accumulate == 1 and plan.free_bytes is None  # unknown free memory: one micro-batch
    return plan.estimated_peak_bytes


def test_explicit_values_are_kept(dataset):
    config = tiny_config(dataset, amp=True, channels_last=False, accumulate=2)
    plan = plan_memory(config, CPU, free_bytes=1000)  # far too little: the user's accumulate stays anyway
    assert (plan.batch_size, plan.accumulate, plan.amp, plan.channels_last) == (8, 2, True, False)
    assert plan.chosen == {"batch_size": False, "accumulate": False, "amp": False, "channels_last": False}
    assert sum("your setting" in note for note in plan.notes) == 4
    assert any("more than the" in note for note in plan.notes if note.startswith("accumulate"))


@pytest.mark.parametrize(("device", "on"), [("cuda", True), ("cpu", False), ("mps", False)])
def test_unset_values_follow_the_device(dataset, monkeypatch, device, on):
    def no_building(name):
        raise AssertionError("probe=False must not build a model")

    monkeypatch.setattr(planner, "get_family", no_building)
    plan = plan_memory(tiny_config(dataset), torch.device(device), probe=False)
    assert (plan.amp, plan.channels_last, plan.accumulate) == (on, on, 1)
    assert plan.chosen == {"batch_size": False, "accumulate": True, "amp": True, "channels_last": True}
    assert plan.free_bytes is None and plan.estimated_peak_bytes is None
    amp_note = next(n for n in plan.notes if n.startswith("amp:"))
    assert ("on by default on a GPU" in amp_note) == on


def test_accumulation_rises_in_powers_of_two_as_free_memory_shrinks(dataset):
    peaks = {n: peak(dataset, n) for n in (8, 4, 2, 1)}
    assert peaks[8] > peaks[4] > peaks[2] > peaks[1] > 0
    for expected, micro in [(1, 8), (2, 4), (4, 2), (8, 1)]:
        # free memory for which `micro` images fit and twice as many do not
        budget = (peaks[micro] + peaks.get(2 * micro, peaks[micro] * 2)) / 2
        plan = plan_memory(tiny_config(dataset), CPU, free_bytes=int(budget / HEADROOM))
        assert plan.accumulate == expected and plan.chosen["accumulate"]
        assert plan.micro_batch == micro and plan.estimated_peak_bytes == peaks[micro]
        assert plan.estimated_peak_bytes <= HEADROOM * plan.free_bytes


def test_no_fit_at_all_is_a_note_not_an_error(dataset):
    plan = plan_memory(tiny_config(dataset), CPU, free_bytes=1000)
    assert plan.accumulate == 8 and plan.micro_batch == 1
    note = next(n for n in plan.notes if n.startswith("accumulate"))
    assert "does not fit" in note and "resolution" in note and "model size" in note


def test_estimate_grows_with_batch_and_resolution(dataset):
    assert peak(dataset, 8) > peak(dataset, 4)
    assert peak(dataset, 8, resolution=32) > peak(dataset, 8, resolution=16)


def test_bigger_model_estimates_more(dataset):
    small = tiny_config(dataset).family_options
    big = {**small, "base_channels": 2 * small["base_channels"], "max_channels": 2 * small["max_channels"]}
    assert peak(dataset, 8, family_options=big) > peak(dataset, 8, family_options=small)


def test_each_process_plans_its_share(dataset):
    whole = plan_memory(tiny_config(dataset), CPU)
    shared = plan_memory(tiny_config(dataset), CPU, world_size=2)
    assert shared.batch_size == 8 and shared.micro_batch == 4
    assert shared.estimated_peak_bytes < whole.estimated_peak_bytes
    assert "4 per process" in shared.notes[0] and "(2 processes)" in shared.describe()
    with pytest.raises(ConfigError, match="batch_size"):
        plan_memory(tiny_config(dataset, batch_size=2), CPU, world_size=4)


def test_describe_names_each_choice(dataset):
    plan = plan_memory(tiny_config(dataset, channels_last=True), CPU, free_bytes=2**30)
    text = plan.describe()
    for name, who in [("batch_size=8", "yours"), ("accumulate=1", "planned"), ("amp=false", "planned")]:
        assert f"{name} ({who})" in text
    assert "channels_last=true (yours)" in text
    for field in ("batch_size:", "accumulate:", "amp:", "channels_last:"):
        assert f"- {field}" in text
    assert "1024.00 GiB" not in text and "1.00 GiB free" in text


def test_settings_make_a_valid_config(dataset):
    config = tiny_config(dataset)
    plan = plan_memory(config, CPU, free_bytes=10**9)
    planned = dataclasses.replace(config, **plan.settings())
    planned.validate()
    assert set(plan.settings()) == {"batch_size", "accumulate", "amp", "channels_last"}
    assert plan.to_dict()["notes"] == list(plan.notes)


def test_planning_leaves_the_random_streams_alone(dataset):
    torch.manual_seed(123)
    before = torch.get_rng_state()
    plan_memory(tiny_config(dataset), CPU)
    assert torch.equal(before, torch.get_rng_state())


def test_two_measurements_give_the_line():
    estimate = MemoryEstimate.fit({4: 900, 2: 500}, "test")
    assert (estimate.fixed_bytes, estimate.per_image_bytes) == (100, 200)
    assert estimate.peak(10) == 2100
    assert MemoryEstimate.fit({2: 500, 4: 400}, "noise").per_image_bytes == 0  # never a negative slope


def test_uneven_share_is_refused(dataset):
    with pytest.raises(ConfigError, match="multiple of the number of processes"):
        plan_memory(tiny_config(dataset, batch_size=10), CPU, world_size=4, probe=False)


def test_cuda_measurement_fits_the_peaks_of_real_steps(monkeypatch):
    # No GPU here: the CUDA counters are stood in for, the arithmetic and the order of steps are real.
    steps: list[int] = []

    class Family:
        def train_step(self, real, labels, step, micro_batches):
            assert (step, micro_batches) == (0, 1)  # step 0 includes the lazy regularisers
            steps.append(real.shape[0])

    held_before = 5_000
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: None)
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda device=None: None)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device=None: held_before + 1_000 + 300 * steps[-1])
    batches = {n: (torch.zeros(n, 3, 8, 8), None) for n in (2, 4)}
    estimate = planner._measure_cuda(Family(), batches, torch.device("cuda"), held_before)
    assert steps == [2, 2, 4], "a warm-up step first (optimizer state), then one measured step per size"
    assert (estimate.fixed_bytes, estimate.per_image_bytes) == (1_000, 300)
    assert estimate.method == "measured on cuda"
