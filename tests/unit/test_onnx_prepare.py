"""converters/onnx_prepare.py on hand-built ONNX graphs: the mask constant is clipped only when exact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from converters.onnx_prepare import find_mask_constants, prepare_for_int8


def _attention(path: Path, mask_value: float, guard: bool = True) -> Path:
    """scores (1x4) + Where(mask == 0, mask_value, 0) -> Softmax [-> Where(IsNaN(p), 0, p)] -> MatMul."""
    nodes = [
        helper.make_node("Equal", ["mask", "zero_i"], ["masked"]),
        helper.make_node("Where", ["masked", "neg", "zero_f"], ["bias"]),
        helper.make_node("Add", ["scores", "bias"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["p"], axis=-1),
    ]
    last = "p"
    if guard:
        nodes += [
            helper.make_node("IsNaN", ["p"], ["nan"]),
            helper.make_node("Where", ["nan", "zero_f", "p"], ["p_safe"]),
        ]
        last = "p_safe"
    nodes.append(helper.make_node("MatMul", [last, "values"], ["out"]))
    inits = [
        numpy_helper.from_array(np.array(0, np.int64), "zero_i"),
        numpy_helper.from_array(np.array(mask_value, np.float32), "neg"),
        numpy_helper.from_array(np.array(0.0, np.float32), "zero_f"),
        numpy_helper.from_array(np.arange(8, dtype=np.float32).reshape(4, 2), "values"),
    ]
    graph = helper.make_graph(
        nodes,
        "attn",
        [
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 4]),
            helper.make_tensor_value_info("mask", TensorProto.INT64, [1, 4]),
        ],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 2])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _feeds(n: int, spread: float = 3.0) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(n):
        mask = np.ones(4, np.int64)
        mask[rng.integers(1, 4) :] = 0  # at least one position stays unmasked
        rows.append({"scores": (rng.normal(size=4) * spread).astype(np.float32), "mask": mask})
    return rows


def test_minus_inf_mask_is_clipped_and_nan_guard_removed(tmp_path: Path) -> None:
    src = _attention(tmp_path / "a.onnx", float("-inf"))
    assert find_mask_constants(onnx.load(str(src)))[0] == ["neg"]
    out, report = prepare_for_int8(src, tmp_path / "prepared.onnx", _feeds(64))
    assert out == tmp_path / "prepared.onnx" and report["changed"]
    lo, hi = report["attention_score_range"]
    assert report["mask_constants"] == [
        {"tensor": "neg", "from": "-inf", "to": -float(np.ceil(hi - lo + 16))}
    ]
    assert report["nan_guards_removed"] == 1 and report["float_effect"]["min_cosine"] >= 1 - 1e-6
    ops = [n.op_type for n in onnx.load(str(out)).graph.node]
    assert "IsNaN" not in ops and ops.count("Where") == 1


def test_clipping_that_would_change_outputs_keeps_the_original_graph(tmp_path: Path) -> None:
    """A query with every position masked: the NaN guard gives 0, a finite bound would give the mean of the
    values instead. Measured on the queries, so the original graph is kept and the report says why."""
    src = _attention(tmp_path / "b.onnx", float("-inf"))
    rows = _feeds(16)
    rows[3] = {"scores": rows[3]["scores"], "mask": np.zeros(4, np.int64)}
    out, report = prepare_for_int8(src, tmp_path / "prepared.onnx", rows)
    assert out == src and not report["changed"] and "kept the original graph" in report["note"]
    assert report["float_effect"]["min_cosine"] < 0.5 and not (tmp_path / "prepared.onnx").exists()


def test_a_graph_without_a_mask_is_left_alone(tmp_path: Path) -> None:
    src = _attention(tmp_path / "c.onnx", -1.0)  # a small constant is not a mask
    out, report = prepare_for_int8(src, tmp_path / "prepared.onnx", _feeds(8))
    assert out == src and report == {"changed": False, "note": "no additive attention-mask constant found"}
