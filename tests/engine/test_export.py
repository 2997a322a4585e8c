"""ONNX export: metadata, model card, fp16 bound, failures, and bad model files."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch
from PIL import Image

from engine.errors import CheckpointError, ConfigError, DeviceError
from engine.export import OrtRunner, export_onnx, open_runner
from engine.export.onnx_export import ExportError
from engine.inference import TorchRunner
from engine.provenance.stamp import provenance_for
from engine.training import Trainer

from .helpers import make_dataset, tiny_config


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("export")
    dataset = make_dataset(tmp)
    Trainer(tiny_config(dataset, steps=2), run_dir=tmp / "run").run()
    return tmp / "run"


def test_export_writes_metadata_and_card(run_dir, tmp_path):
    result = export_onnx(run_dir, tmp_path / "model.onnx")
    model = onnx.load(str(tmp_path / "model.onnx"))
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["gan_studio.family"] == "dcgan" and meta["gan_studio.resolution"] == "32"
    assert json.loads(meta["gan_studio.classes"]) == ["circles", "squares"]
    assert len(meta["gan_studio.dataset_fingerprint"]) == 64 and meta["gan_studio.attestation_id"]
    assert meta["gan_studio.value_range"] == "[-1, 1]"
    card = json.loads(result.card_path.read_text())
    assert card["parity"]["max_abs_error"] == result.max_abs_error <= 1e-4
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert isinstance(dims[0], str) and dims[1] == 16  # dynamic batch, fixed latent size


def test_fp16_export_within_documented_bound(run_dir, tmp_path):
    result = export_onnx(run_dir, tmp_path / "half.onnx", fp16=True)
    assert result.precision == "fp16" and 0 < result.max_abs_error <= result.bound
    full = export_onnx(run_dir, tmp_path / "full.onnx").path
    # The weights halve; the graph itself (ops, metadata, card) does not, and in a model this tiny it
    # is a large part of the file, so compare the stored weights.
    assert _weight_bytes(tmp_path / "half.onnx") < 0.55 * _weight_bytes(full)


def _weight_bytes(path) -> int:
    """Bytes of the graph's stored weights (initializers), whatever their type."""
    model = onnx.load(str(path))
    return sum(onnx.numpy_helper.to_array(t).nbytes for t in model.graph.initializer)


def test_failed_parity_fails_the_export_and_writes_nothing(run_dir, tmp_path, monkeypatch):
    import engine.export.onnx_export as mod

    monkeypatch.setattr(mod, "PARITY_BOUND", {"fp32": 0.0, "fp16": 0.0})
    monkeypatch.setattr(mod, "_parity", lambda *a: (0.5, 12.0))
    with pytest.raises(ExportError, match=r"max abs error 0.5 > 0"):
        export_onnx(run_dir, tmp_path / "bad.onnx")
    assert not (tmp_path / "bad.onnx").exists()


def test_export_target_must_be_onnx(run_dir, tmp_path):
    with pytest.raises(ConfigError, match=".onnx"):
        export_onnx(run_dir, tmp_path / "model.bin")


def test_runners_share_interface_and_open_runner_prefers_current_export(run_dir, tmp_path):
    torch_runner = open_runner(run_dir)
    assert isinstance(torch_runner, TorchRunner)  # no export yet
    export_onnx(run_dir, run_dir / "exports" / "generator.onnx")
    ort_runner = open_runner(run_dir)
    assert isinstance(ort_runner, OrtRunner) and ort_runner.provider == "CPUExecutionProvider"
    for attr in ("family_name", "resolution", "channels", "classes", "latent_dim"):
        assert getattr(ort_runner, attr) == getattr(torch_runner, attr), attr
    assert ort_runner.identity.card_id == torch_runner.identity.card_id  # the export names the checkpoint
    z = np.random.default_rng(0).standard_normal((4, torch_runner.latent_dim)).astype(np.float32)
    labels = np.array([0, 1, 1, 0])
    # the export's graph marks its images; PyTorch's images are marked when they are written: the same mark
    stamp = provenance_for(torch_runner.identity, "generate")
    marked = np.stack([stamp.mark(image) for image in torch_runner(z, labels)])
    assert np.abs(ort_runner(z, labels).astype(int) - marked).max() <= 2


def test_export_marks_in_its_graph_and_writers_do_not_mark_twice(run_dir, tmp_path):
    from engine.inference.export_images import save_images
    from engine.provenance.watermark import embed

    result = export_onnx(run_dir, tmp_path / "g.onnx")
    card = json.loads(result.card_path.read_text())
    assert card["watermark"]["in_graph"] is True
    ort_runner = OrtRunner(tmp_path / "g.onnx")
    stamp = provenance_for(ort_runner.identity, "generate")
    assert stamp.premarked and stamp.payload == int(card["watermark"]["payload"], 16)
    raw = ort_runner.generate([3])[0]
    (path,) = save_images(ort_runner, [3], tmp_path / "out")
    written = np.asarray(Image.open(path).convert("RGB"))
    assert np.array_equal(written, raw)  # not marked a second time
    # the graph's mark is this model's payload: the PyTorch image marked with it, within float noise (a
    # detect() on these 32 px images would depend on the random install and card ids: 32 px is below the
    # sizes the watermark is specified for, see docs/provenance.md)
    torch_image = TorchRunner(run_dir).generate([3])[0]
    assert np.abs(written.astype(int) - embed(torch_image, stamp.payload)).max() <= 2
    assert np.abs(written.astype(int) - torch_image).max() > 0  # and it is there at all


def test_corrupt_and_foreign_onnx_files_are_named(tmp_path):
    (tmp_path / "junk.onnx").write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match="junk.onnx is not a readable ONNX model"):
        OrtRunner(tmp_path / "junk.onnx")
    foreign = torch.nn.Linear(3, 2)
    torch.onnx.export(foreign, (torch.randn(1, 3),), str(tmp_path / "foreign.onnx"), dynamo=False)
    with pytest.raises(CheckpointError, match="not a GAN Studio generator export"):
        OrtRunner(tmp_path / "foreign.onnx")
    with pytest.raises(CheckpointError, match="does not exist"):
        OrtRunner(tmp_path / "missing.onnx")


def test_model_with_wrong_inputs_is_refused(run_dir, tmp_path):
    export_onnx(run_dir, tmp_path / "m.onnx")
    model = onnx.load(str(tmp_path / "m.onnx"))
    model.graph.input[0].name = "latent"
    for node in model.graph.node:
        node.input[:] = ["latent" if i == "z" else i for i in node.input]
    onnx.save(model, str(tmp_path / "renamed.onnx"))
    with pytest.raises(CheckpointError, match=r"expected \['z', 'labels'\]"):
        OrtRunner(tmp_path / "renamed.onnx")


def test_missing_provider_is_reported(run_dir, tmp_path):
    export_onnx(run_dir, tmp_path / "m.onnx")
    with pytest.raises(DeviceError, match="NoSuchExecutionProvider"):
        OrtRunner(tmp_path / "m.onnx", providers=["NoSuchExecutionProvider"])
    runner = OrtRunner(tmp_path / "m.onnx", providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert runner.provider in ("CUDAExecutionProvider", "CPUExecutionProvider")
    if runner.provider == "CPUExecutionProvider":
        assert runner.notes, "falling back from CUDA must be reported"
