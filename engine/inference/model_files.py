"""Open upscaler model files the user already has (Real-ESRGAN, SwinIR, HAT, DAT, ...) through spandrel.

We read the state dict ourselves and only ever as data: ``.safetensors`` with safetensors, and
``.pth``/``.pt``/``.ckpt``/``.bin`` with ``torch.load(weights_only=True)``, which refuses a pickle
that would run code or build arbitrary objects. (spandrel's own file loader would also accept
TorchScript archives, which carry code; we never hand it a file.) Common wrappers are unwrapped
(``{"params_ema": ...}``, ``{"params": ...}``, ``{"state_dict": ...}``, ...), then
``spandrel.ModelLoader().load_from_state_dict`` detects the architecture from the tensor names and
shapes. What it cannot place, or what is not an image-to-image model, is refused with a
``ConfigError`` that names the file and says what is supported.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from engine.device import select_device
from engine.errors import ConfigError
from engine.inference.upscale import TorchUpscaler
from engine.provenance.model_info import identity_from_file

STATE_DICT_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin")
MODEL_FILE_SUFFIXES = (*STATE_DICT_SUFFIXES, ".safetensors")
WRAPPER_KEYS = ("params_ema", "params-ema", "params", "state_dict", "model_state_dict", "model", "net", "generator")
"""Keys under which training frameworks (BasicSR, Lightning, neosr, ...) nest the network's weights."""
SUPPORTED_PURPOSES = ("SR", "Restoration")
"""spandrel purposes we can tile: super-resolution and same-size restoration (denoise, de-JPEG)."""


def is_model_file(path: Path | str) -> bool:
    """True when ``path`` has a model-file extension (.pth, .pt, .ckpt, .bin, .safetensors)."""
    return Path(path).suffix.lower() in MODEL_FILE_SUFFIXES


def read_state_dict(path: Path | str) -> dict[str, torch.Tensor]:
    """The tensors of a model file, unwrapped from common containers, read without running any code.

    Raises ConfigError naming the file: missing, unknown extension, damaged, refused by
    ``weights_only`` (a pickle holding code or objects), a GAN Studio training checkpoint (open its
    run folder instead), or no tensors at all.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"model file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        data: Any = _read_safetensors(path)
    elif suffix in STATE_DICT_SUFFIXES:
        data = _read_pickle(path)
    else:
        raise ConfigError(
            f"{path} is not a model file this version reads; give a {', '.join(MODEL_FILE_SUFFIXES)} file "
            "(or a run folder, or an .onnx export)"
        )
    if isinstance(data, dict) and "family_state" in data and "family" in data:
        raise ConfigError(f"{path} is a GAN Studio training checkpoint, not a model file; give its run folder instead")
    return _tensors(_unwrap(data), path)


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise ConfigError(f"{path} is not a readable safetensors file ({str(exc)[:160]}); it may be damaged") from None


def _read_pickle(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "GLOBAL" not in str(exc):  # no reference to code or a class: bytes that are no valid pickle at all
            detail = next((line for line in str(exc).splitlines() if line.startswith("Unsupported")), "")
            raise ConfigError(
                f"{path} is not a readable PyTorch file{f' ({detail})' if detail else ''}; it may be damaged"
            ) from None
        raise ConfigError(
            f"{path} was refused: it holds more than weights ({_refused_global(exc)}), which loading could run "
            "as code. Only plain tensors are read, for safety; get a .safetensors version of the model"
        ) from None
    except RuntimeError as exc:
        text = str(exc)
        if "TorchScript" in text or "constants.pkl" in text:
            raise ConfigError(
                f"{path} is a TorchScript archive (it contains code), which is not read; give the model's "
                "state dict as .pth or .safetensors"
            ) from None
        raise ConfigError(f"{path} is not a readable PyTorch file ({text.splitlines()[0][:160]})") from None
    except (OSError, EOFError, ValueError, IndexError, KeyError, TypeError) as exc:
        # bytes that are not a pickle at all make the unpickler fail in odd ways ("pop from empty list")
        raise ConfigError(f"{path} is not a readable PyTorch file ({str(exc)[:160]}); it may be damaged") from None


def _refused_global(exc: Exception) -> str:
    """The object torch's weights_only unpickler refused ("GLOBAL posix.system"), from its long message."""
    for line in str(exc).splitlines():
        if "GLOBAL" in line:
            words = line.split()
            at = words.index("GLOBAL") if "GLOBAL" in words else -1
            if 0 <= at < len(words) - 1:
                return f"a reference to {words[at + 1]}"
    return "Python objects"


