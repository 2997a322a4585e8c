"""Model families register themselves by name; nothing else in the code branches on family names."""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.errors import ConfigError
from engine.registry import Registry

if TYPE_CHECKING:
    from engine.families.base import Family


def _load_builtin() -> None:
    # Importing the modules runs their @register_family decorators.
    import engine.families.cyclegan  # noqa: F401
    import engine.families.dcgan  # noqa: F401
    import engine.families.esrgan  # noqa: F401
    import engine.families.fastgan  # noqa: F401
    import engine.families.pix2pix  # noqa: F401
    import engine.families.stylegan2  # noqa: F401
    import engine.families.vanilla  # noqa: F401


FAMILIES: Registry = Registry("model family", ConfigError, _load_builtin)
register_family = FAMILIES.register


def get_family(name: str) -> type[Family]:
    """Return the Family class registered as ``name`` or raise ConfigError listing the known ones."""
    return FAMILIES.get(name)


def family_names() -> list[str]:
    """Names of every registered family, sorted."""
    return FAMILIES.names()
