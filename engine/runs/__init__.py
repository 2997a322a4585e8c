"""The run folder, the unit of work: its config, checkpoints, layout and summary.

Families, inference, export and the studio read a run through this package; the training loop
(engine.training) writes one. Nothing here imports the loop or the families.
"""

from __future__ import annotations

from engine.runs.config import TrainConfig, read_run_config

__all__ = ["TrainConfig", "read_run_config"]
