"""Shared pytest setup: Qt runs offscreen, and the shared real datasets are found or skipped visibly."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before any test imports Qt
# Tiny test models gain nothing from several threads, and subprocesses (CLI tests) running beside the
# test process would otherwise oversubscribe a 2-core CI machine, where OpenMP spinning costs 10x.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# The install id, the models seen and the content-credential certificates live in the user's data folder;
# the tests (and the CLI subprocesses they start) use a private one instead (engine/provenance/identity.py).
if "GAN_STUDIO_HOME" not in os.environ:
    import tempfile

    os.environ["GAN_STUDIO_HOME"] = tempfile.mkdtemp(prefix="gan-studio-home-")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

SHARED_DATASETS = (Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets").resolve()


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """The folder of real sample datasets beside the checkout; skips (with the path) when absent."""
    if not SHARED_DATASETS.is_dir():
        pytest.skip(f"shared datasets not found at {SHARED_DATASETS}; real-data tests need them there")
    return SHARED_DATASETS
