"""``python -m engine`` is the same as ``gan-studio-cli``."""

from engine.cli import main

raise SystemExit(main())
