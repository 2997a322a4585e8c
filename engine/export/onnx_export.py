"""Export a run's EMA generator to ONNX, check it, and prove it matches PyTorch.

Success is reported only after ``onnx.checker`` passes and onnxruntime reproduces the PyTorch output
on fixed random inputs within the bound of the chosen precision; otherwise the export fails with the
measured numbers and no file is left at the target path.

Three kinds of graph: a *generator* (latents z [+ class labels] -> image, dynamic batch), a
*translator* (input image -> image, dynamic batch, height and width; parity is checked at two
different sizes to prove the spatial axes really are dynamic) and an *upscaler* (an ``upscale``
run's network: [0, 1] image -> [0, 1] image ``scale`` times larger, dynamic batch, height and width,
parity at two sizes, one of them odd).

A generator with a style space (its family's ``export_modules()`` has ``mapping`` and ``synthesis``,
e.g. StyleGAN's W) also gets its two halves as graphs of their own beside the main one,
``OUT-mapping.onnx`` (z, truncation [, labels] -> ws) and ``OUT-synthesis.onnx`` (ws -> image), for work
in W (latent editing). Each passes the same checks; if any fails, none of the files is written.
"""

from __future__ import annotations

import copy
import json
import math
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import engine
from engine.errors import ConfigError, GanStudioError
from engine.families import get_family
from engine.fsutil import atomic_write_bytes, atomic_write_json
from engine.inference.torch_runner import TorchRunner
from engine.inference.translate import TorchTranslator
from engine.inference.upscale import TorchUpscaler
from engine.provenance.model_info import PAYLOAD_KEY
from engine.runs.checkpoint import open_checkpoint

ONNX_FORMAT_VERSION = 1
OPSET = 18
# fp32 must match PyTorch to 1e-4 (issue 4). fp16 weights and activations keep ~3 significant digits;
# on [-1, 1] images the measured worst case is a few 1e-3, so 2e-2 (about 2.5 grey levels of 255)
# flags real breakage without failing on rounding.
PARITY_BOUND = {"fp32": 1e-4, "fp16": 2e-2}
W_GRAPHS = ("mapping", "synthesis")
"""The style-space graphs written beside a generator export, in the order they run."""


class ExportError(GanStudioError):
    """The export or its parity check failed; the message carries the numbers."""


@dataclass
class GraphResult:
    """One extra graph written beside the main export (``mapping`` or ``synthesis``) and its parity."""

    name: str
    path: Path
    exporter: str
    max_abs_error: float
    psnr_db: float
    bound: float


@dataclass
class ExportResult:
    """Where the model went and how closely it matches PyTorch."""

    path: Path
    card_path: Path
    precision: str
    exporter: str
    max_abs_error: float
    psnr_db: float
    bound: float
    notes: list[str]
    graphs: list[GraphResult] = field(default_factory=list)
    """The style-space graphs written beside ``path`` (empty for families without them)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (paths as strings)."""
        data = asdict(self)
        data["path"], data["card_path"] = str(self.path), str(self.card_path)
        for graph in data["graphs"]:
            graph["path"] = str(graph["path"])
        return data


def w_graph_paths(out: Path | str) -> dict[str, Path]:
    """Where the style-space graphs of the export ``out`` go: ``OUT-mapping.onnx``, ``OUT-synthesis.onnx``."""
    out = Path(out)
    return {name: out.with_name(f"{out.stem}-{name}{out.suffix}") for name in W_GRAPHS}


def is_w_graph(path: Path | str) -> bool:
    """True for the mapping or synthesis graph of an export beside it (``X-mapping.onnx`` next to ``X.onnx``).

    Known by name and neighbour rather than by the file's metadata, so that listing a folder of exports
    never has to parse the models (an ONNX file is read whole to get at its metadata).
    """
    path = Path(path)
    for name in W_GRAPHS:
        suffix = f"-{name}"
        if path.stem.endswith(suffix) and path.with_name(path.stem[: -len(suffix)] + path.suffix).is_file():
            return True
    return False


def model_exports(folder: Path | str) -> list[Path]:
    """The .onnx files in ``folder`` that are models of their own (not another export's W-space graphs)."""
    return [p for p in sorted(Path(folder).glob("*.onnx")) if not is_w_graph(p)]


