"""Run exported models with onnxruntime: provider fallback, a clear report, a bounded cache of sessions.

Providers are tried best first (``default_providers()``: TensorRT, then CUDA, then the CPU, each only
when this onnxruntime build has it; ``onnxruntime-gpu`` brings the GPU ones). A provider that is listed
but cannot start (no GPU, missing CUDA or TensorRT libraries) or that onnxruntime quietly drops falls
through to the next one, and the runner's ``notes`` say so; ``provider`` is what really runs.
"""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import platformdirs

from engine.errors import CheckpointError, DeviceError
from engine.inference.runner import GeneratorRunner
from engine.inference.translate import Translator
from engine.inference.upscale import Upscaler
from engine.provenance.model_info import identity_from_file, identity_from_metadata
from engine.tasks import task_names

PROVIDER_ORDER = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
"""Every provider GAN Studio knows, best first; ``default_providers()`` keeps those this build has."""
GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
SESSION_CACHE_SIZE = 4
"""Most onnxruntime sessions kept open: each holds its weights (and on a GPU, device memory)."""

Opened = tuple[Any, str, list[str]]
"""(session, provider really running, notes about providers that could not run)."""


def _ort() -> ModuleType:
    try:
        import onnxruntime
    except ImportError:
        raise DeviceError(
            "onnxruntime is not installed; install it with: pip install onnxruntime "
            "(or onnxruntime-gpu for NVIDIA GPUs)",
            gui="onnxruntime is missing from this installation; reinstall GAN Studio to run ONNX exports",
        ) from None
    return onnxruntime


def default_providers() -> tuple[str, ...]:
    """The providers to try when the caller names none: those of ``PROVIDER_ORDER`` that this onnxruntime
    build offers (TensorRT and CUDA with onnxruntime-gpu), always ending with the CPU. Only the CPU when
    onnxruntime is missing (opening a model then says how to install it)."""
    try:
        available = set(_ort().get_available_providers())
    except DeviceError:
        available = set()
    return tuple(p for p in PROVIDER_ORDER if p in available or p == "CPUExecutionProvider")


def tensorrt_cache_dir() -> Path:
    """Where TensorRT keeps the engines it builds (and its timing cache), so a model is compiled once, not at
    every start: ``tensorrt/`` in GAN Studio's user cache folder."""
    return Path(platformdirs.user_cache_dir("GAN Studio", appauthor=False)) / "tensorrt"


def _provider_entry(provider: str) -> str | tuple[str, dict[str, Any]]:
    """``provider`` as InferenceSession takes it: TensorRT with its options, the others by name."""
    if provider != "TensorrtExecutionProvider":
        return provider
    cache = tensorrt_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    options = {
        "trt_engine_cache_enable": True,  # building an engine takes seconds to minutes; reuse it
        "trt_engine_cache_path": str(cache),
        "trt_timing_cache_enable": True,  # layer timings shared by every model: faster builds of new ones
        "trt_timing_cache_path": str(cache),
        # tensor cores: much faster; the outputs then differ from the exported fp32 graph by fp16 rounding
        "trt_fp16_enable": True,
    }
    return provider, options


class SessionCache:
    """The most recently used onnxruntime sessions, at most ``max_size``, one per (file, providers).

    A file is known by its resolved path, modification time and size, so a file replaced in place
    (a new export over an old one) gets a new session, and the old file's sessions are dropped at
    once rather than waiting to age out. Dropping only forgets a session: runners still holding it
    keep working, and onnxruntime frees it with the last of them. Safe to use from several threads
    (the generate and translate workers open models on their own threads).
    """

    def __init__(self, max_size: int = SESSION_CACHE_SIZE) -> None:
        self.max_size = max_size
        self._entries: OrderedDict[tuple[str, int, int, tuple[str, ...]], Opened] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: Path, providers: tuple[str, ...]) -> Opened:
        """The session for ``path`` with ``providers``, opened now unless a current one is cached."""
        stat = path.stat()
        key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size, providers)
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
        opened = _create_session(path, providers)  # outside the lock: opening a big model takes seconds
        with self._lock:
            for old in [k for k in self._entries if k[0] == key[0] and k[1:3] != key[1:3]]:
                del self._entries[old]  # the file was replaced: its old sessions can never be asked for again
            self._entries[key] = opened
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_size:
                self._entries.popitem(last=False)
        return opened

    def paths(self) -> list[Path]:
        """The files with a cached session, least recently used first (one entry per session)."""
        with self._lock:
            return [Path(key[0]) for key in self._entries]

    def clear(self) -> None:
        """Forget every session."""
        with self._lock:
            self._entries.clear()


