"""onnxruntime providers: TensorRT -> CUDA -> CPU when the build has them, TensorRT's options, and a GPU
provider that cannot start falling through to the CPU with a note that names it.

The machine running the tests has the CPU build: the GPU providers are made to look available by
monkeypatching ``get_available_providers``, and ``InferenceSession`` is wrapped so that sessions asking
for a GPU provider fail (or quietly run on the CPU, as onnxruntime does when a provider's libraries are
missing) while the model itself really runs on the CPU provider.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from engine.export.open import open_upscaler
from engine.export.ort_runner import SESSIONS, OrtUpscaler, default_providers, tensorrt_cache_dir

TRT, CUDA, CPU = "TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"
REAL_SESSION = ort.InferenceSession


def write_doubling_graph(path) -> None:
    """A real, tiny ONNX upscaler: nearest-neighbour x2 of (batch, 3, height, width), dynamic sizes."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, "h", "w"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3, "h2", "w2"])
    scales = helper.make_tensor("scales", TensorProto.FLOAT, [4], [1.0, 1.0, 2.0, 2.0])
    node = helper.make_node("Resize", ["x", "", "scales"], ["y"], mode="nearest")
    graph = helper.make_graph([node], "double", [x], [y], initializer=[scales])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


@pytest.fixture
def model(tmp_path, monkeypatch):
    monkeypatch.setattr("platformdirs.user_cache_dir", lambda *a, **k: str(tmp_path / "cache"))
    SESSIONS.clear()
    write_doubling_graph(tmp_path / "double.onnx")
    yield tmp_path / "double.onnx"
    SESSIONS.clear()


def pretend_available(monkeypatch, names: list[str]) -> None:
    monkeypatch.setattr(ort, "get_available_providers", lambda: list(names))


def wrap_sessions(monkeypatch, failing: set[str], quietly: bool = False) -> list[list]:
    """InferenceSession that fails (or, ``quietly``, drops the provider as onnxruntime does when its
    libraries are missing) whenever the first provider asked for is in ``failing``; returns the
    provider lists every call asked for."""
    asked: list[list] = []

    def session(path, options=None, providers=None, **kw):
        asked.append(list(providers))
        names = [p[0] if isinstance(p, tuple) else p for p in providers]
        if names[0] in failing and not quietly:
            raise RuntimeError(f"{names[0]}: libcudnn.so.9: cannot open shared object file\nmore details")
        # what the real CPU build can run: the CPU provider alone
        return REAL_SESSION(path, options, providers=[CPU], **kw)

    monkeypatch.setattr(ort, "InferenceSession", session)
    return asked


@pytest.mark.parametrize(
    ("available", "expected"),
    [
        ([TRT, CUDA, CPU], (TRT, CUDA, CPU)),
        ([CPU, CUDA, TRT, "AzureExecutionProvider"], (TRT, CUDA, CPU)),  # our order, not the build's
        (["CUDAExecutionProvider", "AzureExecutionProvider", CPU], (CUDA, CPU)),
        (["AzureExecutionProvider", CPU], (CPU,)),
        ([], (CPU,)),
    ],
)
def test_default_order_keeps_what_the_build_has(monkeypatch, available, expected):
    pretend_available(monkeypatch, available)
    assert default_providers() == expected


def test_default_providers_are_used_when_none_are_named(model, monkeypatch):
    pretend_available(monkeypatch, [CUDA, CPU])
    asked = wrap_sessions(monkeypatch, failing=set())
    OrtUpscaler(model)
    assert asked[0] == [CUDA, CPU]
    assert open_upscaler(model, device="cpu").provider == CPU


def test_tensorrt_gets_its_cache_and_fp16(model, monkeypatch, tmp_path):
    pretend_available(monkeypatch, [TRT, CUDA, CPU])
    asked = wrap_sessions(monkeypatch, failing=set())
    OrtUpscaler(model)
    name, options = asked[0][0]
    assert name == TRT and asked[0][1:] == [CUDA, CPU]  # CUDA takes the nodes TensorRT cannot compile
    assert options["trt_fp16_enable"] is True and options["trt_engine_cache_enable"] is True
    assert options["trt_engine_cache_path"] == str(tensorrt_cache_dir()) == str(tmp_path / "cache" / "tensorrt")
    assert tensorrt_cache_dir().is_dir(), "the engine cache folder exists before TensorRT writes to it"


def test_gpu_providers_that_fail_to_start_fall_back_to_cpu_with_notes(model, monkeypatch):
    pretend_available(monkeypatch, [TRT, CUDA, CPU])
    asked = wrap_sessions(monkeypatch, failing={TRT, CUDA})
    up = OrtUpscaler(model)
    assert up.provider == CPU and up.backend == "onnxruntime CPUExecutionProvider"
    assert [[p[0] if isinstance(p, tuple) else p for p in chain] for chain in asked] == [
        [TRT, CUDA, CPU],
        [CUDA, CPU],
        [CPU],
    ]
    failed = [n for n in up.notes if "failed to start" in n]
    assert len(failed) == 2 and TRT in failed[0] and CUDA in failed[1]
    assert "libcudnn.so.9" in failed[0] and "more details" not in failed[0]  # the first line of the error
    out = up._forward(np.ones((1, 3, 4, 4), dtype=np.float32))
    assert out.shape == (1, 3, 8, 8), "the model really runs on the provider it fell back to"


def test_tensorrt_failing_falls_back_to_cuda(model, monkeypatch):
    pretend_available(monkeypatch, [TRT, CUDA, CPU])
    wrap_sessions(monkeypatch, failing={TRT})
    up = OrtUpscaler(model)
    # the wrapped session runs on the CPU, so CUDA is reported as dropped in turn
    assert any(TRT in n and "failed to start" in n for n in up.notes)
    assert any(n.startswith(CUDA) and "fell back to CPUExecutionProvider" in n for n in up.notes)


def test_a_provider_dropped_quietly_is_named(model, monkeypatch):
    pretend_available(monkeypatch, [TRT, CUDA, CPU])
    wrap_sessions(monkeypatch, failing={TRT, CUDA}, quietly=True)
    up = OrtUpscaler(model)
    assert up.provider == CPU
    assert [n.split()[0] for n in up.notes if "could not run this model" in n] == [TRT, CUDA]
    assert all("fell back to CPUExecutionProvider" in n for n in up.notes if "could not run" in n)
