"""Keras sources with a WordPiece tokenizer: a BERT-style classifier with three int inputs.

The `keras_bert` fixture (tests/fixtures/make_keras_bert.py) takes input_ids, attention_mask and
token_type_ids; the tokenizer's outputs are bound to them by name for evaluation, the steps' training
data and the int8 calibration. Real tf_keras, tfmot and LiteRT; no mocks.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from toolchain.cli.main import app

FALLBACK = "SOFTMAX,MUL,ADD,SUB,DIV,EXP,ABS,NEG,MEAN,SQUARED_DIFFERENCE,RSQRT,SUM,SELECT_V2,BATCH_MATMUL"
pytestmark = pytest.mark.slow


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def _json(*args: str) -> dict:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout)


def _convert(src: Path, out: Path, *flags: str) -> dict:
    return _json(
        "convert", str(src / "model.keras"), "--tokenizer", str(src / "tokenizer.json"), "--test",
        str(src / "test.jsonl"), "--out", str(out), "--json", *flags,
    )  # fmt: skip


def _recipe(tmp: Path, src: Path, steps: str, quant: str) -> Path:
    path = tmp / "recipe.yaml"
    path.write_text(
        f"name: kbert\nseed: 0\nsource: {{path: {src / 'model.keras'}}}\n"
        f"data: {{train: {src / 'train.jsonl'}, val: {src / 'val.jsonl'}}}\n"
        f"steps:\n{steps}\nquantization: {quant}\n"
    )
    return path


def test_float32_matches_keras(keras_bert, tmp_path):
    report = _convert(keras_bert, tmp_path / "b", "-Q", "float32")
    assert report["tokenizer"]["kind"] == "wordpiece"
    vs = report["evaluation"]["vs_source_float"]
    assert vs["top1_agreement"] == 1.0
    assert vs["max_abs_score_diff"] < 1e-4
    assert (tmp_path / "b" / "tokenizer.json").is_file()


def test_prune_mixed_validate_package(keras_bert, tmp_path):
    """Full int8 collapses this model (7% agreement); mode mixed chooses its float ops after pruning."""
    steps = "  - {kind: prune, target_sparsity: 0.5, epochs: 1, batch_size: 64}"
    quant = "{mode: mixed, calibration_samples: 200}"
    report = _convert(
        keras_bert, tmp_path / "b", "--recipe", str(_recipe(tmp_path, keras_bert, steps, quant))
    )
    step = report["steps"][0]
    assert step["achieved_sparsity"] >= 0.45
    assert step["float_test_accuracy"] >= 0.85
    assert report["evaluation"]["vs_final_float"]["top1_agreement"] >= 0.97
    assert report["quantization"]["int8_mac_share"] >= 0.5  # measured 100%: only MAC-free ops kept float
    kept = report["quantization"]["mixed"]["kept_out_of_int8"]
    assert kept and all(r["reason"] in ("speed", "error") for r in kept)  # float islands, each with its why
    # (measured: 47 MAC-free ops float for speed, none for error: they alone meet the gate)
    assert all(r["type_damage_alone"] > 0 for r in kept if r["reason"] == "error")  # ranked by op type
    assert report["quantization"]["mixed"]["full_int8"]["agreement"] < 0.5  # what mixed repaired
    code, output = _cli("validate", str(tmp_path / "b"), "-d", "x86-host", "--json")
    assert code == 0, output
    code, output = _cli("package", str(tmp_path / "b"), "--format", "edge", "--out", str(tmp_path / "d"))
    assert code == 0, output


def test_lowrank(keras_bert, tmp_path):
    steps = "  - {kind: lowrank, param_reduction: 0.5, epochs: 1, batch_size: 64}"
    report = _convert(
        keras_bert, tmp_path / "b", "--recipe", str(_recipe(tmp_path, keras_bert, steps, "{mode: float32}"))
    )
    step = report["steps"][0]
    assert step["factorized_reduction"] > 0.3
    assert step["float_test_accuracy"] >= 0.85
    assert report["evaluation"]["vs_final_float"]["top1_agreement"] == 1.0


def test_vocab_prune_refused(keras_bert, tmp_path):
    recipe = _recipe(tmp_path, keras_bert, "  - {kind: vocab_prune, min_count: 2}", "{mode: float32}")
    code, output = _cli(
        "convert", "--recipe", str(recipe), "--tokenizer", str(keras_bert / "tokenizer.json"),
        "--out", str(tmp_path / "b"),
    )  # fmt: skip
    assert code == 2
    assert "vocab_prune" in output and "wordpiece" in output
    assert "Traceback" not in output


def test_vocab_trim(keras_bert, tmp_path):
    """The token Embedding keeps the kept pieces' rows; the build ships the trimmed tokenizer."""
    recipe = _recipe(tmp_path, keras_bert, "  - {kind: vocab_trim}", "{mode: float32}")
    report = _convert(keras_bert, tmp_path / "b", "--recipe", str(recipe))
    step = report["steps"][0]
    assert step["kind"] == "vocab_trim" and step["table"] == "token_embedding"
    assert step["vocab_after"] == report["tokenizer"]["vocab_size"] < step["vocab_before"]
    assert step["effect"]["max_abs_diff_unchanged"] < 1e-6  # the same rows through the new ids
    assert step["single_chars"] == "scripts" and step["single_char_scripts"] == ["LATIN"]  # English queries
    assert (
        step["float_test_accuracy"] >= report["evaluation"]["vs_source_float"]["reference"]["accuracy"] - 0.01
    )
    assert report["evaluation"]["vs_final_float"]["top1_agreement"] == 1.0
    vocab = (tmp_path / "b" / "vocab.txt").read_text("utf-8").splitlines()
    assert len(vocab) == step["vocab_after"] and vocab[0] == "[PAD]"


