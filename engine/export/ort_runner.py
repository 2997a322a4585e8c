"""Run exported generators with onnxruntime: provider fallback, a clear report, cached sessions."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from engine.errors import CheckpointError, DeviceError
from engine.inference.runner import GeneratorRunner
from engine.inference.translate import Translator

DEFAULT_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
_SESSIONS: dict[tuple, tuple[Any, str, list[str]]] = {}


def _ort() -> ModuleType:
    try:
        import onnxruntime
    except ImportError:
        raise DeviceError(
            "onnxruntime is not installed; install it with: pip install onnxruntime "
            "(or onnxruntime-gpu for NVIDIA GPUs)"
        ) from None
    return onnxruntime


def _session(path: Path, providers: tuple[str, ...]) -> tuple[Any, str, list[str]]:
    """(session, provider really running, notes); one session per (file, mtime, providers)."""
    key = (str(path.resolve()), path.stat().st_mtime_ns, providers)
    if key not in _SESSIONS:
        _SESSIONS[key] = _create_session(path, providers)
    return _SESSIONS[key]


def _create_session(path: Path, providers: tuple[str, ...]) -> tuple[Any, str, list[str]]:
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
    for provider in [p for p in providers if p in available]:
        try:
            chain = [provider] if provider == "CPUExecutionProvider" else [provider, "CPUExecutionProvider"]
            session = ort.InferenceSession(str(path), options, providers=chain)
        except Exception as exc:  # a provider that is listed but cannot start (no GPU, missing libraries)
            if provider == "CPUExecutionProvider":
                raise _unreadable(path, exc) from None
            notes.append(f"{provider} failed to start ({str(exc).splitlines()[0][:160]})")
            continue
        running = session.get_providers()[0]
        if running != provider:
            notes.append(f"{provider} could not run this model; fell back to {running}")
        return session, running, notes
    raise DeviceError(f"no onnxruntime provider could open {path}: " + "; ".join(notes))


def _open(path: Path, providers: tuple[str, ...] | list[str] | None) -> tuple[Any, str, list[str]]:
    """(session, provider, notes) for an existing .onnx file, with the default provider order."""
    if not path.is_file():
        raise CheckpointError(f"ONNX model {path} does not exist")
    return _session(path, tuple(providers or DEFAULT_PROVIDERS))


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
        if meta.get("gan_studio.kind") != "generator":
            raise CheckpointError(
                f"{self.source} is an ONNX model but not a GAN Studio generator export "
                "(no gan_studio metadata); export it with gan-studio-cli export"
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

    def _check_signature(self) -> None:
        inputs = {i.name: i for i in self.session.get_inputs()}
        expected = ["z", "labels"] if self.num_classes else ["z"]
        if sorted(inputs) != sorted(expected):
            raise CheckpointError(f"{self.source} has inputs {sorted(inputs)}, expected {expected}")
        shape = inputs["z"].shape
        if len(shape) != 2 or shape[1] != self.latent_dim:
            raise CheckpointError(f"{self.source} input 'z' has shape {shape}, expected (batch, {self.latent_dim})")
        if [o.name for o in self.session.get_outputs()] != ["image"]:
            raise CheckpointError(f"{self.source} must have one output named 'image'")

    def _forward(self, z: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
        feed = {"z": np.ascontiguousarray(z, dtype=np.float32)}
        if labels is not None:  # the base class passes labels exactly when the model is conditional
            feed["labels"] = labels
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
            raise CheckpointError(
                f"{self.source} is not a GAN Studio image-to-image export; export a pix2pix or "
                "cyclegan run with gan-studio-cli export"
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
        names = [i.name for i in self.session.get_inputs()]
        if names != ["input"] or [o.name for o in self.session.get_outputs()] != ["image"]:
            raise CheckpointError(f"{self.source} must have one input 'input' and one output 'image' (has {names})")
        self.metadata = dict(meta)
        self.description = f"onnxruntime {self.provider}"

    def _forward(self, x: np.ndarray) -> np.ndarray:
        return _run(self.session, self.provider, {"input": x})


def find_export(run_dir: Path) -> Path | None:
    """The newest .onnx export of a run folder that is at least as new as its newest checkpoint."""
    from engine.runs.checkpoint import latest_checkpoint

    exports = sorted(Path(run_dir).glob("exports/*.onnx"), key=lambda p: p.stat().st_mtime)
    checkpoint = latest_checkpoint(Path(run_dir))
    if not exports or checkpoint is None:
        return None
    newest = exports[-1]
    return newest if newest.stat().st_mtime >= checkpoint.stat().st_mtime else None


def open_runner(source: Path | str, device: str = "auto", prefer_onnx: bool = True) -> GeneratorRunner:
    """An OrtRunner for a .onnx file or a run whose export is current, else a TorchRunner."""
    from engine.inference.torch_runner import TorchRunner

    source = Path(source)
    if source.suffix.lower() == ".onnx":
        return OrtRunner(source)
    if prefer_onnx and source.is_dir() and (export := find_export(source)) is not None:
        return OrtRunner(export)
    return TorchRunner(source, device=device)
