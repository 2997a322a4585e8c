"""Inference: one runner interface over trained models (PyTorch and onnxruntime)."""
from engine.inference.runner import GeneratorRunner, latents_for_seeds
from engine.inference.torch_runner import TorchRunner, resolve_checkpoint

__all__ = ["GeneratorRunner", "TorchRunner", "latents_for_seeds", "resolve_checkpoint"]
