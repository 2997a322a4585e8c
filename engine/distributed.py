"""Several processes training one model: torchrun's environment, the process group and its collectives.

``torchrun --nproc_per_node N -m engine train ...`` starts N copies of the CLI; each reads its place
(RANK, WORLD_SIZE, LOCAL_RANK) from the environment torchrun sets, and :func:`replica_from_env` joins
them in one ``torch.distributed`` process group (NCCL between GPUs, gloo on CPUs).

Data parallelism is done the way NVIDIA's StyleGAN2-ADA and StyleGAN3 PyTorch trainers do it rather
than with the ``DistributedDataParallel`` wrapper: every process holds the same networks, and before each
optimizer step the gradients are averaged with one ``all_reduce`` (:meth:`Replica.average_gradients`).
The wrapper assumes one forward and one backward per step; a GAN step runs D several times (reals,
fakes, the R1 penalty's double backward), freezes D while G learns and calls the generator's own methods
(StyleGAN's mapping and style mixing), none of which it supports. Averaging at the optimizer is the same
arithmetic DDP does, at the one place every family already passes through (Family._optimizer_step).

A run with one process uses :data:`SINGLE`, whose collectives do nothing, so the single-process path
is the code it always was.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Callable, Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
from torch import nn

from engine.errors import ConfigError, GanStudioError

_TIMEOUT_ENV = "GAN_STUDIO_DIST_TIMEOUT_S"
_DEFAULT_TIMEOUT_S = 600.0


class ClusterError(GanStudioError):
    """Another process of a multi-process run stopped (it crashed, was killed or lost its connection)."""


class Replica:
    """This process's place among the processes training one model, and the collectives they share.

    ``rank`` 0 is the main process: it alone writes the run folder. Every collective must be called by
    every process in the same order; with one process each is a no-op.
    """

    def __init__(
        self, rank: int = 0, world_size: int = 1, local_rank: int = 0, backend: str = "", owns_group: bool = False
    ) -> None:
        self.rank = rank
        self.world_size = world_size
        self.local_rank = local_rank
        self.backend = backend
        self.owns_group = owns_group
        self.device = torch.device("cpu")  # where collective buffers live (the GPU for NCCL)

    @property
    def distributed(self) -> bool:
        """True when more than one process trains this model."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on rank 0, the process that writes checkpoints, previews, stats and logs."""
        return self.rank == 0

    def share(self, n: int) -> slice:
        """The rows of a batch of ``n`` (all processes together) this process takes: a contiguous 1/world_size."""
        if n % self.world_size:
            raise ConfigError(
                f"setting 'batch_size' ({n}) must divide evenly among the {self.world_size} processes; "
                f"use a multiple of {self.world_size}"
            )
        per = n // self.world_size
        return slice(self.rank * per, (self.rank + 1) * per)

    # -- collectives ------------------------------------------------------------------------------
    def average_gradients(self, params: Iterable[nn.Parameter]) -> None:
        """Replace each parameter's gradient by its mean over all processes (one all_reduce per dtype)."""
        if not self.distributed:
            return

        def mean(flat: torch.Tensor) -> None:
            self._call(torch.distributed.all_reduce, flat)
            flat /= self.world_size

        self._flat_collective([p.grad for p in params if p.grad is not None], mean)

    def sum_values(self, values: list[float]) -> list[float]:
        """The element-wise sum of ``values`` over all processes (the same list on every process)."""
        if not self.distributed or not values:
            return list(values)
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        self._call(torch.distributed.all_reduce, tensor)
        return [float(v) for v in tensor.tolist()]

    def mean_stats(self, stats: dict[str, float]) -> dict[str, float]:
        """``stats`` averaged over all processes (every process reports the same keys)."""
        if not self.distributed:
            return stats
        keys = sorted(stats)
        sums = self.sum_values([float(stats[k]) for k in keys])
        return {k: v / self.world_size for k, v in zip(keys, sums)}

    def any(self, flags: list[bool]) -> list[bool]:
        """For each flag: True when it is True on any process (how one process's stop reaches all)."""
        return [v > 0 for v in self.sum_values([1.0 if f else 0.0 for f in flags])] if self.distributed else flags

    def broadcast_object(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every process (picklable values: paths, plain dicts)."""
        if not self.distributed:
            return obj
        box = [obj]
        self._call(torch.distributed.broadcast_object_list, box, src=0, device=self.device)
        return box[0]

    def gather_objects(self, obj: Any) -> list[Any]:
        """Every process's ``obj``, in rank order, on every process."""
        if not self.distributed:
            return [obj]
        out: list[Any] = [None] * self.world_size
        self._call(torch.distributed.all_gather_object, out, obj)
        return out

    def broadcast_modules(self, modules: Iterable[nn.Module], buffers_only: bool = False) -> None:
        """Copy rank 0's parameters (unless ``buffers_only``) and buffers to every process, as DDP does
        at start-up and, for buffers such as batch-norm statistics, before every step."""
        if not self.distributed:
            return
        tensors = [
            t.data
            for module in modules
            for t in (list(module.buffers()) if buffers_only else [*module.parameters(), *module.buffers()])
        ]
        self._flat_collective(tensors, lambda flat: self._call(torch.distributed.broadcast, flat, src=0))

    def _flat_collective(self, tensors: list[torch.Tensor], collective: Callable[[torch.Tensor], Any]) -> None:
        """Run ``collective`` on ``tensors`` joined into one flat tensor per dtype, then copy the result back:
        one network round trip per dtype instead of one per tensor (a network has dozens of small ones)."""
        for dtype in sorted({t.dtype for t in tensors}, key=str):
            group = [t for t in tensors if t.dtype == dtype]
            flat = torch.cat([t.reshape(-1) for t in group]).to(self.device)
            collective(flat)
            offset = 0
            for t in group:
                t.copy_(flat[offset : offset + t.numel()].view_as(t))
                offset += t.numel()

    def close(self) -> None:
        """Leave the process group (only one this Replica created)."""
        if self.owns_group and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
            self.owns_group = False

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a collective; a peer that went away becomes a ClusterError in words (not a gloo traceback)."""
        try:
            return fn(*args, **kwargs)
        except RuntimeError as exc:  # DistBackendError and gloo's 'Connection closed by peer' are RuntimeErrors
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise ClusterError(
                f"another process of this {self.world_size}-process run stopped or lost its connection "
                f"({first}); the run stops here with its last checkpoint kept: resume it with the same "
                "torchrun command and 'resume RUN_FOLDER'"
            ) from exc


SINGLE = Replica()
"""The replica of an ordinary one-process run: every collective is a no-op."""


def launched_by_torchrun() -> bool:
    """True when this process was started by torchrun (or any launcher setting WORLD_SIZE > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1) > 1


def replica_from_env(device_type: str) -> Replica:
    """The Replica torchrun's environment describes, joining its process group (NCCL for CUDA, else gloo).

    One process (no WORLD_SIZE, or 1): :data:`SINGLE`. A process group that the caller already set up is
    used as it is and left open at the end.
    """
    if not launched_by_torchrun():
        return SINGLE
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    owns = not torch.distributed.is_initialized()
    if owns:
        backend = "nccl" if device_type == "cuda" and torch.distributed.is_nccl_available() else "gloo"
        if device_type == "cuda":
            torch.cuda.set_device(local_rank)  # NCCL and its object collectives use the current device
        seconds = float(os.environ.get(_TIMEOUT_ENV, _DEFAULT_TIMEOUT_S))
        torch.distributed.init_process_group(backend, timeout=timedelta(seconds=seconds))
    replica = Replica(rank, world, local_rank, str(torch.distributed.get_backend()), owns_group=owns)
    if replica.backend == "nccl":
        replica.device = torch.device("cuda", local_rank)
    return replica


def torchrun_command(
    settings: Path | str,
    run_dir: Path | str,
    processes: int,
    *,
    nodes: int = 1,
    node_rank: int = 0,
    endpoint: str = "HOST:29500",
    resume: bool = False,
    python: str | None = None,
) -> list[str]:
    """The torchrun command line that trains (or, with ``resume``, continues) ``run_dir`` with ``processes``
    processes on each of ``nodes`` machines; ``settings`` is a TrainConfig JSON file (CLI ``--config``).

    One machine uses torchrun's standalone rendezvous (a free local port); several use c10d at ``endpoint``,
    which every machine must reach, each started with its own ``node_rank``. ``python`` (default: this
    interpreter) runs ``-m torch.distributed.run``, the module behind the ``torchrun`` script.
    """
    command = [python or sys.executable, "-m", "torch.distributed.run"]
    if nodes > 1:
        command += [f"--nnodes={nodes}", f"--node_rank={node_rank}", "--rdzv_backend=c10d"]
        command += [f"--rdzv_endpoint={endpoint}", f"--rdzv_id={Path(run_dir).name}"]
    else:
        command.append("--standalone")
    command += [f"--nproc_per_node={processes}", "-m", "engine"]
    if resume:
        return [*command, "resume", str(run_dir)]
    return [*command, "train", "--config", str(settings), "--out", str(run_dir)]


def format_command(command: list[str]) -> str:
    """``command`` as one line to paste into a shell ('torchrun' for the module form, paths quoted). In the
    desktop bundle, which has no torchrun script, the bundle itself runs the module (packaging/launcher.py)."""
    words = list(command)
    if words[1:3] == ["-m", "torch.distributed.run"] and not getattr(sys, "frozen", False):
        words = ["torchrun", *words[3:]]
    return shlex.join(words)
