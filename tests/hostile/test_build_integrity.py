"""Issue 12: a build's recorded files (labels, vocab, tokenizer) and its metadata, changed or corrupt.

Every case is one `error:` line naming the file, exit 2, from validate, profile and package alike.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support.builds import copy_build
from toolchain.base.errors import InputFileError
from toolchain.build import load_build
from toolchain.cli.main import app

pytestmark = pytest.mark.slow

STAGES = (["validate", "--device", "x86-host"], ["profile"], ["package", "--format", "edge"])


@pytest.fixture(scope="module")
def int8_build(tiny_int8) -> Path:
    """The shared tiny int8 build (conftest), read-only: the tests that edit it work on `build_copy`."""
    return tiny_int8.dir


@pytest.fixture
def build_copy(int8_build, tmp_path) -> Path:
    return copy_build(int8_build, tmp_path / "build")


def run(args: list[str], build: Path, tmp_path: Path):
    extra = ["--out", str(tmp_path / "dist")] if args[0] == "package" else []
    return CliRunner().invoke(app, [*args, str(build), *extra])


def one_error_line(result) -> str:
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output
    return lines[0]


def test_convert_records_the_files(int8_build):
    report = json.loads((int8_build / "report.json").read_text())
    assert set(report["files"]) == {
        "labels.txt",
        "vocab.txt",
        "float.tflite",
    }  # no step: float.tflite, no .keras
    b = load_build(int8_build)
    b.check_files()
    b.check_model()  # the old name still works


@pytest.mark.parametrize("args", STAGES, ids=lambda a: a[0])
def test_labels_reordered_after_the_build_are_refused(build_copy, tmp_path, args):
    labels = build_copy / "labels.txt"
    lines = labels.read_text().splitlines()
    labels.write_text("\n".join([lines[1], lines[0], *lines[2:]]) + "\n")  # same count, swapped
    result = run(args, build_copy, tmp_path)
    assert result.exit_code == 2
    assert "labels.txt changed since the build" in one_error_line(result)
    assert not (tmp_path / "dist").exists()


@pytest.mark.parametrize("args", STAGES, ids=lambda a: a[0])
def test_vocab_changed_after_the_build_is_refused(build_copy, tmp_path, args):
    vocab = build_copy / "vocab.txt"
    vocab.write_text(vocab.read_text() + "zzzz 99999\n")
    result = run(args, build_copy, tmp_path)
    assert result.exit_code == 2
    assert "vocab.txt changed since the build" in one_error_line(result)


def test_recorded_file_removed_is_named(build_copy):
    (build_copy / "vocab.txt").unlink()
    with pytest.raises(InputFileError, match="vocab.txt is missing"):
        load_build(build_copy)


def _report(build: Path) -> dict:
    return json.loads((build / "report.json").read_text())


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "report.json is not an edgecomp report"),
        ("[1, 2, 3]", "report.json is not an edgecomp report"),
        ("null", "report.json is not an edgecomp report"),
        ('"text"', "report.json is not an edgecomp report"),
        (lambda r: {**r, "model": {**r["model"], "ops": "CONV_2D"}}, "model.ops"),
        (lambda r: {**r, "labels": {"a": 1}}, "labels"),
        (lambda r: {**r, "files": ["vocab.txt"]}, "files"),
        (lambda r: {**r, "validation": "passed"}, "validation"),
    ],
    ids=["corrupt", "array", "null", "string", "ops-type", "labels-type", "files-type", "section-type"],
)
def test_corrupt_report_is_one_line(build_copy, tmp_path, content, message):
    text = content if isinstance(content, str) else json.dumps(content(_report(build_copy)))
    (build_copy / "report.json").write_text(text)
    for args in STAGES:
        result = run(args, build_copy, tmp_path)
        assert result.exit_code == 2, result.output
        assert message in one_error_line(result)


def test_report_json_invalid_utf8_is_one_line(build_copy, tmp_path):
    (build_copy / "report.json").write_bytes(b"\xff\xfe{}")
    result = run(["validate", "-d", "x86-host"], build_copy, tmp_path)
    assert result.exit_code == 2 and "report.json" in one_error_line(result)


@pytest.mark.parametrize(
    "text, message",
    [
        ("!!python/object/apply:os.system ['echo pwned']\n", "YAML tag"),
        ("name: x\nsource: {path: [\n", "not valid YAML"),
        ("- just\n- a list\n", "recipe.yaml"),
    ],
    ids=["python-tag", "syntax", "not-a-mapping"],
)
def test_bad_recipe_yaml_in_a_build_is_one_line(build_copy, tmp_path, text, message):
    (build_copy / "recipe.yaml").write_text(text)
    for args in STAGES:
        result = run(args, build_copy, tmp_path)
        assert result.exit_code == 2, result.output
        assert message in one_error_line(result)


@pytest.mark.parametrize(
    "text", ["{oops", "[1, 2]", "null", '"manifest"', "\xff"], ids=["corrupt", "array", "null", "str", "utf8"]
)
def test_corrupt_manifest_is_one_line_for_inspect(int8_build, tmp_path, text):
    manifest = tmp_path / "manifest.json"
    manifest.write_bytes(text.encode("latin-1"))
    result = CliRunner().invoke(
        app, ["inspect", str(int8_build / "model.tflite"), "--manifest", str(manifest)]
    )
    assert result.exit_code == 2, result.output
    assert "manifest.json" in one_error_line(result)
