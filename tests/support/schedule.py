"""The order `make test` hands test files to its two workers: the heaviest first.

pytest-xdist's `--dist loadfile` gives each worker a whole file and, by default, queues the files with the
most tests first: many-test unit files went first and the few-test e2e files that cost minutes (mixed
search, Ray, onnx2tf conversions) came last, so one worker ran the last heavy file alone for minutes while
the other idled. `make test` passes `--no-loadscope-reorder` and the collection is ordered here instead,
longest first (the classic longest-processing-time rule): the files below by their share of the worker
time in a clean-clone run (JUnit times, setup included), then every other file in collection order.
A stale list costs balance only, never a result.

The shares are those of a run with the onnx2tf cache emptied first (the first run on a machine, the
budget's worst case): there, files whose builds quantize the same ONNX graph share one onnx2tf conversion
(converters/onnx2tf_cache.py), and two such files started together cost a worker's idle wait: the second
blocks on the first one's conversion. test_mixed and test_wordpiece_models both begin with the BERT
classifier's prepared graph; queued first and second (the order of the warm-cache shares) the second
waited for the first one's onnx2tf, so test_wordpiece_models comes after test_search here.
"""

from __future__ import annotations

import pytest

HEAVIEST_FIRST = (  # share of a clean-clone run's worker time, onnx2tf cache emptied first, 2026-12-06
    "tests/e2e/test_mixed.py",  # 8.4%
    "tests/e2e/test_distill_foreign_teacher.py",  # 7.7%
    "tests/e2e/test_onnx.py",  # 6.8%
    "tests/e2e/test_search.py",  # 6.1%
    "tests/e2e/test_wordpiece_models.py",  # 5.7% (not beside test_mixed: see below)
    "tests/e2e/test_keras_wordpiece.py",  # 5.5%
    "tests/e2e/test_package_spm.py",  # 4.3%
    "tests/e2e/test_convert.py",  # 3.8%
    "tests/e2e/test_package_two_input.py",  # 3.7%
    "tests/e2e/test_distill_folder_teachers.py",  # 3.5%
    "tests/e2e/test_distill_auto.py",  # 3.1%
    "tests/e2e/test_hub_folders.py",  # 3.1%
    "tests/e2e/test_onnx_float_fidelity.py",  # 2.6%
    "tests/e2e/test_steps_chain.py",  # 2.6%
    "tests/examples/test_validate_example.py",  # 2.3%
    "tests/hostile/test_hostile_signals.py",  # 2.2%
    "tests/examples/test_product_retrieval.py",  # 1.7%
    "tests/e2e/test_hub_layouts.py",  # 1.5%
    "tests/e2e/test_validate.py",  # 1.5%
    "tests/cli/test_cli_init.py",  # 1.5%
    "tests/e2e/test_package_bert_onnx.py",  # 1.4%
    "tests/unit/test_steps_qat.py",  # 1.3%
    "tests/e2e/test_distill_tiny_bert.py",  # 1.3%
    "tests/e2e/test_gate_rejected.py",  # 1.2%
    "tests/unit/test_steps_distill.py",  # 1.1%
    "tests/e2e/test_docs_build.py",  # 0.9%
)


def heaviest_first(items: list[pytest.Item]) -> list[pytest.Item]:
    """The items with the listed files first, in the list's order; a file's own tests keep their order."""
    rank = {name: i for i, name in enumerate(HEAVIEST_FIRST)}
    unlisted = len(rank)
    return sorted(items, key=lambda item: rank.get(item.nodeid.split("::", 1)[0], unlisted))
