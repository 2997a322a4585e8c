"""Regenerate docs/screenshots/*.png with the app itself (real import, real training, real gallery).

    QT_QPA_PLATFORM=offscreen python docs/take_screenshots.py [--screenshot-steps N] [--theme light]

This is ``python main.py --screenshot docs/screenshots``; it works in a throw-away project and
settings file, so nothing of yours is touched. On a 2-core CPU it takes about two minutes.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from studio.app import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main(["--screenshot", str(ROOT / "docs" / "screenshots"), *sys.argv[1:]]))
