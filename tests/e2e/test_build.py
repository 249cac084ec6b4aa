"""The Build: one reader (load_build), one writer (Build.record), the model-hash check, the host runner."""

from __future__ import annotations

import json
import multiprocessing
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from devices.validate import ValidationReport
from tests.support.builds import copy_build
from toolchain.base.errors import DataError, InputFileError
from toolchain.build import load_build
from toolchain.cli.main import app
from toolchain.report.evaluation import EvaluationSection
from toolchain.report.stages import ProfileSection, ProfileTarget

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def builds(tiny_int8, tiny_float32) -> dict[str, Path]:
    """The shared tiny builds (conftest), read-only: a test that writes works on `build_copy`."""
    return {"int8": tiny_int8.dir, "float32": tiny_float32.dir}


@pytest.fixture
def build_copy(builds, tmp_path) -> Path:
    return copy_build(builds["int8"], tmp_path / "build")


def test_load_build_types_the_report_and_records_the_model_hash(builds):
    b = load_build(builds["int8"])
    assert b.report.model_sha256 == b.model_sha256 and b.report.quantization.mode == "int8"
    assert b.labels is not None and b.task == "classification"
    saved = json.loads((builds["int8"] / "report.json").read_text())
    assert saved["model_sha256"] == b.model_sha256
    ev = b.eval_set("test", limit=5)
    assert list(ev.feeds) == ["input_ids"] and ev.feeds["input_ids"].shape == (5, 16)
    assert ev.label_ids is not None and len(ev.texts) == 5


def test_missing_files_and_splits_are_named(build_copy):
    (build_copy / "recipe.yaml").rename(build_copy / "recipe.bak")
    with pytest.raises(InputFileError, match="recipe.yaml is missing"):
        load_build(build_copy)
    (build_copy / "recipe.bak").rename(build_copy / "recipe.yaml")
    b = load_build(build_copy)
    with pytest.raises(DataError, match="no calibration split"):
        b.eval_set("calibration")
    Path(b.recipe.data.val).rename(Path(b.recipe.data.val).with_suffix(".moved"))
    try:
        with pytest.raises(DataError, match=r"the build's val split is not found: .*val\.jsonl"):
            b.eval_set("val")
    finally:
        Path(b.recipe.data.val).with_suffix(".moved").rename(b.recipe.data.val)
    assert b.eval_set(synthetic=True, limit=4).source.startswith("synthetic")


@pytest.mark.parametrize(
    "command",
    [
        ["validate", "-d", "x86-host"],
        ["profile", "--runs", "5", "--processes", "1"],
        ["package", "--format", "edge"],
    ],
)
def test_a_replaced_model_is_refused(builds, build_copy, tmp_path, command):
    shutil.copy(builds["float32"] / "model.tflite", build_copy / "model.tflite")
    args = [command[0], str(build_copy), *command[1:]]
    if command[0] == "package":
        args += ["--out", str(tmp_path / "dist")]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2, res.output
    assert (
        "model.tflite changed since the build (sha256" in res.output
        and "re-run edgecomp convert" in res.output
    )
    assert "validation" not in json.loads((build_copy / "report.json").read_text())


def _record_devices(build_dir: str, names: list[str]) -> None:
    from devices.validate import DeviceReport, Gates, HostSummary, ValidationReport
    from toolchain.build import load_build
    from toolchain.device_stages import merge_validation

    b = load_build(Path(build_dir))
    reference = HostSummary(
        runtime="x",
        queries=1,
        eval_split="test",
        host_accuracy=None,
        min_runtime_version=None,
        op_versions={},
    )
    for name in names:
        row = DeviceReport(
            device=name, description="", arch="x86_64", cpu="host", runtime="x", emulated=False
        )
        section = ValidationReport.of("build", reference, Gates(), [row])
        b.record("validation", section, merge=merge_validation)


def test_concurrent_records_all_land(build_copy):
    """Threads and processes recording at once: every device lands (read-modify-write under the lock)."""
    threads = [
        threading.Thread(target=_record_devices, args=(str(build_copy), [f"t{i}-{j}" for j in range(5)]))
        for i in range(4)
    ]
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_record_devices, args=(str(build_copy), [f"p{i}-{j}" for j in range(5)]))
        for i in range(2)
    ]
    for w in [*threads, *procs]:
        w.start()
    for w in [*threads, *procs]:
        w.join(timeout=300)
    assert all(p.exitcode == 0 for p in procs)
    b = load_build(build_copy)
    target = ProfileTarget(
        runtime="x", version="1", threads=1, xnnpack=True, device="host", arch="x86_64", emulated=False
    )
    b.record("profile", ProfileSection(target=target, methods=[], quant_error=[], sweep=[]))
    report = json.loads((build_copy / "report.json").read_text())
    assert len(report["validation"]["devices"]) == 4 * 5 + 2 * 5
    assert report["profile"]["target"]["runtime"] == "x"
    md = (build_copy / "report.md").read_text()
    assert "## Validation: passed" in md and "## Profile" in md


def test_a_bad_section_is_refused(build_copy):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="passed"):  # a section is checked against its model
        ValidationReport.model_validate({"devices": {}})
    with pytest.raises(ValueError, match="unknown report section"):
        load_build(build_copy).record("evaluation", EvaluationSection())
    with pytest.raises(ValidationError, match="profile"):  # the wrong record for a section
        load_build(build_copy).record("profile", EvaluationSection())


def test_host_runner_names_missing_inputs(builds):
    from devices.hostrun import HostRunner

    runner = HostRunner(builds["int8"] / "model.tflite")
    with pytest.raises(DataError, match=r"no data for model input\(s\) serving_default_input_ids:0"):
        runner.run({"attention_mask": np.ones((2, 16), np.int32)})
    ids = np.zeros((3, 16), np.int32)
    assert runner.run({"serving_default_input_ids:0": ids}).shape == runner.run({"input_ids": ids}).shape
