"""The consent dialog on a dataset with a flagged face: it shows the image with its box, and records
"no identifiable person" only after the flagged images were ticked as looked at."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image
from PySide6.QtCore import Qt

from engine.consent import require_attestation
from engine.data import import_folder
from studio.widgets.consent_dialog import ConsentDialog, consent_status, flagged_thumbnails

LEFT = Qt.MouseButton.LeftButton


@pytest.fixture
def faces_dataset(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    Image.fromarray(skimage.data.astronaut()).save(src / "astronaut.png")
    rng = np.random.default_rng(3)
    for k in range(3):
        blocks = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
        Image.fromarray(blocks).resize((48, 48), Image.Resampling.NEAREST).save(src / f"pattern{k}.png")
    out = tmp_path / "dataset"
    report = import_folder(src, out, size=32)
    assert list(report.faces) == ["astronaut.png"]
    return out


def test_flagged_image_is_shown_with_its_box(faces_dataset: Path) -> None:
    ((rel, thumb),) = flagged_thumbnails(faces_dataset, {"astronaut.png": [[178, 69, 92, 92]]}, 112, 10)
    assert rel == "astronaut.png" and thumb is not None and thumb.shape == (112, 112, 3)
    box_colour = np.all(thumb == (255, 196, 0), axis=-1)
    ys, xs = np.nonzero(box_colour)
    assert box_colour.sum() > 40  # the outline is drawn, around the face (178..270 of 512 -> 39..59 of 112)
    assert 35 <= xs.min() <= 42 and 56 <= xs.max() <= 62 and 12 <= ys.min() <= 18


def test_none_needs_the_review_tick_consented_does_not(qtbot, faces_dataset: Path) -> None:
    dialog = ConsentDialog(faces_dataset)
    qtbot.addWidget(dialog)
    assert dialog.face_list.count() == 1
    assert not dialog.face_list.item(0).icon().isNull()
    assert dialog.face_list.item(0).text() == "astronaut.png"

    dialog.set_choices("own", "none", "Tester")
    assert dialog.needs_face_review and not dialog.record_button.isEnabled()
    dialog.faces_reviewed.setChecked(True)
    assert dialog.record_button.isEnabled()
    dialog.set_choices("own", "consented", "Tester")
    assert not dialog.faces_reviewed.isEnabled() and dialog.record_button.isEnabled()

    dialog.set_choices("own", "none", "Tester")
    qtbot.mouseClick(dialog.record_button, LEFT)
    assert dialog.attestation is not None and dialog.attestation.faces_reviewed and dialog.attestation.faces == 1
    assert require_attestation(faces_dataset).id == dialog.attestation.id
    ok, text = consent_status(faces_dataset)
    assert ok and "people: none" in text


def test_status_line_explains_an_old_none_on_flagged_faces(qtbot, faces_dataset: Path) -> None:
    import json

    from engine.consent import attest, consent_path

    attest(faces_dataset, rights="own", people="consented", attested_by="Tester")
    data = json.loads(consent_path(faces_dataset).read_text())
    data["attestations"][-1]["people"] = "none"  # as written before faces were looked for
    consent_path(faces_dataset).write_text(json.dumps(data))
    ok, text = consent_status(faces_dataset)
    assert not ok and "may show a face" in text and "tick" in text
