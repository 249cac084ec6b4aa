"""Issue 24: a Hugging Face folder is read as data, never run as code.

Hand-made folders (nothing is exported: every refusal comes before PyTorch starts): custom code asked for
by config.json or tokenizer_config.json (auto_map), a sentence-transformers module that is not one of its
own, pooling modes edgecomp does not reproduce, an architecture it does not take, malformed JSON, and a
pickled pytorch_model.bin whose unpickling would write a marker file: refused without --trust-model-code,
and the marker proves nothing ran. The accepted side (a real pickle converts with the flag) is in
tests/e2e/test_hub_folders.py.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from toolchain.base.errors import InputFileError, UntrustedModelError
from toolchain.cli.main import app
from toolchain.sources.hub_folder import read_folder

DATA = Path(__file__).resolve().parents[2] / "examples" / "shopping_intent" / "data"
BERT_CONFIG = {"architectures": ["BertForSequenceClassification"], "model_type": "bert", "vocab_size": 10}


class _Payload:
    """Unpickling this calls Path.write_text(marker): what a hostile pytorch_model.bin does."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "ran"))


def _folder(tmp_path: Path, config: dict | str = BERT_CONFIG, weights: str = "model.safetensors") -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    text = config if isinstance(config, str) else json.dumps(config)
    (folder / "config.json").write_text(text, encoding="utf-8")
    (folder / weights).write_bytes(b"not read by the checks")
    return folder


def _convert(folder: Path, tmp_path: Path, *flags: str):
    out = tmp_path / "build" / "m"
    args = ["convert", str(folder), "--test", str(DATA / "test.jsonl"), "--out", str(out), *flags]
    return CliRunner().invoke(app, args), out


def _one_line(result) -> str:
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.mark.parametrize("where", ["config.json", "tokenizer_config.json"])
def test_custom_code_is_refused_even_with_the_trust_flag(tmp_path, where):
    folder = _folder(tmp_path, {**BERT_CONFIG, "auto_map": {"AutoModel": "modeling_evil.EvilModel"}}
                     if where == "config.json" else BERT_CONFIG)  # fmt: skip
    if where == "tokenizer_config.json":
        (folder / where).write_text(json.dumps({"auto_map": {"AutoTokenizer": ["tok_evil.Tok", None]}}))
    (folder / "modeling_evil.py").write_text("raise SystemExit('ran')\n")
    for flags in ((), ("--trust-model-code",)):
        result, out = _convert(folder, tmp_path, *flags)
        assert result.exit_code == 2, result.output
        line = _one_line(result)
        assert "auto_map" in line and where in line and "never runs a model's own Python code" in line
        assert not out.exists()
    result = CliRunner().invoke(app, ["inspect", str(folder)])
    assert result.exit_code == 2 and "auto_map" in result.output


def test_pickle_weights_refused_without_the_flag_and_nothing_runs(tmp_path):
    marker = tmp_path / "MARK"
    folder = _folder(tmp_path, weights="pytorch_model.bin")
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps(_Payload(marker)))
    pickle.loads((folder / "pytorch_model.bin").read_bytes())  # the payload is live: loading it runs
    assert marker.exists()
    marker.unlink()
    result, out = _convert(folder, tmp_path)
    assert result.exit_code == 2, result.output
    line = _one_line(result)
    assert "pytorch_model.bin is a pickle" in line and "--trust-model-code" in line
    assert not marker.exists() and not out.exists()
    with pytest.raises(UntrustedModelError):
        read_folder(folder)


def test_safetensors_beside_a_pickle_needs_no_flag(tmp_path):
    folder = _folder(tmp_path)
    (folder / "pytorch_model.bin").write_bytes(b"never read")
    info = read_folder(folder)
    assert info.weights == ["model.safetensors"] and info.weights_format == "safetensors"


@pytest.mark.parametrize(
    "modules, message",
    [
        ([{"idx": 0, "path": "", "type": "my_package.EvilModule"}], "custom module code is never run"),
        ([{"idx": 0, "path": "2_Dense", "type": "sentence_transformers.models.Dense"}], "not exported"),
        ("[{]", "is not valid JSON"),
        ({"idx": 0}, "expected a list of modules"),
    ],
)
def test_sentence_transformers_modules_checked(tmp_path, modules, message):
    folder = _folder(tmp_path, {**BERT_CONFIG, "architectures": ["BertModel"]})
    text = modules if isinstance(modules, str) else json.dumps(modules)
    (folder / "modules.json").write_text(text)
    result, out = _convert(folder, tmp_path)
    assert result.exit_code == 2, result.output
    assert message in _one_line(result) and not out.exists()


