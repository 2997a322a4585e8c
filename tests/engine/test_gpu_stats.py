"""GPU readings: pynvml parsed, PyTorch's memory query as the fallback, None instead of exceptions.

A fake ``pynvml`` module is put in sys.modules and PyTorch's CUDA queries are monkeypatched, so every
path runs on a CPU-only machine.
"""

from __future__ import annotations

import sys
import types

import pytest
import torch

from engine import gpu_stats
from engine.gpu_stats import GIB, GpuStats, gpu_stats_record, read_gpu_stats


class NVMLError(Exception):
    pass


def fake_pynvml(
    util: float = 87,
    used: float = 9.1 * GIB,
    total: float = 24 * GIB,
    fail: tuple[str, ...] = (),
    init_error: bool = False,
) -> types.ModuleType:
    """A pynvml stand-in reporting fixed figures; the functions named in ``fail`` raise NVMLError."""
    calls: dict[str, list] = {"init": [], "by_index": [], "by_uuid": []}

    def maybe_fail(name: str) -> None:
        if name in fail:
            raise NVMLError(f"{name}: Not Supported")

    def init() -> None:
        calls["init"].append(1)
        if init_error:
            raise NVMLError("Driver Not Loaded")

    def by_index(i: int) -> str:
        calls["by_index"].append(i)
        maybe_fail("handle")
        return f"handle-{i}"

    def by_uuid(uuid: str) -> str:
        calls["by_uuid"].append(uuid)
        return f"handle-{uuid}"

    def memory(handle: str) -> types.SimpleNamespace:
        maybe_fail("memory")
        return types.SimpleNamespace(used=int(used), total=int(total), free=int(total - used))

    def utilization(handle: str) -> types.SimpleNamespace:
        maybe_fail("utilization")
        return types.SimpleNamespace(gpu=util, memory=40)

    def temperature(handle: str, sensor: int) -> int:
        maybe_fail("temperature")
        assert sensor == 0
        return 64

    def power(handle: str) -> int:
        maybe_fail("power")
        return 251_400  # milliwatts

    module = types.ModuleType("pynvml")
    module.__dict__.update(
        NVMLError=NVMLError,
        NVML_TEMPERATURE_GPU=0,
        nvmlInit=init,
        nvmlDeviceGetHandleByIndex=by_index,
        nvmlDeviceGetHandleByUUID=by_uuid,
        nvmlDeviceGetMemoryInfo=memory,
        nvmlDeviceGetUtilizationRates=utilization,
        nvmlDeviceGetTemperature=temperature,
        nvmlDeviceGetPowerUsage=power,
        nvmlDeviceGetName=lambda handle: b"NVIDIA Fake 24GB",
        calls=calls,
    )
    return module


@pytest.fixture(autouse=True)
def fresh_nvml(monkeypatch):
    """Each test starts the management library afresh and leaves no fake behind."""
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    gpu_stats.NVML.reset()
    yield
    gpu_stats.NVML.reset()


def use_pynvml(monkeypatch, module: types.ModuleType | None) -> None:
    """Install ``module`` as pynvml; None makes ``import pynvml`` fail as when it is not installed."""
    monkeypatch.setitem(sys.modules, "pynvml", module)


def fake_cuda(monkeypatch, free: int | None, total: int = 16 * GIB) -> list[int]:
    """PyTorch sees one CUDA device with ``free`` bytes free (None: no CUDA at all); returns the asked indices."""
    asked: list[int] = []

    def mem_get_info(index: int = 0) -> tuple[int, int]:
        asked.append(index)
        return int(free or 0), int(total)

    monkeypatch.setattr(torch.cuda, "is_available", lambda: free is not None)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1 if free is not None else 0)
    monkeypatch.setattr(torch.cuda, "mem_get_info", mem_get_info)
    return asked


def test_pynvml_figures_are_parsed(monkeypatch):
    nvml = fake_pynvml()
    use_pynvml(monkeypatch, nvml)
    stats = read_gpu_stats(0)
    assert stats == GpuStats(
        index=0,
        memory_used=int(9.1 * GIB),
        memory_total=24 * GIB,
        utilization=87.0,
        temperature_c=64.0,
        power_w=pytest.approx(251.4),
        name="NVIDIA Fake 24GB",
        source="nvml",
    )
    assert stats.describe() == "GPU 87% · 9.1/24.0 GiB · 64 °C"
    assert "251 W" in stats.details() and "NVIDIA Fake 24GB" in stats.details()


def test_the_library_is_started_once(monkeypatch):
    nvml = fake_pynvml(util=12)
    use_pynvml(monkeypatch, nvml)
    for _ in range(3):
        assert read_gpu_stats(0).utilization == 12
    assert len(nvml.calls["init"]) == 1


