"""One template for every source backend (as nncf tests each backend): the same assertions for Keras on the
tiny project, ONNX on the tiny PyTorch-exported encoder (`onnx_models`), and a student distilled from a
teacher (a scores .jsonl of the tiny model's probabilities: no second model to train).

Each case loads its source once (toolchain/sources/loaded.py) and drives its backend through the
SourceBackend protocol (toolchain/sources/backend.py) the way toolchain/pipeline.py does: run_steps ->
convert -> evaluate -> float_model, each stage given what the previous returned. Only the ONNX case runs
onnx2tf (about half a minute), so only it is slow. The loading rules that differ from case to case
(labels, task, seq_len) have their own small tests below.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tests.fixtures.tiny import write_jsonl
from toolchain.base.errors import DataError, InputFileError
from toolchain.base.progress import SilentProgress
from toolchain.base.types import Stage
from toolchain.recipe.compose import recipe_from_dict
from toolchain.recipe.schema import Recipe
from toolchain.sources.backend import Conversion, Evaluation, StepsResult

DATA = Path(__file__).resolve().parents[2] / "examples" / "shopping_intent" / "data"
STUDENT = {"embed_dim": 8, "layers": ["conv1d:16:3", "max_pool", "dense:32"]}


@dataclass(frozen=True)
class Case:
    """A recipe and what loading it must give."""

    recipe: Recipe
    backend: str  # the backend class name
    format: str
    task: str
    labels: int
    tokenizer: str  # kind
    seq_len: int
    calibrates: bool


def _keras(tiny_project, out: Path) -> Case:
    recipe = recipe_from_dict(tiny_project.recipe_dict(name="keras", output={"dir": str(out)}))
    return Case(recipe, "KerasBackend", "keras", "classification", 4, "regex", 16, True)


def _onnx(onnx_models: Path, out: Path) -> Case:
    recipe = recipe_from_dict(
        {
            "name": "onnx",
            "source": {"path": str(onnx_models / "intent_encoder.onnx")},  # task auto: labels found
            "data": {
                "vocab": str(onnx_models / "vocab.txt"),
                "labels": str(onnx_models / "labels.txt"),
                "test": str(DATA / "test.jsonl"),
                "seq_len": 32,
            },
            "quantization": {"mode": "float32"},
            "output": {"dir": str(out)},
        }
    )
    return Case(recipe, "OnnxBackend", "onnx", "classification", 22, "regex", 32, False)


def _student(tiny_project, out: Path) -> Case:
    """The tiny model's probabilities on every query as a scores file: a teacher that needs no model."""
    from toolchain import data as d
    from toolchain.base.tfenv import keras

    texts = [
        t for p in (tiny_project.train, tiny_project.val, tiny_project.test) for t in d.load_queries(p).texts
    ]
    tok = d.Tokenizer(d.load_vocab(tiny_project.vocab), tiny_project.seq_len)
    probs = keras().models.load_model(tiny_project.model).predict(tok.encode_batch(texts), verbose=0)
    rows = [{"text": t, "probs": [float(v) for v in row]} for t, row in zip(texts, probs, strict=True)]
    scores = write_jsonl(out / "teacher.jsonl", rows)
    step = {"kind": "distill", "student": STUDENT, "epochs": 6, "student_vocab": {"seq_len": 12}}
    recipe = recipe_from_dict(
        tiny_project.recipe_dict(
            name="student", source={"path": str(scores)}, steps=[step], output={"dir": str(out)}
        )
    )
    return Case(recipe, "StudentBackend", "scores", "classification", 4, "regex", 12, True)


@pytest.fixture(params=[pytest.param(p, marks=pytest.mark.slow) for p in ("keras", "onnx", "student")])
def case(request, tiny_project, tmp_path) -> Case:
    if request.param == "keras":
        return _keras(tiny_project, tmp_path)
    if request.param == "onnx":
        return _onnx(request.getfixturevalue("onnx_models"), tmp_path)
    return _student(tiny_project, tmp_path)