class _GeneratorGraph(nn.Module):
    """What the ONNX graph computes: latents (+ class indices) -> image in [-1, 1], float32 NCHW."""

    def __init__(self, generator: nn.Module, conditional: bool, fp16: bool) -> None:
        super().__init__()
        self.generator = copy.deepcopy(generator).half() if fp16 else generator
        self.conditional = conditional
        self.fp16 = fp16

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.fp16:
            z = z.half()
        image = self.generator(z, labels if self.conditional else None)
        return image.float().clamp(-1, 1)


class _TruncatingGeneratorGraph(_GeneratorGraph):
    """The graph of a generator that truncates in its own latent space (StyleGAN's W): a per-sample psi
    input, so the export draws the same images as PyTorch at any truncation."""

    def forward(  # type: ignore[override]  # the extra input comes second: labels stay optional
        self, z: torch.Tensor, truncation: torch.Tensor, labels: torch.Tensor | None = None
    ) -> torch.Tensor:
        if self.fp16:
            z, truncation = z.half(), truncation.half()
        image = self.generator(z, labels if self.conditional else None, truncation)
        return image.float().clamp(-1, 1)


class _WatermarkedGraph(nn.Module):
    """A generator graph whose images leave it watermarked (engine/provenance/watermark.py), so images made
    with the export outside the studio are marked too."""

    def __init__(self, graph: nn.Module, mark: nn.Module) -> None:
        super().__init__()
        self.graph, self.mark = graph, mark

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.mark(self.graph(*inputs))


def _graph_watermark(model: Any, height: int, width: int, channels: int) -> tuple[nn.Module | None, dict, dict]:
    """(the watermark layer or None, metadata, the card's ``watermark`` entry) for a fixed-size generator."""
    if not model.identity.watermark:
        return None, {}, {"in_graph": False, "why": "the run's watermark setting is off"}
    from engine.provenance import identity
    from engine.provenance.watermark import WatermarkLayer

    payload = identity.pack(identity.install_id(), identity.model_id(model.identity.card_id))
    layer = WatermarkLayer(payload, height, width, channels).eval()
    card = {"in_graph": True, "payload": f"{payload:012x}", "what": "every image the graph draws is marked"}
    return layer, {PAYLOAD_KEY: str(payload)}, card


_NOT_IN_GRAPH = {
    "in_graph": False,
    "why": "its images have any size, and the mark is laid out per size: GAN Studio marks the files it writes",
}


