"""ONNX export with a parity guarantee, the onnxruntime runners, and opening a model with the right backend."""

from engine.export.onnx_export import ExportResult, export_onnx
from engine.export.open import find_export, open_runner, open_translator
from engine.export.ort_runner import OrtRunner, OrtTranslator

__all__ = ["ExportResult", "OrtRunner", "OrtTranslator", "export_onnx", "find_export", "open_runner", "open_translator"]
