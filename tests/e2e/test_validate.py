"""`edgecomp validate`: real runtimes (venv and QEMU), real failures, gates and the report section."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from devices.profiles.schema import get_profile, select_profiles
from devices.validate import Gates, validate_device
from tests.support.builds import copy_build
from toolchain.cli.main import app
from toolchain.device_stages import validate_target as validate

pytestmark = pytest.mark.slow

SEGFAULT_AT_RUN = """
import ctypes, sys, edgecomp_wire as wire
wire.serve(
    {"probe": lambda args: {"errors": [None] * len(args["models"])}, "run": lambda args: ctypes.string_at(0)},
    {"version": sys.argv[1] if len(sys.argv) > 1 else "2.3.0"},
)
"""
HANG_AT_RUN = SEGFAULT_AT_RUN.replace("ctypes.string_at(0)", "__import__('time').sleep(600)")


@pytest.fixture
def builds(tiny_int8, tiny_float32, tmp_path) -> dict[str, Path]:
    """Copies of the shared tiny builds (conftest): validate records its section in the build."""
    return {
        m: copy_build(r.dir, tmp_path / "builds") for m, r in (("int8", tiny_int8), ("float32", tiny_float32))
    }


def with_op_version(src: Path, dst: Path, op: str, version: int) -> Path:
    """Copy a .tflite with every operator code of `op` rewritten to `version` (as a newer converter would)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(src.read_bytes(), 0))
    code = getattr(schema.BuiltinOperator, op)
    for oc in model.operatorCodes:
        if max(oc.builtinCode, oc.deprecatedBuiltinCode) == code:
            oc.version = version
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    dst.write_bytes(bytes(builder.Output()))
    return dst


