"""How busy the GPU is: utilisation, memory, temperature and power, read cheaply and never raising.

The readers, best first:

1. NVIDIA's management library through ``pynvml`` (the ``nvidia-ml-py`` package, in the ``gpu`` extra):
   utilisation, device-wide memory, temperature and power, each call microseconds, so the studio's
   status bar can ask every two seconds on the GUI thread;
2. ``torch.cuda.mem_get_info`` when pynvml is missing (or cannot start) but PyTorch sees a CUDA GPU:
   memory only;
3. nothing: ``read_gpu_stats`` returns None (a CPU-only machine, a Mac, a broken driver).

The management library is started once; if that fails (no driver, no GPU) the failure is remembered
and it is never tried again in this process. Importing this module imports neither pynvml nor torch
(the studio's window imports it before the engine is loaded).

Device numbers are CUDA's (PyTorch's): with ``CUDA_VISIBLE_DEVICES`` set, device 0 is the first GPU
listed there, which the management library (it numbers every GPU in the machine) is asked for by its
listed number or UUID.
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

GIB = 2**30


@dataclass(frozen=True)
class GpuStats:
    """One reading of one GPU. Memory is the whole device's (every process), in bytes."""

    index: int
    """CUDA device number (as PyTorch counts them)."""
    memory_used: int
    memory_total: int
    utilization: float | None = None
    """Percent of the last sample period the GPU was busy (None: the reader cannot tell, e.g. torch)."""
    temperature_c: float | None = None
    power_w: float | None = None
    name: str | None = None
    source: str = "nvml"
    """Which reader answered: 'nvml' (pynvml) or 'torch' (memory only)."""

    def describe(self) -> str:
        """One line for a status bar, e.g. ``GPU 87% · 9.1/24.0 GiB`` (``GPU 9.1/24.0 GiB`` without utilisation)."""
        head = f"GPU {self.utilization:.0f}% · " if self.utilization is not None else "GPU "
        text = f"{head}{self.memory_used / GIB:.1f}/{self.memory_total / GIB:.1f} GiB"
        if self.temperature_c is not None:
            text += f" · {self.temperature_c:.0f} °C"
        return text

    def details(self) -> str:
        """Several words more than ``describe()`` (name, power, where the figures come from), for a tooltip."""
        lines = [f"{self.name or f'GPU {self.index}'} (CUDA device {self.index})"]
        used, total = self.memory_used / GIB, self.memory_total / GIB
        lines.append(f"memory in use on the whole GPU: {used:.2f} of {total:.2f} GiB")
        if self.utilization is not None:
            lines.append(f"busy {self.utilization:.0f}% of the last sample period")
        if self.temperature_c is not None:
            lines.append(f"temperature {self.temperature_c:.0f} °C")
        if self.power_w is not None:
            lines.append(f"power {self.power_w:.0f} W")
        if self.source == "torch":
            lines.append("memory only (install nvidia-ml-py for utilisation, temperature and power)")
        return "\n".join(lines)