def test_every_backend_loads_converts_and_evaluates(case: Case) -> None:
    from converters.tflite_model import parse_tflite
    from toolchain.pipeline import source_backend
    from toolchain.sources.loaded import load_source

    source = load_source(case.recipe)
    assert (source.format, source.task, len(source.labels)) == (case.format, case.task, case.labels)
    assert source.tokenizer is not None and source.tokenizer.kind == case.tokenizer
    assert source.seq_len == source.tokenizer.seq_len == case.seq_len
    assert source.splits and all(len(qs) for qs in source.splits.values())
    assert (source.calibration is not None) == case.calibrates
    if source.calibration is not None:  # one stratified draw, recorded for the report
        assert source.calibration.report()["calibration_queries"] == len(source.calibration.texts) > 0

    backend = source_backend(source)
    assert type(backend).__name__ == case.backend and backend.source is source
    steps = backend.run_steps(SilentProgress())
    assert isinstance(steps, StepsResult) and steps.labels == source.labels
    assert len(steps.reports) == len(case.recipe.steps) and steps.tokenizer is not None

    conversion = backend.convert(steps, SilentProgress())
    assert isinstance(conversion, Conversion)
    assert conversion.tflite[4:8] == conversion.fp32[4:8] == b"TFL3"
    assert conversion.quantization.mode == case.recipe.quantization.mode
    assert parse_tflite(conversion.tflite).size_bytes <= len(conversion.fp32)

    evaluation = backend.evaluate(steps, conversion, SilentProgress())
    assert isinstance(evaluation, Evaluation) and evaluation.texts  # the test split's queries
    section = evaluation.section
    assert section.vs_final_float and section.vs_source_float and section.by_stage
    assert section.vs_final_float.top1_agreement >= 0.95  # the .tflite vs what it was converted from
    assert section.vs_source_float.converted.accuracy > 0.25  # better than chance (4 or 22 labels)
    assert section.by_stage.stages[0].stage == Stage.SOURCE
    float_tflite, float_keras = backend.float_model(steps, conversion)
    assert float_tflite is not None and float_tflite[4:8] == b"TFL3"
    assert (float_keras is not None) == bool(case.recipe.steps)  # float.keras only after steps
    assert "parameters" in backend.source_section(conversion)


# ---------------------------------------------------------------- the loading rules, one by one


