"""Training: Trainer(config, callbacks).run(), checkpoints, resume."""
from __future__ import annotations

from typing import Any

from engine.training.config import TrainConfig

__all__ = ["Callbacks", "RunResult", "TrainConfig", "Trainer"]


def __getattr__(name: str) -> Any:
    # Lazy so that model families can import engine.training.config without importing the trainer
    # (which imports the families: a cycle).
    if name in ("Callbacks", "RunResult", "Trainer"):
        from engine.training import trainer

        return getattr(trainer, name)
    raise AttributeError(name)
