"""What the desktop bundle (packaging/) relies on in the app: resources found inside a frozen bundle, and
``--quit-after-load``, the smoke test's start-load-check-quit run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication

import studio.paths
from studio.app import LOADED_MARK

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "packaging"))
from launcher import module_command  # noqa: E402  (packaging/launcher.py, the bundle's entry point)


def test_a_frozen_bundle_finds_resources_in_its_own_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path / "_internal"), raising=False)
    assert studio.paths._resources() == tmp_path / "_internal" / "resources"


def test_outside_a_bundle_the_source_tree_resources_are_used(monkeypatch):
    monkeypatch.setattr(sys, "_MEIPASS", "/nowhere", raising=False)  # set without frozen: not a bundle
    monkeypatch.delattr(sys, "frozen", raising=False)
    found = studio.paths._resources()
    assert found == Path(studio.paths.__file__).resolve().parents[1] / "resources"
    assert (found / "icons" / "app.svg").is_file() and (found / "sample" / "LICENSE").is_file()


def _run_quit_after_load(tmp_path, capsys) -> tuple[int, dict]:
    from studio.app import main
    from studio.main_window import MainWindow

    try:
        status = main(["--project", str(tmp_path / "project"), "--quit-after-load"])
    finally:
        for widget in QApplication.topLevelWidgets():
            if isinstance(widget, MainWindow):
                widget.shutdown()
                widget.close()
                widget.deleteLater()
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith(LOADED_MARK)]
    assert len(lines) == 1, "--quit-after-load prints exactly one result line"
    return status, json.loads(lines[0].removeprefix(LOADED_MARK))


@pytest.mark.slow
def test_quit_after_load_checks_the_engine_and_exits_zero(qapp, tmp_path, capsys):
    status, result = _run_quit_after_load(tmp_path, capsys)
    assert result["errors"] == {}
    assert status == 0
    family, n, channels, height, width = result["sample"]  # a real forward pass of a tiny model
    assert family in result["families"] and (n, channels) == (1, 3) and height == width >= 16
    assert result["faces"] == 0 and result["ffmpeg"].startswith("ffmpeg")
    assert "CPUExecutionProvider" in result["onnxruntime"]
    assert result["onnx_export"] < 1e-4  # the dynamo exporter's graph runs in onnxruntime, same numbers
    assert set(result["libraries"]) == {"torchvision", "torchmetrics", "optuna", "spandrel"}


@pytest.mark.slow
def test_quit_after_load_names_a_missing_file_and_exits_one(qapp, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("studio.app.SAMPLE_DATASET", tmp_path / "no-sample")
    status, result = _run_quit_after_load(tmp_path, capsys)
    assert status == 1
    assert list(result["errors"]) == ["resources"] and "no-sample" in result["errors"]["resources"]


def test_the_bundle_runs_torchrun_style_module_command_lines_and_starts_the_gui_otherwise():
    # torchrun's own command line (engine/distributed.py) and the one it starts per worker
    assert module_command(["-m", "torch.distributed.run", "--standalone", "-m", "engine", "train"]) == (
        "torch.distributed.run",
        ["--standalone", "-m", "engine", "train"],
        False,
    )
    assert module_command(["-u", "-m", "engine", "train", "--out", "r"]) == ("engine", ["train", "--out", "r"], True)
    for gui in ([], ["--project", "p"], ["--quit-after-load"], ["-m"], ["-x", "-m", "engine"]):
        assert module_command(gui) is None


def test_the_smoke_test_reads_the_same_result_line_the_app_prints():
    from smoke_test import LOADED_MARK as smoke_mark

    assert smoke_mark == LOADED_MARK