def _onnx_folder(onnx_models: Path, tmp_path: Path, config: dict | None) -> Path:
    """A Hugging Face-style folder: model.onnx + vocab.txt (+ config.json), no labels.txt."""
    folder = tmp_path / "folder"
    folder.mkdir()
    shutil.copy(onnx_models / "intent_encoder.onnx", folder / "model.onnx")
    shutil.copy(onnx_models / "vocab.txt", folder / "vocab.txt")
    if config is not None:
        (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


def _folder_recipe(folder: Path, **data) -> Recipe:
    return recipe_from_dict(
        {
            "source": {"path": str(folder)},
            "data": {"seq_len": 32, **data},
            "quantization": {"mode": "float32"},
        }
    )


@pytest.mark.slow  # onnx_models: trained by the fixture script on a cold cache
def test_labels_from_config_id2label_and_logits_without_labels(onnx_models, tmp_path) -> None:
    from toolchain.sources.loaded import load_source

    names = (onnx_models / "labels.txt").read_text("utf-8").split()
    folder = _onnx_folder(onnx_models, tmp_path, {"id2label": {str(i): n for i, n in enumerate(names)}})
    source = load_source(_folder_recipe(folder))
    assert source.format == "onnx" and source.task == "classification" and source.labels == names
    assert source.tokenizer is not None and source.tokenizer.kind == "regex"  # vocab.txt beside it
    (folder / "config.json").write_text(json.dumps({"id2label": {"0": "LABEL_0", "1": "LABEL_1"}}))
    with pytest.raises(DataError, match="outputs logits but no labels were found") as err:
        load_source(_folder_recipe(folder))  # placeholders are no labels; a logits output needs some
    assert "--task embedding" in err.value.hint


def test_seq_len_must_match_a_fixed_length(tiny_untrained) -> None:
    from toolchain.sources.loaded import load_source
    from toolchain.tokenizers.sources import query_length

    recipe = recipe_from_dict(
        tiny_untrained.recipe_dict(data={**tiny_untrained.recipe_dict()["data"], "seq_len": 8})
    )
    with pytest.raises(DataError, match="the model takes 16 tokens, the recipe says 8"):
        load_source(recipe)
    assert query_length(16, 8, strict=False) == 16  # a teacher keeps its own length
    assert query_length(None, 8) == 8
    with pytest.raises(DataError, match="input length is dynamic"):
        query_length(None, None)


def test_every_named_split_is_loaded_and_checked(tiny_untrained, tmp_path) -> None:
    from toolchain.sources.loaded import load_source

    empty = write_jsonl(tmp_path / "empty.jsonl", [])
    data = {**tiny_untrained.recipe_dict()["data"], "calibration": str(empty)}
    with pytest.raises(DataError, match="calibration file .* is empty"):
        load_source(recipe_from_dict(tiny_untrained.recipe_dict(data=data)))
    data = {k: v for k, v in tiny_untrained.recipe_dict()["data"].items() if k != "train"}
    with pytest.raises(DataError, match="int8 needs calibration queries"):
        load_source(recipe_from_dict(tiny_untrained.recipe_dict(data=data)))


def test_one_format_rule_for_sources_and_teachers(tmp_path) -> None:
    from toolchain.sources.detect import path_format
    from toolchain.steps.teachers import teacher_kind

    saved = tmp_path / "saved"
    saved.mkdir()
    (saved / "saved_model.pb").write_bytes(b"")
    hf = tmp_path / "hf"
    hf.mkdir()
    (hf / "model.onnx").write_bytes(b"")
    for path, fmt, kind in (
        (saved, "savedmodel", "keras"),
        (hf, "onnx", "onnx"),
        (tmp_path / "m.tflite", "tflite", "tflite"),
        (tmp_path / "s.jsonl", "scores", "scores"),
        (tmp_path / "m.hdf5", "keras", "keras"),
    ):
        assert (path_format(path), teacher_kind(path)) == (fmt, kind), path
    with pytest.raises(InputFileError, match="directory without saved_model.pb"):
        path_format(tmp_path)


def test_keras_data_retokenizes_after_a_vocab_rewrite(tiny_data) -> None:
    from toolchain import data as d
    from toolchain.sources.keras_steps import KerasData
    from toolchain.tokenizers.binding import ModelInput

    splits = {"test": d.load_queries(tiny_data.test)}
    labels = tiny_data.labels.read_text("utf-8").split()
    words = d.Tokenizer(d.load_vocab(tiny_data.vocab), 16)
    data = KerasData.make(words, (ModelInput("input_ids", "int32"),), splits, labels)
    smaller = d.Tokenizer({tok: i for i, tok in enumerate(d.SPECIAL_TOKENS)}, 16)
    again = data.with_tokenizer(smaller)
    assert again.y is data.y and data.ids["test"].shape == again.ids["test"].shape
    assert set(np.unique(again.ids["test"])) <= {0, 1, 2}  # every word unknown in the new vocab


@pytest.mark.slow
def test_build_returns_the_build_load_build_reads(tiny_int8) -> None:
    """`pipeline.build` hands back the Build it wrote: what `load_build` reads from the directory (the
    shared tiny int8 build is what `build` returned for the tiny recipe; conftest)."""
    from toolchain.build import load_build

    built = tiny_int8
    read = load_build(built.dir)
    assert built.dir == read.dir and built.model_bytes == read.model_bytes
    assert built.report == read.report and built.recipe.to_yaml() == read.recipe.to_yaml()
    assert built.labels == read.labels and built.tokenizer_kind == read.tokenizer_kind
    assert built.tokenizer.describe() == read.tokenizer.describe()
    built.check_files()  # the hashes it records are those of the files it wrote
