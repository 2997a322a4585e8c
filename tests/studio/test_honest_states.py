"""Honest states on the Train and Generate pages: Stop says where the run stopped (and the step is the
checkpoint's), Resume appends to the run's log, the runs list follows a training run live, Generate
lists a run once its first checkpoint exists, closing waits visibly for the checkpoint, settings and
families are named in words, small datasets are warned about, and no message asks for a terminal."""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from engine.consent import require_attestation
from engine.data.manifest import read_manifest
from engine.errors import ConsentError, DataError, gui_message
from engine.families import family_names, get_family
from engine.runs import TrainConfig
from engine.runs.checkpoint import checkpoint_path, latest_checkpoint, save_checkpoint
from studio.main_window import MainWindow
from studio.pages.train import FORM_EXCLUDE
from studio.widgets.config_form import ConfigForm

from .conftest import import_and_attest, make_tiny, write_art_folder

LEFT = Qt.MouseButton.LeftButton
ROOT = Path(__file__).resolve().parents[2]
TERMINAL_WORDS = ("gan-studio-cli", "pip install", "terminal", "command line")


def _start(window, project, art_folder, **tiny):
    dataset = import_and_attest(project, art_folder)
    train = window.train_page
    train.refresh_datasets(select=dataset)
    make_tiny(train, **tiny)
    assert train.start()
    return train


def _checkpoint_names(log_text: str) -> list[str]:
    return re.findall(r"Checkpoint saved: (step-\d+\.pt)", log_text)


def test_stop_says_where_the_run_stopped_and_resume_appends_to_its_log(window, qtbot, project, art_folder):
    # log_every is far away: stats.jsonl holds no line, so only the checkpoint can say the step.
    train = _start(window, project, art_folder, steps=1_000_000, log_every=100_000)
    qtbot.waitUntil(lambda: train.latest_stats.get("step", 0) >= 3, timeout=30_000)
    qtbot.waitUntil(lambda: train.stat_labels["eta"].text() != "-", timeout=5_000)  # while training: time left
    assert train.progress.format() == "%v / %m steps"
    with qtbot.waitSignal(train.sig_running_changed, timeout=30_000, check_params_cb=lambda running: not running):
        qtbot.mouseClick(train.stop_button, LEFT)
    step = train.result.step
    assert train.result.stopped and latest_checkpoint(train.run_dir).name == f"step-{step:06d}.pt"
    assert train.progress.format() == f"Stopped at step {step:,} of 1,000,000"
    assert train.progress.value() == step and train.stat_labels["step"].text() == f"{step:,} / 1,000,000"
    assert train.stat_labels["eta"].text() == "-" and train.stat_labels["state"].text() == "stopped"
    log = train.log.toPlainText()
    assert _checkpoint_names(log)[-1] == f"step-{step:06d}.pt"  # the step shown is the checkpoint the log names
    item = train.runs_list.currentItem()
    assert f"step {step:,} / 1,000,000" in item.text() and "training" not in item.text()

    # Another run's log replaces it; selecting this run again shows this run's own log.txt.
    train.log.setPlainText("unrelated")
    train.log_run = None
    train.show_run(train.run_dir)
    assert f"Stopped at step {step}" in train.log.toPlainText()
    assert train.progress.format() == f"Stopped at step {step:,} of 1,000,000"

    history = train.log.toPlainText()
    train.until_spin.setValue(step + 3)
    qtbot.mouseClick(train.resume_button, LEFT)
    qtbot.waitUntil(lambda: not train.is_running(), timeout=30_000)
    log = train.log.toPlainText()
    assert log.startswith(history) and f"Resuming {train.run_dir.name} until step {step + 3:,}" in log
    assert f"Resumed from step-{step:06d}.pt" in log
    assert train.progress.format() == f"Finished at step {step + 3:,} of {step + 3:,}"
    assert _checkpoint_names(log)[-1] == f"step-{step + 3:06d}.pt" and train.stat_labels["eta"].text() == "-"


def test_runs_list_follows_the_training_run_and_generate_lists_it_after_its_first_checkpoint(
    window, qtbot, project, art_folder
):
    train = _start(window, project, art_folder, steps=1_000_000, checkpoint_every=5)
    gen = window.generate_page
    assert gen.run_combo.count() == 0

    def item():
        return train._run_list_item(train.run_dir)

    def shown_step():
        return int(re.search(r"step ([\d,]+)", item().text()).group(1).replace(",", ""))

    qtbot.waitUntil(lambda: item() is not None and not item().icon().isNull(), timeout=30_000)
    first_icon = item().icon().pixmap(56).toImage()
    assert "training" in item().text()
    qtbot.waitUntil(lambda: shown_step() >= 12, timeout=30_000)  # the entry's step moves on while it trains
    assert shown_step() <= train.latest_stats["step"]
    qtbot.waitUntil(lambda: item().icon().pixmap(56).toImage() != first_icon, timeout=10_000)  # and its preview

    assert train.is_running()
    qtbot.waitUntil(lambda: gen.run_combo.findData(str(train.run_dir)) >= 0, timeout=5_000)
    train.stop()
    qtbot.waitUntil(lambda: not train.is_running(), timeout=30_000)


