"""Inference: one runner interface over trained models, and the PyTorch runners.

The onnxruntime runners and ``open_runner``/``open_translator`` (which pick a backend) are in
``engine.export``, which builds on this package; this package never imports that one.
"""

from engine.inference.runner import GeneratorRunner, latents_for_seeds
from engine.inference.torch_runner import TorchRunner, resolve_checkpoint
from engine.inference.translate import TorchTranslator, Translator

__all__ = [
    "GeneratorRunner",
    "TorchRunner",
    "TorchTranslator",
    "Translator",
    "latents_for_seeds",
    "resolve_checkpoint",
]
