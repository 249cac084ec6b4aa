"""Issue 27: every error is one `error: ... (hint: ...)` line with its documented exit code.

Typer's own usage errors included (they were a framed multi-line box without an `error:` line), a malformed
device profile (4-7 lines before), a vocab file that is not UTF-8 and an unwritable --png path (both a bug
report, exit 70, before). Nothing here converts or trains.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from toolchain.base.atomic import check_output_file
from toolchain.base.errors import DataError, OutputDirError
from toolchain.cli.main import app
from toolchain.tokenizers.sources import is_wordpiece_vocab


def _run(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(app, [str(a) for a in args], env=env)


def _one_error_line(result, code: int, *wanted: str) -> str:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output and "╭" not in result.output, result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("error: ") and "(hint: " in line and line.endswith(")"), line
    for w in wanted:
        assert w in line, line
    return line


@pytest.mark.parametrize(
    ("args", "wanted"),
    [
        (["convert", "m.keras", "--target-sparsity", "1.5"], ["--target-sparsity", "0.99"]),
        (["convert", "m.keras", "--quantize", "int2"], ["--quantize", "'int4'"]),
        (["profile", "m.tflite", "--mode", "fast"], ["--mode", "'per-node'"]),
        (["package", "b", "--format", "zip"], ["--format", "'android-assets'"]),
        (["convert", "--bogus"], ["no such option: --bogus"]),
        (["frobnicate"], ["no such command 'frobnicate'"]),
        (["validate"], ["missing argument"]),
        (["validate", "b"], ["missing option '--device'"]),
        (["validate", "b", "-d", "x86-host", "--limit", "0"], ["--limit"]),
        (["devices", "show"], ["missing argument"]),
        (["convert", "m.keras", "-v", "-q"], ["contradict"]),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) and v and v[0] != "--" and "'" not in v[0] else "",
)
def test_usage_errors_are_one_line_exit_2(args, wanted):
    line = _one_error_line(_run(*args), 2, *wanted)
    command = args[0] if args[0] != "frobnicate" else ""
    assert f"see 'edgecomp {command}".rstrip() in line


@pytest.mark.parametrize(
    ("text", "wanted"),
    [
        (b"name: bad\narch: [x86_64\n  cpu: : :\n", "is not valid YAML at line 3, column 6"),
        (b"name: bad\narch: x86_64\ncpu: host\n", "description: Field required"),
        (b"\xff\xfename: bad\n", "is not UTF-8"),
    ],
    ids=["yaml", "schema", "utf8"],
)
def test_a_malformed_device_profile_is_one_line(tmp_path, text, wanted):
    (tmp_path / "bad.yaml").write_bytes(text)
    for args in (["devices", "list"], ["validate", "m.tflite", "-d", "x86-host"]):
        _one_error_line(_run(*args, env={"EDGECOMP_PROFILES": str(tmp_path)}), 2, "bad.yaml", wanted)


def test_a_vocab_that_is_not_utf8_is_an_input_error(tiny_untrained, tmp_path):
    bad = tmp_path / "vocab.txt"
    bad.write_bytes(b"[PAD] 0\n[UNK] 1\nshoes 2\nbl\xe9 3\n")  # Latin-1, the usual culprit
    with pytest.raises(DataError, match=r"vocab.txt:4: the vocab file is not UTF-8 \(byte 0xe9"):
        is_wordpiece_vocab(bad)
    p = tiny_untrained
    args = ["convert", p.model, "--train", p.train, "--test", p.test, "--labels", p.labels]
    result = _run(*args, "--vocab", bad, "--out", tmp_path / "b")
    _one_error_line(result, 2, "vocab.txt:4: the vocab file is not UTF-8", "re-save it as UTF-8")
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize(
    ("target", "wanted"),
    [
        ("{tmp}/" + "a" * 300 + ".png", "over this filesystem's limit"),
        ("/proc/ops.png", "cannot write --png /proc/ops.png"),  # os.access says yes; writing says no
        ("{tmp}/a_file/ops.png", "is a file, not a folder"),
        ("{tmp}", "is a folder; pass a file name"),
    ],
    ids=["name-too-long", "pseudo-fs", "under-a-file", "a-folder"],
)
def test_an_unwritable_png_path_is_an_input_error(tmp_path, target, wanted):
    (tmp_path / "a_file").write_text("x")
    path = target.format(tmp=tmp_path)
    with pytest.raises(OutputDirError):
        check_output_file(Path(path), "--png")
    # checked before the model is even read: the model path does not need to exist
    _one_error_line(_run("profile", tmp_path / "m.tflite", "--png", path), 2, wanted)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]  # the write probe left nothing


@pytest.mark.parametrize("args", [[], ["cache"], ["devices"]], ids=["edgecomp", "cache", "devices"])
def test_a_group_alone_shows_its_help_and_no_error_line(args):
    result = _run(*args)
    assert result.exit_code == 0 and "Usage" in result.stdout and "error" not in result.stderr
