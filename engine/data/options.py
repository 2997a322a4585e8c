"""The import settings, their allowed values, and the checks that turn bad values into ConfigError."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from engine.errors import ConfigError

FITS: tuple[str, ...] = ("crop", "pad", "stretch")
ALPHAS: tuple[str, ...] = ("white", "black", "keep")
MIN_SIZE = 8
MAX_SIZE = 4096
# Short side below this, or a longer/shorter ratio above MAX_ASPECT, is not a usable training image.
MIN_SIDE = 8
MAX_ASPECT = 8.0
DEFAULT_MAX_PIXELS = 40_000_000
# phash Hamming distance (of 64 bits) at or below which two images count as near duplicates.
DEFAULT_DUPLICATE_DISTANCE = 6

BACKGROUNDS: dict[str, tuple[int, int, int]] = {"white": (255, 255, 255), "black": (0, 0, 0)}


@dataclass(frozen=True)
class ImportOptions:
    """How source images become cache rows: training size, fit mode, alpha handling, size limit, and
    whether near duplicates are left out."""

    size: int = 64
    """Training resolution in pixels (square)."""
    fit: str = "crop"
    """crop: cut to a centred square; pad: keep everything and add borders; stretch: squash."""
    alpha: str = "white"
    """Transparent pixels: composite onto white or black, or keep the alpha channel."""
    max_pixels: int = DEFAULT_MAX_PIXELS
    """Largest image (width x height) that is decoded; bigger files are skipped as possible bombs."""
    drop_duplicates: bool = False
    """Leave near duplicates out: keep the largest image of each group of look-alikes (perceptual
    hash within a few bits) and skip the others, each with the file it duplicates as the reason."""

    def __post_init__(self) -> None:
        check_size(self.size)
        _check_choice("fit", self.fit, FITS)
        _check_choice("alpha", self.alpha, ALPHAS)
        if not isinstance(self.max_pixels, int) or self.max_pixels < MIN_SIDE * MIN_SIDE:
            raise ConfigError(
                f"max_pixels must be a whole number of pixels of at least {MIN_SIDE * MIN_SIDE}, "
                f"got {self.max_pixels!r}; the default is {DEFAULT_MAX_PIXELS:,}."
            )
        if not isinstance(self.drop_duplicates, bool):
            raise ConfigError(f"drop_duplicates must be true or false, got {self.drop_duplicates!r}.")

    @property
    def channels(self) -> int:
        """3 when alpha is composited onto a background, 4 when it is kept."""
        return 4 if self.alpha == "keep" else 3

    @property
    def cache_key(self) -> str:
        """Name of the cache variant these options produce, e.g. ``64-crop-white``."""
        return cache_key(self.size, self.fit, self.alpha)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for the manifest and report."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImportOptions:
        """Rebuild from a manifest's ``options``; unknown keys from newer versions are ignored."""
        names = ("size", "fit", "alpha", "max_pixels", "drop_duplicates")
        known = {k: data[k] for k in names if k in data}
        return cls(**known)


def cache_key(size: int, fit: str, alpha: str) -> str:
    """Identify one prepared variant of a dataset by its (size, fit, alpha)."""
    return f"{size}-{fit}-{alpha}"


def check_size(size: object) -> int:
    """Return ``size`` when it is a usable training resolution, else raise ConfigError saying the range."""
    if isinstance(size, bool) or not isinstance(size, int) or not MIN_SIZE <= size <= MAX_SIZE:
        raise ConfigError(
            f"size must be a whole number of pixels from {MIN_SIZE} to {MAX_SIZE}, got {size!r}; "
            "common training sizes are 32, 64, 128 and 256."
        )
    return size


def _check_choice(setting: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{setting} must be one of {', '.join(allowed)}; got {value!r}.")
