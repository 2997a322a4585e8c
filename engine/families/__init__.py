"""Model families, one file each, registered by name (see registry.py)."""

from engine.families.registry import family_names, get_family, register_family

__all__ = ["family_names", "get_family", "register_family"]
