"""The W-space graphs of a style-based export: OUT-mapping.onnx (z, truncation, labels -> ws) and
OUT-synthesis.onnx (ws -> image) beside OUT.onnx, their parity, card, and that nothing else mistakes
them for generators."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch

from engine.cli import main as cli_main
from engine.errors import CheckpointError, ConfigError
from engine.export import OrtRunner, export_onnx, find_export, model_exports
from engine.export.onnx_export import ExportError, w_graph_paths
from engine.families import get_family
from engine.families.base import ModelSpec
from engine.runs import TrainConfig
from engine.runs.checkpoint import save_checkpoint
from studio.models import list_exports

RESOLUTION = 16  # stylegan2's smallest: 6 ws, a few seconds per graph on a CPU


def _checkpoint(path, family: str = "stylegan2", classes: int = 0, seed: int = 0):
    """A checkpoint of an untrained tiny model; for stylegan2 with nonzero noise and a nonzero w_avg, so the
    stored noise buffers and the truncation centre both show in the outputs."""
    cls = get_family(family)
    cfg = TrainConfig(dataset="unused", family=family, family_options=dict(cls.tiny_options), batch_size=4)
    torch.manual_seed(seed)
    fam = cls(ModelSpec(max(RESOLUTION, cls.min_resolution), 3, classes), cfg, torch.device("cpu"))
    if family == "stylegan2":
        G = fam.modules["G_ema"]
        with torch.no_grad():
            for layer in G.synthesis.layers:
                layer.noise_strength.fill_(0.5)
            G.mapping.w_avg.copy_(torch.randn_like(G.mapping.w_avg))
    save_checkpoint(
        path,
        {
            "family": family,
            "spec": vars(fam.spec),
            "classes": [f"c{i}" for i in range(classes)],
            "config": fam.train.to_dict(),
            "step": 1,
            "family_state": fam.state_dict(),
            "dataset_fingerprint": "f" * 64,
            "attestation_id": "a" * 32,
        },
    )
    return path, fam


def _session(path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _inputs(batch: int, latent_dim: int, classes: int, psi: float, seed: int = 5) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feed = {
        "z": rng.standard_normal((batch, latent_dim)).astype(np.float32),
        "truncation": np.full(batch, psi, dtype=np.float32),
    }
    if classes:
        feed["labels"] = rng.integers(0, classes, batch).astype(np.int64)
    return feed


@pytest.fixture(scope="module")
def conditional(tmp_path_factory):
    """A conditional tiny stylegan2 exported once in fp32: (result, family, folder)."""
    tmp = tmp_path_factory.mktemp("wgraphs")
    (tmp / "checkpoints").mkdir()  # laid out as a run folder, for find_export and the Models page list
    ckpt, fam = _checkpoint(tmp / "checkpoints" / "step-000001.pt", classes=2)
    return export_onnx(ckpt, tmp / "exports" / "g.onnx"), fam, tmp


def test_both_graphs_are_written_with_their_names_shapes_and_metadata(conditional):
    result, fam, _ = conditional
    paths = w_graph_paths(result.path)
    assert [g.name for g in result.graphs] == ["mapping", "synthesis"]
    assert [g.path for g in result.graphs] == [paths["mapping"], paths["synthesis"]]
    assert all(g.max_abs_error <= g.bound == 1e-4 for g in result.graphs)
    G = fam.modules["G_ema"]
    num_ws, w_dim = G.synthesis.num_ws, G.mapping.w_avg.shape[0]

    mapping = _session(paths["mapping"])
    assert [i.name for i in mapping.get_inputs()] == ["z", "truncation", "labels"]
    assert [o.name for o in mapping.get_outputs()] == ["ws"]
    for batch in (1, 3):  # dynamic batch
        ws = mapping.run(["ws"], _inputs(batch, fam.latent_dim, 2, 0.7))[0]
        assert ws.shape == (batch, num_ws, w_dim) and ws.dtype == np.float32

    synthesis = _session(paths["synthesis"])
    assert [i.name for i in synthesis.get_inputs()] == ["ws"]
    assert [o.name for o in synthesis.get_outputs()] == ["image"]
    image = synthesis.run(["image"], {"ws": np.zeros((4, num_ws, w_dim), np.float32)})[0]
    assert image.shape == (4, 3, RESOLUTION, RESOLUTION)

    for name, session in (("mapping", mapping), ("synthesis", synthesis)):
        meta = session.get_modelmeta().custom_metadata_map
        assert meta["gan_studio.kind"] == name and meta["gan_studio.export"] == "g.onnx"
        assert (meta["gan_studio.num_ws"], meta["gan_studio.w_dim"]) == (str(num_ws), str(w_dim))
        assert meta["gan_studio.family"] == "stylegan2" and meta["gan_studio.precision"] == "fp32"


def test_mapping_then_synthesis_equals_the_full_graph(conditional):
    result, fam, _ = conditional
    paths = w_graph_paths(result.path)
    full, mapping, synthesis = _session(result.path), _session(paths["mapping"]), _session(paths["synthesis"])
    for psi in (1.0, 0.5):
        feed = _inputs(4, fam.latent_dim, 2, psi)
        expected = full.run(["image"], feed)[0]
        got = synthesis.run(["image"], {"ws": mapping.run(["ws"], feed)[0]})[0]
        assert np.abs(got - expected).max() <= 1e-4, psi
    # and both halves match PyTorch, whose eval synthesis uses the stored noise buffers
    G = fam.modules["G_ema"].eval()
    feed = _inputs(3, fam.latent_dim, 2, 0.8)
    with torch.no_grad():
        ws = G.mapping(
            torch.from_numpy(feed["z"]), torch.from_numpy(feed["labels"]), torch.from_numpy(feed["truncation"])
        )
        image = G.synthesis(ws, "const").clamp(-1, 1)
        no_noise = G.synthesis(ws, "none").clamp(-1, 1)
    assert np.abs(mapping.run(["ws"], feed)[0] - ws.numpy()).max() <= 1e-4
    got = synthesis.run(["image"], {"ws": ws.numpy()})[0]
    assert np.abs(got - image.numpy()).max() <= 1e-4
    assert np.abs(got - no_noise.numpy()).max() > 1e-2  # the noise really is in the graph


def test_truncation_zero_gives_w_avg_for_every_layer(conditional):
    result, fam, _ = conditional
    w_avg = fam.modules["G_ema"].mapping.w_avg.numpy()
    assert np.abs(w_avg).max() > 0.1  # the fixture's w_avg is not the zero it starts at
    ws = _session(w_graph_paths(result.path)["mapping"]).run(["ws"], _inputs(3, fam.latent_dim, 2, 0.0))[0]
    assert np.abs(ws - np.broadcast_to(w_avg, ws.shape)).max() <= 1e-5


def test_model_card_and_result_list_the_graphs(conditional):
    result, _, _ = conditional
    card = json.loads(result.card_path.read_text())
    assert set(card["graphs"]) == {"mapping", "synthesis"}
    mapping, synthesis = card["graphs"]["mapping"], card["graphs"]["synthesis"]
    assert mapping["file"] == "g-mapping.onnx" and synthesis["file"] == "g-synthesis.onnx"
    assert set(mapping["inputs"]) == {"z", "truncation", "labels"} and set(mapping["outputs"]) == {"ws"}
    assert set(synthesis["inputs"]) == {"ws"} and set(synthesis["outputs"]) == {"image"}
    assert synthesis["parity"]["max_abs_error"] == result.graphs[1].max_abs_error <= synthesis["parity"]["bound"]
    data = result.to_dict()
    assert [g["path"] for g in data["graphs"]] == [str(g.path) for g in result.graphs]
    json.dumps(data)  # JSON-able, as the CLI's --json prints it


def test_sub_graphs_are_never_taken_for_generators(conditional):
    result, _, folder = conditional
    exports = result.path.parent
    assert model_exports(exports) == [result.path]
    (folder / "exports" / "g.onnx").touch()  # mtime order must not matter either
    for path in w_graph_paths(result.path).values():
        path.touch()  # the sub-graphs are now the newest files of the folder
    assert find_export(folder) == result.path  # a run folder: its exports/ folder
    assert [info.path for info in list_exports(folder)] == [result.path]
    mapping = w_graph_paths(result.path)["mapping"]
    with pytest.raises(CheckpointError, match="mapping graph of a style-based export.*open g.onnx"):
        OrtRunner(mapping)
    assert OrtRunner(result.path).truncates_in_w


def test_fp16_unconditional_graphs_within_their_bound(tmp_path):
    ckpt, fam = _checkpoint(tmp_path / "step-000001.pt", seed=1)
    result = export_onnx(ckpt, tmp_path / "half.onnx", fp16=True)
    assert [g.name for g in result.graphs] == ["mapping", "synthesis"]
    assert all(0 < g.max_abs_error <= g.bound == 2e-2 for g in result.graphs)
    mapping = _session(w_graph_paths(result.path)["mapping"])
    assert [i.name for i in mapping.get_inputs()] == ["z", "truncation"]  # no labels without classes
    feed = _inputs(2, fam.latent_dim, 0, 0.7)
    G = fam.modules["G_ema"].eval()
    with torch.no_grad():
        ws = G.mapping(torch.from_numpy(feed["z"]), None, torch.from_numpy(feed["truncation"]))
    assert np.abs(mapping.run(["ws"], feed)[0] - ws.numpy()).max() <= 2e-2


def test_families_without_w_write_none(tmp_path):
    ckpt, _ = _checkpoint(tmp_path / "dcgan.pt", family="dcgan")
    result = export_onnx(ckpt, tmp_path / "d.onnx")
    assert result.graphs == [] and "graphs" not in json.loads(result.card_path.read_text())
    assert sorted(p.name for p in tmp_path.glob("*.onnx")) == ["d.onnx"]
    with pytest.raises(ConfigError, match="no mapping and synthesis networks"):
        export_onnx(ckpt, tmp_path / "d2.onnx", w_graphs=True)


def test_a_failed_sub_graph_parity_writes_nothing(tmp_path, monkeypatch):
    import engine.export.onnx_export as mod

    ckpt, _ = _checkpoint(tmp_path / "step-000001.pt")
    real_parity = mod._parity

    def broken_synthesis(subject, model_bytes):
        worst, psnr = real_parity(subject, model_bytes)
        return (0.5, 6.0) if subject.metadata["gan_studio.kind"] == "synthesis" else (worst, psnr)

    monkeypatch.setattr(mod, "_parity", broken_synthesis)
    out = tmp_path / "exports" / "g.onnx"
    with pytest.raises(ExportError, match=r"synthesis graph of .* max abs error 0.5 > 0.0001"):
        export_onnx(ckpt, out)
    assert not out.parent.exists() or not any(out.parent.iterdir())


def test_cli_names_the_extra_files_and_no_w_graphs_writes_none(tmp_path, capsys):
    ckpt, _ = _checkpoint(tmp_path / "step-000001.pt")
    argv = ["export", str(tmp_path), "--checkpoint", str(ckpt), "--out", str(tmp_path / "c.onnx")]
    assert cli_main(argv) == 0
    text = capsys.readouterr().out
    assert "mapping graph" in text and "c-mapping.onnx" in text and "c-synthesis.onnx" in text
    assert {p.name for p in tmp_path.glob("*.onnx")} == {"c.onnx", "c-mapping.onnx", "c-synthesis.onnx"}
    # the same target again without them (w_graphs=False): the old halves, which no longer match, go too
    assert cli_main([*argv, "--no-w-graphs", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["graphs"] == [] and "graphs" not in json.loads((tmp_path / "c.json").read_text())
    assert [p.name for p in tmp_path.glob("*.onnx")] == ["c.onnx"]
