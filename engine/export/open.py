"""Open a trained model for use: its ONNX export when that is current, else its PyTorch checkpoint.

The one place that chooses a backend, for generators (``open_runner``), image-to-image models
(``open_translator``) and upscalers (``open_upscaler``, which also opens community model files). It
lives in the export package because it needs both backends: the PyTorch runners come from
``engine.inference`` (which never imports ``engine.export``, an import-linter contract), the
onnxruntime ones from ``engine.export.ort_runner``.
"""

from __future__ import annotations

from pathlib import Path

from engine.errors import CheckpointError, ConfigError
from engine.export.onnx_export import model_exports
from engine.export.ort_runner import OrtRunner, OrtTranslator, OrtUpscaler, default_providers
from engine.inference.runner import GeneratorRunner
from engine.inference.torch_runner import TorchRunner
from engine.inference.translate import TorchTranslator, Translator
from engine.inference.upscale import TorchUpscaler, Upscaler
from engine.runs.checkpoint import latest_checkpoint
from engine.runs.info import run_kind


def find_export(run_dir: Path) -> Path | None:
    """The newest .onnx export of a run folder that is at least as new as its newest checkpoint, or None.

    Only whole models count: a StyleGAN export's ``-mapping``/``-synthesis`` graphs are not candidates."""
    # model_exports leaves out the W-space graphs written beside a StyleGAN export (X-mapping.onnx)
    exports = sorted(model_exports(Path(run_dir) / "exports"), key=lambda p: p.stat().st_mtime)
    checkpoint = latest_checkpoint(Path(run_dir))
    if not exports or checkpoint is None:
        return None
    newest = exports[-1]
    return newest if newest.stat().st_mtime >= checkpoint.stat().st_mtime else None


def _current_export(source: Path, prefer_onnx: bool) -> Path | None:
    """The .onnx file to run for ``source``: itself, its run's current export, or None (use PyTorch)."""
    if source.suffix.lower() == ".onnx":
        return source
    if prefer_onnx and source.is_dir():
        return find_export(source)
    return None


def open_runner(source: Path | str, device: str = "auto", prefer_onnx: bool = True) -> GeneratorRunner:
    """A generator for a .onnx file, a run folder or a checkpoint file.

    onnxruntime (OrtRunner) for a .onnx file, or for a run folder whose export is current when
    ``prefer_onnx``; otherwise PyTorch (TorchRunner) on ``device``.
    """
    export = _current_export(Path(source), prefer_onnx)
    return OrtRunner(export) if export is not None else TorchRunner(source, device=device)


def open_translator(source: Path | str, device: str = "auto", prefer_onnx: bool = True) -> Translator:
    """An image-to-image model for a .onnx file, a run folder or a checkpoint file.

    onnxruntime (OrtTranslator) for a .onnx file, or for a run folder whose export is current when
    ``prefer_onnx``; otherwise PyTorch (TorchTranslator) on ``device``.
    """
    export = _current_export(Path(source), prefer_onnx)
    return OrtTranslator(export) if export is not None else TorchTranslator(source, device=device)


def _providers(device: str) -> tuple[str, ...]:
    """onnxruntime providers for a device name: 'cpu' only the CPU, else ``default_providers()`` (GPU first)."""
    return ("CPUExecutionProvider",) if device == "cpu" else default_providers()


def open_upscaler(source: Path | str, device: str = "auto", prefer_onnx: bool = True) -> Upscaler:
    """An upscaler for a run folder, a .onnx file, a checkpoint or a community model file.

    - a run folder of an ``upscale`` run: its current ONNX export (onnxruntime) when ``prefer_onnx``
      and there is one at least as new as the newest checkpoint, else the checkpoint in PyTorch;
    - a ``.onnx`` file: onnxruntime (a GAN Studio export, or a foreign upscaler graph);
    - a checkpoint of an upscale run (``checkpoints/step-*.pt`` inside a run folder): PyTorch;
    - a ``.pth``/``.pt``/``.ckpt``/``.bin``/``.safetensors`` model file: spandrel (``load_model_file``).

    ``device``: 'auto', 'cpu', 'cuda[:N]' or 'mps' for PyTorch; for onnxruntime 'cpu' keeps it on the
    CPU and anything else tries the GPU providers first. ``backend`` says what really runs.
    """
    from engine.inference.model_files import MODEL_FILE_SUFFIXES, load_model_file

    path = Path(source)
    if path.is_dir():
        kind = run_kind(path)
        if kind != "upscale":
            raise CheckpointError(
                f"{path} is a '{kind}' run, not an upscaler; choose an upscale run (family esrgan), an .onnx "
                "upscaler or a model file",
                gui=f"{path.name} is a '{kind}' run, not an upscaler; choose an upscale run or a model file",
            )
        export = find_export(path) if prefer_onnx else None
        return OrtUpscaler(export, _providers(device)) if export is not None else TorchUpscaler(path, device=device)
    if not path.is_file():
        raise ConfigError(f"{path} does not exist; give an upscale run folder, an .onnx file or a model file")
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        return OrtUpscaler(path, _providers(device))
    if path.parent.name == "checkpoints" and (path.parent.parent / "run.json").is_file():
        return TorchUpscaler(path, device=device)
    if suffix in MODEL_FILE_SUFFIXES:
        return load_model_file(path, device=device)
    raise ConfigError(
        f"{path} is not something that upscales; give an upscale run folder, an .onnx file or a model file "
        f"({', '.join(MODEL_FILE_SUFFIXES)})"
    )