def test_multi_output_model_is_one_line_error(keras_bert, tmp_path):
    from tests.fixtures.make_keras_bert import build_model
    from toolchain.base.tfenv import keras

    model = build_model(50, 22)
    two = keras().Model(model.inputs, [model.output, model.get_layer("pooler").output])
    two.save(tmp_path / "two.keras")
    (tmp_path / "labels.txt").write_text((keras_bert / "labels.txt").read_text())
    code, output = _cli(
        "convert", str(tmp_path / "two.keras"), "--tokenizer", str(keras_bert / "tokenizer.json"),
        "-Q", "float32", "--out", str(tmp_path / "b"),
    )  # fmt: skip
    assert code == 2
    assert "2 outputs" in output and "Traceback" not in output


def test_qat_with_float_fallback(keras_bert, tmp_path):
    """QAT fake-quantizes the Dense layers (MultiHeadAttention, LayerNorm, embeddings stay float)."""
    steps = "  - {kind: qat, epochs: 1, batch_size: 64}"
    quant = f"{{mode: int8, calibration_samples: 200, float_fallback_ops: [{FALLBACK}]}}"
    report = _convert(
        keras_bert, tmp_path / "b", "--recipe", str(_recipe(tmp_path, keras_bert, steps, quant))
    )
    step = report["steps"][0]
    assert {"ffn_in", "ffn_out", "pooler", "intent"} <= set(step["annotated_layers"])
    assert "attention_mask_3d" not in step["annotated_layers"]  # an int tensor: nothing to fake-quantize
    assert step["float_test_accuracy"] >= 0.85
    assert report["evaluation"]["vs_final_float"]["top1_agreement"] >= 0.97


def test_distill_of_a_multi_input_teacher_is_refused(keras_bert, tmp_path):
    steps = "  - {kind: distill, student: {embed_dim: 16, layers: ['dense:32', mean_pool]}, epochs: 1}"
    recipe = _recipe(tmp_path, keras_bert, steps, "{mode: float32}")
    code, output = _cli(
        "convert", "--recipe", str(recipe), "--tokenizer", str(keras_bert / "tokenizer.json"),
        "--out", str(tmp_path / "b"),
    )  # fmt: skip
    assert code == 2
    assert "teacher takes 3 inputs" in output and "Traceback" not in output


@pytest.mark.parametrize("kind", ["plain", "subclassed"])
def test_non_functional_savedmodel_is_one_line_error(keras_bert, tmp_path, kind):
    from toolchain.base.tfenv import keras, tf

    t, k = tf(), keras()
    path = tmp_path / kind
    if kind == "plain":

        class Plain(t.Module):
            @t.function(input_signature=[t.TensorSpec([None, 32], t.int32)])
            def __call__(self, x):
                return t.cast(x, t.float32)[:, :22]

        t.saved_model.save(Plain(), str(path))
    else:

        class Sub(k.Model):
            def __init__(self) -> None:
                super().__init__()
                self.emb, self.head = k.layers.Embedding(50, 8), k.layers.Dense(22, activation="softmax")

            def call(self, x):
                return self.head(t.reduce_mean(self.emb(x), axis=1))

        model = Sub()
        model(t.zeros([1, 32], t.int32))
        model.save(str(path))
    (path / "labels.txt").write_text((keras_bert / "labels.txt").read_text())
    code, output = _cli(
        "convert", str(path), "--trust-model-code", "--tokenizer", str(keras_bert / "tokenizer.json"),
        "-Q", "float32", "--out", str(tmp_path / "b"),
    )  # fmt: skip
    assert code == 2
    assert "not a functional Keras model with static inputs" in output
    assert len(output.strip().splitlines()) == 1
