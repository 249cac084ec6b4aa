"""The mixed search's mechanics on the tiny project's model (calibrated once, searched in the library).

The aim lies halfway between the gate and a perfect score; a plan that misses the aim but meets the gate is
the answer (with how far it is from the aim), and only a gate no candidate meets is a refusal.
"""

from __future__ import annotations

import re
from types import SimpleNamespace

import numpy as np
import pytest

from toolchain.base.errors import GateFailed
from toolchain.base.types import Task
from toolchain.quantization.mixed import SearchData, search
from toolchain.recipe.schema import EvaluationSpec


@pytest.fixture(scope="module")
def tiny_search(tiny_project) -> SimpleNamespace:
    """The tiny classifier calibrated on 64 train queries; its test queries and float outputs."""
    from converters.keras_tflite import calibrate_keras
    from toolchain import data as d
    from toolchain.base.tfenv import keras

    model = keras().models.load_model(tiny_project.model)
    tok = d.Tokenizer(d.load_vocab(tiny_project.vocab), tiny_project.seq_len)
    calibrated = calibrate_keras(
        model, [[row] for row in tok.encode_batch(d.load_queries(tiny_project.train).texts[:64])]
    )
    ids = tok.encode_batch(d.load_queries(tiny_project.test).texts)
    data = SearchData({"input_ids": ids}, model.predict(ids, verbose=0), None, "test")
    return SimpleNamespace(calibrated=calibrated, data=data)


@pytest.mark.slow
def test_a_plan_that_meets_the_gate_but_not_the_aim_is_returned_with_its_shortfall(tiny_search) -> None:
    def run(gate: float):
        return search(
            tiny_search.calibrated, tiny_search.data, EvaluationSpec(min_cosine=gate), Task.EMBEDDING
        )

    with pytest.raises(GateFailed, match="cannot meet the gate") as err:
        run(0.9999999)  # int8 outputs alone keep the tiny model further than this from float
    best = float(re.search(r"'mean_cosine': ([0-9.e-]+)", err.value.message).group(1))
    gate = best - (1 - best) / 2  # met by the best candidate; its aim (1 + gate) / 2 is not
    plan = run(gate)
    assert plan.metrics is not None and plan.metrics.mean_cosine >= best >= gate
    (miss,) = plan.aim_missed
    assert miss.metric == "min_cosine" and miss.gate == gate and miss.reached == best
    assert miss.aim == pytest.approx((1 + gate) / 2) and miss.missed_by == pytest.approx(miss.aim - best)
    section = plan.section().to_json()
    assert section["gates"] == {"min_cosine": gate, "source": "recipe"}
    assert section["aim_missed"][0]["reached"] == best
    assert np.isclose(section["targets"]["min_cosine"], (1 + gate) / 2)
    # ranked per op type (FULLY_CONNECTED here), what it cost and how much memory it took, in the report
    assert "FULLY_CONNECTED" in section["damage_by_op_type"] and section["int8_mac_floor"] == 0.9
    assert section["search_seconds"] > 0 and section["runtime_peak_memory_mb"] > 0


@pytest.mark.slow
def test_equalized_fc_outputs_keep_the_float_model_and_quantize_to_int8_layers(tiny_search) -> None:
    from converters.calibrated import quantize
    from converters.equalize import EQUALIZED_SUFFIX, equalize_outputs, fc_outputs
    from converters.tflite_model import parse_tflite
    from devices.activations import channel_ranges
    from devices.hostrun import HostRunner

    cal, feeds = tiny_search.calibrated, tiny_search.data.feeds
    names = fc_outputs(cal)
    ranges = channel_ranges(cal, {k: v[:16] for k, v in feeds.items()}, names)
    assert set(ranges) == set(names) and len(names) == 2  # hidden and intent Dense layers
    eq, changed = equalize_outputs(cal, ranges, min_ratio=0.0)
    assert set(changed) == set(names) and all(s >= 1 for s in changed.values())
    with HostRunner(cal, threads=1) as a, HostRunner(eq, threads=1) as b:
        before, after = a.scores(feeds), b.scores(feeds)
    assert np.abs(before - after).max() < 1e-5  # exact in float: weights / s, then * s
    info = parse_tflite(quantize(eq, sorted(changed)))  # the equalizing MULs kept float
    by_out = {info.tensors[op.outputs[0]].name: op for op in info.ops if op.outputs}
    for name in names:
        fc, mul = by_out[name + EQUALIZED_SUFFIX], by_out[name]
        assert fc.op == "FULLY_CONNECTED" and info.tensors[fc.inputs[0]].dtype == "INT8"
        assert mul.op == "MUL" and info.tensors[mul.outputs[0]].dtype == "FLOAT32"
