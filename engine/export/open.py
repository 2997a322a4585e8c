"""Open a trained model for use: its ONNX export when that is current, else its PyTorch checkpoint.

The one place that chooses a backend, for generators (``open_runner``) and image-to-image models
(``open_translator``). It lives in the export package because it needs both backends: the PyTorch
runners come from ``engine.inference`` (which never imports ``engine.export``, an import-linter
contract), the onnxruntime ones from ``engine.export.ort_runner``.
"""

from __future__ import annotations

from pathlib import Path

from engine.export.onnx_export import model_exports
from engine.export.ort_runner import OrtRunner, OrtTranslator
from engine.inference.runner import GeneratorRunner
from engine.inference.torch_runner import TorchRunner
from engine.inference.translate import TorchTranslator, Translator
from engine.runs.checkpoint import latest_checkpoint


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