def test_failed_start_is_remembered_and_falls_back_to_torch(monkeypatch):
    nvml = fake_pynvml(init_error=True)
    use_pynvml(monkeypatch, nvml)
    fake_cuda(monkeypatch, free=6 * GIB, total=16 * GIB)
    first, second = read_gpu_stats(0), read_gpu_stats(0)
    assert first == second == GpuStats(index=0, memory_used=10 * GIB, memory_total=16 * GIB, source="torch")
    assert len(nvml.calls["init"]) == 1, "a library that failed to start is not tried again"
    assert "did not start" in gpu_stats.NVML.problem and "Driver Not Loaded" in gpu_stats.NVML.problem


def test_missing_pynvml_uses_torch_memory_only(monkeypatch):
    use_pynvml(monkeypatch, None)
    asked = fake_cuda(monkeypatch, free=4 * GIB, total=24 * GIB)
    stats = read_gpu_stats(0)
    assert stats.source == "torch" and stats.utilization is None and stats.temperature_c is None
    assert (stats.memory_used, stats.memory_total) == (20 * GIB, 24 * GIB) and asked == [0]
    assert stats.describe() == "GPU 20.0/24.0 GiB"
    assert read_gpu_stats(0, torch_fallback=False) is None and asked == [0]
    assert "install nvidia-ml-py" in stats.details()
    assert gpu_stats.NVML.problem == "nvidia-ml-py (pynvml) is not installed"


def test_no_pynvml_and_no_cuda_gives_none(monkeypatch):
    use_pynvml(monkeypatch, None)
    fake_cuda(monkeypatch, free=None)
    assert read_gpu_stats(0) is None
    assert gpu_stats_record(torch.device("cuda", 0)) == {}


def test_torch_is_not_imported_to_ask(monkeypatch):
    use_pynvml(monkeypatch, None)
    monkeypatch.delitem(sys.modules, "torch")  # as in the studio before the engine is loaded
    assert read_gpu_stats(0) is None
    assert "torch" not in sys.modules


def test_pynvml_is_preferred_over_torch(monkeypatch):
    use_pynvml(monkeypatch, fake_pynvml(used=3 * GIB, total=24 * GIB))
    asked = fake_cuda(monkeypatch, free=1 * GIB, total=24 * GIB)
    stats = read_gpu_stats(0)
    assert stats.source == "nvml" and stats.memory_used == 3 * GIB and asked == []


def test_unsupported_figures_are_left_out(monkeypatch):
    # MIG slices and some boards report no utilisation, temperature or power
    use_pynvml(monkeypatch, fake_pynvml(fail=("utilization", "temperature", "power")))
    stats = read_gpu_stats(0)
    assert stats.utilization is None and stats.temperature_c is None and stats.power_w is None
    assert stats.memory_total == 24 * GIB and stats.describe() == "GPU 9.1/24.0 GiB"
    assert gpu_stats_record(torch.device("cuda", 0)) == {"gpu_mem_used_gib": 9.1, "gpu_mem_total_gib": 24.0}


@pytest.mark.parametrize("broken", ["handle", "memory"])
def test_a_device_that_cannot_be_read_falls_through(monkeypatch, broken):
    use_pynvml(monkeypatch, fake_pynvml(fail=(broken,)))
    fake_cuda(monkeypatch, free=None)
    assert read_gpu_stats(0) is None
    fake_cuda(monkeypatch, free=2 * GIB, total=8 * GIB)
    assert read_gpu_stats(0).source == "torch"


def test_cuda_visible_devices_maps_to_the_physical_gpu(monkeypatch):
    nvml = fake_pynvml()
    use_pynvml(monkeypatch, nvml)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3, GPU-8f6d2a1c")
    assert read_gpu_stats(0) is not None and nvml.calls["by_index"] == [3]
    assert read_gpu_stats(1) is not None and nvml.calls["by_uuid"] == ["GPU-8f6d2a1c"]
    fake_cuda(monkeypatch, free=None)
    assert read_gpu_stats(2) is None, "a device that CUDA_VISIBLE_DEVICES hides is not read"


def test_stats_record_for_a_run(monkeypatch):
    use_pynvml(monkeypatch, fake_pynvml(util=55, used=9.123 * GIB, total=23.999 * GIB))
    assert gpu_stats_record(torch.device("cuda", 0)) == {
        "gpu_util": 55.0,
        "gpu_mem_used_gib": 9.12,
        "gpu_mem_total_gib": 24.0,
    }
    assert gpu_stats_record(torch.device("cpu")) == {}
    assert gpu_stats_record(torch.device("meta")) == {}
