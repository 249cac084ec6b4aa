"""The docs site builds with `mkdocs build --strict` (a broken link, anchor or nav entry fails), and the
quickstart's commands run as written (docs/quickstart.md, the block after `<!-- quickstart-test -->`).

The quickstart's `convert` is the shipped example's recipe, which the session's `example_build` already
converted: the command line goes through the real CLI (argument parsing and compose_recipe), the recipe
it composes must be that build's, and the build is then copied where the command would have written it.
validate (on the host runtime and the emulated Cortex-A76), package (MediaPipe parity) and inspect run for
real in a child process, in a temporary folder, as a user types them.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import toolchain.pipeline
from tests.support.builds import example_recipe
from toolchain.build import load_build
from toolchain.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
MARKER = "<!-- quickstart-test -->"


def quickstart_commands() -> list[list[str]]:
    """The `$ ` lines of the fenced block right after the marker, split as a shell would."""
    text = (ROOT / "docs" / "quickstart.md").read_text(encoding="utf-8")
    assert text.count(MARKER) == 1, "docs/quickstart.md needs exactly one quickstart-test block"
    block = text.split(MARKER, 1)[1].lstrip().split("```", 2)[1]
    lines = [line[2:] for line in block.splitlines() if line.startswith("$ ")]
    return [shlex.split(line) for line in lines]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}


@pytest.mark.slow
def test_mkdocs_build_strict(tmp_path):
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent))
    assert mkdocs, "mkdocs is missing: make install (or pip install -e '.[docs]') installs the docs extra"
    site = tmp_path / "site"
    run = subprocess.run(
        [mkdocs, "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert (site / "reference" / "cli" / "index.html").is_file()
    assert (site / "reference" / "recipe.schema.json").is_file()
    assert "0.9.0" in (site / "changelog" / "index.html").read_text(encoding="utf-8")


@pytest.mark.slow
@pytest.mark.qemu
def test_the_quickstart_commands_run(example_build, tmp_path, monkeypatch):
    commands = quickstart_commands()
    assert [c[:2] for c in commands] == [
        ["edgecomp", "convert"],
        ["edgecomp", "validate"],
        ["edgecomp", "package"],
        ["edgecomp", "inspect"],
    ]
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    monkeypatch.chdir(tmp_path)

    # convert: the real CLI composes the recipe; the session already built exactly that recipe
    composed = []

    def reuse_session_build(recipe, progress=None):
        composed.append(recipe)
        made = tmp_path / "build" / recipe.name
        shutil.copytree(example_build.dir, made)
        return load_build(made)

    monkeypatch.setattr(toolchain.pipeline, "build", reuse_session_build)
    res = CliRunner().invoke(app, commands[0][1:])
    assert res.exit_code == 0, res.output
    # as saved in a build: every path absolute (through the examples/ symlink: the same files)
    mine, session = (yaml.safe_load(r.to_yaml()) for r in (composed[0], example_recipe(tmp_path / "unused")))
    del mine["output"], session["output"]
    assert mine == session
    assert "wrote " in res.output and "shopping_intent" in res.output

    for command in commands[1:]:
        run = subprocess.run(
            [sys.executable, "-m", "toolchain.cli.main", *command[1:]],
            cwd=tmp_path,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert run.returncode == 0, f"{shlex.join(command)}: {run.stderr[-2000:]}"
    bundle = tmp_path / "dist" / "shopping_intent-1.0.0"
    for name in ("shopping_intent.tflite", "manifest.json", "model_card.md", "README.md"):
        assert (bundle / name).is_file(), name
    assert "android-arm64-litert" in (tmp_path / "build" / "shopping_intent" / "report.json").read_text()