def user_profile(dir_: Path, name: str, **fields) -> Path:
    data = get_profile("x86-host").model_dump(mode="json")
    for key, value in fields.items():
        if isinstance(value, dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    data["name"] = name
    dir_.mkdir(parents=True, exist_ok=True)
    (dir_ / f"{name}.yaml").write_text(yaml.safe_dump(data))
    return dir_


def checks(dev) -> dict[str, tuple[str, str]]:
    return {c.name: (c.status, c.detail) for c in dev.checks}


def test_int8_build_validates_on_host_and_lands_in_report(builds, tiny_project):
    report = validate(builds["int8"], [get_profile("x86-host")])
    dev = report.rows[0]
    assert report.passed, dev.failures
    m = dev.metrics
    # x86 int8 kernels are integer arithmetic: the device's LiteRT and the host's give identical outputs, so
    # both accuracies equal the one the build measured on the same split when it was made
    built = json.loads((builds["int8"] / "report.json").read_text())["evaluation"]["vs_source_float"]
    assert m.bit_exact_fraction == 1.0 and m.max_abs_diff == 0.0 and m.top1_agreement == 1.0
    assert m.accuracy == m.host_accuracy == built["converted"]["accuracy"]
    assert m.accuracy_diff_points == 0.0 and m.max_abs_diff_unit.startswith("quantized")
    assert m.latency_ms > 0 and 0 < m.peak_memory_mb < 256  # a 10 KB model: a few MB, not a leak
    saved = json.loads((builds["int8"] / "report.json").read_text())["validation"]
    assert saved["passed"] and saved["devices"]["x86-host"]["metrics"]["accuracy"] == m.accuracy
    n_test = len(tiny_project.test.read_text().splitlines())
    assert saved["reference"]["queries"] == n_test and saved["reference"]["eval_split"] == str(
        tiny_project.test
    )


def test_float_model_fails_an_int8_only_profile_naming_the_first_float_op(builds, tmp_path):
    dirs = [user_profile(tmp_path, "int8-only-host", ops={"int8_only": True})]
    report = validate(builds["float32"], select_profiles(["int8-only-host"], dirs), write_report=False)
    status, detail = checks(report.rows[0])["op policy"]
    assert status == "fail"
    assert detail.startswith("GATHER (op #0) has float32")  # the embedding lookup is the first float op
    assert checks(report.rows[0])["loads"][0] == "skip"


def test_memory_and_size_budgets_fail(builds, tmp_path):
    dirs = [user_profile(tmp_path, "tiny-box", budgets={"peak_memory_mb": 0.01, "model_size_kb": 1})]
    report = validate(builds["int8"], select_profiles(["tiny-box"], dirs), write_report=False)
    c = checks(report.rows[0])
    assert c["peak memory"][0] == "fail" and "budget 0.01 MB" in c["peak memory"][1]
    assert c["model size"][0] == "fail"
    assert not report.passed


def test_segfaulting_runtime_is_a_failed_row_not_a_crash(builds, tmp_path):
    script = tmp_path / "segv_runner.py"
    script.write_text(SEGFAULT_AT_RUN)
    report = validate(builds["int8"], [get_profile("x86-host")], runner_script=script, write_report=False)
    status, detail = checks(report.rows[0])["runs"]
    assert status == "fail" and "crashed with SIGSEGV" in detail


def test_hanging_runtime_times_out(builds, tmp_path):
    script = tmp_path / "hang_runner.py"
    script.write_text(HANG_AT_RUN)
    dirs = [user_profile(tmp_path / "p", "impatient", timeout_s=2)]
    report = validate(
        builds["int8"], select_profiles(["impatient"], dirs), runner_script=script, write_report=False
    )
    status, detail = checks(report.rows[0])["runs"]
    assert status == "fail" and "timed out after 2 s" in detail


def test_cli_json_and_exit_codes(builds, tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["validate", str(builds["int8"]), "--device", "x86-host", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["devices"]["x86-host"]["passed"]
    script = tmp_path / "segv_runner.py"
    script.write_text(SEGFAULT_AT_RUN)
    res = runner.invoke(
        app, ["validate", str(builds["int8"]), "-d", "x86-host", "--runner-script", str(script)]
    )
    assert res.exit_code == 1
    assert "1 of 1 devices failed; x86-host: runs:" in res.output and "SIGSEGV" in res.output
    res = runner.invoke(app, ["validate", str(tmp_path / "missing"), "-d", "x86-host"])
    assert res.exit_code == 2 and "not a build dir or .tflite" in res.output


def test_bare_tflite_gets_parity_on_synthetic_inputs(builds):
    report = validate(builds["int8"] / "model.tflite", [get_profile("x86-host")], write_report=False)
    dev = report.rows[0]
    assert report.reference.eval_split.startswith("synthetic")
    assert checks(dev)["accuracy"][0] == "skip" and dev.metrics.top1_agreement == 1.0


# An int8 build on every shipped profile: tests/examples/test_validate_example.py (the example's build, same
# checks).


@pytest.mark.qemu
def test_op_version_unknown_to_tflite_runtime_214_fails_naming_the_op(builds, tmp_path):
    model = with_op_version(builds["int8"] / "model.tflite", tmp_path / "fc12.tflite", "FULLY_CONNECTED", 12)
    report = validate(model, select_profiles(["edge-arm64-tflite214", "android-arm64-litert"]))
    edge, phone = report.rows
    status, detail = checks(edge)["op versions"]
    assert status == "fail" and "FULLY_CONNECTED v12 is not supported by tflite-runtime 2.14.0" in detail
    status, detail = checks(edge)["loads"]
    assert status == "fail" and "FULLY_CONNECTED' version '12'" in detail  # the runtime's own refusal
    assert phone.passed, phone.failures  # litert 2.3 has FULLY_CONNECTED v12


@pytest.mark.qemu
def test_float_model_fails_the_int8_accelerator(builds):
    prof = get_profile("int8-accelerator")
    report = validate(builds["float32"], [prof], write_report=False)
    status, detail = checks(report.rows[0])["op policy"]
    assert status == "fail" and "GATHER (op #0) has float32" in detail


@pytest.mark.qemu
def test_segfault_under_qemu_is_a_failed_row(builds, tmp_path):
    from converters.tflite_model import read_tflite
    from devices.host_reference import host_reference
    from devices.hostrun import synthetic_feeds

    script = tmp_path / "segv_runner.py"
    script.write_text(SEGFAULT_AT_RUN)
    path = builds["int8"] / "model.tflite"
    model = read_tflite(path)
    feeds = synthetic_feeds(model, 8)
    ref = host_reference(path, model, feeds, None)
    dev = validate_device(
        path, model, get_profile("android-arm64-lowend"), feeds, None, ref, Gates(), runner_script=script
    )
    status, detail = checks(dev)["runs"]
    assert status == "fail" and "crashed with SIGSEGV" in detail


@pytest.mark.qemu
def test_model_over_the_memory_budget_fails_on_an_emulated_phone(builds, tmp_path):
    data = get_profile("android-arm64-lowend").model_dump(mode="json")
    data.update(name="lowend-1mb", budgets={"peak_memory_mb": 1.0})
    (tmp_path / "lowend-1mb.yaml").write_text(yaml.safe_dump(data))
    report = validate(builds["int8"], select_profiles(["lowend-1mb"], [tmp_path]), write_report=False)
    status, detail = checks(report.rows[0])["peak memory"]
    assert status == "fail" and "(budget 1 MB)" in detail
    assert checks(report.rows[0])["accuracy"][0] == "pass"  # only the budget gate fails
