"""Training: Trainer(config, callbacks).run(), the loop and its recovery duties.

The run folder it writes (config, checkpoints, layout) is engine.runs.
"""

from __future__ import annotations

from engine.training.trainer import Callbacks, RunResult, Trainer

__all__ = ["Callbacks", "RunResult", "Trainer"]
