"""The Train page's "Several GPUs or machines" box: the torchrun command it shows and copies, and a local
multi-process run it starts, follows live and stops (two gloo processes on the CPU stand in for GPUs)."""

from __future__ import annotations

import json
import shlex

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from engine.runs.checkpoint import latest_checkpoint, load_checkpoint
from studio.pages.train import SETTINGS_NAME

from .conftest import import_and_attest, make_tiny

LEFT = Qt.MouseButton.LeftButton


def _page(window, project, art_folder):
    train = window.train_page
    train.refresh_datasets(select=import_and_attest(project, art_folder))
    make_tiny(train, device="cpu", augment="", health=False)
    window.show_page("train")
    assert not train.cluster_box.isVisibleTo(train)  # closed on a machine without several GPUs
    qtbot_click(train.cluster_button)
    assert train.cluster_box.isVisibleTo(train)
    return train


def qtbot_click(button):
    from PySide6.QtTest import QTest

    QTest.mouseClick(button, LEFT)


def test_the_command_follows_the_counts_and_copy_saves_the_settings(window, qtbot, project, art_folder):
    train = _page(window, project, art_folder)
    train.processes_spin.setValue(2)
    assert (
        "--standalone --nproc_per_node=2 -m engine train --config RUN/settings.json" in train.command_view.toPlainText()
    )
    assert not train.endpoint_edit.isEnabled()

    train.nodes_spin.setValue(3)
    train.endpoint_edit.setText("gpu-box-1:29400")
    text = train.command_view.toPlainText()
    assert "--nnodes=3 --node_rank=0" in text and "--rdzv_endpoint=gpu-box-1:29400" in text
    assert "--node_rank=k" in text and train.endpoint_edit.isEnabled()
    assert not train.processes_button.isEnabled()  # several machines: started by hand on each

    train.train_form.set_values({"batch_size": 12})
    qtbot.mouseClick(train.copy_command_button, LEFT)
    words = shlex.split(QApplication.clipboard().text())
    assert words[0] == "torchrun" and "--nproc_per_node=2" in words
    settings = json.loads(open(words[words.index("--config") + 1], encoding="utf-8").read())
    assert settings["batch_size"] == 12 and settings["family"] == "dcgan" and settings["augment"] == ""


def test_a_batch_that_does_not_divide_among_the_processes_is_refused_in_words(window, qtbot, project, art_folder):
    train = _page(window, project, art_folder)
    train.processes_spin.setValue(2)
    train.train_form.set_values({"batch_size": 7})
    messages = []
    train.errors.report = lambda message, details="": messages.append(message)
    assert not train.start_processes()
    assert messages and "divide evenly among the 2 processes" in messages[0]


def test_start_on_this_machine_follows_the_run_live_and_stop_keeps_a_checkpoint(window, qtbot, project, art_folder):
    train = _page(window, project, art_folder)
    train.processes_spin.setValue(2)
    train.train_form.set_values({"steps": 100_000, "preview_every": 2})
    assert train.processes_button.isEnabled()
    qtbot.mouseClick(train.processes_button, LEFT)
    assert train.is_running() and not train.pause_button.isEnabled()  # several processes do not pause

    qtbot.waitUntil(lambda: train.latest_stats.get("step", 0) >= 4, timeout=120_000)
    assert train.latest_stats["world_size"] == 2
    qtbot.waitUntil(lambda: train.stat_labels["epoch"].text() not in ("-", ""), timeout=10_000)
    assert train.stat_labels["epoch"].text().endswith("s")  # time per epoch, from the run's stats
    qtbot.waitUntil(lambda: train.preview.latest is not None, timeout=30_000)  # the grids rank 0 writes
    assert "2 processes (gloo)" in train.log.toPlainText()

    qtbot.mouseClick(train.stop_button, LEFT)
    qtbot.waitUntil(lambda: not train.is_running(), timeout=120_000)
    assert train.result is not None and train.result.stopped
    state = load_checkpoint(latest_checkpoint(train.run_dir))
    assert state["world_size"] == 2 and state["step"] == train.result.step >= 4
    assert (train.run_dir / SETTINGS_NAME).is_file()


def test_a_multi_process_run_that_fails_reports_the_processes_own_words(window, qtbot, project, art_folder):
    train = _page(window, project, art_folder)
    train.processes_spin.setValue(2)
    train.train_form.set_values({"device": "cuda"})  # no GPU here: every process refuses it at set-up
    train.refresh_plan()
    assert "No plan" in train.plan_label.text()  # the plan already says so
    messages = []
    train.errors.report = lambda message, details="": messages.append((message, details))
    qtbot.mouseClick(train.processes_button, LEFT)
    qtbot.waitUntil(lambda: not train.is_running(), timeout=120_000)
    assert train.result is None and messages
    message, details = messages[-1]
    assert message.startswith("Training stopped: device 'cuda' requested but no CUDA GPU is available")
    assert "Traceback" not in message and details  # torchrun's own output is there for the curious
