"""Issue 24: how a model folder is read (toolchain/sources/hub_folder.py) and the export env's pins.

Hand-made folders: only the JSON files are read, nothing is loaded; the refusals are in
tests/hostile/test_hostile_hub.py, real folders in tests/e2e/test_hub_folders.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from converters.hf_export import HF_EXPORT_REQUIREMENTS, hf_export_spec
from toolchain.base.notices import first_use_notice
from toolchain.base.types import FolderKind
from toolchain.sources.detect import path_format
from toolchain.sources.hub_folder import read_folder

ROOT = Path(__file__).resolve().parents[2]


def _folder(tmp_path: Path, config: dict, files: dict[str, object] | None = None) -> Path:
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    for name, content in {"model.safetensors": b"", **(files or {})}.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(json.dumps(content))
    return folder


def test_export_env_pins_are_the_fixture_extras():
    line = re.search(r"^onnx-fixtures = \[(.*)\]$", (ROOT / "pyproject.toml").read_text(), re.M)
    assert line is not None
    assert set(re.findall(r'"([^"]+)"', line.group(1))) <= set(HF_EXPORT_REQUIREMENTS)
    spec = hf_export_spec()
    line = first_use_notice(spec.name, spec.requirements, Path("/x"), spec.name)
    assert "torch==2.13.0" in line and "(~1.3 GB)" in line


@pytest.mark.parametrize(
    "model_type, inputs",
    [("distilbert", ["input_ids", "attention_mask"]), ("xlm-roberta", ["input_ids", "attention_mask"]),
     ("bert", ["input_ids", "attention_mask", "token_type_ids"])],
)  # fmt: skip
def test_inputs_follow_the_model_type(tmp_path, model_type, inputs):
    arch = {"architectures": ["XForSequenceClassification"], "model_type": model_type}
    info = read_folder(_folder(tmp_path, arch))
    assert info.kind == FolderKind.TRANSFORMERS and info.head == "classifier" and info.inputs == inputs


def test_tokenizer_config_names_the_inputs_and_the_length(tmp_path):
    files = {"tokenizer_config.json": {"model_input_names": ["input_ids", "attention_mask"],
                                       "model_max_length": 64}}  # fmt: skip
    info = read_folder(_folder(tmp_path, {"architectures": ["BertModel"], "model_type": "bert"}, files))
    assert info.inputs == ["input_ids", "attention_mask"] and info.head == "encoder"
    assert (info.seq_len, info.seq_len_from) == (64, "tokenizer_config.json model_max_length")
    assert info.pooling == "mean" and not info.normalize and "bare encoder" in info.notes[0]


def test_no_limit_length_falls_back_to_the_positions(tmp_path):
    files = {"tokenizer_config.json": {"model_max_length": 1000000000000000019884624838656}}
    config = {"architectures": ["BertModel"], "max_position_embeddings": 128}
    info = read_folder(_folder(tmp_path, config, files))
    assert (info.seq_len, info.seq_len_from) == (128, "config.json max_position_embeddings")


@pytest.mark.parametrize(
    "model_type, kind", [("Unigram", "sentencepiece (unigram)"), ("BPE", "bpe"), ("WordPiece", "wordpiece")]
)
def test_tokenizer_kind_from_tokenizer_json(tmp_path, model_type, kind):
    files = {"tokenizer.json": {"model": {"type": model_type}}}
    info = read_folder(_folder(tmp_path, {"architectures": ["BertModel"]}, files))
    assert info.tokenizer == kind and info.tokenizer_file == "tokenizer.json"


def test_sentence_transformers_cls_pooling_and_sharded_weights(tmp_path):
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    index = {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}
    files = {"modules.json": modules, "1_Pooling/config.json": {"pooling_mode_cls_token": True},
             "model.safetensors.index.json": index}  # fmt: skip
    folder = _folder(tmp_path, {"architectures": ["BertModel"]}, files)
    (folder / "model.safetensors").unlink()
    info = read_folder(folder)
    assert info.kind == FolderKind.SENTENCE_TRANSFORMERS and (info.pooling, info.normalize) == ("cls", False)
    assert info.weights[1:] == ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    assert path_format(folder) == "onnx"  # detected as a folder the ONNX route takes (after the export)


def test_hub_onnx_picks_model_onnx_and_weights_win(tmp_path):
    folder = tmp_path / "hub"
    (folder / "onnx").mkdir(parents=True)
    for name in ("model_O4.onnx", "model.onnx", "model_quantized.onnx"):
        (folder / "onnx" / name).write_bytes(b"")
    info = read_folder(folder)
    assert info.kind == FolderKind.HUB_ONNX and info.onnx_file == "onnx/model.onnx"
    assert "converting onnx/model.onnx (also onnx/model_O4.onnx, onnx/model_quantized.onnx" in info.notes[0]
    (folder / "config.json").write_text(json.dumps({"architectures": ["BertForSequenceClassification"]}))
    (folder / "model.safetensors").write_bytes(b"")
    weights = read_folder(folder)
    assert (
        weights.kind == FolderKind.TRANSFORMERS and "convert as they are with --onnx-file" in weights.notes[0]
    )
    chosen = read_folder(folder, Path("onnx/model_O4.onnx"))
    assert chosen.kind == FolderKind.HUB_ONNX and chosen.onnx_file == "onnx/model_O4.onnx"
