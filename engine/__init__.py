"""GAN Studio engine: plain Python + PyTorch. Never imports Qt (tests/engine/test_no_qt.py enforces it)."""

__version__ = "0.1.0"
