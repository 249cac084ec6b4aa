"""`pytest -n 2 --dist loadgroup` (pytest-xdist): which tests must run in the same worker.

A worker is its own session, so a session build is made once per worker that uses it. Test files that
share an expensive session build (SHARED_ACROSS_FILES: 6-25 s each) are put in one group, and every other
file is a group of its own (its module fixtures are made once); the groups are spread over the workers.

Tests marked `serial` are left out of the parallel run (`make test` runs them after it, in one process):
their builds depend on a speed measurement (the mixed-precision search times int8 against float per op
type), and a worker busy on the other core adds to its noise. Measured on the project's machine, that
choice is not stable even alone: EXP and MEAN came out int8 in one run and float in the next, and with one
of the two plans the packaged BERT classifier disagrees with MediaPipe on 1 of 748 queries (test_mixed's
every-runtime-family test fails; a product issue, reported, not hidden here).
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest

SHARED_ACROSS_FILES = frozenset({"onnx_float_builds", "bert_int8_classifier", "example_build"})


def groups(items: Iterable[pytest.Item]) -> dict[str, str]:
    """nodeid -> group name: a test file, or the first of the files that share an expensive build."""
    parent: dict[str, str] = {}

    def find(f: str) -> str:
        while parent.setdefault(f, f) != f:
            f = parent[f]
        return f

    by_fixture: dict[str, str] = {}
    files = {}
    for item in items:
        f = files[item.nodeid] = item.nodeid.split("::")[0]
        find(f)
        for name in SHARED_ACROSS_FILES & set(getattr(item, "fixturenames", ())):
            first = by_fixture.setdefault(name, f)
            a, b = sorted((find(first), find(f)))
            parent[b] = a
    return {nodeid: find(f) for nodeid, f in files.items()}


def mark_groups(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Add xdist_group marks under --dist loadgroup (in a worker, xdist keeps it as option.loadgroup and
    sets dist to "no"; it reads the marks after this hook, to send each group to one worker)."""
    if not (
        getattr(config.option, "loadgroup", False) or getattr(config.option, "dist", "no") == "loadgroup"
    ):
        return
    group = groups(items)
    for item in items:
        item.add_marker(pytest.mark.xdist_group(group[item.nodeid]))
