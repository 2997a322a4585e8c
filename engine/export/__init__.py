"""ONNX export with a parity guarantee, and the onnxruntime runner."""

from engine.export.onnx_export import ExportResult, export_onnx
from engine.export.ort_runner import OrtRunner, OrtTranslator, open_runner

__all__ = ["ExportResult", "OrtRunner", "OrtTranslator", "export_onnx", "open_runner"]
