"""Which model made an image: the identity every runner carries and every output records.

A model's card id names the run, the family, the step and the dataset it learned from, e.g.
``emoji-fastgan/fastgan/step-003000/4f1c2ab9e07d55aa``; its 24-bit hash is the model half of the
watermark payload (engine/provenance/identity.py). An ONNX export records the card id of the checkpoint
it came from (metadata ``gan_studio.model_card_id``), so a checkpoint and its export mark alike.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

CARD_ID_KEY = "gan_studio.model_card_id"
MODEL_NAME_KEY = "gan_studio.model_name"
WATERMARK_KEY = "gan_studio.watermark"
PAYLOAD_KEY = "gan_studio.watermark_payload"
"""An export whose graph marks its images records the payload it marks with (the exporting installation's)."""


@dataclass(frozen=True)
class ModelIdentity:
    """What an output says about the model that made it."""

    card_id: str
    name: str
    family: str
    dataset_fingerprint: str = ""
    attestation_id: str = ""
    watermark: bool = True
    """The run's setting (TrainConfig.watermark): mark this model's images."""
    graph_payload: int | None = None
    """Set when the model's own graph already marks its images (an ONNX export), with that payload."""

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (run info, model cards)."""
        return asdict(self)

    def onnx_metadata(self) -> dict[str, str]:
        """The metadata_props an export carries so that its runners know the same identity."""
        return {CARD_ID_KEY: self.card_id, MODEL_NAME_KEY: self.name, WATERMARK_KEY: str(self.watermark).lower()}


def _run_name(checkpoint: Path) -> str:
    # run/checkpoints/step-N.pt -> "run"; a loose checkpoint file -> its stem
    return checkpoint.parent.parent.name if checkpoint.parent.name == "checkpoints" else checkpoint.stem


def identity_from_checkpoint(checkpoint: Path | str, state: dict[str, Any]) -> ModelIdentity:
    """The identity of the model in a loaded checkpoint ``state`` read from ``checkpoint``."""
    checkpoint = Path(checkpoint)
    family = str(state.get("family", ""))
    fingerprint = str(state.get("dataset_fingerprint") or "")
    name = _run_name(checkpoint)
    config = state.get("config") or {}
    step = int(state.get("step", 0))
    return ModelIdentity(
        card_id=f"{name}/{family}/step-{step:06d}/{fingerprint[:16]}",
        name=name,
        family=family,
        dataset_fingerprint=fingerprint,
        attestation_id=str(state.get("attestation_id") or ""),
        watermark=bool(config.get("watermark", True)),
    )


def identity_from_metadata(path: Path | str, metadata: dict[str, str]) -> ModelIdentity:
    """The identity recorded in an ONNX export's metadata (exports from before provenance: made up from the
    file's name, family and step)."""
    path = Path(path)
    family = metadata.get("gan_studio.family", "")
    fingerprint = metadata.get("gan_studio.dataset_fingerprint", "")
    step = int(metadata.get("gan_studio.step", "0") or 0)
    name = metadata.get(MODEL_NAME_KEY) or path.stem
    return ModelIdentity(
        card_id=metadata.get(CARD_ID_KEY) or f"{name}/{family}/step-{step:06d}/{fingerprint[:16]}",
        name=name,
        family=family,
        dataset_fingerprint=fingerprint,
        attestation_id=metadata.get("gan_studio.attestation_id", ""),
        watermark=metadata.get(WATERMARK_KEY, "true") != "false",
        graph_payload=int(metadata[PAYLOAD_KEY]) if metadata.get(PAYLOAD_KEY, "").isdigit() else None,
    )


def identity_from_file(path: Path | str, architecture: str) -> ModelIdentity:
    """A community model file (an upscaler read through spandrel): no dataset or attestation is known."""
    path = Path(path)
    return ModelIdentity(card_id=f"file/{architecture}/{path.name}", name=path.stem, family=architecture)
