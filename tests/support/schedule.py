"""The order `make test` hands test files to its two workers: the heaviest first.

pytest-xdist's `--dist loadfile` gives each worker a whole file and, by default, queues the files with the
most tests first: many-test unit files went first and the few-test e2e files that cost minutes (mixed
search, Ray, onnx2tf conversions) came last, so one worker ran the last heavy file alone for minutes while
the other idled. `make test` passes `--no-loadscope-reorder` and the collection is ordered here instead,
longest first (the classic longest-processing-time rule): the files below by their share of the worker
time in a clean-clone run (JUnit times, setup included), then every other file in collection order.
A stale list costs balance only, never a result.
"""

from __future__ import annotations

import pytest

HEAVIEST_FIRST = (  # measured share of the suite's worker time, 2026-12-06
    "tests/e2e/test_mixed.py",  # 11.4%
    "tests/e2e/test_wordpiece_models.py",  # 9.3%
    "tests/e2e/test_distill_foreign_teacher.py",  # 8.5%
    "tests/e2e/test_search.py",  # 6.1%
    "tests/e2e/test_package_spm.py",  # 4.3%
    "tests/e2e/test_onnx.py",  # 4.2%
    "tests/e2e/test_steps_chain.py",  # 3.9%
    "tests/e2e/test_keras_wordpiece.py",  # 3.9%
    "tests/e2e/test_package_two_input.py",  # 3.8%
    "tests/e2e/test_package_bert_onnx.py",  # 2.9%
    "tests/e2e/test_distill_folder_teachers.py",  # 2.9%
    "tests/e2e/test_convert.py",  # 2.4%
    "tests/e2e/test_distill_auto.py",  # 2.3%
    "tests/e2e/test_distill_tiny_bert.py",  # (new: about 25 s of CPU alone)
    "tests/e2e/test_hub_folders.py",  # 2.0%
    "tests/e2e/test_source_backends.py",  # 2.0%
    "tests/cli/test_cli_init.py",  # 1.9%
    "tests/examples/test_validate_example.py",  # 1.9%
    "tests/e2e/test_gate_rejected.py",  # 1.9%
    "tests/examples/test_product_retrieval.py",  # 1.9%
    "tests/e2e/test_onnx_float_fidelity.py",  # 1.7%
    "tests/hostile/test_hostile_signals.py",  # 1.7%
    "tests/unit/test_steps_qat.py",  # 1.6%
    "tests/unit/test_steps_distill.py",  # 1.4%
    "tests/e2e/test_docs_build.py",  # 1.1%
)


def heaviest_first(items: list[pytest.Item]) -> list[pytest.Item]:
    """The items with the listed files first, in the list's order; a file's own tests keep their order."""
    rank = {name: i for i, name in enumerate(HEAVIEST_FIRST)}
    unlisted = len(rank)
    return sorted(items, key=lambda item: rank.get(item.nodeid.split("::", 1)[0], unlisted))