SESSIONS = SessionCache()
"""The sessions the runners share, so reopening a model (switching back in the GUI) is instant."""


def _create_session(path: Path, providers: tuple[str, ...]) -> Opened:
    ort = _ort()
    available = set(ort.get_available_providers())
    unknown = [p for p in providers if p not in available]
    if "CPUExecutionProvider" not in providers and len(unknown) == len(providers):
        raise DeviceError(
            f"none of the requested onnxruntime providers ({', '.join(providers)}) is available here; "
            f"available: {', '.join(sorted(available))}"
        )
    options = ort.SessionOptions()
    # Leave one core to the UI thread on small machines; onnxruntime's default takes them all.
    options.intra_op_num_threads = max(1, (os.cpu_count() or 2) - 1) if (os.cpu_count() or 1) > 2 else 0
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    notes = [f"{p} is not available in this onnxruntime build" for p in unknown]
    usable = [p for p in providers if p in available]
    for i, provider in enumerate(usable):
        # the providers after this one back it up inside the session (TensorRT hands the nodes it cannot
        # compile to CUDA), and the CPU always comes last
        chain = [*usable[i:], *([] if "CPUExecutionProvider" in usable[i:] else ["CPUExecutionProvider"])]
        try:
            session = ort.InferenceSession(str(path), options, providers=[_provider_entry(p) for p in chain])
        except Exception as exc:  # a provider that is listed but cannot start (no GPU, missing libraries)
            if provider == "CPUExecutionProvider":
                raise _unreadable(path, exc) from None
            notes.append(f"{provider} failed to start ({str(exc).splitlines()[0][:160]})")
            continue
        running = session.get_providers()[0]
        # onnxruntime may drop a provider that fails to initialise with only a log line: name every one
        # that was asked for ahead of the one that runs
        for skipped in chain[: chain.index(running)] if running in chain else [provider]:
            notes.append(f"{skipped} could not run this model; fell back to {running}")
        return session, running, notes
    raise DeviceError(f"no onnxruntime provider could open {path}: " + "; ".join(notes))


def _open(path: Path, providers: tuple[str, ...] | list[str] | None) -> Opened:
    """(session, provider, notes) for an existing .onnx file, with the default provider order."""
    if not path.is_file():
        raise CheckpointError(f"ONNX model {path} does not exist")
    return SESSIONS.get(path, tuple(providers or default_providers()))


def _unreadable(path: Path, exc: Exception) -> CheckpointError:
    return CheckpointError(
        f"{path} is not a readable ONNX model ({str(exc).splitlines()[0][:200]}); it may be damaged or not an ONNX file"
    )


