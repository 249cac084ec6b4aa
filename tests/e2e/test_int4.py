"""Mode int4 on the tiny project, with the real LiteRT Quantizer (its own locked env, a child) and real
runtimes: ai-edge-litert 2.3.0 runs the 4-bit weights; tflite-runtime 2.14.0 (a board profile on x86, so
no QEMU) has no int4 DEQUANTIZE, so validate names it and the search never picks int4 when that board is a
target. The numbers on the example (size beside int8, agreement, latency, MediaPipe) are in
benchmarks/bench_int4.py."""

from __future__ import annotations

import pytest
import yaml

from converters.tflite_model import read_tflite

pytestmark = pytest.mark.slow  # two tiny conversions, each with an int4 search

BOARD = {
    "schema_version": 1,
    "name": "x86-tflite214",
    "description": "An x86 box on the legacy tflite-runtime 2.14.0 (the ARM board's runtime, native here).",
    "arch": "x86_64",
    "cpu": "host",
    "runtime": "tflite-runtime",
    "runtime_version": "2.14.0",
    "threads": 1,
    "xnnpack": True,
    "budgets": {"model_size_kb": 4096},
}


def _int4_build(tiny_project, out, devices: list[str], blockwise: bool = False, **int4):
    from toolchain.pipeline import build
    from toolchain.recipe.compose import recipe_from_dict

    spec = tiny_project.recipe_dict(
        name=f"int4-{devices[0]}",
        quantization={
            "mode": "int4",
            "int4": {"devices": devices, "blockwise": blockwise, **int4},
            "calibration_samples": 50,  # rounding gptq: the queries whose layer inputs it rounds by
            "min_calibration_samples": 50,
        },
        evaluation={"min_agreement": 0.98},
        output={"dir": str(out)},
    )
    return build(recipe_from_dict(spec))


def test_int4_goes_to_4_bits_where_the_runtime_runs_it_and_validate_names_the_one_that_cannot(
    tiny_project, tmp_path, monkeypatch
):
    from devices.profiles.schema import select_profiles
    from toolchain.device_stages import validate_target

    boards = tmp_path / "boards"
    boards.mkdir()
    (boards / "x86-tflite214.yaml").write_text(yaml.safe_dump(BOARD))
    monkeypatch.setenv("EDGECOMP_PROFILES", str(boards))

    # GPTQ rounding (on the calibration queries) and 8-bit dense weights in the hybrid kernel
    four = _int4_build(
        tiny_project, tmp_path / "b", ["x86-host"], blockwise=True, rounding="gptq", hybrid_int8=True
    )
    q = four.report.quantization.int4
    assert q is not None and q.int4_allowed and q.devices == {"x86-host": None} and q.quantizer == "0.10.0"
    assert q.rounding == "gptq" and q.gptq_queries and four.report.quantization.calibration_queries
    assert {w.width for w in q.weights if w.op == "FULLY_CONNECTED"} <= {
        "int4",
        "int4_block32",
        "int8_hybrid",
    }
    assert q.chosen is not None and q.chosen.agreement >= 0.99  # the search's aim: halfway to perfect
    widths = {w.weight: w.width for w in q.weights}
    assert "int4" in set(widths.values()) or "int4_columns" in set(widths.values())
    assert {w.table for w in q.weights} == {True, False}  # the embedding table and the dense weights
    fc = [w for w in q.weights if w.op == "FULLY_CONNECTED"]  # 32 inputs each: blockwise is measured too
    assert fc and all(set(w.damage_by_width) == {"int4", "int4_block32"} for w in fc)
    for w in fc:  # each takes a 4-bit width that damaged least alone (or went back to 8 bits)
        assert w.width == "int8_hybrid" or w.damage_by_width[w.width] == min(w.damage_by_width.values())
    dtypes = {t.dtype for t in read_tflite(four.model_path).tensors}
    assert "INT4" in dtypes
    saved = yaml.safe_load((four.dir / "recipe.yaml").read_text())["quantization"]["int4"]["weights"]
    assert saved == {k: str(v) for k, v in widths.items()}  # the plan replays from the saved recipe

    from toolchain.base.errors import GateFailed
    from toolchain.package.packager import package

    with pytest.raises(GateFailed, match=r"in 4 bits \(INT4.*MediaPipe 0\.10\.21.*cannot load"):
        package(four.dir)  # refused before MediaPipe is started: its runtime cannot load INT4

    # validate: the host runtime runs it; tflite-runtime 2.14.0 is named with the op version it lacks
    # limit=8 (as below): 8 queries show a build runs; the 120 paid for the blockwise checks above
    report = validate_target(
        four.dir, select_profiles(["x86-host", "x86-tflite214"]), limit=8, write_report=False
    )
    assert report.devices["x86-host"].passed
    board = report.devices["x86-tflite214"]
    assert not board.passed
    versions = next(c for c in board.checks if c.name == "op versions")
    assert "DEQUANTIZE v6 is not supported by tflite-runtime 2.14.0" in versions.detail

    # hybrid int4 dense weights alone carry no op version the board refuses (AEQ writes v1): still named
    from converters.int4 import Quantizer
    from toolchain.base.types import WeightWidth

    with Quantizer((four.dir / "float.tflite").read_bytes()) as quantizer:
        sites = quantizer.sites.values()
        plan = {s.weight: WeightWidth.INT4 if s.op == "FULLY_CONNECTED" else WeightWidth.INT8 for s in sites}
        hybrid = tmp_path / "hybrid.tflite"
        hybrid.write_bytes(quantizer.quantize(plan))
        blocks = {s.weight: WeightWidth.INT4_BLOCK32 for s in sites if s.op == "FULLY_CONNECTED"}
        blockwise = quantizer.quantize(blocks)  # the rest stays float
    from ai_edge_litert.interpreter import Interpreter  # reason: the toolchain's runtime, read in-process

    got = {t["name"]: t["quantization_parameters"]["block_size"] for t in Interpreter(
        model_content=blockwise).get_tensor_details() if t["name"] in blocks}  # fmt: skip
    assert got == dict.fromkeys(blocks, 32)  # one scale per 32 inputs of each output channel
    bare = validate_target(hybrid, select_profiles(["x86-tflite214"]), limit=8, write_report=False)
    detail = next(c for c in bare.devices["x86-tflite214"].checks if c.name == "op versions").detail
    assert "INT4 weights" in detail and "tflite-runtime 2.14.0 has no int4 kernels" in detail

    # a build that must run on that board stays in 8 bits, says why, and passes there
    eight = _int4_build(tiny_project, tmp_path / "c", ["x86-tflite214"])
    q8 = eight.report.quantization.int4
    assert q8 is not None and not q8.int4_allowed
    assert "DEQUANTIZE v6 is not supported by tflite-runtime 2.14.0" in (q8.devices["x86-tflite214"] or "")
    assert {w.width for w in q8.weights} == {"int8"} and q8.int4_params_share == 0.0
    assert "INT4" not in {t.dtype for t in read_tflite(eight.model_path).tensors}
    assert "x86-tflite214: cannot run int4" in (eight.dir / "report.md").read_text()
    assert "- int4 (searched, LiteRT Quantizer 0.10.0)" in (four.dir / "report.md").read_text()
    ok = validate_target(eight.dir, select_profiles(["x86-tflite214"]), limit=8, write_report=False)
    assert ok.devices["x86-tflite214"].passed, ok.devices["x86-tflite214"].failures
    assert four.model_path.stat().st_size < eight.model_path.stat().st_size
