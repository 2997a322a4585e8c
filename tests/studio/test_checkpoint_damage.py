"""A run whose newest checkpoint is damaged, on real widgets: the Generate page loads the newest good
checkpoint and says so on its model line; the Models page names an export after the checkpoint it uses."""

from __future__ import annotations

from pathlib import Path

from engine.runs.checkpoint import checkpoint_path
from studio.models import export_path
from studio.pages.generate import PAGE_SIZE

from .conftest import train_tiny_run


def _flip_middle_bit(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))  # deliberately in place: this is the damage


def test_generate_page_uses_the_newest_good_checkpoint_and_says_so(window, qtbot, project, art_folder):
    run = train_tiny_run(project, art_folder, "dcgan-damaged", preview_every=0, checkpoint_every=2)
    _flip_middle_bit(checkpoint_path(run, 6))

    gen = window.generate_page
    gen.refresh_runs()
    window.show_page("generate")
    qtbot.waitUntil(lambda: gen.model is not None and gen.gallery.count() == PAGE_SIZE, timeout=60_000)
    text = gen.model_label.text()
    assert "step 4" in text
    assert (
        "checkpoints/step-000006.pt is damaged (checksum mismatch); renamed to step-000006.pt.damaged; "
        "using step-000004.pt"
    ) in text
    assert (run / "checkpoints" / "step-000006.pt.damaged").is_file()

    # The Models page's default export name follows the checkpoint the export will really use.
    _flip_middle_bit(checkpoint_path(run, 4))
    notes: list[str] = []
    assert export_path(run, fp16=False, on_note=notes.append).name == "generator-step-000002.onnx"
    assert notes == [
        "checkpoints/step-000004.pt is damaged (checksum mismatch); renamed to step-000004.pt.damaged; "
        "using step-000002.pt"
    ]
