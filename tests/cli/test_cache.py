"""`edgecomp cache list|clean` (issue 27): every entry edgecomp made, with its size; clean removes exactly
what list shows and nothing else. The cache is laid out here as edgecomp lays it out (markers, locks,
a staging folder, a hard-linked CPU variant), beside files that are not edgecomp's."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from toolchain import caches
from toolchain.base.venvs import cache_dir
from toolchain.cli.main import app


def _file(path: Path, size: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    return path


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "cache"
    env = root / "envs" / "litert-2.3.0-a0bcfb7d01a9"
    _file(env / "lib" / "runtime.so", 5000)
    (env / "edgecomp-env.json").write_text(
        json.dumps({"key": "a0", "requirements": ["ai-edge-litert==2.3.0"], "lock": "litert.txt"})
    )
    _file(root / "envs" / ".litert-2.3.0.lock", 0)
    _file(root / "envs" / ".mediapipe-0.10.21-73196fa52a23.k2j3.staging" / "half.py", 700)  # a killed setup
    _file(root / "envs" / "half-made-0123" / "x.py", 10)  # no marker: not a finished environment, kept
    base = root / "sysroots" / "aarch64-litert-2.3.0-0abed00ca887"
    _file(base / "usr" / "lib" / "libc.so", 3000)
    marker = {"key": "0a", "arch": "aarch64", "suite": "bookworm", "wheels": {"ai_edge_litert": "2.3.0"}}
    (base / "edgecomp-sysroot.json").write_text(json.dumps(marker))
    variant = root / "sysroots" / "aarch64-litert-2.3.0-0abed00ca887@cortex-a76"
    (variant / "usr" / "lib").mkdir(parents=True)
    os.link(base / "usr" / "lib" / "libc.so", variant / "usr" / "lib" / "libc.so")  # shared, as made
    (variant / "edgecomp-sysroot.json").write_text(json.dumps({"base": base.name, "cpu": "cortex-a76"}))
    _file(root / "teacher-scores" / "ab12.npy", 400)
    _file(root / "teacher-scores" / "README.mine", 3)  # the user's, in our folder: never removed
    _file(root / "my-notes.txt", 9)  # the user's, in the cache root
    monkeypatch.setenv("EDGECOMP_CACHE", str(root))
    return root


def _list(*args: str) -> dict:
    result = CliRunner().invoke(app, ["cache", "list", "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_list_shows_every_entry_with_what_version_and_size(cache):
    listing = _list()
    rows = {e["name"]: e for e in listing["entries"]}
    assert set(rows) == {
        "envs/litert-2.3.0-a0bcfb7d01a9",
        "envs/.mediapipe-0.10.21-73196fa52a23.k2j3.staging",
        "sysroots/aarch64-litert-2.3.0-0abed00ca887",
        "sysroots/aarch64-litert-2.3.0-0abed00ca887@cortex-a76",
        "teacher-scores",
    }
    env = rows["envs/litert-2.3.0-a0bcfb7d01a9"]
    assert env["version"] == "ai-edge-litert==2.3.0 (locked)" and env["bytes"] == 5000 + len(
        (cache / env["name"] / "edgecomp-env.json").read_bytes()
    )
    assert rows["sysroots/aarch64-litert-2.3.0-0abed00ca887"]["version"] == (
        "aarch64, Debian bookworm, ai_edge_litert==2.3.0"
    )
    variant = rows["sysroots/aarch64-litert-2.3.0-0abed00ca887@cortex-a76"]
    assert variant["version"].endswith("on cortex-a76") and variant["bytes"] < 3000  # libc counted once
    assert rows["teacher-scores"]["bytes"] == 400  # the user's README.mine is not ours
    assert "interrupted" in rows["envs/.mediapipe-0.10.21-73196fa52a23.k2j3.staging"]["what"]
    assert listing["total_bytes"] == sum(e["bytes"] for e in listing["entries"])
    table = CliRunner().invoke(app, ["cache", "list"])
    assert table.exit_code == 0 and "ai-edge-litert==2.3.0" in table.stdout and str(cache) in table.stdout


def test_clean_all_removes_exactly_what_list_showed(cache):
    before = _list()
    result = CliRunner().invoke(app, ["cache", "clean", "--all", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert [e["name"] for e in out["removed"]] == [e["name"] for e in before["entries"]]
    assert out["freed_bytes"] == before["total_bytes"]
    assert _list()["entries"] == []
    left = sorted(str(p.relative_to(cache)) for p in cache.rglob("*") if p.is_file())
    assert left == [
        "envs/.litert-2.3.0.lock",
        "envs/half-made-0123/x.py",
        "my-notes.txt",
        "teacher-scores/README.mine",
    ]


def test_clean_by_name_or_kind(cache):
    CliRunner().invoke(app, ["cache", "clean", "envs/litert-2.3.0-a0bcfb7d01a9"])
    names = {e["name"] for e in _list()["entries"]}
    assert "envs/litert-2.3.0-a0bcfb7d01a9" not in names and "teacher-scores" in names
    CliRunner().invoke(app, ["cache", "clean", "sysroots"])
    assert not any(n.startswith("sysroots/") for n in (e["name"] for e in _list()["entries"]))


def test_clean_leaves_a_setup_that_runs_now(cache):
    staging = cache / "envs" / ".mediapipe-0.10.21-73196fa52a23.k2j3.staging"
    with open(cache / "envs" / ".mediapipe-0.10.21.lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # what ensure_venv holds while it installs
        entry = next(e for e in caches.list_caches().entries if e.name.endswith(".staging"))
        assert entry.in_use and entry.what == "a setup running now"
        assert CliRunner().invoke(app, ["cache", "clean", "--all"]).exit_code == 0
        assert staging.is_dir()


def test_clean_needs_a_name_and_refuses_an_unknown_one(cache):
    result = CliRunner().invoke(app, ["cache", "clean"])
    assert result.exit_code == 2 and result.stderr.startswith("error: ") and "--all" in result.stderr
    result = CliRunner().invoke(app, ["cache", "clean", "my-notes.txt"])
    assert result.exit_code == 2 and "no cache entry 'my-notes.txt'" in result.stderr
    assert (cache / "my-notes.txt").is_file()


def test_an_empty_or_missing_cache_lists_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGECOMP_CACHE", str(tmp_path / "none"))
    assert _list()["entries"] == [] and not (tmp_path / "none").exists()


def test_cache_dir_honours_xdg_cache_home(tmp_path, monkeypatch):
    monkeypatch.delenv("EDGECOMP_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "edgecomp"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/dir")  # invalid per the XDG spec: ignored
    assert cache_dir() == Path.home() / ".cache" / "edgecomp"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("EDGECOMP_CACHE", str(tmp_path / "mine"))  # edgecomp's own variable wins
    assert cache_dir() == tmp_path / "mine"