def test_closing_during_training_shows_saving_checkpoint_until_the_run_has_ended(
    window, qtbot, project, art_folder, monkeypatch
):
    monkeypatch.setattr(MainWindow, "confirm_stop_training", lambda self, action="": True)
    train = _start(window, project, art_folder, steps=1_000_000)
    qtbot.waitUntil(lambda: train.latest_stats.get("step", 0) >= 2, timeout=30_000)
    run_dir = train.run_dir

    window.close()
    dialog = window.saving_dialog
    # Nothing has returned to the event loop yet, so the run's thread cannot have been reported ended.
    assert train.is_running() and window.isVisible()
    assert dialog.isVisible() and "Saving checkpoint…" in dialog.message.text()
    assert train.stat_labels["state"].text() == "saving checkpoint…"
    assert window.job_label.text().startswith("Saving checkpoint")
    dialog.reject()  # Escape cannot hide it while the checkpoint is written
    window.close()  # a second close waits too, without asking again
    assert dialog.isVisible() and window.isVisible()

    qtbot.waitUntil(lambda: not window.isVisible(), timeout=60_000)
    assert not dialog.isVisible() and not train.is_running()
    assert latest_checkpoint(run_dir) is not None


def test_families_are_described_and_settings_are_named_in_words(window):
    train = window.train_page
    for row in range(train.family_combo.count()):
        name = train.family_combo.itemData(row)
        description = get_family(name).description
        assert description and "\n" not in description
        assert train.family_combo.itemData(row, Qt.ItemDataRole.ToolTipRole) == description
    for name in family_names():
        train.family_combo.setCurrentIndex(train.family_combo.findData(name))
        assert train.family_label.text() == get_family(name).description and train.family_label.isVisibleTo(train)

    assert train.train_form.labels["lr_g"].text() == "Generator learning rate"
    assert "network width" in train.preset_label.text() and "base_channels" not in train.preset_label.text()
    for config_cls, form in [(TrainConfig, ConfigForm(TrainConfig, exclude=FORM_EXCLUDE))] + [
        (get_family(n).Config, ConfigForm(get_family(n).Config)) for n in family_names()
    ]:
        fields = {f.name: f for f in dataclasses.fields(config_cls)}
        for name, label in form.labels.items():
            assert fields[name].metadata.get("label"), f"{config_cls.__name__}.{name} has no label"
            assert label.text() == fields[name].metadata["label"] and "_" not in label.text()
        form.deleteLater()


def test_a_dataset_under_100_images_is_warned_about_on_the_train_page(window, project, art_folder, tmp_path):
    train = window.train_page
    small = import_and_attest(project, art_folder)
    big = import_and_attest(project, write_art_folder(tmp_path / "big", per_class=50, size=16), size=16)
    train.refresh_datasets(select=small)
    assert train.dataset_warning.isVisibleTo(train) and train.dataset_warning.text().startswith("Only 20 images")
    train.refresh_datasets(select=big)
    assert not train.dataset_warning.isVisibleTo(train)


def test_the_enlarged_image_saves_at_its_own_size_and_exports_say_their_size(
    window, qtbot, project, art_folder, tmp_path, monkeypatch
):
    train = _start(window, project, art_folder, steps=2)
    qtbot.waitUntil(lambda: not train.is_running(), timeout=30_000)
    gen = window.generate_page
    window.show_page("generate")
    qtbot.waitUntil(lambda: gen.gallery.count() > 0, timeout=30_000)
    assert gen.size_label.text() == "at 32×32 px"
    enlarged = gen.enlarge(gen.gallery.item(2))
    assert "32×32 px" in enlarged.windowTitle()
    target = tmp_path / "picked" / "mine.png"
    target.parent.mkdir()
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(target), "")))
    qtbot.mouseClick(enlarged.save_button, LEFT)
    with Image.open(target) as saved:
        assert saved.size == (32, 32)  # the model's size, not the enlarged view's
    assert "32×32 px" in window.statusBar().currentMessage()
    enlarged.accept()

    out = tmp_path / "batch"
    out.mkdir()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(out)))
    gen.count_spin.setValue(3)
    qtbot.mouseClick(gen.export_button, LEFT)
    qtbot.waitUntil(lambda: not gen.exporting, timeout=30_000)
    assert "Wrote 3 images, 32×32 px each," in window.statusBar().currentMessage()


