"""A name -> class registry filled by a class decorator (model families, feature extractors)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from engine.errors import GanStudioError

T = TypeVar("T", bound=type)


class Registry(Generic[T]):
    """Classes registered by name; ``loader`` imports the built-in modules on first lookup."""

    def __init__(self, kind: str, error: type[GanStudioError], loader: Callable[[], None]) -> None:
        self.kind, self.error, self.loader = kind, error, loader
        self._classes: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Class decorator: make the class available under ``name`` (and set ``cls.name``)."""

        def deco(cls: T) -> T:
            if name in self._classes and self._classes[name] is not cls:
                raise RuntimeError(f"{self.kind} {name!r} registered twice")
            cls.name = name  # type: ignore[attr-defined]
            self._classes[name] = cls
            return cls

        return deco

    def get(self, name: str) -> T:
        """The class registered as ``name``, or the registry's error listing the known names."""
        self.loader()
        try:
            return self._classes[name]
        except KeyError:
            raise self.error(f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}") from None

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        self.loader()
        return sorted(self._classes)
