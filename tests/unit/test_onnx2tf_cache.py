"""The onnx2tf SavedModel cache (converters/onnx2tf_cache.py): what is kept, when it is reused, what is not.

The conversion here is a function that writes a folder, so that the cache's own rules are tested in
milliseconds; the e2e tests convert through it with real onnx2tf (a second build of one graph copies).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from converters import onnx2tf_cache as cache
from toolchain.caches import list_caches


@pytest.fixture
def root(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("EDGECOMP_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("EDGECOMP_ONNX2TF_CACHE", raising=False)
    monkeypatch.delenv("EDGECOMP_ONNX2TF_CACHE_MB", raising=False)
    return tmp_path / "cache"


def _graph(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / f"{data.hex()}.onnx"
    path.write_bytes(data)
    return path


class Converter:
    def __init__(self, out: Path, payload: bytes = b"pb", fail: bool = False):
        self.out, self.payload, self.fail, self.calls = out, payload, fail, 0

    def __call__(self) -> Path:
        self.calls += 1
        self.out.mkdir(parents=True)
        (self.out / "variables").mkdir()
        (self.out / "saved_model.pb").write_bytes(self.payload)
        (self.out / "variables" / "variables.index").write_bytes(self.payload * 3)
        if self.fail:
            raise RuntimeError("onnx2tf failed")
        return self.out


def test_the_same_graph_and_arguments_convert_once(root, tmp_path):
    graph = _graph(tmp_path, b"graph-a")
    first = Converter(tmp_path / "a1")
    made, hit = cache.saved_model(graph, tmp_path / "a1", {"pseudo": ["erf"]}, first)
    assert (made, hit, first.calls) == (tmp_path / "a1", False, 1)
    again = Converter(tmp_path / "a2")
    made, hit = cache.saved_model(graph, tmp_path / "a2", {"pseudo": ["erf"]}, again)
    assert (hit, again.calls) == (True, 0)
    assert (made / "saved_model.pb").read_bytes() == b"pb"
    assert (made / "variables" / "variables.index").read_bytes() == b"pbpbpb"
    assert not (made / cache.MARKER).exists()  # the caller's folder is the SavedModel only
    other_args = Converter(tmp_path / "a3")
    assert cache.saved_model(graph, tmp_path / "a3", {"pseudo": []}, other_args)[1] is False
    other_graph = Converter(tmp_path / "b1")
    assert cache.saved_model(_graph(tmp_path, b"graph-b"), tmp_path / "b1", {}, other_graph)[1] is False
    listing = list_caches(root)
    kept = [e for e in listing.entries if e.kind == "onnx2tf"]
    assert len(kept) == 3 and all(e.version and "onnx2tf==" in e.version for e in kept)


def test_a_failed_conversion_is_not_kept_and_the_switch_turns_the_cache_off(root, tmp_path, monkeypatch):
    graph = _graph(tmp_path, b"graph-c")
    with pytest.raises(RuntimeError):
        cache.saved_model(graph, tmp_path / "c1", {}, Converter(tmp_path / "c1", fail=True))
    assert not [e for e in list_caches(root).entries if e.kind == "onnx2tf"]
    assert not any(p.name.endswith(".staging") for p in (root / cache.FOLDER).iterdir())
    monkeypatch.setenv("EDGECOMP_ONNX2TF_CACHE", "0")
    for n in (2, 3):
        conv = Converter(tmp_path / f"c{n}")
        assert cache.saved_model(graph, tmp_path / f"c{n}", {}, conv) == (tmp_path / f"c{n}", False)
        assert conv.calls == 1
    assert not [e for e in list_caches(root).entries if e.kind == "onnx2tf"]


def test_entries_beyond_the_budget_go_least_recently_used_first(root, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGECOMP_ONNX2TF_CACHE_MB", str(2.5 * 4096 / 2**20))  # room for two 4 KB entries
    graphs = [_graph(tmp_path, f"graph-{i}".encode()) for i in range(3)]
    payload = b"x" * 1024  # 1 KB pb + 3 KB index
    keys = []
    for i, graph in enumerate(graphs[:2]):
        cache.saved_model(graph, tmp_path / f"d{i}", {}, Converter(tmp_path / f"d{i}", payload))
        keys.append(cache.key(graph, {}))
    marker = root / cache.FOLDER / keys[0] / cache.MARKER
    os.utime(marker, (1, 1))  # graph 0 used long ago, graph 1 just now
    cache.saved_model(graphs[2], tmp_path / "d2", {}, Converter(tmp_path / "d2", payload))
    kept = sorted(p.name for p in (root / cache.FOLDER).iterdir() if (p / cache.MARKER).is_file())
    assert kept == sorted([keys[1], cache.key(graphs[2], {})])


def test_a_cache_path_that_is_a_file_costs_the_reuse_not_the_build(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("mine")
    monkeypatch.setenv("EDGECOMP_CACHE", str(blocker))
    monkeypatch.delenv("EDGECOMP_ONNX2TF_CACHE", raising=False)
    conv = Converter(tmp_path / "e1")
    assert cache.saved_model(_graph(tmp_path, b"graph-e"), tmp_path / "e1", {}, conv) == (
        tmp_path / "e1",
        False,
    )
    assert conv.calls == 1 and blocker.read_text() == "mine"
