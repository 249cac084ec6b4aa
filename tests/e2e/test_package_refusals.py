"""`edgecomp package` refusals: failed validation, Flex/custom ops, label/output mismatch; no half-writes.

These run before MediaPipe is needed (the `edge` format never starts it), so they need no MediaPipe env.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from devices.validate import DeviceReport, Gates, HostSummary, ValidationReport
from tests.support.builds import copy_build, rehash, with_custom_op
from tests.support.shared import shared_as
from toolchain.base.errors import DataError, GateFailed, RecipeError
from toolchain.base.types import CheckStatus
from toolchain.build import load_build
from toolchain.cli.main import app
from toolchain.package.packager import package
from toolchain.package.types import PackageOptions
from toolchain.recipe.compose import recipe_from_dict

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def int8_build(tiny_project, tiny_int8, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("package-refusal-builds")
    return shared_as(
        tiny_int8, recipe_from_dict(tiny_project.recipe_dict(name="tiny-pkg", output={"dir": str(out)}))
    )


@pytest.fixture
def build_copy(int8_build, tmp_path) -> Path:
    return copy_build(int8_build, tmp_path / "build")


def failed_validation() -> ValidationReport:
    """A validation section in which one device failed an op-version check."""
    legacy = DeviceReport(
        device="armv7-legacy",
        description="",
        arch="armv7",
        cpu="",
        runtime="tflite-runtime 2.14.0",
        emulated=True,
    )
    legacy.add("op versions", CheckStatus.FAIL, "FULLY_CONNECTED v12 is not supported")
    host = DeviceReport(
        device="x86-host", description="", arch="x86_64", cpu="", runtime="litert 2.3.0", emulated=False
    )
    reference = HostSummary(
        runtime="litert 2.3.0", queries=1, eval_split="test.jsonl", host_accuracy=None,
        min_runtime_version=None, op_versions={},
    )  # fmt: skip
    return ValidationReport.of("model.tflite", reference, Gates(), [legacy, host])


def test_failed_validation_is_refused_and_nothing_is_written(build_copy, tmp_path):
    load_build(build_copy).record("validation", failed_validation())
    with pytest.raises(
        GateFailed, match=r"validation failed on armv7-legacy: op versions: FULLY_CONNECTED v12"
    ):
        package(build_copy, PackageOptions(format="edge", out_dir=tmp_path / "dist"))
    assert not (tmp_path / "dist").exists()


def test_failed_validation_override_is_recorded(build_copy, tmp_path):
    load_build(build_copy).record("validation", failed_validation())
    res = package(
        build_copy, PackageOptions(format="edge", out_dir=tmp_path / "dist", allow_failed_validation=True)
    )
    m = json.loads((res.bundle_dir / "manifest.json").read_text())
    assert m["allow_failed_validation"] is True
    assert m["validation"]["status"] == "failed" and m["validation"]["override"] is True
    assert m["validation"]["devices"]["armv7-legacy"]["failures"] == [
        "op versions: FULLY_CONNECTED v12 is not supported"
    ]
    assert any("validation failed" in w for w in res.warnings)


def test_validation_not_run_packages_with_a_warning(build_copy, tmp_path):
    res = package(build_copy, PackageOptions(format="edge", out_dir=tmp_path / "dist"))
    m = json.loads((res.bundle_dir / "manifest.json").read_text())
    assert m["validation"] == "not run"
    assert any("validation not run" in w for w in res.warnings)
    # edge: the validated bytes unchanged, no Android folder, and a zip of the same files.
    assert (res.bundle_dir / "tiny-pkg.tflite").read_bytes() == (build_copy / "model.tflite").read_bytes()
    assert m["model"]["sha256"] == m["model"]["validated_model_sha256"]
    assert not (res.bundle_dir / "android").exists()
    import zipfile

    names = set(zipfile.ZipFile(res.zip_path).namelist())
    assert names == {f"tiny-pkg-1.0.0/{rel}" for rel in [*m["files"], "manifest.json"]}


@pytest.mark.parametrize(
    ("custom", "message"),
    [("FlexErf", r"Select-TF \(Flex\) ops: FlexErf"), ("MyFancyOp", r"custom ops: MyFancyOp")],
)
def test_flex_and_custom_ops_are_refused(build_copy, tmp_path, custom, message):
    with_custom_op(build_copy / "model.tflite", build_copy / "model.tflite", custom)
    rehash(build_copy, "model.tflite")  # as if convert had produced it: the report describes this model
    with pytest.raises(GateFailed, match=message):
        package(build_copy, PackageOptions(format="edge", out_dir=tmp_path / "dist"))
    assert not (tmp_path / "dist").exists()


def test_labels_that_do_not_match_the_output_are_refused(build_copy, tmp_path):
    labels = build_copy / "labels.txt"
    labels.write_text(labels.read_text() + "extra_intent\n")
    rehash(build_copy, "labels.txt")  # as if convert had written these labels: the report records them
    with pytest.raises(DataError, match="labels.txt has 5 labels but the model outputs 4 scores"):
        package(build_copy, PackageOptions(format="mediapipe", out_dir=tmp_path / "dist"))
    assert not (tmp_path / "dist").exists()


def test_bad_version_and_format_are_one_line_errors(build_copy, tmp_path):
    with pytest.raises(RecipeError, match="package.version"):
        package(build_copy, PackageOptions(format="edge", version="1.0/../x", out_dir=tmp_path / "d"))
    with pytest.raises(DataError, match="unknown package format 'ios'"):
        package(build_copy, PackageOptions(format="ios", out_dir=tmp_path / "d"))


def test_cli_refusal_exit_codes(build_copy, tmp_path):
    runner = CliRunner()
    load_build(build_copy).record("validation", failed_validation())
    res = runner.invoke(
        app, ["package", str(build_copy), "--format", "edge", "--out", str(tmp_path / "dist")]
    )
    assert res.exit_code == 1
    assert "error: validation failed on armv7-legacy" in res.output
    assert "--allow-failed-validation" in res.output
    res = runner.invoke(app, ["package", str(tmp_path / "nope")])
    assert res.exit_code == 2 and "is not a complete build" in res.output
    assert not (tmp_path / "dist").exists()


def test_a_bare_model_is_not_a_build(int8_build):
    res = CliRunner().invoke(app, ["package", str(int8_build / "model.tflite")])
    assert res.exit_code == 2 and "bare model" in res.output
