"""`edgecomp inspect`: models with and without metadata, manifest found or given, bad inputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support.shared import shared_as
from toolchain.cli.main import app
from toolchain.package.inspect import inspect_model
from toolchain.package.packager import package
from toolchain.package.types import PackageOptions
from toolchain.recipe.compose import recipe_from_dict

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def edge_bundle(tiny_project, tiny_int8, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("inspect")
    spec = tiny_project.recipe_dict(name="tiny-edge", output={"dir": str(out / "build")})
    built = shared_as(tiny_int8, recipe_from_dict(spec))  # the shared int8 build, as convert writes it here
    return package(built, PackageOptions(format="edge", out_dir=out / "dist")).bundle_dir


def test_edge_model_round_trips_its_manifest(edge_bundle):
    result = inspect_model(edge_bundle / "tiny-edge.tflite")
    assert result.metadata is None  # edge: the validated bytes, no Tasks metadata
    assert result.ok and [c.name for c in result.checks] == ["sha256", "output size"]
    manifest = result.manifest  # read back through the same model the bundle was written with
    assert manifest.to_json() == json.loads((edge_bundle / "manifest.json").read_text())
    assert result.sha256 == manifest.model.sha256 and manifest.parity is None
    assert result.summary.op_versions == manifest.runtime.op_versions
    assert result.summary.size_bytes == manifest.model.size_bytes


def test_cli_without_manifest_warns_and_lists_ops(edge_bundle, tmp_path):
    lone = tmp_path / "lone.tflite"
    shutil.copyfile(edge_bundle / "tiny-edge.tflite", lone)
    res = CliRunner().invoke(app, ["inspect", str(lone)])
    assert res.exit_code == 0, res.output
    assert "FULLY_CONNECTED v" in res.output and "none (not loadable by MediaPipe Tasks)" in res.output
    assert "no manifest.json beside the model" in res.output


def test_cli_with_the_wrong_manifest_fails(edge_bundle, tmp_path):
    manifest = json.loads((edge_bundle / "manifest.json").read_text())
    manifest["model"]["sha256"] = "0" * 64
    other = tmp_path / "manifest.json"
    other.write_text(json.dumps(manifest))
    res = CliRunner().invoke(
        app, ["inspect", str(edge_bundle / "tiny-edge.tflite"), "--manifest", str(other)]
    )
    assert res.exit_code == 1
    assert "sha256 mismatch: manifest 0000000000000000" in res.output


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "model not found"),
        (lambda p: p.write_bytes(b"not a model at all"), "is not a TFLite model"),
    ],
)
def test_cli_bad_inputs(tmp_path, make, message):
    path = tmp_path / "m.tflite"
    make(path)
    res = CliRunner().invoke(app, ["inspect", str(path)])
    assert res.exit_code == 2 and message in res.output


def test_cli_missing_manifest_flag(edge_bundle, tmp_path):
    res = CliRunner().invoke(
        app, ["inspect", str(edge_bundle / "tiny-edge.tflite"), "--manifest", str(tmp_path / "none.json")]
    )
    assert res.exit_code == 2 and "manifest not found" in res.output
