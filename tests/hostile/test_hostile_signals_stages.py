"""Issue 12, part 4: SIGINT/SIGTERM during `validate` on an emulated ARM phone and during `package`.

The command runs as a real subprocess with a private TMPDIR (its marker: every child inherits it). The
signal is sent once the child that matters is running, found by polling /proc (the QEMU guest, the
MediaPipe child), so the test asserts outcomes and never sleeps a fixed time nor measures one
(tests/support/processes.py). Then: exit 143/130, one `error:` line, no temp dir left, no process left,
nothing written to the build or the dist folder.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.support.processes import assert_interrupted_cleanly, interrupt_when, processes_with_env
from tests.support.shared import shared_as
from toolchain.recipe.compose import recipe_from_dict

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def int8_build(tiny_project, tiny_int8, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("signal-builds")
    return shared_as(
        tiny_int8, recipe_from_dict(tiny_project.recipe_dict(name="tiny-sig", output={"dir": str(out)}))
    )


def interrupt_child(args: list[str], tmp: Path, child_word: str, sig: signal.Signals) -> tuple[int, str]:
    """Send `sig` once a process with `child_word` in its command line runs under our TMPDIR."""
    return interrupt_when(args, tmp, lambda: bool(processes_with_env(str(tmp), child_word)), sig)


@pytest.mark.qemu
@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_during_validate_on_an_emulated_phone(int8_build, tmp_path, sig, code):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    report = (int8_build / "report.json").read_bytes()
    args = ["validate", str(int8_build), "-d", "android-arm64-litert"]
    assert_interrupted_cleanly(interrupt_child(args, tmp, "qemu-aarch64", sig), code, sig, tmp)
    assert (int8_build / "report.json").read_bytes() == report  # no validation section recorded


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_during_package_kills_the_mediapipe_child(int8_build, tmp_path, sig, code):
    tmp, dist = tmp_path / "tmp", tmp_path / "dist"
    tmp.mkdir()
    args = ["package", str(int8_build), "--format", "mediapipe", "--out", str(dist)]
    assert_interrupted_cleanly(interrupt_child(args, tmp, "mediapipe_child", sig), code, sig, tmp)
    assert not dist.exists() or [p.name for p in dist.iterdir()] == []