class _Nvml:
    """The management library, started at most once per process; ``module`` is None when it cannot run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tried = False
        self.module: ModuleType | None = None
        self.problem: str | None = None
        """Why the library is not used (not installed, failed to start), once tried."""

    def get(self) -> ModuleType | None:
        """pynvml, started, or None (the reason in ``problem``); tries only the first time."""
        with self._lock:
            if not self._tried:
                self._tried = True
                self.module, self.problem = _start_nvml()
            return self.module

    def reset(self) -> None:
        """Forget the cached outcome so the next ``get`` tries again (tests swap the pynvml module)."""
        with self._lock:
            self._tried, self.module, self.problem = False, None, None


def _start_nvml() -> tuple[ModuleType | None, str | None]:
    try:
        import pynvml
    except Exception:  # ImportError, or a broken install raising anything at import
        return None, "nvidia-ml-py (pynvml) is not installed"
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...: no usable NVIDIA driver
        return None, f"the NVIDIA management library did not start ({exc})"
    return pynvml, None


NVML = _Nvml()


def read_gpu_stats(device_index: int = 0, *, torch_fallback: bool = True) -> GpuStats | None:
    """Utilisation, memory, temperature and power of CUDA device ``device_index``, or None when no reader
    can tell (no GPU, no driver, no such device). pynvml first, then (with ``torch_fallback``) PyTorch's
    free-memory query, which is only asked once torch has been imported; never raises.

    Pass ``torch_fallback=False`` while another thread may still be importing torch (the studio before
    its engine is loaded): a half-imported torch must not be called into."""
    nvml = NVML.get()
    if nvml is not None:
        stats = _read_nvml(nvml, device_index)
        if stats is not None:
            return stats
    return _read_torch(device_index) if torch_fallback else None


def _read_nvml(nvml: ModuleType, index: int) -> GpuStats | None:
    try:
        handle = _nvml_handle(nvml, index)
        memory = nvml.nvmlDeviceGetMemoryInfo(handle)
        used, total = int(memory.used), int(memory.total)
    except Exception:  # no such device, a GPU that fell off the bus: let the next reader try
        return None
    return GpuStats(
        index=index,
        memory_used=used,
        memory_total=total,
        utilization=_optional(lambda: float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)),
        temperature_c=_optional(lambda: float(nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU))),
        power_w=_optional(lambda: nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0),  # milliwatts
        name=_optional(lambda: _text(nvml.nvmlDeviceGetName(handle))),
        source="nvml",
    )


def _nvml_handle(nvml: ModuleType, index: int) -> Any:
    """The management library's handle for CUDA device ``index``, through CUDA_VISIBLE_DEVICES when set."""
    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    if not visible:
        return nvml.nvmlDeviceGetHandleByIndex(index)
    if index >= len(visible):
        raise IndexError(f"CUDA device {index} is not among CUDA_VISIBLE_DEVICES")
    entry = visible[index]
    return nvml.nvmlDeviceGetHandleByIndex(int(entry)) if entry.isdigit() else nvml.nvmlDeviceGetHandleByUUID(entry)


def _optional(read: Any) -> Any:
    """``read()``, or None when the GPU does not report that figure (NVMLError_NotSupported on MIG slices...)."""
    try:
        return read()
    except Exception:
        return None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)  # older pynvml releases return bytes


def _read_torch(index: int) -> GpuStats | None:
    # Only when PyTorch is already imported: asking must not pull torch into a process that has not
    # loaded the engine (the studio's window before its pages are built).
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    try:
        if not torch.cuda.is_available() or index >= torch.cuda.device_count():
            return None
        free, total = torch.cuda.mem_get_info(index)
    except Exception:  # a driver error: no reading rather than a crash in a status bar
        return None
    return GpuStats(index=index, memory_used=int(total - free), memory_total=int(total), source="torch")


def gpu_stats_record(device: torch.device) -> dict[str, float]:
    """GPU figures for a stats.jsonl line of a run on ``device``: ``gpu_util`` (percent; left out when the
    reader cannot tell), ``gpu_mem_used_gib`` and ``gpu_mem_total_gib`` (whole device, GiB, 2 decimals);
    {} for a device that is not a CUDA GPU or when nothing can be read."""
    if device.type != "cuda":
        return {}
    stats = read_gpu_stats(device.index if device.index is not None else _current_cuda_device())
    if stats is None:
        return {}
    record = {"gpu_util": stats.utilization} if stats.utilization is not None else {}
    return {
        **record,
        "gpu_mem_used_gib": round(stats.memory_used / GIB, 2),
        "gpu_mem_total_gib": round(stats.memory_total / GIB, 2),
    }


def _current_cuda_device() -> int:
    """PyTorch's current CUDA device (what ``torch.device('cuda')`` means), 0 when it cannot say."""
    torch = sys.modules.get("torch")
    try:
        return int(torch.cuda.current_device()) if torch is not None and torch.cuda.is_available() else 0
    except Exception:
        return 0
