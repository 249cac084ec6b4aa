"""`--device` means one thing in validate, profile and search (issue 27): a profile name, found among the
shipped profiles, $EDGECOMP_PROFILES or --profiles-dir, with the same errors. Nothing here runs a model."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from devices.profiles.schema import get_profile
from devices.profiling.profiler import resolve_target
from toolchain.cli.main import app
from toolchain.recipe.schema import Recipe
from toolchain.search.run import search_config

BOARD = """schema_version: 1
name: my-board
description: A board of the user's, outside the shipped profiles.
arch: x86_64
cpu: host
runtime: litert
runtime_version: 2.3.0
threads: 2
xnnpack: false
budgets:
  model_size_kb: 512
"""


@pytest.fixture
def board_dir(tmp_path):
    d = tmp_path / "profiles"
    d.mkdir()
    (d / "my-board.yaml").write_text(BOARD)
    return d


@pytest.mark.parametrize(
    "args",
    [["validate", "m.tflite"], ["profile", "m.tflite"], ["search", "m.keras", "--trials", "1"]],
    ids=["validate", "profile", "search"],
)
def test_an_unknown_device_is_the_same_error_everywhere(args):
    result = CliRunner().invoke(app, [*args, "--device", "my-board"])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: unknown device 'my-board' (hint: one of: ")
    assert "x86-host" in result.stderr


@pytest.mark.parametrize("command", ["validate", "profile", "search"])
def test_every_device_command_takes_profiles_dir(command):
    out = CliRunner().invoke(app, [command, "-h"], env={"COLUMNS": "1000", "TERMINAL_WIDTH": "1000"}).stdout
    assert "--profiles-dir" in out and "$EDGECOMP_PROFILES" in out


def test_profile_and_search_find_a_profile_in_profiles_dir(board_dir, tiny_untrained):
    board = get_profile("my-board", [board_dir])
    target = resolve_target(board)
    assert (target.device, target.threads, target.xnnpack, target.runtime) == ("my-board", 2, False, "litert")
    recipe = Recipe.model_validate(tiny_untrained.recipe_dict())
    config = search_config(recipe, "my-board", 1, profiles_dirs=(board_dir,))
    assert (config.device, config.threads, config.xnnpack) == ("my-board", 2, False)
    assert config.limits.max_size_kb == 512 and config.profiles_dirs == (board_dir,)
    # the CLI finds it too: profile gets past the device to the (missing) model
    result = CliRunner().invoke(
        app, ["profile", "nope.tflite", "-d", "my-board", "--profiles-dir", str(board_dir)]
    )
    assert result.exit_code == 2 and "unknown device" not in result.stderr and "nope.tflite" in result.stderr
