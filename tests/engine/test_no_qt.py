"""The engine must never import Qt (the GUI is one front end among several)."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_engine_sources_do_not_import_qt_or_studio():
    pattern = re.compile(r"^\s*(from|import)\s+(PySide6|PyQt\d|shiboken\d|studio)\b", re.M)
    offenders = [str(p) for p in (ROOT / "engine").rglob("*.py") if pattern.search(p.read_text(encoding="utf-8"))]
    assert offenders == []


def test_importing_the_engine_loads_no_qt_module():
    code = (
        "import sys, engine.cli, engine.training, engine.data, engine.consent, engine.inference, "
        "engine.families; engine.families.family_names(); "
        "print([m for m in sys.modules if m.startswith(('PySide6', 'PyQt', 'shiboken'))])"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
