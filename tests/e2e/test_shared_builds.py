"""The session's shared builds (conftest.py) are what the tests that use them would have built themselves.

A test that needs the tiny int8 build under its own name (and package metadata) gets the shared build
through `shared_as`: it must be the bytes convert writes for that recipe, apart from the timings.
"""

from __future__ import annotations

import json
import shutil

import pytest

from tests.support.shared import shared_as, tree_digest
from toolchain.recipe.compose import recipe_from_dict

pytestmark = pytest.mark.slow
PACKAGE = {
    "version": "2.1.0",
    "author": "search team",
    "license": "MIT",
    "description": "Routes shop queries.",
}


def test_a_shared_build_under_a_tests_own_name_is_what_convert_writes(tiny_project, tiny_int8, tmp_path):
    from toolchain.pipeline import build

    spec = tiny_project.recipe_dict(name="own-name", output={"dir": str(tmp_path / "out")}, package=PACKAGE)
    recipe = recipe_from_dict(spec)
    own = build(recipe).dir
    shutil.move(own, tmp_path / "converted")
    copied = shared_as(tiny_int8, recipe)
    assert copied == own
    mine, theirs = tree_digest(tmp_path / "converted"), tree_digest(copied)
    assert mine.keys() == theirs.keys()
    assert [f for f in mine if mine[f] != theirs[f]] == ["report.json"]

    def untimed(path):
        report = json.loads(path.read_text())
        return {k: v for k, v in report.items() if k != "timings_s"}

    assert untimed(tmp_path / "converted" / "report.json") == untimed(copied / "report.json")


@pytest.mark.parametrize(
    "other",
    [
        {"seed": 1},
        {"quantization": {"mode": "int8", "calibration_samples": 200}},
        {"evaluation": {"min_agreement": 0.9}},
    ],
    ids=["seed", "calibration", "gate"],
)
def test_a_recipe_that_converts_differently_is_refused(tiny_project, tiny_int8, tmp_path, other):
    spec = tiny_project.recipe_dict(name="x", output={"dir": str(tmp_path)}, **other)
    with pytest.raises(AssertionError, match="made by another recipe"):
        shared_as(tiny_int8, recipe_from_dict(spec))
    assert not (tmp_path / "x").exists()
