"""The training doctor on the Train page: the health strip shows the levels of the findings it is fed, a
copying finding shows its image pairs (and refuses paths outside the run folder), a real divergence lights
the strip while the run trains, and the fix buttons resume (with the settings shown first, or cancelled;
a running run is stopped first), stop with the checkpoint to keep, or prefill another family."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt

from engine.runs import read_run_config
from engine.runs.checkpoint import latest_checkpoint, list_checkpoints, load_checkpoint
from engine.training.health import DETECTOR_LABELS, DETECTORS, LEVELS, Finding, Fix, append_finding, read_health
from studio.widgets import health_strip
from studio.widgets.health_strip import EMPTY_TEXT, LEVEL_WORDS, FindingsPanel, HealthStrip

from .conftest import TINY_STEPS, import_and_attest, make_tiny, train_tiny_run

LEFT = Qt.MouseButton.LeftButton
LOWER = Fix("Lower the learning rates to 1e-4", {"lr_g": 1e-4, "lr_d": 1e-4})


def finding(detector, level, step, message="", fixes=(), **evidence):
    return Finding(detector, level, step, message or f"{detector} is {level}", tuple(fixes), evidence)


def test_strip_shows_the_level_of_the_findings_it_is_fed(qtbot):
    assert health_strip.LEVELS == LEVELS and tuple(LEVEL_WORDS) == LEVELS  # the widget draws every engine level
    strip = HealthStrip(DETECTOR_LABELS)
    qtbot.addWidget(strip)
    assert [strip.lights[d].name_label.text() for d in DETECTORS] == [DETECTOR_LABELS[d] for d in DETECTORS]
    assert set(strip.levels().values()) == {"ok"}
    assert "nothing found so far" in strip.lights["collapse"].toolTip()

    strip.set_findings(
        [
            finding("collapse", "note", 100, "The images vary less than before."),
            finding("overpowering", "warning", 120, "The discriminator is winning easily."),
            finding("collapse", "problem", 150, "The generator makes nearly the same image every time."),
            finding("divergence", "warning", 160),
            finding("divergence", "ok", 220, "Training is stable again."),
        ]
    )
    levels = strip.levels()
    assert levels == {**dict.fromkeys(DETECTORS, "ok"), "collapse": "problem", "overpowering": "warning"}
    light = strip.lights["collapse"]
    assert light.level_label.text() == LEVEL_WORDS["problem"]  # the level in words, not only a colour
    assert light.icon.level == "problem"
    assert "nearly the same image" in light.toolTip() and "step 150" in light.toolTip()
    assert "stable again" in strip.lights["divergence"].toolTip()

    strip.add_finding(finding("overpowering", "ok", 300, "Evenly matched again."))
    assert strip.levels()["overpowering"] == "ok" and strip.lights["overpowering"].level_label.text() == "OK"


def test_panel_lists_open_findings_worst_first_with_a_chart_and_fix_buttons(qtbot, tmp_path):
    panel = FindingsPanel(DETECTOR_LABELS)
    qtbot.addWidget(panel)
    assert panel.empty_label.isVisibleTo(panel) and panel.empty_label.text() == EMPTY_TEXT
    series = {"d_confidence": [[10, 0.2], [20, 0.6], [30, 0.93]], "loss_g": [[10, 0.7], [20, 1.4], [30, 2.5]]}
    panel.set_findings(
        [
            finding("overpowering", "warning", 30, fixes=[LOWER], confidence=0.93, series=series),
            finding("collapse", "problem", 40),
            finding("divergence", "warning", 20),
            finding("divergence", "ok", 50),
        ],
        tmp_path,
    )
    assert [c.finding.detector for c in panel.cards] == ["collapse", "overpowering"]  # cleared ones drop out
    card = panel.card_for("overpowering")
    assert sorted(card.charts) == ["d_confidence", "loss_g"]
    xs, ys = card.charts["loss_g"].getPlotItem().listDataItems()[0].getData()
    assert list(xs) == [10, 20, 30] and list(ys) == [0.7, 1.4, 2.5]
    assert [b.text() for b in card.fix_buttons] == [LOWER.label]
    with qtbot.waitSignal(panel.sig_fix, timeout=5_000) as clicked:
        qtbot.mouseClick(card.fix_buttons[0], LEFT)
    assert clicked.args[0].detector == "overpowering" and clicked.args[1] == LOWER

    panel.show()
    old_cards = list(panel.cards)
    panel.set_findings([finding("collapse", "warning", 10), finding("collapse", "ok", 60)], tmp_path)
    assert not panel.cards and panel.empty_label.text() == f"{EMPTY_TEXT} (1 earlier finding cleared)"
    # gone from the screen at once, not when Qt gets round to deleting them (a grab showed them before)
    assert not any(c.isVisible() for c in old_cards)


def test_copying_finding_shows_its_two_images_and_refuses_paths_outside_the_run(qtbot, tmp_path):
    run = tmp_path / "run"
    (run / "health").mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(run / "health" / "mem-000200-0-gen.png")
    Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(run / "health" / "mem-000200-0-real.png")
    outside = tmp_path / "secret.png"  # a real image beside the run: a finding must not make us open it
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(outside)
    pairs = [
        {"generated": "health/mem-000200-0-gen.png", "neighbour": "health/mem-000200-0-real.png", "distance": 0.01},
        {"generated": "../secret.png", "neighbour": str(outside), "distance": 0.02},
    ]
    append_finding(run, finding("memorization", "warning", 200, "Near-copies.", pairs=pairs, near_copy_share=0.6))
    panel = FindingsPanel(DETECTOR_LABELS)
    qtbot.addWidget(panel)
    panel.set_findings(read_health(run), run)

    card = panel.card_for("memorization")
    generated, neighbour = card.pair_labels[0]
    assert not generated.pixmap().isNull() and not neighbour.pixmap().isNull()
    assert generated.toolTip().endswith("mem-000200-0-gen.png") and neighbour.toolTip().endswith("-real.png")
    escaping = card.pair_labels[1]
    assert all(label.pixmap().isNull() and "refused" in label.text() for label in escaping)
    assert card.refused == ["../secret.png", str(outside)]


def test_a_real_divergence_lights_the_strip_live_and_its_fix_stops_and_resumes_the_run(
    window, qtbot, project, art_folder
):
    """An absurd learning rate (1.0) makes the doctor flag divergence within tens of steps while the run
    trains; its fix stops the run, resumes it with the lower rates, and the optimizers get them."""
    page = window.train_page
    page.refresh_datasets(select=import_and_attest(project, art_folder))
    make_tiny(page, steps=1_000_000, lr_g=1.0, lr_d=1.0, preview_every=0, checkpoint_every=100_000)
    assert page.start()
    run = page.run_dir
    qtbot.waitUntil(lambda: page.health_strip.levels()["divergence"] != "ok", timeout=120_000)
    assert page.is_running()
    live = [f for f in read_health(run) if f.detector == "divergence"][-1]  # the trainer wrote what the strip shows
    assert page.health_strip.lights["divergence"].level == live.level
    card = page.findings_panel.card_for("divergence")
    lower = next(i for i, f in enumerate(card.finding.fixes) if f.settings.keys() == {"lr_g", "lr_d"})
    wanted = card.finding.fixes[lower].settings

    qtbot.mouseClick(card.fix_buttons[lower], LEFT)
    dialog = page.fix_dialog
    assert dialog.windowTitle() == card.finding.fixes[lower].label and "Stop and resume" in dialog.heading.text()
    assert [dialog.table.item(r, 2).text() for r in range(dialog.table.rowCount())] == [
        f"{wanted['lr_g']:.4g}",
        f"{wanted['lr_d']:.4g}",
    ]
    qtbot.mouseClick(dialog.ok_button, LEFT)
    qtbot.waitUntil(lambda: "Learning rates changed on resume" in page.log.toPlainText(), timeout=60_000)
    assert page.is_running() and page.run_dir == run
    stopped_at = load_checkpoint(list_checkpoints(run)[0])  # the checkpoint the fix's stop wrote
    qtbot.waitUntil(lambda: page.latest_stats.get("step", 0) > stopped_at["step"], timeout=60_000)
    with qtbot.waitSignal(page.sig_running_changed, timeout=60_000, check_params_cb=lambda running: not running):
        page.stop()

    config = read_run_config(run)
    assert (config.lr_g, config.lr_d) == (wanted["lr_g"], wanted["lr_d"])
    resumed = load_checkpoint(latest_checkpoint(run))
    assert resumed["step"] > stopped_at["step"]
    for key, name in (("G", "lr_g"), ("D", "lr_d")):
        # scaled by new / old setting: a NaN roll-back's earlier cut of the rate is kept
        before = stopped_at["family_state"]["optimizers"][key]["param_groups"][0]["lr"]
        after = resumed["family_state"]["optimizers"][key]["param_groups"][0]["lr"]
        assert after == pytest.approx(before * wanted[name] / 1.0)


def _show_run_with(window, run, *findings):
    for f in findings:
        append_finding(run, f)
    page = window.train_page
    window.show_page("train")
    page.refresh_runs(select=run)
    assert page.findings_panel.run_dir == run
    return page


def test_a_resume_fix_shows_the_changes_then_resumes_with_them(window, qtbot, project, art_folder):
    run = train_tiny_run(project, art_folder, "fixme", lr_g=2e-4, lr_d=4e-4, checkpoint_every=1000)
    before = read_run_config(run)
    problem = finding("divergence", "warning", TINY_STEPS, "Training is unstable.", [LOWER])
    page = _show_run_with(window, run, problem)
    assert page.health_strip.levels()["divergence"] == "warning"
    card = page.findings_panel.card_for("divergence")

    # Cancel first: nothing starts, nothing changes.
    qtbot.mouseClick(card.fix_buttons[0], LEFT)
    dialog = page.fix_dialog
    assert dialog is not None and dialog.isVisible()
    rows = [[dialog.table.item(r, c).text() for c in range(3)] for r in range(dialog.table.rowCount())]
    assert rows == [
        ["Generator learning rate", "0.0002", "0.0001"],
        ["Discriminator learning rate", "0.0004", "0.0001"],
    ]
    assert dialog.until() == TINY_STEPS + 100  # a finished run goes on for another stretch; the user may change it
    qtbot.mouseClick(dialog.cancel_button, LEFT)
    assert not page.is_running() and read_run_config(run) == before

    qtbot.mouseClick(page.findings_panel.card_for("divergence").fix_buttons[0], LEFT)
    page.fix_dialog.until_spin.setValue(TINY_STEPS + 2)
    with qtbot.waitSignal(page.sig_running_changed, timeout=60_000, check_params_cb=lambda r: not r):
        qtbot.mouseClick(page.fix_dialog.ok_button, LEFT)
    assert page.result is not None and not page.result.stopped and page.result.step == TINY_STEPS + 2
    config = read_run_config(run)
    assert (config.lr_g, config.lr_d) == (1e-4, 1e-4)
    assert {k: v for k, v in config.to_dict().items() if k not in ("lr_g", "lr_d", "steps")} == {
        k: v for k, v in before.to_dict().items() if k not in ("lr_g", "lr_d", "steps")
    }
    state = load_checkpoint(latest_checkpoint(run))
    assert state["step"] == page.result.step
    optimizers = state["family_state"]["optimizers"]  # the new rates reached the resumed optimizers
    assert [g["lr"] for g in optimizers["G"]["param_groups"]] == [1e-4]
    assert [g["lr"] for g in optimizers["D"]["param_groups"]] == [1e-4]
    assert "Learning rates changed on resume" in page.log.toPlainText()


def test_stop_fix_names_the_checkpoint_to_keep_and_family_fix_prefills(window, qtbot, project, art_folder):
    run = train_tiny_run(project, art_folder, "copies", checkpoint_every=2)  # checkpoints at steps 2, 4, 6
    keep = Fix("Stop and keep an earlier checkpoint (before step 5)", {}, "stop")
    family = Fix("Start a new run with FastGAN (built for small folders)", {"family": "fastgan"}, "family")
    page = _show_run_with(window, run, finding("memorization", "warning", 5, "Near-copies.", [keep, family]))
    card = page.findings_panel.card_for("memorization")

    qtbot.mouseClick(card.fix_buttons[0], LEFT)
    assert not page.is_running()
    assert "step-000004.pt" in card.outcome_label.text() and card.outcome_label.isVisibleTo(card)

    page.family_combo.setCurrentIndex(page.family_combo.findData("dcgan"))
    qtbot.mouseClick(page.findings_panel.card_for("memorization").fix_buttons[1], LEFT)
    assert page.family() == "fastgan" and not page.is_running()
    assert str(page.dataset_dir()) == read_run_config(run).dataset and "press Start" in card.outcome_label.text()
