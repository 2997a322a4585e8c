"""Inference: one runner interface over trained models (PyTorch and onnxruntime)."""

from engine.inference.runner import GeneratorRunner, latents_for_seeds
from engine.inference.torch_runner import TorchRunner, resolve_checkpoint
from engine.inference.translate import TorchTranslator, Translator, open_translator

__all__ = [
    "GeneratorRunner",
    "TorchRunner",
    "TorchTranslator",
    "Translator",
    "latents_for_seeds",
    "open_translator",
    "resolve_checkpoint",
]
