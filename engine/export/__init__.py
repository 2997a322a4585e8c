"""ONNX export with a parity guarantee, the onnxruntime runners, and opening a model with the right backend."""

from engine.export.onnx_export import ExportResult, GraphResult, export_onnx, model_exports
from engine.export.open import find_export, open_runner, open_translator, open_upscaler
from engine.export.ort_runner import OrtRunner, OrtTranslator, OrtUpscaler

__all__ = [
    "ExportResult",
    "GraphResult",
    "OrtRunner",
    "OrtTranslator",
    "OrtUpscaler",
    "export_onnx",
    "find_export",
    "model_exports",
    "open_runner",
    "open_translator",
    "open_upscaler",
]
