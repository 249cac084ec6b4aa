"""validate, profile and package on ONNX builds: every input (input_ids, attention_mask, token_type_ids) fed.

The intent classifier takes input_ids + attention_mask; the embedder (no labels) also token_type_ids.
MediaPipe's regex-tokenizer task feeds one input, so these multi-input builds are packaged as `edge`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.support.builds import copy_build
from toolchain.build import load_build
from toolchain.cli.main import app

pytestmark = pytest.mark.slow
DATA = Path(__file__).resolve().parents[2] / "examples" / "shopping_intent" / "data"


@pytest.fixture
def onnx_builds(onnx_float_builds, tmp_path) -> dict[str, Path]:
    """Copies of the shared float32 builds of intent_encoder.onnx (external-data copy) and embedder.onnx
    (conftest): validate, profile and package record their sections in the build."""
    return {
        "clf": copy_build(onnx_float_builds.clf, tmp_path),
        "emb": copy_build(onnx_float_builds.emb, tmp_path),
    }


def _run(*args: str) -> dict:
    res = CliRunner().invoke(app, list(args))
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout) if "--json" in args else {}


@pytest.mark.parametrize("name", ["clf", "emb"])
def test_validate_profile_package_a_multi_input_build(onnx_builds, tmp_path, name):
    build_dir = onnx_builds[name]
    b = load_build(build_dir)
    names = sorted(b.eval_set("test", limit=1).feeds)
    want = ["attention_mask", "input_ids"] + (["token_type_ids"] if name == "emb" else [])
    assert names == want
    assert (b.labels is None) == (name == "emb")

    val = _run("validate", str(build_dir), "-d", "x86-host", "--limit", "60", "--json")
    dev = val["devices"]["x86-host"]
    assert val["passed"] and dev["metrics"]["max_abs_diff"] < 1e-4
    assert val["reference"]["eval_split"] == str(DATA / "test.jsonl")
    checks = {c["name"]: c["status"] for c in dev["checks"]}
    assert checks["accuracy"] == ("skip" if name == "emb" else "pass")  # an embedding has no labels to score
    # the device gate is the task's (toolchain/tasks.py): the argmax of an embedding vector means nothing,
    # so an embedder is gated on the cosine of its vectors with the host's, a classifier on top-1 agreement
    gate = "cosine vs host" if name == "emb" else "top-1 agreement"
    assert checks[gate] == "pass" and ({"cosine vs host", "top-1 agreement"} - {gate}).isdisjoint(checks)
    assert val["gates"]["parity"] == ("cosine" if name == "emb" else "top1")
    if name == "emb":
        assert dev["metrics"]["min_cosine"] > 0.9999 and "top1_agreement" not in dev["metrics"]
    else:
        assert dev["metrics"]["top1_agreement"] == 1.0

    prof = _run("profile", str(build_dir), "--runs", "10", "--warmup", "2", "--processes", "1", "--json")
    assert "real queries" in prof["input_source"] and prof["methods"][0]["sum_us"] > 0

    _run("package", str(build_dir), "--format", "edge", "--out", str(tmp_path / "dist"), "--json")
    report = json.loads((build_dir / "report.json").read_text())
    assert report["validation"]["passed"] and report["profile"]["methods"]
    assert report["package"]["format"] == "edge" and Path(report["package"]["zip"]).is_file()
    md = (build_dir / "report.md").read_text()
    assert "## Validation: passed" in md and "## Profile" in md and "## Package" in md


def test_the_attention_mask_is_really_fed(onnx_builds):
    """Change the mask and the outputs change: the host runner feeds it (and does not zero it)."""
    from devices.hostrun import HostRunner

    b = load_build(onnx_builds["clf"])
    feeds = b.eval_set("test", limit=8).feeds
    runner = HostRunner(b.model_path)
    right = runner.scores(feeds)
    wrong = runner.scores({**feeds, "attention_mask": np.ones_like(feeds["attention_mask"])})
    assert feeds["attention_mask"].min() == 0  # the queries are padded, so an all-ones mask is wrong
    assert np.abs(right - wrong).max() > 1e-3
    # the report's evaluation used the same feeds: the .tflite agreed with onnxruntime
    assert b.report.evaluation.to_json()["onnx_reference"]["max_abs_error"] < 1e-4
