"""Entry point of the desktop bundle: the GUI, or ``gan-studio [-u] -m MODULE ARGS`` like a Python.

A frozen app's ``sys.executable`` is the bundle's own executable, not a Python interpreter. The Train
page starts multi-process training as ``sys.executable -m torch.distributed.run ... -m engine train ...``
(engine/distributed.py) and torchrun starts each worker as ``sys.executable -u -m engine ...``; this
launcher runs such a command line's module inside the bundle, so those work there as they do from a
checkout. Anything else starts the GUI (``studio.app.main``), as ``main.py`` does.
"""

from __future__ import annotations

import runpy
import sys

# Interpreter flags torchrun and similar launchers put before -m; none changes anything a bundle can honour
# except -u (unbuffered output), which is applied.
IGNORED_FLAGS = {"-B", "-E", "-s", "-S", "-I", "-O", "-OO", "-P"}


def module_command(argv: list[str]) -> tuple[str, list[str], bool] | None:
    """``(module, its arguments, unbuffered)`` when ``argv`` (without the program) is ``[flags] -m MODULE
    ...``; None otherwise (a GUI start)."""
    unbuffered = False
    for i, word in enumerate(argv):
        if word == "-u":
            unbuffered = True
        elif word == "-m" and i + 1 < len(argv):
            return argv[i + 1], argv[i + 2 :], unbuffered
        elif word not in IGNORED_FLAGS:
            return None
    return None


def main() -> int:
    """Run the module named after ``-m`` as ``__main__``, else the GUI."""
    command = module_command(sys.argv[1:]) if getattr(sys, "frozen", False) else None
    if command is None:
        from studio.app import main as gui

        return gui()
    module, args, unbuffered = command
    if unbuffered:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.reconfigure(write_through=True)  # type: ignore[union-attr]
    sys.argv = [sys.executable, *args]  # run_module replaces argv[0] with the module's file
    runpy.run_module(module, run_name="__main__", alter_sys=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
