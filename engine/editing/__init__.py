"""Latent editing on the artist's own model: walks between seeds, directions (SeFa, GANSpace), style
mixing, truncation, class morphing, inversion of a real image, and saved latents (docs/editing.md)."""

from engine.editing.animate import AnimationCancelled, class_morph, interpolate, keyframe_path, slerp, write_animation
from engine.editing.directions import METHODS, DirectionSet, find_directions, library, save_to_library
from engine.editing.invert import InversionCancelled, InversionResult, invert
from engine.editing.model import EditableModel, Latent, read_latent_file

__all__ = [
    "METHODS",
    "AnimationCancelled",
    "DirectionSet",
    "EditableModel",
    "InversionCancelled",
    "InversionResult",
    "Latent",
    "class_morph",
    "find_directions",
    "interpolate",
    "invert",
    "keyframe_path",
    "library",
    "read_latent_file",
    "save_to_library",
    "slerp",
    "write_animation",
]
