"""Acceptance: the shipped example's int8 build validates on every shipped device profile."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devices.profiles.schema import SHIPPED_DIR, select_profiles
from tests.support.builds import copy_build
from toolchain.device_stages import validate_target as validate

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "shopping_intent"


@pytest.mark.slow
@pytest.mark.qemu
def test_example_int8_validates_on_every_shipped_profile(example_build, tmp_path):
    build_dir = copy_build(example_build.dir, tmp_path)  # the shared build (conftest); validate writes
    shipped = sorted(p.stem for p in SHIPPED_DIR.glob("*.yaml"))
    report = validate(build_dir, select_profiles(shipped))
    assert [d.device for d in report.rows] == shipped
    for dev in report.rows:
        assert dev.passed, (dev.device, dev.failures)
        assert abs(dev.metrics.accuracy_diff_points) <= 0.5, dev.device
        # measured, not assumed: all outputs identical exactly when the largest difference is zero
        assert (dev.metrics.bit_exact_fraction == 1.0) == (dev.metrics.max_abs_diff == 0.0), dev.metrics
    machines = {d.device: d.arch for d in report.rows}
    assert machines["armv7-legacy"] == "armv7" and machines["android-arm64-litert"] == "aarch64"
    assert report.reference.queries == len((EXAMPLE / "data" / "test.jsonl").read_text().splitlines())
    saved = json.loads((build_dir / "report.json").read_text())["validation"]
    assert saved["passed"] and sorted(saved["devices"]) == shipped
