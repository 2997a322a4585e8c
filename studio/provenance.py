"""The provenance of what a page saves: the loaded model's identity (from the worker's description) -> the
engine's Provenance, so every image the studio writes is watermarked, described and signed like the CLI's."""

from __future__ import annotations

from typing import Any


def page_provenance(info: dict[str, Any] | None, action: str) -> Any:
    """engine.provenance.stamp.Provenance for images the model described by ``info`` made by ``action``.

    A description without an identity (a model from before provenance) still marks its images, naming the
    checkpoint or model shown."""
    from engine.provenance.model_info import ModelIdentity
    from engine.provenance.stamp import provenance_for

    info = info or {}
    known = info.get("identity")
    if known:
        identity = ModelIdentity(**known)
    else:
        name = str(info.get("name") or info.get("checkpoint") or "unknown model")
        identity = ModelIdentity(card_id=f"studio/{name}", name=name, family=str(info.get("family", "")))
    return provenance_for(identity, action)
