"""Registered image-to-image tasks, the one place that opens models, and the bounded onnxruntime session cache."""

from __future__ import annotations

import argparse
import gc
import re
import shutil
import subprocess
import sys
import weakref
from pathlib import Path

import numpy as np
import pytest

import engine.export.ort_runner as ort_runner
from engine.data import load_dataset
from engine.errors import CheckpointError, ConfigError
from engine.export import OrtRunner, OrtTranslator, export_onnx, find_export, open_runner, open_translator
from engine.export.ort_runner import SessionCache
from engine.families import family_names, get_family
from engine.inference import TorchRunner, TorchTranslator
from engine.tasks import TASKS, get_task, task_names
from engine.training import Trainer

from .helpers import make_ab_dataset, make_dataset, tiny_config

ROOT = Path(__file__).resolve().parents[2]
TASK_NAME = re.compile(r'"(sketch|colorize|paired|unpaired)"')  # ruff format makes every string double-quoted
# Files that may spell task names as strings, and why. Everything else asks the task object.
NAMES_ALLOWED = {
    "engine/tasks.py": "the registrations",
    "engine/families/pix2pix.py": "the tasks the family learns and its default",
    "engine/families/cyclegan.py": "the task the family learns",
    "studio/app.py": "screenshot options naming the model for each screenshot",
    "studio/screenshots.py": "screenshot options naming the model for each screenshot",
}


# -- the registry ------------------------------------------------------------------------------------
def test_every_family_task_is_registered_and_described():
    translators = [get_family(name) for name in family_names() if get_family(name).kind == "translate"]
    used = {task for family in translators for task in family.tasks}
    assert used == set(task_names()) == {"sketch", "colorize", "paired", "unpaired"}
    for name in task_names():
        task = get_task(name)
        assert task.name == name and task is get_task(name)  # one shared instance
        assert task.label and task.usage and len(task.description) > 20, name
    assert get_task("sketch").draws_input and get_task("colorize").takes_hints
    assert [n for n in task_names() if get_task(n).derives_inputs] == ["colorize", "sketch"]
    assert (get_task("sketch").input_channels(3), get_task("colorize").input_channels(3)) == (1, 7)
    assert get_task("paired").input_channels(4) == 4


def test_unknown_task_lists_the_known_ones():
    with pytest.raises(ConfigError, match="unknown image-to-image task 'bogus'; choose one of: colorize, paired"):
        get_task("bogus")
    with pytest.raises(RuntimeError, match="registered twice"):
        TASKS.register("sketch")(type("Other", (type(get_task("paired")),), {}))