class OrtRunner(GeneratorRunner):
    """A GAN Studio ONNX export run with onnxruntime; same interface as TorchRunner."""

    backend = "onnxruntime"

    def __init__(self, path: Path | str, providers: tuple[str, ...] | list[str] | None = None) -> None:
        self.source = self.checkpoint = Path(path)
        self.session, self.provider, self.notes = _open(self.source, providers)
        self._read_metadata()
        self._check_signature()
        self.description = f"onnxruntime {self.provider}"

    def _read_metadata(self) -> None:
        meta = self.session.get_modelmeta().custom_metadata_map
        if meta.get("gan_studio.kind") in ("mapping", "synthesis"):
            # half of a StyleGAN export (for work in W), not a generator by itself
            main = meta.get("gan_studio.export", "the export beside it")
            raise CheckpointError(
                f"{self.source} is the {meta['gan_studio.kind']} graph of a style-based export, not a whole "
                f"generator; open {main} instead"
            )
        if meta.get("gan_studio.kind") != "generator":
            problem = f"{self.source} is an ONNX model but not a GAN Studio generator export (no gan_studio metadata)"
            raise CheckpointError(
                f"{problem}; export it with gan-studio-cli export",
                gui=f"{problem}; make one on the Models page: select the run and click Export to ONNX",
            )
        try:
            self.family_name = meta["gan_studio.family"]
            self.resolution = int(meta["gan_studio.resolution"])
            self.channels = int(meta["gan_studio.channels"])
            self.latent_dim = int(meta["gan_studio.latent_dim"])
            self.classes = list(json.loads(meta["gan_studio.classes"]))
            self.step = int(meta.get("gan_studio.step", 0))
            self.precision = meta.get("gan_studio.precision", "fp32")
        except (KeyError, ValueError) as exc:
            raise CheckpointError(
                f"{self.source} has incomplete GAN Studio metadata ({exc}); export it again"
            ) from None
        self.num_classes = len(self.classes)
        self.metadata = dict(meta)
        self.identity = identity_from_metadata(self.source, self.metadata)

    def _check_signature(self) -> None:
        inputs = {i.name: i for i in self.session.get_inputs()}
        # a 'truncation' input: the graph applies psi itself (StyleGAN's truncation in W)
        self.truncates_in_w = "truncation" in inputs
        expected = ["z", "labels"] if self.num_classes else ["z"]
        expected += ["truncation"] if self.truncates_in_w else []
        if sorted(inputs) != sorted(expected):
            raise CheckpointError(f"{self.source} has inputs {sorted(inputs)}, expected {expected}")
        shape = inputs["z"].shape
        if len(shape) != 2 or shape[1] != self.latent_dim:
            raise CheckpointError(f"{self.source} input 'z' has shape {shape}, expected (batch, {self.latent_dim})")
        if [o.name for o in self.session.get_outputs()] != ["image"]:
            raise CheckpointError(f"{self.source} must have one output named 'image'")

    def _forward(self, z: np.ndarray, labels: np.ndarray | None, truncation: float = 1.0) -> np.ndarray:
        feed = {"z": np.ascontiguousarray(z, dtype=np.float32)}
        if labels is not None:  # the base class passes labels exactly when the model is conditional
            feed["labels"] = labels
        if self.truncates_in_w:
            feed["truncation"] = np.full(z.shape[0], truncation, dtype=np.float32)
        return _run(self.session, self.provider, feed)


def _run(session: Any, provider: str, feed: dict[str, np.ndarray]) -> np.ndarray:
    """The 'image' output for ``feed``; IO binding on GPU providers so onnxruntime manages device copies."""
    if provider == "CPUExecutionProvider":
        return session.run(["image"], feed)[0]
    binding = session.io_binding()
    for name, value in feed.items():
        binding.bind_cpu_input(name, value)
    binding.bind_output("image")
    session.run_with_iobinding(binding)
    return binding.copy_outputs_to_cpu()[0]


class OrtTranslator(Translator):
    """A GAN Studio image-to-image export run with onnxruntime; same interface as TorchTranslator."""

    backend = "onnxruntime"

    def __init__(self, path: Path | str, providers: tuple[str, ...] | list[str] | None = None) -> None:
        self.source = self.checkpoint = Path(path)
        self.session, self.provider, self.notes = _open(self.source, providers)
        meta = self.session.get_modelmeta().custom_metadata_map
        if meta.get("gan_studio.kind") != "translator":
            problem = f"{self.source} is not a GAN Studio image-to-image export"
            raise CheckpointError(
                f"{problem}; export a pix2pix or cyclegan run with gan-studio-cli export",
                gui=f"{problem}; make one on the Models page: select an image-to-image run and click Export to ONNX",
            )
        try:
            self.family_name, self.task = meta["gan_studio.family"], meta["gan_studio.task"]
            self.in_channels, self.out_channels = int(meta["gan_studio.in_channels"]), int(meta["gan_studio.channels"])
            self.resolution, self.multiple = int(meta["gan_studio.resolution"]), int(meta["gan_studio.multiple"])
            self.step = int(meta.get("gan_studio.step", 0))
        except (KeyError, ValueError) as exc:
            raise CheckpointError(
                f"{self.source} has incomplete GAN Studio metadata ({exc}); export it again"
            ) from None
        if self.task not in task_names():
            raise CheckpointError(
                f"{self.source} is a model for task '{self.task}', which this GAN Studio does not know "
                f"(it knows {', '.join(task_names())}); open it with the version that exported it"
            )
        names = [i.name for i in self.session.get_inputs()]
        if names != ["input"] or [o.name for o in self.session.get_outputs()] != ["image"]:
            raise CheckpointError(f"{self.source} must have one input 'input' and one output 'image' (has {names})")
        self.metadata = dict(meta)
        self.identity = identity_from_metadata(self.source, self.metadata)
        self.description = f"onnxruntime {self.provider}"

    def _forward(self, x: np.ndarray) -> np.ndarray:
        return _run(self.session, self.provider, {"input": x})


