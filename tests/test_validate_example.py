"""Acceptance: the shipped example's int8 build validates on every shipped device profile."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from devices.profile import SHIPPED_DIR, select_profiles
from toolchain.stages import validate_target as validate

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "shopping_intent"


@pytest.mark.slow
@pytest.mark.qemu
def test_example_int8_validates_on_every_shipped_profile(tmp_path):
    from toolchain.pipeline import build
    from toolchain.recipe import apply_overrides, load_recipe

    if not (EXAMPLE / "model.keras").is_file():
        subprocess.run([sys.executable, str(EXAMPLE / "train_teacher.py")], check=True, capture_output=True)
    recipe = apply_overrides(load_recipe(EXAMPLE / "recipe.yaml"), {"output.dir": str(tmp_path)})
    build_dir = build(recipe).build_dir
    shipped = sorted(p.stem for p in SHIPPED_DIR.glob("*.yaml"))
    report = validate(build_dir, select_profiles(shipped))
    assert [d.device for d in report.devices] == shipped
    for dev in report.devices:
        assert dev.passed, (dev.device, dev.failures)
        assert abs(dev.metrics["accuracy_diff_points"]) <= 0.5, dev.device
    assert report.reference["queries"] == len((EXAMPLE / "data" / "test.jsonl").read_text().splitlines())
    saved = json.loads((build_dir / "report.json").read_text())["validation"]
    assert saved["passed"] and sorted(saved["devices"]) == shipped
