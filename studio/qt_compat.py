"""A guard against reference-count bugs of PySide6 6.12.0 on Python 3.11 and older.

Measured here (PySide6-Essentials 6.12.0, Python 3.11.7; 6.11.3 has neither bug): every
``SignalInstance.emit()`` returns ``True`` without taking a reference, and every call of a Python
function connected to a C++ signal drops one reference to ``None``. Each costs one count; after a few
thousand emits or timer ticks the count reaches zero and CPython aborts ("deallocating None"). A
training run emits thousands of signals, so the app would die within minutes.

``install_refcount_guard`` probes for the bugs (it never trusts a version number) and, only when one
is present, raises the reference counts of None, True and False far out of reach, which is what
Python 3.12 does for them anyway (immortal objects). These three objects are never freed, so the
extra counts cost nothing. The real fix is a PySide6 without the bug (pin ``!=6.12.0``).
"""

from __future__ import annotations

import ctypes
import sys

from PySide6.QtCore import QObject, Signal

# Far more than any run can drop (one per emit or slot call), far below the Py_ssize_t limit.
BOOST = 1 << 48
_PROBE_CALLS = 20
_installed = False


class _Probe(QObject):
    sig_probe = Signal()
    """Emitted to measure what an emit does to the reference count of True."""


def _ignore(*_: object) -> None:
    """A Python function slot (returns None, which is what the bug drops)."""


def probe_refcount_leaks() -> dict[str, int]:
    """References lost per probe run: {'emit_true': n, 'slot_none': n}; zeros on a sound PySide6."""
    probe = _Probe()
    before = sys.getrefcount(True)
    for _ in range(_PROBE_CALLS):
        probe.sig_probe.emit()
    emit_loss = before - sys.getrefcount(True)
    probe.objectNameChanged.connect(_ignore)  # a C++ signal calling a Python function
    before = sys.getrefcount(None)
    for i in range(_PROBE_CALLS):
        probe.setObjectName(f"probe-{i}")
    slot_loss = before - sys.getrefcount(None)
    probe.objectNameChanged.disconnect(_ignore)
    return {"emit_true": max(0, emit_loss), "slot_none": max(0, slot_loss)}


def install_refcount_guard() -> bool:
    """Make None/True/False unkillable when this PySide6 leaks their references; True if it did."""
    global _installed
    if _installed or sys.version_info >= (3, 12):  # 3.12+: these objects are immortal already
        return _installed
    leaks = probe_refcount_leaks()
    # The probe calls 20 times; a few counts of noise (temporaries) are not a leak.
    if max(leaks.values()) < _PROBE_CALLS // 2:
        return False
    for obj in (None, True, False):
        ctypes.c_ssize_t.from_address(id(obj)).value += BOOST
    _installed = True
    return True
