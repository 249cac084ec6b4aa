"""Issue 27: a CLI that explains itself: -h everywhere, shell completion, choices in --help, -v/--quiet
wired to logging, quantize's short flag -Q (no clash with -q)."""

from __future__ import annotations

import logging

import pytest
import typer
from typer.testing import CliRunner

from toolchain.base import logs
from toolchain.cli import render, verbosity
from toolchain.cli.main import app

WIDE = {"COLUMNS": "1000", "TERMINAL_WIDTH": "1000"}  # one help line per option: nothing wraps


def _commands(group=None, path=()):
    group = group or typer.main.get_command(app)
    for name, cmd in group.commands.items():
        yield (*path, name)
        if hasattr(cmd, "commands"):
            yield from _commands(cmd, (*path, name))


COMMANDS = list(_commands())


@pytest.mark.parametrize("path", [(), *COMMANDS], ids=lambda p: " ".join(p) or "edgecomp")
def test_dash_h_is_help_everywhere_and_every_command_takes_verbose_and_quiet(path):
    short = CliRunner().invoke(app, [*path, "-h"], terminal_width=200)
    long = CliRunner().invoke(app, [*path, "--help"], terminal_width=200)
    assert short.exit_code == 0 and short.stdout == long.stdout and "Usage" in short.stdout
    if path and path[0] not in ("devices", "cache") or len(path) == 2:  # commands, not groups
        assert "--verbose" in short.stdout and "--quiet" in short.stdout


@pytest.mark.parametrize(
    ("path", "choices"),
    [
        (
            ("convert",),
            ["float32|float16|dynamic|weight_only|int8|int16x8|mixed|int4", "polynomial|constant"],
        ),
        (("convert",), ["classification|embedding|retrieval", "distill-prune-int8"]),
        (("profile",), ["auto|litert|slice|both", "deployed|per-node"]),
        (("package",), ["mediapipe|android-assets|edge"]),
    ],
)
def test_choices_are_listed_in_help(path, choices):
    out = CliRunner().invoke(app, [*path, "-h"], env=WIDE).stdout
    for c in choices:
        assert c in out.replace(" ", ""), out


def test_device_means_the_same_in_validate_profile_and_search():
    helps = [CliRunner().invoke(app, [c, "-h"], env=WIDE).stdout for c in ("validate", "profile", "search")]
    for out in helps:
        assert "--device" in out and "parity runs in its (emulated) CPU, timing on this machine's CPU" in out


def test_shell_completion_is_on():
    root = CliRunner().invoke(app, ["-h"]).stdout
    assert "--install-completion" in root and "--show-completion" in root
    # from bash, as a user runs it: with shellingham installed Typer's --show-completion is a flag that
    # detects the calling shell (under `make test` that was sh, "not supported"), so the shell is bash here
    import shlex
    import subprocess
    import sys

    # `; exit $?`: a lone command is exec'ed by bash -c, and the parent shell would be make's sh again
    command = f"{shlex.quote(sys.executable)} -m toolchain.cli.main --show-completion; exit $?"
    script = subprocess.run(["bash", "-c", command], capture_output=True, text=True)
    assert script.returncode == 0 and "complete -o default -F" in script.stdout, script.stderr[-1000:]


def test_quantize_is_dash_capital_q_and_dash_q_is_quiet(tmp_path):
    missing = tmp_path / "nope.keras"
    result = CliRunner().invoke(app, ["convert", str(missing), "-Q", "int8", "--out", str(tmp_path / "b")])
    assert result.exit_code == 2 and "model not found" in result.stderr  # -Q int8 parsed
    result = CliRunner().invoke(app, ["convert", str(missing), "-q", "--out", str(tmp_path / "b")])
    assert result.exit_code == 2 and "model not found" in result.stderr and "note:" not in result.stderr


def test_verbose_shows_debug_lines_and_quiet_hides_notes_but_not_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGECOMP_CACHE", str(tmp_path))
    (tmp_path / "teacher-scores").mkdir()
    (tmp_path / "teacher-scores" / "a.npy").write_bytes(b"x")
    result = CliRunner().invoke(app, ["cache", "clean", "teacher-scores", "-v"])
    assert result.exit_code == 0 and "debug: toolchain.caches: removed" in result.stderr
    (tmp_path / "teacher-scores").mkdir()
    (tmp_path / "teacher-scores" / "a.npy").write_bytes(b"x")
    result = CliRunner().invoke(app, ["-v", "cache", "clean", "teacher-scores"])  # before the command too
    assert "debug: toolchain.caches: removed" in result.stderr
    result = CliRunner().invoke(app, ["cache", "clean", "nothing-here", "--quiet"])
    assert result.exit_code == 2 and result.stderr.startswith("error: no cache entry")


@pytest.mark.parametrize(
    ("verbose", "quiet", "shown"), [(0, False, True), (1, False, True), (0, True, False)]
)
def test_notes_and_progress_follow_the_level(capsys, verbose, quiet, shown):
    verbosity.configure(verbose, quiet)
    try:
        render.note(["first use of litert-2.3.0"])
        render.warn(["a warning stays"])
        with render.RichProgress(enabled=False).task("converting", 3):
            pass
        logging.getLogger("devices.runner").debug("started a child")
    finally:
        verbosity.configure(0, False)
    err = capsys.readouterr().err
    assert ("note: first use of litert-2.3.0" in err) == shown and ("… converting" in err) == shown
    assert "warning: a warning stays" in err
    assert ("debug: devices.runner: started a child" in err) == bool(verbose)
    assert logs.level_for(verbose, quiet) == {(0, False): 20, (1, False): 10, (0, True): 30}[(verbose, quiet)]


@pytest.mark.parametrize(
    ("words", "cword", "expected"),
    [
        ("edgecomp validate b -d android", "4", ["android-arm64-litert", "android-arm64-lowend"]),
        ("edgecomp profile b --mode ", "4", ["deployed", "per-node"]),
        ("edgecomp ca", "1", ["cache"]),
    ],
)
def test_completion_offers_devices_choices_and_commands(words, cword, expected):
    env = {"_EDGECOMP_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": cword}
    result = CliRunner().invoke(app, [], env=env, prog_name="edgecomp")
    assert result.exit_code == 0 and result.stdout.split() == expected, result.output