@pytest.mark.parametrize("mode", ["pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken", None])
def test_pooling_modes_edgecomp_cannot_reproduce(tmp_path, mode):
    folder = _folder(tmp_path, {**BERT_CONFIG, "architectures": ["BertModel"]})
    modules = [{"idx": 0, "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]  # fmt: skip
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({mode: True} if mode else {}))
    with pytest.raises(InputFileError, match="is not supported"):
        read_folder(folder)


@pytest.mark.parametrize("config", ["{not json", '["a list"]'])
def test_malformed_config_is_one_line(tmp_path, config):
    folder = _folder(tmp_path, config)
    result, out = _convert(folder, tmp_path)
    assert result.exit_code == 2, result.output
    assert "config.json" in _one_line(result) and not out.exists()


def test_architecture_that_is_neither_classifier_nor_encoder(tmp_path):
    folder = _folder(tmp_path, {**BERT_CONFIG, "architectures": ["BertForMaskedLM"]})
    with pytest.raises(InputFileError, match="BertForMaskedLM is neither a sequence classifier"):
        read_folder(folder)


def test_onnx_file_must_be_inside_the_folder(tmp_path):
    folder = _folder(tmp_path)
    (tmp_path / "outside.onnx").write_bytes(b"x")
    with pytest.raises(InputFileError, match="is not inside"):
        read_folder(folder, Path("../outside.onnx"))
    with pytest.raises(InputFileError, match="no such .onnx"):
        read_folder(folder, Path("onnx/missing.onnx"))


def test_empty_folder_names_what_a_model_folder_holds(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputFileError, match="holds no model"):
        read_folder(tmp_path / "empty")


def test_onnx_file_flag_names_what_the_folder_has(tmp_path):
    folder = tmp_path / "hub"
    (folder / "onnx").mkdir(parents=True)
    for name in ("model.onnx", "model_O4.onnx"):
        (folder / "onnx" / name).write_bytes(b"not read")
    result, out = _convert(folder, tmp_path, "--onnx-file", "onnx/model_quantized.onnx")
    assert result.exit_code == 2, result.output
    line = _one_line(result)
    assert "no such .onnx" in line and "onnx/model.onnx, onnx/model_O4.onnx" in line and not out.exists()
    result, _ = _convert(tmp_path / "hub" / "onnx" / "model.onnx", tmp_path, "--onnx-file", "x.onnx")
    assert result.exit_code == 2 and "is not a folder" in _one_line(result)


def test_a_folder_without_weights_says_what_a_model_folder_holds(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(BERT_CONFIG))
    (folder / "tokenizer.json").write_text("{}")
    result, out = _convert(folder, tmp_path)
    assert result.exit_code == 2, result.output
    assert "holds no model" in _one_line(result) and "model.safetensors" in result.output


def _ort_quantized_graph():  # noqa: ANN202 - onnx.ModelProto
    """A tiny graph in the form onnxruntime's quantize_dynamic writes a MatMul (DynamicQuantizeLinear ->
    MatMulInteger on int8 weights -> Cast -> Mul by the scales), made by hand: importing
    onnxruntime.quantization takes seconds."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weights = [
        numpy_helper.from_array(rng.standard_normal((10, 8)).astype(np.float32), "emb"),
        numpy_helper.from_array(rng.integers(-127, 128, (8, 4)).astype(np.int8), "w_q"),
        numpy_helper.from_array(np.array(0, np.int8), "w_zero"),
        numpy_helper.from_array(np.array(0.01, np.float32), "w_scale"),
    ]
    nodes = [
        helper.make_node("Gather", ["emb", "input_ids"], ["h"]),
        helper.make_node("DynamicQuantizeLinear", ["h"], ["h_q", "h_scale", "h_zero"]),
        helper.make_node("MatMulInteger", ["h_q", "w_q", "h_zero", "w_zero"], ["m_int"]),
        helper.make_node("Cast", ["m_int"], ["m_cast"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["h_scale", "w_scale"], ["scale"]),
        helper.make_node("Mul", ["m_cast", "scale"], ["m"]),
        helper.make_node("ReduceMean", ["m"], ["logits"], axes=[1], keepdims=0),
    ]
    ids = helper.make_tensor_value_info("input_ids", TensorProto.INT64, [1, 8])
    logits = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 4])
    graph = helper.make_graph(nodes, "tiny", [ids], [logits], weights)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_an_onnxruntime_quantized_model_is_refused_naming_the_float_one(tmp_path):
    """The Hub's onnx/model_quantized.onnx (onnxruntime quantize_dynamic: DynamicQuantizeLinear,
    MatMulInteger) would fail in onnx2tf minutes later on an integer BatchMatMulV2 that needs Flex
    (measured on the hub-onnx fixture: 2.5 minutes, then an error naming BatchMatMulV2): refused before
    onnx2tf, naming model.onnx."""
    import onnx

    folder = tmp_path / "hub"
    (folder / "onnx").mkdir(parents=True)
    (folder / "onnx" / "model.onnx").write_bytes(b"the float export: not read")
    onnx.save(_ort_quantized_graph(), folder / "onnx" / "model_quantized.onnx")
    for source, flags in (
        (folder, ("--onnx-file", "onnx/model_quantized.onnx")),
        (folder / "onnx" / "model_quantized.onnx", ()),
    ):
        result, out = _convert(source, tmp_path, *flags)
        assert result.exit_code == 3, result.output
        line = _one_line(result)
        assert (
            "onnx/model_quantized.onnx is already quantized by onnxruntime "
            "(DynamicQuantizeLinear, MatMulInteger)" in line
        ), line
        assert "convert the float onnx/model.onnx (--onnx-file onnx/model.onnx" in line and not out.exists()


def test_adapt_lowercase_takes_only_a_folder_classifier(tmp_path):
    """--adapt-lowercase fine-tunes PyTorch weights: an .onnx file has none, refused before anything runs."""
    import onnx

    onnx.save(_ort_quantized_graph(), tmp_path / "model.onnx")
    result, out = _convert(tmp_path / "model.onnx", tmp_path, "--adapt-lowercase")
    assert result.exit_code == 2, result.output
    line = _one_line(result)
    assert "source.adapt_lowercase fine-tunes a Hugging Face folder's classifier" in line, line
    assert "drop --adapt-lowercase" in line and not out.exists()