def _unwrap(data: Any) -> Any:
    """The weights inside the usual containers: wrapper keys, a single nested dict."""
    for _ in range(3):  # {"state_dict": {"params_ema": ...}} happens; deeper nesting does not
        if not isinstance(data, dict):
            return data
        inner = next((data[k] for k in WRAPPER_KEYS if isinstance(data.get(k), dict)), None)
        if inner is None and len(data) == 1 and isinstance(next(iter(data.values())), dict):
            inner = next(iter(data.values()))
        if inner is None:
            return data
        data = inner
    return data


def _tensors(data: Any, path: Path) -> dict[str, torch.Tensor]:
    if not isinstance(data, dict):
        raise ConfigError(f"{path} holds a {type(data).__name__}, not a dictionary of weights (a state dict)")
    tensors = {str(k): v for k, v in data.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise ConfigError(f"{path} holds no weight tensors")
    for prefix in ("module.", "netG.", "model.module."):  # DataParallel and BasicSR save with these
        if all(k.startswith(prefix) for k in tensors):
            tensors = {k[len(prefix) :]: v for k, v in tensors.items()}
    return tensors


def supported_architectures() -> list[str]:
    """Names of the architectures spandrel can detect, for messages and the front ends."""
    from spandrel import MAIN_REGISTRY

    return sorted({support.architecture.name for support in MAIN_REGISTRY.architectures()})


class ModelFileUpscaler(TorchUpscaler):
    """A community upscaler model file, detected and run through spandrel with PyTorch.

    Attributes beyond Upscaler's: ``path``, ``architecture`` (spandrel's name, e.g. "ESRGAN"),
    ``architecture_id``, ``purpose`` ("SR" or "Restoration"), ``tags`` (spandrel's size hints).
    """

    def __init__(self, path: Path | str, device: str = "cpu") -> None:
        from spandrel import ImageModelDescriptor, ModelLoader, UnsupportedModelError

        self.path = Path(path)
        state = read_state_dict(self.path)
        try:
            descriptor = ModelLoader(device="cpu").load_from_state_dict(state)
        except UnsupportedModelError:
            raise ConfigError(
                f"{self.path}: the architecture of this model is not one spandrel knows, so it cannot be "
                f"loaded. Supported: {', '.join(supported_architectures())}"
            ) from None
        except Exception as exc:  # detection matched but the tensors do not fit that architecture
            detail = " ".join(line.strip() for line in str(exc).splitlines()[:2])[:240] or type(exc).__name__
            raise ConfigError(
                f"{self.path}: looks like a known architecture but its weights do not fit it ({detail}); the "
                "file may be incomplete or a variant spandrel does not support"
            ) from None
        arch = descriptor.architecture.name
        if not isinstance(descriptor, ImageModelDescriptor) or descriptor.purpose not in SUPPORTED_PURPOSES:
            purpose = {"FaceSR": "face restoration", "Inpainting": "inpainting (it needs a mask)"}.get(
                descriptor.purpose, descriptor.purpose
            )
            raise ConfigError(
                f"{self.path} is a {arch} model for {purpose}, not an upscaler; only super-resolution and "
                "restoration models (a whole image in, a whole image out) can be used here"
            )
        if descriptor.input_channels != descriptor.output_channels or descriptor.input_channels not in (1, 3):
            raise ConfigError(
                f"{self.path} ({arch}) takes {descriptor.input_channels} channel(s) and gives "
                f"{descriptor.output_channels}; only grey (1 -> 1) or RGB (3 -> 3) models are supported"
            )
        self._init_from(descriptor, device)

    def _init_from(self, descriptor: Any, device: str) -> None:
        from spandrel import ModelTiling

        self.notes: list[str] = []
        self.run_notes: list[str] = []
        self.device = select_device(device)
        self.family = None
        self.descriptor = descriptor.to(self.device).to(torch.float32).eval()
        self.module = self.descriptor.model
        self._run = self.descriptor  # its __call__ pads to the architecture's size multiple and clamps
        self.architecture = descriptor.architecture.name
        self.architecture_id = str(descriptor.architecture.id)
        self.purpose = descriptor.purpose
        self.tags = list(descriptor.tags)
        self.scale, self.channels = int(descriptor.scale), int(descriptor.input_channels)
        self.name = f"{self.architecture} x{self.scale} from {self.path.name}"
        self.identity = identity_from_file(self.path, self.architecture)
        self.backend = f"PyTorch ({self.device})"
        if descriptor.tiling != ModelTiling.SUPPORTED:
            self.notes.append(f"{self.architecture} does not work well in tiles; give a larger --tile if edges show")


def load_model_file(path: Path | str, device: str = "cpu") -> ModelFileUpscaler:
    """Open an upscaler model file (.pth, .pt, .ckpt, .bin, .safetensors) safely, detecting its architecture.

    Returns a ModelFileUpscaler (``architecture``, ``scale``, ``channels``); raises ConfigError naming
    the file when it cannot be read safely, is not an image-to-image model, or its architecture is unknown.
    """
    return ModelFileUpscaler(path, device=device)
