"""QAT and pruning-preserving QAT: real tfmot wrappers, int8 export, sparsity kept, float layers reported."""

import numpy as np
import pytest

from toolchain.recipe.compose import recipe_from_dict
from toolchain.recipe.steps import QATStep

pytestmark = pytest.mark.slow


def test_pqat_keeps_sparsity_into_the_int8_tflite(tiny_project):
    from toolchain.pipeline import build
    from toolchain.steps.prune import tflite_weight_sparsity

    steps = [{"kind": "prune", "target_sparsity": 0.7, "epochs": 3}, {"kind": "qat", "epochs": 1}]
    res = build(recipe_from_dict(tiny_project.recipe_dict(name="pqat", steps=steps)))
    qat = res.report.to_json()["steps"][1]
    assert qat["scheme"].startswith("Default8BitPrunePreserveQuantizeScheme")
    assert set(qat["annotated_layers"]) >= {"hidden", "intent"}
    assert {"embedding", "conv"} <= set(qat["float_during_qat"]) and "embedding" in qat["float_note"]
    assert abs(qat["sparsity_after"] - 0.7) <= 0.01
    assert abs(tflite_weight_sparsity(res.model_path.read_bytes()) - 0.7) <= 0.01
    assert res.report.to_json()["quantization"]["non_int8_weight_ops"] == []
    assert res.report.to_json()["evaluation"]["vs_source_float"]["converted"]["accuracy"] >= 0.85
    assert any("left float during QAT" in w for w in res.report.to_json()["warnings"])


def test_plain_qat_on_a_dense_model(tiny_project):
    from toolchain.pipeline import build

    res = build(recipe_from_dict(tiny_project.recipe_dict(name="qat", steps=[{"kind": "qat", "epochs": 1}])))
    qat = res.report.to_json()["steps"][0]
    assert qat["scheme"] == "Default8BitQuantizeScheme" and qat["sparsity_before"] < 0.05
    assert res.report.to_json()["evaluation"]["vs_source_float"]["converted"]["accuracy"] >= 0.9


def test_attention_and_layernorm_stay_float_without_a_crash():
    from converters.keras_tflite import keras_to_tflite
    from converters.tflite_model import non_int8_weight_ops, parse_tflite
    from toolchain.base.progress import SilentProgress
    from toolchain.base.tfenv import keras, seed_everything
    from toolchain.steps import qat
    from toolchain.steps.base import StepContext

    seed_everything(0)
    k = keras()
    inp = k.Input((8,), dtype="int32")
    x = k.layers.Embedding(30, 8, name="embedding")(inp)
    x = k.layers.MultiHeadAttention(2, 4, name="mha")(x, x)
    x = k.layers.LayerNormalization(name="norm")(x)
    x = k.layers.GlobalAveragePooling1D(name="pool")(x)
    model = k.Model(inp, k.layers.Dense(3, activation="softmax", name="intent")(x))
    ids = np.random.default_rng(0).integers(0, 30, size=(96, 8)).astype(np.int32)
    ctx = StepContext(ids, ids[:, 1] % 3, None, None, ["a", "b", "c"], 0, SilentProgress())
    result = qat.run(QATStep(epochs=1, batch_size=32), model, ctx)
    assert result.report["float_during_qat"] == ["embedding", "mha", "norm"]
    assert "mha" in result.report["float_note"] and "norm" in result.warnings[0]
    info = parse_tflite(keras_to_tflite(result.model, "int8", [[row] for row in ids[:40]]))
    assert non_int8_weight_ops(info) == [] and "FULLY_CONNECTED" in info.op_counts
