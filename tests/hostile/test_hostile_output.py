"""Issue 12, part 3: edgecomp never deletes what it did not create (toolchain/base/atomic.py)."""

from __future__ import annotations

import multiprocessing as mp
import queue
from pathlib import Path

import pytest
from typer.testing import CliRunner

from toolchain.base.atomic import MARKER_FILE, staged_dir
from toolchain.base.errors import OutputDirError
from toolchain.cli.main import app


def _write(final: Path, text: str) -> None:
    with staged_dir(final) as stage:
        (stage / "model.tflite").write_text(text)


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_build_dir_gets_marker_and_can_be_rewritten(tmp_path):
    final = tmp_path / "build" / "m"
    _write(final, "one")
    assert (final / MARKER_FILE).is_file() and '"format": 1' in (final / MARKER_FILE).read_text()
    _write(final, "two")
    assert (final / "model.tflite").read_text() == "two"
    assert _leftovers(final.parent) == []


def test_empty_dir_is_used(tmp_path):
    final = tmp_path / "out"
    final.mkdir()
    _write(final, "x")
    assert (final / "model.tflite").read_text() == "x"


def test_users_folder_is_refused_and_untouched(tmp_path):
    final = tmp_path / "Documents"
    final.mkdir()
    (final / "thesis.txt").write_text("years of work")
    with pytest.raises(OutputDirError, match="not an edgecomp build"):
        _write(final, "x")
    assert sorted(p.name for p in final.iterdir()) == ["thesis.txt"]
    assert _leftovers(tmp_path) == []


def test_symlinked_output_is_refused_without_touching_target(tmp_path):
    target = tmp_path / "user"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    link = tmp_path / "build"
    link.symlink_to(target)
    with pytest.raises(OutputDirError, match="symlink"):
        _write(link, "x")
    assert link.is_symlink() and sorted(p.name for p in target.iterdir()) == ["keep.txt"]
    # a symlink to an empty folder, or to an old edgecomp build, is refused all the same
    (target / "keep.txt").unlink()
    with pytest.raises(OutputDirError, match="symlink"):
        _write(link, "x")


def test_out_under_a_file_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputDirError, match="is a file"):
        _write(tmp_path / "file" / "sub" / "m", "x")


def test_cli_refuses_users_folder(tiny_untrained, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.md").write_text("keep")
    result = CliRunner().invoke(app, ["convert", str(tiny_untrained.model), "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert result.output.count("error:") == 1 and "not an edgecomp build" in result.output
    assert (out / "notes.md").read_text() == "keep"


def _racer(final: str, name: str, start, entered, release, results) -> None:
    """Both racers start together; the one holding the claim waits until the other has finished."""
    start.wait(30)
    try:
        with staged_dir(Path(final)) as stage:
            (stage / "model.tflite").write_text(name)
            entered.set()
            release.wait(60)
        results.put((name, "ok", ""))
    except OutputDirError as err:
        results.put((name, "error", err.message))
    except BaseException as err:  # pragma: no cover - reported to the test as a failure
        results.put((name, "crash", repr(err)))


@pytest.mark.parametrize("existing", [False, True])
def test_two_builds_racing_one_wins_other_gets_clear_error(tmp_path, existing):
    final = tmp_path / "build" / "m"
    if existing:
        _write(final, "old")
    ctx = mp.get_context("spawn")
    start, entered, release = ctx.Barrier(2), ctx.Event(), ctx.Event()
    results = ctx.Queue()
    procs = [ctx.Process(target=_racer, args=(str(final), n, start, entered, release, results)) for n in "AB"]
    for p in procs:
        p.start()
    try:
        first = results.get(timeout=120)  # the loser reports while the winner still holds the claim
        release.set()
        second = results.get(timeout=120)
    except queue.Empty:  # pragma: no cover
        release.set()
        pytest.fail("a racer never reported")
    finally:
        for p in procs:
            p.join(60)
    outcomes = sorted([first[1], second[1]])
    assert outcomes == ["error", "ok"], (first, second)
    loser = first if first[1] == "error" else second
    winner = second if loser is first else first
    assert "another edgecomp process is writing" in loser[2]
    assert (final / "model.tflite").read_text() == winner[0]
    assert (final / MARKER_FILE).is_file()
    assert _leftovers(final.parent) == []