def test_the_cli_offers_exactly_the_registered_tasks():
    from engine.cli import build_parser

    (commands,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    (action,) = [a for a in commands.choices["train"]._actions if "--task" in a.option_strings]
    assert list(action.choices) == task_names()
    assert all(get_task(name).description in action.help for name in task_names())


def test_the_task_list_loads_without_torch():
    # the CLI's parser and the GUI's start-up read it before torch is imported
    code = "import sys, engine.tasks as t; t.task_names(); t.get_task('sketch').label; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "False"


def test_no_code_branches_on_task_names():
    offenders = []
    for folder in ("engine", "studio"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel in NAMES_ALLOWED:
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if TASK_NAME.search(line) and not line.lstrip().startswith("#"):
                    offenders.append(f"{rel}:{number}: {line.strip()}")
    assert not offenders, "ask engine.tasks.get_task(name) instead of comparing names:\n" + "\n".join(offenders)


def test_data_plans_come_from_the_task(tmp_path):
    folders = load_dataset(make_ab_dataset(tmp_path / "ab", unmatched=2))
    paired, unpaired = get_task("paired").data_plan(folders), get_task("unpaired").data_plan(folders)
    assert paired.paired and [len(s) for s in paired.streams] == [8, 8] and "no partner" in paired.notes[0]
    assert not unpaired.paired and [len(s) for s in unpaired.streams] == [8, 10]
    single = load_dataset(make_dataset(tmp_path / "shapes"))
    plan = get_task("sketch").data_plan(single)
    assert len(plan.streams) == 1 and list(plan.streams[0]) == list(range(len(single)))
    with pytest.raises(ConfigError, match="task 'unpaired' needs a dataset imported from a folder with A/ and B/"):
        get_task("unpaired").data_plan(single)


# -- one place opens models ------------------------------------------------------------------------
def test_inference_never_imports_export():
    code = "import sys, engine.inference; print(sorted(m for m in sys.modules if m.startswith('engine.export')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A tiny generator run and a tiny sketch run, each trained 2 steps, with no export yet."""
    tmp = tmp_path_factory.mktemp("open")
    dataset = make_dataset(tmp)
    Trainer(tiny_config(dataset, steps=2), run_dir=tmp / "gen").run()
    sketch = tiny_config(dataset, family="pix2pix", conditional=False, r1_gamma=0.0, batch_size=4, steps=2)
    sketch.family_options["task"] = "sketch"
    Trainer(sketch, run_dir=tmp / "sketch").run()
    return tmp / "gen", tmp / "sketch"


def test_open_translator_prefers_a_current_export(runs, tmp_path):
    _, run = runs
    assert isinstance(open_translator(run, device="cpu"), TorchTranslator) and find_export(run) is None
    export_onnx(run, run / "exports" / "sketch.onnx")
    assert find_export(run) == run / "exports" / "sketch.onnx"
    ort, pt = open_translator(run), open_translator(run, device="cpu", prefer_onnx=False)
    assert isinstance(ort, OrtTranslator) and isinstance(pt, TorchTranslator)
    assert isinstance(open_translator(run / "exports" / "sketch.onnx"), OrtTranslator)
    drawing = np.full((40, 56), 255, np.uint8)
    drawing[18:21, 5:50] = 0
    assert np.abs(ort.translate(drawing).astype(int) - pt.translate(drawing)).max() <= 1
    with pytest.raises(CheckpointError, match="noise"):
        open_translator(runs[0], device="cpu")


def test_an_export_of_an_unknown_task_is_refused_when_opened(runs, tmp_path):
    import onnx

    _, run = runs
    model = onnx.load(str(export_onnx(run, tmp_path / "t.onnx").path))
    for prop in model.metadata_props:
        if prop.key == "gan_studio.task":
            prop.value = "bogus"
    onnx.save(model, str(tmp_path / "bogus.onnx"))
    with pytest.raises(CheckpointError, match="task 'bogus', which this GAN Studio does not know"):
        OrtTranslator(tmp_path / "bogus.onnx")


# -- the session cache -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def exports(runs, tmp_path_factory):
    """fp32 and fp16 exports of the tiny generator run (different files of the same model)."""
    tmp = tmp_path_factory.mktemp("exports")
    gen, _ = runs
    return export_onnx(gen, tmp / "fp32.onnx").path, export_onnx(gen, tmp / "fp16.onnx", fp16=True).path


def test_session_cache_is_bounded_and_least_recently_used(exports, tmp_path, monkeypatch):
    cache = SessionCache(max_size=2)
    monkeypatch.setattr(ort_runner, "SESSIONS", cache)
    copies = [shutil.copy(exports[0], tmp_path / f"m{i}.onnx") for i in range(3)]
    first = OrtRunner(copies[0])
    released = weakref.ref(first.session)
    second = OrtRunner(copies[1])
    assert OrtRunner(copies[0]).session is first.session  # a hit, and m0 is now the most recent
    OrtRunner(copies[2])
    assert cache.paths() == [Path(copies[0]).resolve(), Path(copies[2]).resolve()]  # m1 went, m0 stayed
    assert OrtRunner(copies[1]).session is not second.session  # opened again
    assert len(cache.paths()) == 2
    del first
    gc.collect()
    assert released() is None  # m0 left the cache and its last runner is gone: onnxruntime freed it


def test_a_replaced_file_gets_a_new_session_and_the_old_one_is_released(runs, exports, tmp_path, monkeypatch):
    cache = SessionCache(max_size=4)
    monkeypatch.setattr(ort_runner, "SESSIONS", cache)
    gen, _ = runs
    path = Path(shutil.copy(exports[0], tmp_path / "model.onnx"))
    old = OrtRunner(path)
    assert old.precision == "fp32"
    old_session = weakref.ref(old.session)
    shutil.copy(exports[1], path)  # a new export written over the old file
    new = OrtRunner(path)
    assert new.precision == "fp16" and new.session is not old.session
    assert cache.paths() == [path.resolve()]  # the old file's session is no longer cached
    z = np.random.default_rng(0).standard_normal((2, old.latent_dim)).astype(np.float32)
    labels = np.array([0, 1])
    assert old(z, labels).shape == new(z, labels).shape  # a runner holding the old session keeps working
    del old
    gc.collect()
    assert old_session() is None
    assert isinstance(open_runner(gen, device="cpu", prefer_onnx=False), TorchRunner)
