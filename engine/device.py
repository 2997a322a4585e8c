"""Compute device selection and a human report of what runs where."""

from __future__ import annotations

import platform

import torch

from engine.errors import DeviceError


def select_device(name: str = "auto") -> torch.device:
    """'auto' picks CUDA, then Apple MPS, then CPU; an explicit name is checked and refused clearly."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DeviceError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            problem = f"device {name!r} requested but no CUDA GPU is available here"
            raise DeviceError(
                f"{problem}; use --device cpu or auto",
                gui=f"{problem}; set Device to auto or cpu under Advanced settings",
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(f"device {name!r} does not exist: this machine has {torch.cuda.device_count()} GPU(s)")
    if device.type == "mps" and not _mps_available():
        problem = "device 'mps' requested but Apple Metal is not available here"
        raise DeviceError(
            f"{problem}; use --device cpu or auto", gui=f"{problem}; set Device to auto or cpu under Advanced settings"
        )
    return device


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def describe_device(device: torch.device) -> str:
    """One line for the user: which device, its name and memory, and the torch version."""
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return f"GPU {props.name} ({props.total_memory / 2**30:.0f} GiB) via CUDA, torch {torch.__version__}"
    if device.type == "mps":
        return f"Apple GPU via Metal (MPS), torch {torch.__version__}"
    cpu = platform.processor() or platform.machine()
    threads = torch.get_num_threads()
    return f"CPU {cpu} ({threads} thread{'s' if threads != 1 else ''}), torch {torch.__version__}"


def is_oom(exc: BaseException) -> bool:
    """True for an out-of-memory error on any accelerator."""
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def free_accelerator_memory(device: torch.device) -> None:
    """Return cached blocks to the driver after an OOM so the retry has room."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps":
        torch.mps.empty_cache()
