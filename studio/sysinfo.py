"""Reads for the status bar: the compute device and the memory in use (no computation)."""

from __future__ import annotations

import os
import resource
import sys

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def process_memory() -> int:
    """Resident memory of this process in bytes (peak resident memory where /proc is missing)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            return int(handle.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def gpu_memory() -> tuple[int, int] | None:
    """(bytes reserved by torch, total bytes) of the current CUDA device; None without CUDA."""
    import torch

    if not torch.cuda.is_available():
        return None
    device = torch.cuda.current_device()
    return torch.cuda.memory_reserved(device), torch.cuda.get_device_properties(device).total_memory


def gpu_total_memory() -> int | None:
    """Total memory of the GPU training would use, None on a CPU-only machine."""
    info = gpu_memory()
    return None if info is None else info[1]


def device_summary() -> str:
    """Short device text for the status bar, e.g. ``CPU (2 threads)`` or ``GPU NVIDIA H100 (80 GiB)``."""
    from engine.device import describe_device, select_device

    text = describe_device(select_device("auto"))
    return text.split(", torch")[0]


def memory_summary(gpu: bool = True) -> str:
    """``RAM 1.2 GiB`` plus ``GPU 3.1/80 GiB`` when a CUDA GPU is present (and ``gpu``: asking imports
    torch, which the window avoids until the engine is loaded)."""
    text = f"RAM {process_memory() / 2**30:.1f} GiB"
    if not gpu:
        return text
    gpu_info = gpu_memory()
    if gpu_info is not None:
        text += f"   GPU {gpu_info[0] / 2**30:.1f}/{gpu_info[1] / 2**30:.0f} GiB"
    return text
