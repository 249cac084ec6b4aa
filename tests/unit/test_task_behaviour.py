"""Per-task behaviour as data (toolchain/tasks.py): the gates a device row and the mixed search apply.

Two defects found by reading the code, each with a test that failed before the TaskSpec carried them:
- device validation gated an embedding model on the top-1 agreement of its vectors' argmax with the host,
  which says nothing about an embedding (a vector can keep its argmax and lose its direction, or flip its
  argmax between two near-equal dimensions and keep its direction);
- a retrieval build with `quantization.mode: mixed` searched against classifier targets (top-1 agreement,
  accuracy drop), not the retrieval gates the recipe sets (top-10 overlap, recall@10 drop).
"""

from __future__ import annotations

import numpy as np
import pytest

from devices.host_reference import HostReference
from devices.validate import DeviceReport, Gates, parity_checks
from toolchain.base.types import CheckStatus, ParityGate, Task
from toolchain.quantization.mixed import TASK_METRICS, SearchData, targets_from_gates
from toolchain.recipe.schema import EvaluationSpec
from toolchain.tasks import TASKS, task_spec


def _row(host: np.ndarray, device: np.ndarray, gates: Gates) -> DeviceReport:
    rep = DeviceReport(device="d", description="", arch="x86_64", cpu="host", runtime="r", emulated=False)
    ref = HostReference(host, quantized=False, scale=0.0, zero_point=0, accuracy=None, runtime="host")
    parity_checks(rep, device, ref, None, gates)
    return rep


def _statuses(rep: DeviceReport) -> dict[str, CheckStatus]:
    return {c.name: c.status for c in rep.checks}


def test_every_task_has_a_spec_and_the_embedding_is_gated_on_its_vectors():
    assert set(TASKS) == set(Task)
    assert task_spec("embedding").device_parity == ParityGate.COSINE
    assert (
        task_spec(Task.CLASSIFICATION).device_parity
        == task_spec("retrieval").device_parity
        == ParityGate.TOP1
    )


def test_an_embedding_device_row_is_gated_on_cosine_not_on_argmax():
    rng = np.random.default_rng(0)
    host = rng.normal(size=(50, 16)).astype(np.float32)
    host[:, 0] = host.max(1) + 1e-4  # dimension 0 leads every vector, dimension 1 is a hair behind it
    host[:, 1] = host[:, 0] - 1e-4
    # 1) the same directions, argmax flipped by a rounding-sized change on every row
    flipped = host.copy()
    flipped[:, 1] += 2e-4
    as_embedding = _row(host, flipped, Gates(parity=ParityGate.COSINE))
    assert _statuses(as_embedding)["cosine vs host"] == CheckStatus.PASS and as_embedding.passed
    assert as_embedding.metrics.top1_agreement is None and as_embedding.metrics.min_cosine > 0.9999
    assert not _row(host, flipped, Gates(parity=ParityGate.TOP1)).passed  # what the argmax gate said
    # 2) the argmax kept, the direction lost: the device is wrong and must fail
    wrong = np.zeros_like(host)
    wrong[:, 0] = 1.0
    assert _row(host, wrong, Gates(parity=ParityGate.TOP1)).passed  # what the argmax gate said
    lost = _row(host, wrong, Gates(parity=ParityGate.COSINE))
    assert _statuses(lost)["cosine vs host"] == CheckStatus.FAIL and not lost.passed


def test_mixed_targets_follow_the_task_and_its_gates():
    retrieval = EvaluationSpec(min_top10_overlap=0.95, max_recall_drop=1.0)
    t = targets_from_gates(retrieval, Task.RETRIEVAL, has_labels=True)
    assert (t.min_top10_overlap, t.max_recall_drop, t.source) == (0.975, 0.5, "recipe")
    assert t.min_agreement is None and t.max_accuracy_drop is None  # classifier targets do not apply
    default = targets_from_gates(EvaluationSpec(), Task.RETRIEVAL, has_labels=False)
    assert (
        default.source == "default" and default.min_top10_overlap == 0.99 and default.max_recall_drop is None
    )
    clf = targets_from_gates(EvaluationSpec(), Task.CLASSIFICATION, has_labels=True)
    assert (clf.min_agreement, clf.max_accuracy_drop) == (0.99, 0.5)
    emb = targets_from_gates(EvaluationSpec(max_abs_error=0.1), Task.EMBEDDING, has_labels=False)
    assert emb.min_cosine == 0.995 and emb.source == "default"  # max_abs_error is not a search target


def test_a_retrieval_candidate_is_scored_on_its_top10_list():
    rng = np.random.default_rng(1)
    ref = rng.normal(size=(20, 40)).astype(np.float32)
    labels = ref.argmax(1)
    same_top10 = ref + 1e-3 * rng.normal(size=ref.shape).astype(np.float32)
    m = TASK_METRICS[Task.RETRIEVAL](same_top10, ref, labels)
    assert m["top10_overlap"] > 0.9 and abs(m["recall_drop_points"]) < 10 and "agreement" not in m
    data = SearchData({"input_ids": np.zeros((20, 4), np.int32)}, ref, labels, "val")
    assert data.labels is labels


@pytest.mark.slow
@pytest.mark.serial  # mac_free_ops: timed: the mixed search times int8 against float kernels
def test_a_retrieval_build_with_mode_mixed_searches_its_retrieval_gates(tmp_path):
    """End to end on the CI-size product-retrieval example (the mixed search on its item table)."""
    import json

    import yaml
    from typer.testing import CliRunner

    from tests.examples.test_product_retrieval import EXAMPLE, _script
    from toolchain.cli.main import app

    root = tmp_path / "retrieval"
    assert _script("generate_data").main(["--products", "120", "--out", str(root)]) == 0
    args = ["--data", str(root), "--epochs", "4", "--dim", "16", "--embed-dim", "16", "--filters", "32"]
    assert _script("train").main(args) == 0
    recipe = yaml.safe_load((EXAMPLE / "recipe.yaml").read_text())
    recipe["quantization"] = {"mode": "mixed", "calibration_samples": 200, "mac_free_ops": "timed"}
    recipe["evaluation"] = {"min_top10_overlap": 0.9}
    recipe["output"]["dir"] = str(tmp_path / "build")
    (root / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    res = CliRunner().invoke(app, ["convert", "--recipe", str(root / "recipe.yaml"), "--json"])
    assert res.exit_code == 0, res.output
    mixed = json.loads(res.stdout)["quantization"]["mixed"]
    assert mixed["targets"] == {"min_top10_overlap": 0.95, "source": "recipe"}
    assert "top10_overlap" in mixed["chosen"] and "agreement" not in mixed["chosen"]
    assert mixed["chosen"]["top10_overlap"] >= 0.95