# -- no message asks the user to open a terminal -----------------------------------------------------
def _docstring_nodes(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            ids.add(id(body[0].value))
        if isinstance(node, ast.ClassDef | ast.Module):  # field docstrings: a string right after a field
            for before, after in zip(node.body, node.body[1:]):
                if isinstance(before, ast.AnnAssign) and isinstance(after, ast.Expr):
                    ids.add(id(after.value))
    return ids


def test_studio_strings_never_tell_the_user_to_run_a_command():
    for path in sorted((ROOT / "studio").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docs = _docstring_nodes(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
                lowered = node.value.lower()
                assert not any(w in lowered for w in TERMINAL_WORDS), f"{path.name}:{node.lineno}: {node.value!r}"


def _mentions_command(source: str) -> bool:
    return "gan-studio-cli" in source or "pip install" in source


def test_engine_errors_that_name_a_command_carry_gui_words():
    """A rule over the engine's error constructions: a message built from a command (literally, or
    through a module-level helper or constant holding one) passes ``gui=`` words without a command."""
    checked = 0
    for path in sorted((ROOT / "engine").rglob("*.py")):
        if path.name in ("cli.py", "__main__.py"):
            continue
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source)
        helpers = _command_helpers(tree, source)
        for func in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]:
            for call in [n for n in ast.walk(func) if isinstance(n, ast.Call) and _is_error_type(n.func)]:
                message = "".join(ast.get_source_segment(source, a) or "" for a in call.args)
                names = _names_feeding(func, call)
                if not (_mentions_command(message) or names & helpers):
                    continue
                checked += 1
                gui = [k for k in call.keywords if k.arg == "gui"]
                where = f"{path.relative_to(ROOT)}:{call.lineno}"
                assert gui, f"{where} names a command but gives the GUI no words (gui=...)"
                assert not _mentions_command(ast.get_source_segment(source, gui[0].value) or ""), where
    assert checked >= 10  # the rule saw the consent, import, device, runner and trainer messages


def _command_helpers(tree: ast.Module, source: str) -> set[str]:
    """Module-level functions and constants whose text holds a command."""
    helpers: set[str] = set()
    for node in tree.body:
        if not _mentions_command(ast.get_source_segment(source, node) or ""):
            continue
        if isinstance(node, ast.FunctionDef):
            helpers.add(node.name)
        elif isinstance(node, ast.Assign):
            helpers |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return helpers


def _is_error_type(func: ast.expr) -> bool:
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
    return name.endswith("Error")


def _names_feeding(func: ast.FunctionDef, call: ast.Call) -> set[str]:
    """Names in the call's message arguments, and in local assignments (``problem = ...``) they use."""
    used = {n.id for a in call.args for n in ast.walk(a) if isinstance(n, ast.Name)}
    names = set(used)
    for node in ast.walk(func):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id in used for t in node.targets):
            names |= {n.id for n in ast.walk(node.value) if isinstance(n, ast.Name)}
    return names


def test_engine_errors_give_the_cli_its_command_and_the_gui_what_to_click(project, art_folder, tmp_path):
    dataset = import_and_attest(project, art_folder, attested=False)
    with pytest.raises(ConsentError) as consent:
        require_attestation(dataset)
    assert "gan-studio-cli attest" in str(consent.value)
    assert "Consent…" in gui_message(consent.value) and "gan-studio-cli" not in gui_message(consent.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError) as missing:
        read_manifest(tmp_path / "empty")
    assert "gan-studio-cli import" in str(missing.value)
    assert "Import folder…" in gui_message(missing.value) and "gan-studio-cli" not in gui_message(missing.value)
    assert gui_message(ValueError("plain")) == "plain"


def test_a_translating_checkpoint_on_generate_says_which_page_to_open(window, qtbot, tmp_path):
    path = checkpoint_path(tmp_path / "run", 1)
    path.parent.mkdir(parents=True)
    save_checkpoint(path, {"family": "pix2pix", "step": 1})
    gen = window.generate_page
    window.show_page("generate")
    gen.load_model(str(path))
    qtbot.waitUntil(lambda: window.errors.last_dialog is not None, timeout=30_000)
    text = window.errors.last_dialog.message_label.text()
    assert "Translate page" in text and "gan-studio-cli" not in text


def test_a_device_error_in_training_names_the_setting_to_change(window, qtbot, project, art_folder):
    train = _start(window, project, art_folder, device="mps")  # never available on Linux or Windows
    qtbot.waitUntil(lambda: not train.is_running(), timeout=30_000)
    text = window.errors.last_dialog.message_label.text()
    assert "Device" in text and "Advanced settings" in text and "--device" not in text