class _MappingGraph(nn.Module):
    """z, psi (+ class indices) -> ws float32 (N, num_ws, w_dim): the mapping network with truncation."""

    def __init__(self, mapping: nn.Module, conditional: bool, fp16: bool) -> None:
        super().__init__()
        self.mapping = copy.deepcopy(mapping).half() if fp16 else mapping
        self.conditional = conditional
        self.fp16 = fp16

    def forward(self, z: torch.Tensor, truncation: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.fp16:
            z, truncation = z.half(), truncation.half()
        return self.mapping(z, labels if self.conditional else None, truncation).float()


class _SynthesisGraph(nn.Module):
    """ws (N, num_ws, w_dim) -> image in [-1, 1], float32 NCHW.

    ``synthesis(ws)`` with its default arguments is what the eval-mode generator runs (for StyleGAN the
    stored 'const' noise buffers), so mapping then synthesis gives the main graph's image exactly.
    """

    def __init__(self, synthesis: nn.Module, fp16: bool) -> None:
        super().__init__()
        self.synthesis = copy.deepcopy(synthesis).half() if fp16 else synthesis
        self.fp16 = fp16

    def forward(self, ws: torch.Tensor) -> torch.Tensor:
        return self.synthesis(ws.half() if self.fp16 else ws).float().clamp(-1, 1)


class _TranslatorGraph(nn.Module):
    """What a translator graph computes: input image -> output image in [-1, 1], float32 NCHW."""

    def __init__(self, generator: nn.Module, fp16: bool) -> None:
        super().__init__()
        self.generator = copy.deepcopy(generator).half() if fp16 else generator
        self.fp16 = fp16

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.generator(x.half() if self.fp16 else x).float().clamp(-1, 1)


class _UpscalerGraph(nn.Module):
    """What an upscaler graph computes: image in [0, 1] -> image ``scale`` times larger in [0, 1], float32 NCHW."""

    def __init__(self, upscaler: nn.Module, fp16: bool) -> None:
        super().__init__()
        self.upscaler = copy.deepcopy(upscaler).half() if fp16 else upscaler
        self.fp16 = fp16

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.upscaler(x.half() if self.fp16 else x).float().clamp(0, 1)


@dataclass
class _Subject:
    """One model to export: its graph, fp32 reference, IO names, dynamic axes and parity inputs."""

    model: Any  # TorchRunner or TorchTranslator
    graph: nn.Module
    reference: nn.Module
    names: list[str]
    axes: dict[str, dict[int, str]]
    example: tuple[torch.Tensor, ...]
    parity_inputs: list[tuple[torch.Tensor, ...]]
    metadata: dict[str, str]
    card: dict[str, Any]
    output: str = "image"
    peak: float | None = 2.0
    """Peak-to-peak range for the PSNR: 2 for images in [-1, 1]; None = the reference output's own range."""
    value_range: tuple[float, float] = (-1, 1)
    """The range of the graph's images (the card's value_range): upscalers work in [0, 1]."""


def export_onnx(
    source: Path | str,
    out: Path | str,
    *,
    fp16: bool = False,
    opset: int = OPSET,
    w_graphs: bool | None = None,
    progress: Callable[[str], None] | None = None,
) -> ExportResult:
    """Export the EMA generator of a run folder or checkpoint to ``out`` (.onnx) plus ``out``.json card.

    ``w_graphs``: also write the style-space halves ``OUT-mapping.onnx`` and ``OUT-synthesis.onnx``
    (see :func:`w_graph_paths`); None = when the family has them, True = require them, False = never.
    Every graph is checked and parity-tested before any file is written; one failure writes nothing.
    """
    out = Path(out)
    if out.suffix.lower() != ".onnx":
        raise ConfigError(f"export target {out} must end in .onnx")
    say = progress or (lambda _msg: None)
    say("Loading the checkpoint")
    # a run folder's newest checkpoint that verifies; a fallback note ends up in the result's notes
    fallback: list[str] = []
    checkpoint, state = open_checkpoint(source, on_note=fallback.append)
    kind = get_family(state["family"]).kind
    subject = _SUBJECTS.get(kind, _generator_subject)(checkpoint, fp16)
    halves = _w_space(subject.model.family) if kind == "generate" else None
    if w_graphs and halves is None:
        raise ConfigError(
            f"family '{state['family']}' has no mapping and synthesis networks, so there are no W-space "
            "graphs to export; leave w_graphs unset (or False) for this family"
        )
    precision = "fp16" if fp16 else "fp32"
    bound = PARITY_BOUND[precision]
    common = _common_metadata(subject.model, state, fp16)
    say("Exporting the graph")
    model_bytes, exporter, notes, max_err, psnr = _build(subject, opset, common, checkpoint, out, precision, bound)
    notes = [*fallback, *notes]
    graphs: list[tuple[GraphResult, _Subject, bytes]] = []
    if halves is not None and w_graphs is not False:
        paths = w_graph_paths(out)
        for name, sub in _w_subjects(subject.model, *halves, fp16, out.name):
            say(f"Exporting the {name} graph")
            sub_bytes, sub_exporter, sub_notes, sub_err, sub_psnr = _build(
                sub, opset, common, checkpoint, out, precision, bound, f"the {name} graph of "
            )
            notes += [f"{name} graph: {note}" for note in sub_notes]
            graphs.append((GraphResult(name, paths[name], sub_exporter, sub_err, sub_psnr, bound), sub, sub_bytes))
    _write_all([(out, model_bytes), *((g.path, b) for g, _, b in graphs)])
    if not graphs:
        _remove_stale_w_graphs(out)
    card = out.with_suffix(".json")
    result = ExportResult(out, card, precision, exporter, max_err, psnr, bound, notes, [g for g, _, _ in graphs])
    atomic_write_json(card, _model_card(subject, state, result, {g.name: s for g, s, _ in graphs}))
    extra = f" with {', '.join(g.path.name for g in result.graphs)}" if result.graphs else ""
    say(f"Exported {out}{extra} ({precision}, max abs error {max_err:.2e}, PSNR {psnr:.1f} dB)")
    return result


def _build(
    subject: _Subject,
    opset: int,
    common: dict[str, str],
    checkpoint: Path,
    target: Path,
    precision: str,
    bound: float,
    what: str = "",
) -> tuple[bytes, str, list[str], float, float]:
    """(checked model bytes with metadata, exporter, notes, max abs error, PSNR) of one graph, or ExportError."""
    model_bytes, exporter, notes = _export(subject, opset)
    model_bytes = _add_metadata(model_bytes, {**common, **subject.metadata})
    max_err, psnr = _parity(subject, model_bytes)
    if not max_err <= bound:
        raise ExportError(
            f"export of {what}{checkpoint} failed the parity check: max abs error {max_err:.3g} "
            f"> {bound:g} allowed for {precision} (PSNR {psnr:.1f} dB); nothing was written to {target}"
        )
    return model_bytes, exporter, notes, max_err, psnr


def _write_all(files: list[tuple[Path, bytes]]) -> None:
    """Write every file atomically; if one write fails, remove the ones already written (no partial export)."""
    written: list[Path] = []
    try:
        for path, data in files:
            atomic_write_bytes(path, data)
            written.append(path)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise


def _remove_stale_w_graphs(out: Path) -> None:
    """Delete W-space graphs an earlier export to ``out`` left beside it: they belong to the replaced model.

    Only files whose metadata says they are that export's mapping or synthesis graph are touched."""
    import onnx

    for name, path in w_graph_paths(out).items():
        if not path.is_file():
            continue
        try:
            meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
        except Exception:  # not an ONNX file we made: leave it alone
            continue
        if meta.get("gan_studio.kind") == name and meta.get("gan_studio.export") == out.name:
            path.unlink(missing_ok=True)


def _w_space(family: Any) -> tuple[nn.Module, nn.Module] | None:
    """(mapping, synthesis) when the family publishes its generator's two halves, else None.

    The seam is the family's own ``export_modules()`` (the modules that make up its published model),
    not ``hasattr(generator, "mapping")``: the family states the contract (mapping(z, labels, truncation)
    -> ws, synthesis(ws) -> image) instead of the export guessing from attribute names of one class.
    """
    modules = family.export_modules()
    if "mapping" in modules and "synthesis" in modules:
        return modules["mapping"].eval(), modules["synthesis"].eval()
    return None


def _w_subjects(
    runner: TorchRunner, mapping: nn.Module, synthesis: nn.Module, fp16: bool, export_name: str
) -> list[tuple[str, _Subject]]:
    """The mapping and synthesis subjects of a generator with a style space."""
    conditional = runner.spec.num_classes > 0
    names = ["z", "truncation", *(["labels"] if conditional else [])]
    example = lambda batch, seed: _example_inputs(runner.latent_dim, runner.spec.num_classes, batch, seed, True)  # noqa: E731
    reference = _MappingGraph(mapping, conditional, fp16=False).eval()
    latents = [example(1, 11), example(5, 12)]
    with torch.no_grad():
        ws = [reference(*inputs) for inputs in latents]
    n, num_ws, w_dim = ws[1].shape
    # Edited ws differ per layer (style mixing, W+ editing): each layer of this batch takes another
    # sample's w, so parity proves the synthesis graph reads every layer's own w.
    mixed = torch.stack([ws[1][(torch.arange(n) + i) % n, i] for i in range(num_ws)], dim=1)
    ws_desc = f"float32 (batch, {num_ws}, {w_dim}): one w per synthesis layer"
    c, r = runner.spec.channels, runner.resolution
    metadata = {
        "gan_studio.latent_dim": str(runner.latent_dim),
        "gan_studio.classes": json.dumps(runner.classes),
        "gan_studio.num_ws": str(num_ws),
        "gan_studio.w_dim": str(w_dim),
        "gan_studio.export": export_name,  # the main graph these halves belong to
    }
    mapping_subject = _Subject(
        runner,
        _MappingGraph(mapping, conditional, fp16).eval(),
        reference,
        names,
        {name: {0: "batch"} for name in [*names, "ws"]},
        example(2, 0),
        latents,
        {**metadata, "gan_studio.kind": "mapping"},
        {
            "inputs": {
                "z": f"float32 (batch, {runner.latent_dim}) standard normal",
                "truncation": "float32 (batch,) psi: 1 = none, 0 = the average w",
                **({"labels": "int64 (batch,) class index"} if conditional else {}),
            },
            "outputs": {"ws": ws_desc},
        },
        output="ws",
        peak=None,  # ws are not images: PSNR over their own range
    )
    synthesis_subject = _Subject(
        runner,
        _SynthesisGraph(synthesis, fp16).eval(),
        _SynthesisGraph(synthesis, fp16=False).eval(),
        ["ws"],
        {"ws": {0: "batch"}, "image": {0: "batch"}},
        (ws[1][:2],),
        [(ws[0],), (mixed,)],
        {**metadata, "gan_studio.kind": "synthesis"},
        {"inputs": {"ws": ws_desc}, "outputs": {"image": f"float32 (batch, {c}, {r}, {r})"}},
    )
    return [("mapping", mapping_subject), ("synthesis", synthesis_subject)]


def _generator_subject(checkpoint: Path, fp16: bool) -> _Subject:
    runner = TorchRunner(checkpoint, device="cpu")
    conditional = runner.spec.num_classes > 0
    generator = runner.family.export_modules()["generator"].eval()
    in_w = runner.truncates_in_w
    graph_cls = _TruncatingGeneratorGraph if in_w else _GeneratorGraph
    names = ["z", *(["truncation"] if in_w else []), *(["labels"] if conditional else [])]
    example = lambda batch, seed: _example_inputs(runner.latent_dim, runner.spec.num_classes, batch, seed, in_w)  # noqa: E731
    c, r = runner.spec.channels, runner.resolution
    mark, mark_metadata, watermark = _graph_watermark(runner, r, r, c)
    graph: nn.Module = graph_cls(generator, conditional, fp16).eval()
    reference: nn.Module = graph_cls(generator, conditional, False).eval()
    if mark is not None:
        graph, reference = _WatermarkedGraph(graph, mark).eval(), _WatermarkedGraph(reference, mark).eval()
    card = {
        "kind": "generator",
        "watermark": watermark,
        "latent_dim": runner.latent_dim,
        "classes": runner.classes,
        "inputs": {
            "z": f"float32 (batch, {runner.latent_dim}) standard normal",
            **({"labels": "int64 (batch,) class index"} if conditional else {}),
            **({"truncation": "float32 (batch,) psi: 1 = none, 0 = the average image"} if in_w else {}),
        },
        "outputs": {"image": f"float32 (batch, {c}, {r}, {r})"},
    }
    return _Subject(
        runner,
        graph,
        reference,  # parity is always against fp32
        names,
        {name: {0: "batch"} for name in [*names, "image"]},
        example(2, 0),
        # two batch sizes also prove the batch axis is dynamic
        [example(1, 11), example(5, 12)],
        {
            "gan_studio.kind": "generator",
            "gan_studio.latent_dim": str(runner.latent_dim),
            "gan_studio.classes": json.dumps(runner.classes),
            **mark_metadata,
        },
        card,
    )


def _translator_subject(checkpoint: Path, fp16: bool) -> _Subject:
    model = TorchTranslator(checkpoint, device="cpu")
    generator = model.family.export_modules()["generator"].eval()
    m, r, c_in = model.multiple, model.resolution, model.in_channels
    gen = torch.Generator().manual_seed(0)
    image = lambda n, h, w: torch.rand(n, c_in, h, w, generator=gen) * 2 - 1  # noqa: E731
    # parity at the training size and at a smaller, non-square size: both spatial axes are dynamic
    small_h, small_w = max(m, (r // 2) // m * m), max(m, (3 * r // 4) // m * m)
    card = {
        "kind": "translator",
        "watermark": _NOT_IN_GRAPH,
        "task": model.task,
        "multiple": m,
        "inputs": {"input": f"float32 (batch, {c_in}, H, W) in [-1, 1]; H and W multiples of {m}"},
        "outputs": {"image": f"float32 (batch, {model.out_channels}, H, W)"},
    }
    return _Subject(
        model,
        _TranslatorGraph(generator, fp16).eval(),
        _TranslatorGraph(generator, fp16=False).eval(),
        ["input"],
        {"input": {0: "batch", 2: "height", 3: "width"}, "image": {0: "batch", 2: "height", 3: "width"}},
        (image(2, r, r),),
        [(image(1, r, r),), (image(2, small_h, small_w),)],
        {
            "gan_studio.kind": "translator",
            "gan_studio.task": model.task,
            "gan_studio.in_channels": str(c_in),
            "gan_studio.multiple": str(m),
        },
        card,
    )


def _upscaler_subject(checkpoint: Path, fp16: bool) -> _Subject:
    model = TorchUpscaler(checkpoint, device="cpu")
    c, s = model.channels, model.scale
    gen = torch.Generator().manual_seed(0)
    image = lambda n, h, w: torch.rand(n, c, h, w, generator=gen)  # noqa: E731
    card = {
        "kind": "upscaler",
        "watermark": _NOT_IN_GRAPH,
        "scale": s,
        "channels": c,
        "arch": model.family.describe().get("arch"),
        "inputs": {"input": f"float32 (batch, {c}, height, width) in [0, 1], any height and width"},
        "outputs": {"image": f"float32 (batch, {c}, height*{s}, width*{s}) in [0, 1]"},
    }
    return _Subject(
        model,
        _UpscalerGraph(model.module, fp16).eval(),
        _UpscalerGraph(model.module, fp16=False).eval(),
        ["input"],
        {"input": {0: "batch", 2: "height", 3: "width"}, "image": {0: "batch", 2: "height", 3: "width"}},
        (image(2, 32, 32),),
        # a square size and an odd, non-square one with another batch: every axis is dynamic
        [(image(1, 24, 24),), (image(2, 17, 23),)],
        {
            "gan_studio.kind": "upscaler",
            "gan_studio.scale": str(s),
            "gan_studio.channels": str(c),
            "gan_studio.arch": str(card["arch"] or ""),
            "gan_studio.value_range": "[0, 1]",
        },
        card,
        peak=1.0,
        value_range=(0, 1),
    )


_SUBJECTS: dict[str, Callable[[Path, bool], _Subject]] = {
    "generate": _generator_subject,
    "translate": _translator_subject,
    "upscale": _upscaler_subject,
}
"""The graph each kind of family exports (Family.kind -> subject builder)."""


def _example_inputs(
    latent_dim: int, num_classes: int, batch: int, seed: int = 0, truncation: bool = False
) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(batch, latent_dim, generator=gen)
    # psi in [0.2, 1]: parity also covers truncated images
    psi = (torch.rand(batch, generator=gen) * 0.8 + 0.2,) if truncation else ()
    if not num_classes:
        return (z, *psi)
    return (z, *psi, torch.randint(0, num_classes, (batch,), generator=gen))


def _export(subject: _Subject, opset: int) -> tuple[bytes, str, list[str]]:
    """ONNX bytes from the dynamo exporter, or from the TorchScript exporter where dynamo fails."""
    graph, example, names, axes = subject.graph, subject.example, subject.names, subject.axes
    notes: list[str] = []
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = Path(tmp) / "model.onnx"
        try:
            program = torch.onnx.export(
                graph,
                example,
                dynamo=True,
                input_names=names,
                output_names=[subject.output],
                dynamic_axes=axes,
                opset_version=opset,
                verbose=False,
            )
            assert program is not None  # dynamo=True always returns the program
            program.save(str(path))
            return path.read_bytes(), "dynamo", notes
        except Exception as exc:  # the new exporter still fails on some graphs; the old one is the fallback
            notes.append(
                "exported with PyTorch's TorchScript exporter, as the newer dynamo exporter could not convert "
                f"this model ({type(exc).__name__}: {str(exc).splitlines()[0][:160]}); the parity check holds "
                "either way"
            )
        legacy = Path(tmp) / "model-torchscript.onnx"  # a path, not a buffer: what torch.onnx.export is typed for
        torch.onnx.export(
            graph,
            example,
            str(legacy),
            dynamo=False,
            input_names=names,
            output_names=[subject.output],
            dynamic_axes=axes,
            opset_version=min(opset, 17),
        )
        return legacy.read_bytes(), "torchscript", notes


def _common_metadata(model: Any, state: dict[str, Any], fp16: bool) -> dict[str, str]:
    return {
        "gan_studio.format_version": str(ONNX_FORMAT_VERSION),
        "gan_studio.app_version": engine.__version__,
        "gan_studio.family": model.family_name,
        "gan_studio.resolution": str(model.resolution),
        "gan_studio.channels": str(model.family.spec.channels),
        "gan_studio.value_range": "[-1, 1]",
        "gan_studio.layout": "NCHW",
        "gan_studio.precision": "fp16" if fp16 else "fp32",
        "gan_studio.step": str(model.step),
        "gan_studio.dataset_fingerprint": str(state.get("dataset_fingerprint", "")),
        "gan_studio.attestation_id": str(state.get("attestation_id", "")),
        **model.identity.onnx_metadata(),
    }


def _add_metadata(model_bytes: bytes, metadata: dict[str, str]) -> bytes:
    import onnx

    model = onnx.load_from_string(model_bytes)
    del model.metadata_props[:]
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as exc:
        raise ExportError(f"the exported graph failed onnx.checker: {exc}") from None
    return model.SerializeToString()


def _parity(subject: _Subject, model_bytes: bytes) -> tuple[float, float]:
    """Max abs error and PSNR of onnxruntime vs PyTorch on fixed random inputs.

    The PSNR's peak is the subject's (2: the peak-to-peak range of [-1, 1] images), or for outputs
    that are not images (ws) the range the reference output really spans."""
    import onnxruntime as ort

    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    worst, mse_sum, count = 0.0, 0.0, 0
    low, high = math.inf, -math.inf
    for inputs in subject.parity_inputs:
        with torch.no_grad():
            expected = subject.reference(*inputs).numpy()
        feed = {name: t.numpy() for name, t in zip(subject.names, inputs)}
        got = session.run([subject.output], feed)[0]
        diff = got.astype(np.float64) - expected
        worst = max(worst, float(np.abs(diff).max()))
        mse_sum, count = mse_sum + float((diff**2).sum()), count + diff.size
        low, high = min(low, float(expected.min())), max(high, float(expected.max()))
    mse = mse_sum / count
    peak = subject.peak if subject.peak is not None else max(high - low, 1e-12)
    psnr = math.inf if mse == 0 else 10 * math.log10(peak**2 / mse)
    return worst, psnr


def _model_card(
    subject: _Subject, state: dict[str, Any], result: ExportResult, graph_subjects: dict[str, _Subject]
) -> dict[str, Any]:
    model = subject.model
    graphs = {
        graph.name: {
            "file": graph.path.name,
            **graph_subjects[graph.name].card,
            "parity": {
                "precision": result.precision,
                "max_abs_error": graph.max_abs_error,
                "psnr_db": graph.psnr_db,
                "bound": graph.bound,
            },
            "exporter": graph.exporter,
        }
        for graph in result.graphs
    }
    return {
        "format_version": ONNX_FORMAT_VERSION,
        "model": result.path.name,
        "family": model.family_name,
        "resolution": model.resolution,
        "channels": model.family.spec.channels,
        **subject.card,
        "value_range": list(subject.value_range),
        "layout": "NCHW",
        "source_checkpoint": str(model.checkpoint),
        "step": model.step,
        "dataset_fingerprint": state.get("dataset_fingerprint"),
        "attestation_id": state.get("attestation_id"),
        "parity": {
            "precision": result.precision,
            "max_abs_error": result.max_abs_error,
            "psnr_db": result.psnr_db,
            "bound": result.bound,
        },
        "exporter": result.exporter,
        **({"graphs": graphs} if graphs else {}),
        "notes": result.notes,
        "app_version": engine.__version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
