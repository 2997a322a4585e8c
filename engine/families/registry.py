"""Model families register themselves by name; nothing else in the code branches on family names."""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, TypeVar

from engine.errors import ConfigError

if TYPE_CHECKING:
    from engine.families.base import Family

_FAMILIES: dict[str, type["Family"]] = {}
F = TypeVar("F", bound=type)


def register_family(name: str) -> Callable[[F], F]:
    """Class decorator: make a Family subclass available under ``name``."""

    def deco(cls: F) -> F:
        if name in _FAMILIES and _FAMILIES[name] is not cls:
            raise RuntimeError(f"model family {name!r} registered twice")
        cls.name = name  # type: ignore[attr-defined]
        _FAMILIES[name] = cls  # type: ignore[assignment]
        return cls

    return deco


def get_family(name: str) -> type["Family"]:
    """Return the Family class registered as ``name`` or raise ConfigError listing the known ones."""
    _load_builtin()
    try:
        return _FAMILIES[name]
    except KeyError:
        known = ", ".join(sorted(_FAMILIES))
        raise ConfigError(f"unknown model family {name!r}; choose one of: {known}") from None


def family_names() -> list[str]:
    """Names of every registered family, sorted."""
    _load_builtin()
    return sorted(_FAMILIES)


def _load_builtin() -> None:
    # Importing the modules runs their @register_family decorators.
    import engine.families.dcgan  # noqa: F401
    import engine.families.fastgan  # noqa: F401
