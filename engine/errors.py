"""The engine's own exception types.

Every error a user can cause (a bad file, a wrong setting, a missing attestation) is raised as a
subclass of :class:`GanStudioError` with a message that names the file or setting and says how to fix
it. Front ends show it and never a traceback: the CLI ``str(exc)``, the GUI :func:`gui_message`.
"""

from __future__ import annotations


class GanStudioError(Exception):
    """Base class for errors caused by input or settings, shown to the user as one message.

    ``message`` may end with the command that fixes the problem (what the CLI prints). When it does,
    ``gui`` is the same message for a graphical front end, saying what to click instead; the GUI shows
    :func:`gui_message` and never asks the user to open a terminal.
    """

    gui: str | None = None

    def __init__(self, message: str = "", *, gui: str | None = None) -> None:
        super().__init__(message)
        self.gui = gui


def gui_message(exc: BaseException) -> str:
    """The text a graphical front end shows for ``exc``: its ``gui`` wording when it has one, else str(exc)."""
    if isinstance(exc, GanStudioError) and exc.gui:
        return exc.gui
    return str(exc)


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

    def __init__(self, message: str, *, reason: str, gui: str | None = None) -> None:
        super().__init__(message, gui=gui)
        self.reason = reason


class DeviceError(GanStudioError):
    """The requested compute device is not available."""


class UpscaleCancelled(GanStudioError):
    """The user cancelled an upscale; the image being processed is not written (earlier ones are kept)."""
