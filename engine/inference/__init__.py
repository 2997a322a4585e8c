"""Inference: one runner interface over trained models (PyTorch now, onnxruntime later)."""
from engine.inference.torch_runner import TorchRunner, latents_for_seeds, resolve_checkpoint

__all__ = ["TorchRunner", "latents_for_seeds", "resolve_checkpoint"]
