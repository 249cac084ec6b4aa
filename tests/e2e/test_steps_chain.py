"""Chained steps: `convert --preset` runs distill -> prune -> QAT -> int8; a longer chain is deterministic."""

import hashlib
import json

import pytest
from typer.testing import CliRunner

from toolchain.recipe.compose import recipe_from_dict

pytestmark = pytest.mark.slow


def test_cli_preset_runs_the_full_chain(tiny_project, tmp_path):
    from toolchain.cli.main import app

    out = tmp_path / "chain"
    args = ["convert", str(tiny_project.model), "--preset", "distill-prune-int8", "--out", str(out), "--json"]
    args += ["--calibration-samples", "100"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [s["kind"] for s in report["steps"]] == ["distill", "prune", "qat"]
    assert report["steps"][2]["scheme"].startswith("Default8BitPrunePreserve")
    assert report["quantization"]["mode"] == "int8"
    # The preset's student is sized for the real teacher and is wider than this toy one: the report must
    # say that distillation compressed nothing here; prune 80% + int8 still shrink the download.
    assert report["steps"][0]["student_parameters"] > report["steps"][0]["teacher_parameters"]
    assert any("compresses nothing" in w for w in report["warnings"])
    assert report["steps"][1]["achieved_sparsity"] >= 0.79
    assert report["ratios_vs_fp32"]["gzip"] > 2
    assert (out / "recipe.yaml").read_text().count("kind:") == 3
    # One parameter count across commands: the distill step's student, every later step (QAT's fake-quant
    # ranges are not weights), the converted .tflite in the report, and `edgecomp inspect` of that file.
    steps, student = report["steps"], report["steps"][0]["student_parameters"]
    assert [s["parameters"] for s in steps] == [student] * 3
    inspected = CliRunner().invoke(app, ["inspect", str(out / "model.tflite"), "--json"])
    assert inspected.exit_code == 0, inspected.output
    assert report["model"]["parameters"] == json.loads(inspected.stdout)["parameters"] == student


def test_five_step_chain_is_deterministic(tiny_project):
    """vocab_prune -> lowrank -> distill -> prune -> qat: new tokenizer flows on; same seed, same bytes."""
    from toolchain.pipeline import build
    from toolchain.recipe.compose import apply_preset

    digests, reports = [], []
    for i in range(2):
        plan = apply_preset(
            recipe_from_dict(tiny_project.recipe_dict(name=f"chain{i}")), "distill-prune-int8"
        )
        data = plan.model_dump(mode="python")
        data["steps"][:0] = [{"kind": "vocab_prune", "min_count": 2}, {"kind": "lowrank", "epochs": 1}]
        for step, epochs in zip(data["steps"][2:], (2, 2, 1), strict=True):  # distill, prune, qat: the
            step["epochs"] = epochs  # preset's epochs buy accuracy; this test is about determinism

        res = build(recipe_from_dict(data))
        digests.append(hashlib.sha256(res.model_path.read_bytes()).hexdigest())
        reports.append(res.report.to_json())
    assert digests[0] == digests[1]
    steps = reports[0]["steps"]
    assert [s["kind"] for s in steps] == ["vocab_prune", "lowrank", "distill", "prune", "qat"]
    assert reports[0]["tokenizer"]["vocab_size"] == steps[0]["vocab_after"] < steps[0]["vocab_before"]
    assert (
        steps[2]["teacher_parameters"] == steps[1]["parameters"]
    )  # the teacher is the chain's current model
