"""Pieces of packaging without MediaPipe: the exact DEQUANTIZE edit, tie-aware parity, fallback threshold."""

from __future__ import annotations

import numpy as np
import pytest

from converters.tflite_edit import dequantized_outputs
from converters.tflite_model import parse_tflite
from toolchain.package.parity import compare_top1, server_fallback


@pytest.mark.slow
def test_dequantized_outputs_are_exactly_the_int8_scores(tiny_int8):
    from devices.hostrun import HostRunner

    res = tiny_int8  # the shared build (conftest): read only
    int8 = res.model_path.read_bytes()
    edited, changed = dequantized_outputs(int8, tie_break=False)
    model = parse_tflite(edited)
    assert changed == [model.tensors[model.outputs[0]].name]
    assert model.tensors[model.outputs[0]].dtype == "FLOAT32" and model.opcodes["DEQUANTIZE"] == 2
    a, b = HostRunner(int8), HostRunner(edited)
    seq_len = int(a.inputs[0]["shape"][-1])
    ids = np.random.default_rng(0).integers(0, 60, (40, seq_len)).astype(np.int32)
    assert np.array_equal(a.scores({"input_ids": ids}), b.run({"input_ids": ids}))
    again, none = dequantized_outputs(edited, tie_break=False)  # float outputs: untouched
    assert again == edited and none == []
    # a float output made by DEQUANTIZE of int8 (onnx2tf's float-I/O int8 builds) still ties: tie-break
    broken, names = dequantized_outputs(edited)
    assert names == [f"{changed[0]} (tie-break)"] and parse_tflite(broken).op_counts.get("ADD") == 1
    assert dequantized_outputs(broken) == (broken, [])  # ends in ADD now: nothing more to do


@pytest.mark.slow
def test_tie_break_ranks_the_lowest_index_first_and_moves_scores_under_a_quarter_step(tiny_int8):
    from converters.tflite_edit import tie_break_eps
    from devices.hostrun import HostRunner

    res = tiny_int8  # the shared build (conftest): read only
    int8 = res.model_path.read_bytes()
    edited, _ = dequantized_outputs(int8)
    model = parse_tflite(edited)
    assert model.op_counts.get("ADD") == 1 and model.tensors[model.outputs[0]].dtype == "FLOAT32"
    a, b = HostRunner(int8), HostRunner(edited)
    step = a.quantization[0]
    seq_len = int(a.inputs[0]["shape"][-1])
    n = a.scores({"input_ids": np.zeros((1, seq_len), np.int32)}).shape[1]
    assert tie_break_eps(step, n) * (n - 1) < step / 4
    ids = np.random.default_rng(1).integers(0, 60, (200, seq_len)).astype(np.int32)
    ties = 0
    for q, f in zip(a.scores({"input_ids": ids}), b.run({"input_ids": ids}), strict=True):
        assert np.all(np.abs(f - q) <= tie_break_eps(step, n) * (n - 1) + 1e-7)
        # MediaPipe sorts by score: with the bias, its first label is argmax's (lowest index among ties)
        assert int(np.argsort(-f, kind="stable")[0]) == int(np.argmax(q))
        ties += int((q == q.max()).sum() > 1)
    # also on a synthetic exact tie: bias decides for the lower index, whatever the sort
    bias = np.arange(n - 1, -1, -1, dtype=np.float32) * np.float32(tie_break_eps(step, n))
    tied = np.zeros(n, np.float32)
    tied[[1, 3]] = 0.5
    assert int(np.argmax(tied + bias)) == 1 and int(np.argsort(-(tied + bias))[0]) == 1


def test_compare_top1_separates_ties_from_real_disagreements():
    labels = ["a", "b", "c"]
    tc = np.array([[0.5, 0.5, 0.0], [0.1, 0.8, 0.1], [0.7, 0.2, 0.1]], dtype=np.float32)
    mp = [
        [(1, 0.5), (0, 0.5), (2, 0.0)],  # tie flipped: b first
        [(1, 0.8), (0, 0.1), (2, 0.1)],  # agrees
        [(1, 0.6), (0, 0.3), (2, 0.1)],  # real disagreement, different scores
    ]
    p = compare_top1("lowercased", ["q1", "q2", "q3"], tc, mp, labels)
    assert p.agree == 1 and p.ties == 1
    assert [(d.query, d.tie) for d in p.disagreements] == [("q1", True), ("q3", False)]
    assert p.agreement_up_to_ties == pytest.approx(2 / 3)
    assert p.max_abs_score_diff == pytest.approx(0.4)


def test_server_fallback_picks_the_lowest_threshold_meeting_the_target():
    # confidences 0.9 (right), 0.8 (right), 0.6 (wrong), 0.55 (right)
    scores = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.55, 0.45]], dtype=np.float32)
    y = np.array([0, 1, 1, 0])
    fb = server_fallback(scores, y, target=0.95, split="val")
    assert fb.threshold == pytest.approx(0.8) and fb.coverage == 0.5 and fb.accuracy_above == 1.0
    fb = server_fallback(scores, y, target=0.75, split="val")
    assert fb.threshold == pytest.approx(0.55) and fb.coverage == 1.0
    none = server_fallback(scores, np.array([1, 0, 1, 1]), target=0.99, split="val")
    assert none.threshold is None and "no threshold reaches" in none.note


HANGS = """
import time, edgecomp_wire as wire
wire.serve({"classify": lambda args: time.sleep(60)}, {"mediapipe": "fake"})
"""
CRASHES = """
import os, sys, edgecomp_wire as wire

def classify(args):
    sys.stderr.write("Check failed: something native\\n")
    sys.stderr.flush()
    os.abort()

wire.serve({"classify": classify}, {"mediapipe": "fake"})
"""
HALF_LINE = """
import time, edgecomp_wire as wire

def classify(args):
    wire.open_channel().out.write('{"id": 1, "ok": tr')
    wire.open_channel().out.flush()
    time.sleep(60)

wire.serve({"classify": classify}, {"mediapipe": "fake"})
"""


@pytest.mark.parametrize(
    ("script", "message"),
    [
        (HANGS, "timed out after 2 s"),
        (HALF_LINE, "timed out after 2 s"),  # a half-written reply cannot block the reader
        (CRASHES, "crashed with SIGABRT while classifying queries.*Check failed: something native"),
    ],
)
def test_a_hanging_or_crashing_mediapipe_child_is_a_clean_error(tmp_path, script, message):
    """The session's failure handling (the real child needs the MediaPipe env: tests/e2e/test_package.py)."""
    import sys
    from pathlib import Path

    from converters.metadata import MediaPipeError, MediaPipeSession, mediapipe_spec
    from toolchain.base.venvs import Venv

    child = tmp_path / "child.py"
    child.write_text(script)
    env = Venv(Path(sys.prefix), mediapipe_spec())  # any interpreter runs these stdlib-only children
    with (
        MediaPipeSession(env, timeout_s=2, script=child) as session,
        pytest.raises(MediaPipeError, match=message),
    ):
        session.classify(tmp_path / "m.tflite", ["a query"])


def test_tied_queries_always_go_to_the_server():
    # query 2's top score is shared by two labels: never answered on device, whatever the threshold.
    scores = np.array([[0.9, 0.1], [0.5, 0.5], [0.2, 0.8]], dtype=np.float32)
    fb = server_fallback(scores, np.array([0, 0, 1]), target=0.99, split="val")
    assert fb.tied_to_server == 1
    assert fb.threshold == pytest.approx(0.8) and fb.coverage == pytest.approx(2 / 3, abs=1e-4)