class OrtUpscaler(Upscaler):
    """An ONNX upscaler run with onnxruntime: a GAN Studio export (card kind "upscaler") or a foreign graph.

    A foreign graph (a community model converted to ONNX) is accepted when it has one float input
    (batch, 1 or 3, height, width) with dynamic height and width and one output; its scale is found
    by running it once on a small probe, and its values are taken to be [0, 1] (the convention of
    such models), both said in ``notes``. ``backend`` is the onnxruntime provider that really runs it.
    """

    def __init__(self, path: Path | str, providers: tuple[str, ...] | list[str] | None = None) -> None:
        self.source = self.path = Path(path)
        self.session, self.provider, self.notes = _open(self.source, providers)
        self.notes = list(self.notes)
        self.run_notes: list[str] = []
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise CheckpointError(
                f"{self.source} has {len(inputs)} inputs and {len(outputs)} outputs; an upscaler has one of each"
            )
        self.input_name, self.output_name = inputs[0].name, outputs[0].name
        kind = self.metadata.get("gan_studio.kind")
        if kind is not None and kind != "upscaler":
            raise CheckpointError(
                f"{self.source} is a GAN Studio {kind} export, not an upscaler; open it on the "
                f"{'Translate' if kind == 'translator' else 'Generate'} page"
            )
        if kind == "upscaler":
            self._read_metadata()
            self.identity = identity_from_metadata(self.source, self.metadata)
        else:
            self._probe_foreign(inputs[0].shape)
            self.identity = identity_from_file(self.source, "onnx")
        self.backend = f"onnxruntime {self.provider}"

    def _read_metadata(self) -> None:
        try:
            self.scale = int(self.metadata["gan_studio.scale"])
            self.channels = int(self.metadata["gan_studio.channels"])
            family = self.metadata.get("gan_studio.family", "upscaler")
            arch = self.metadata.get("gan_studio.arch")
            step = self.metadata.get("gan_studio.step")
        except (KeyError, ValueError) as exc:
            raise CheckpointError(
                f"{self.source} has incomplete GAN Studio metadata ({exc}); export it again"
            ) from None
        label = f"{family}-{arch}" if arch else family
        self.name = f"{label} x{self.scale} (ONNX {self.source.name}{f', step {step}' if step else ''})"

    def _probe_foreign(self, shape: list[Any]) -> None:
        if len(shape) != 4 or shape[1] not in (1, 3) or isinstance(shape[2], int) or isinstance(shape[3], int):
            raise CheckpointError(
                f"{self.source} takes input {shape}; an upscaler graph takes (batch, 1 or 3, height, width) "
                "with dynamic height and width"
            )
        self.channels = int(shape[1])
        probe = np.full((1, self.channels, 16, 16), 0.5, dtype=np.float32)
        try:
            out = self._forward(probe)
        except Exception as exc:
            raise CheckpointError(f"{self.source} failed on a 16x16 probe ({str(exc).splitlines()[0][:160]})") from None
        scale = out.shape[-1] // 16
        if out.ndim != 4 or out.shape[1] != self.channels or scale < 1 or out.shape[-2:] != (16 * scale, 16 * scale):
            raise CheckpointError(f"{self.source} turned a 16x16 probe into {out.shape}; that is not an upscaler")
        self.scale = scale
        self.name = f"ONNX {self.source.name} x{scale}"
        self.notes.append("not a GAN Studio export: scale found by a probe run, values taken as [0, 1]")

    def _forward(self, x: np.ndarray) -> np.ndarray:
        if self.provider == "CPUExecutionProvider":
            out = self.session.run([self.output_name], {self.input_name: x})[0]
        else:
            binding = self.session.io_binding()
            binding.bind_cpu_input(self.input_name, x)
            binding.bind_output(self.output_name)
            self.session.run_with_iobinding(binding)
            out = binding.copy_outputs_to_cpu()[0]
        return np.clip(np.asarray(out, dtype=np.float32), 0.0, 1.0)

    def free_memory(self) -> tuple[int, str]:
        """The GPU's free memory for a CUDA or TensorRT provider (via torch when it sees the GPU), else host RAM."""
        if self.provider in ("CUDAExecutionProvider", "TensorrtExecutionProvider"):
            import torch

            if torch.cuda.is_available():
                free, total = torch.cuda.mem_get_info()
                budget = int(free * 0.5)  # onnxruntime's arena grows in steps; leave it room
                return budget, f"half of {free / 2**30:.1f} GiB free of {total / 2**30:.0f} GiB on the GPU"
        return super().free_memory()
