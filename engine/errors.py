"""The engine's own exception types.

Every error a user can cause (a bad file, a wrong setting, a missing attestation) is raised as a
subclass of :class:`GanStudioError` with a message that names the file or setting and says how to fix
it. Front ends (CLI, GUI) show ``str(exc)`` and never a traceback.
"""

from __future__ import annotations


class GanStudioError(Exception):
    """Base class for errors caused by input or settings, shown to the user as one message."""


class DataError(GanStudioError):
    """A dataset folder, image file or prepared cache cannot be used."""


class ImportCancelled(GanStudioError):
    """The user cancelled an import; the previous dataset (if any) is untouched."""


class ConsentError(GanStudioError):
    """Training was refused because the dataset has no valid consent attestation."""


class ConfigError(GanStudioError):
    """A training or model setting is invalid."""


class CheckpointError(GanStudioError):
    """A checkpoint or run folder cannot be read (corrupt, other family, newer format)."""


class CheckpointDamaged(CheckpointError):
    """A checkpoint file is truncated, overwritten or fails its checksum; ``reason`` says which in a few words.

    Readers of a run folder set such a file aside (``<name>.damaged``) and fall back to an older one.
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class DeviceError(GanStudioError):
    """The requested compute device is not available."""
