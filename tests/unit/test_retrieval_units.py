"""Task retrieval without TensorFlow: metrics, gates and their messages, recipe refusals, top-k parity."""

from __future__ import annotations

import numpy as np
import pytest

from toolchain.base.errors import GateFailed, RecipeError
from toolchain.evaluation.gates import failed_gate, rejection
from toolchain.evaluation.retrieval import (
    ranks,
    retrieval_metrics,
    retrieval_stages,
    retrieval_summary,
    top_k,
    top_k_overlap,
)
from toolchain.package.gates import rank_gate
from toolchain.package.parity import compare_top_k
from toolchain.recipe.compose import recipe_from_dict
from toolchain.recipe.schema import EvaluationSpec
from toolchain.report.evaluation import EvaluationSection


def test_top_k_breaks_ties_towards_the_lower_index():
    scores = np.array([[0.5, 0.9, 0.9, 0.1]], dtype=np.float32)
    assert top_k(scores, 3).tolist() == [[1, 2, 0]]
    assert ranks(scores, np.array([2])).tolist() == [1]  # item 1 ties with it and comes first


def test_recall_and_mrr_by_hand():
    scores = np.array([[0.9, 0.1, 0.0], [0.2, 0.3, 0.9], [0.1, 0.5, 0.4]], dtype=np.float32)
    y = np.array([0, 1, 0])  # ranks 0, 1, 2
    m = retrieval_metrics(scores, y)
    assert m._asdict() == {
        "recall_at_1": 0.3333,
        "recall_at_10": 1.0,
        "mrr": round((1 + 1 / 2 + 1 / 3) / 3, 4),
    }


def test_top_k_overlap_counts_shared_ids_in_any_order():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 50)).astype(np.float32)
    assert top_k_overlap(a, a) == 1.0
    b = a.copy()
    b[:, top_k(a, 1)[:, 0]] = -99.0  # every query's best item falls to the bottom
    assert top_k_overlap(a, b) < 1.0
    reordered = a.copy()
    reordered[np.arange(4)[:, None], top_k(a)] = a[np.arange(4)[:, None], top_k(a)[:, ::-1]]
    assert top_k_overlap(a, reordered) == 1.0


def _evaluation(
    recall_source: float, recall_final: float, overlap: float, steps: bool = False
) -> EvaluationSection:
    def stage(name: str, recall: float, ov: float) -> dict:
        return {
            "stage": name,
            "recall_at_1": recall / 2,
            "recall_at_10": recall,
            "mrr": recall / 2,
            "top10_overlap_vs_source": ov,
            "top1_agreement_vs_source": ov,
            "recall_at_10_drop_points": round((recall_source - recall) * 100, 2),
        }

    stages = [stage("source", recall_source, 1.0)]
    if steps:
        stages.append(stage("after steps", recall_source - 0.03, 0.9))
    final = stage("after quantization", recall_final, overlap)
    final["top10_overlap_vs_post_step_float"] = 0.99 if steps else overlap
    retrieval = {"queries": 100, "items": 50, "k": 10, "stages": [*stages, final]}
    return EvaluationSection.model_validate({"retrieval": retrieval})


def test_retrieval_gates_name_the_metric_and_the_limit():
    ev = _evaluation(0.80, 0.78, 0.93)
    assert failed_gate(EvaluationSpec(), ev) is None
    miss = failed_gate(EvaluationSpec(min_recall_at_10=0.9), ev)
    assert miss is not None and miss.text == "recall@10 78.00% is below 90.00%"
    miss = failed_gate(EvaluationSpec(max_recall_drop=1.0), ev)
    assert miss is not None and miss.text == "recall@10 drop 2.0 points vs source (limit 1.0)"
    miss = failed_gate(EvaluationSpec(min_top10_overlap=0.95), ev)
    assert miss is not None and miss.text == "top-10 overlap vs source 93.00% is below 95.00%"
    section = rejection(miss, ev, [], "build/x.rejected")
    assert section.message.startswith("gate min_top10_overlap failed: top-10 overlap vs source 93.00%")
    assert "by stage: source recall@10 80.00% -> after quantization recall@10 78.00%" in section.message
    assert section.cost_most == "quantization" and "--min-top10-overlap" in section.hint


def test_a_retrieval_gate_blames_the_steps_when_they_cost_most():
    ev = _evaluation(0.80, 0.765, 0.9, steps=True)  # steps: -3 points, quantization: -0.5
    miss = failed_gate(EvaluationSpec(max_recall_drop=1.0), ev)
    assert miss is not None
    section = rejection(miss, ev, ["lowrank"], "build/x.rejected")
    assert section.cost_most == "steps" and "after steps (lowrank) recall@10 77.00%" in section.message
    assert section.hint.startswith("the steps (lowrank) cost most")


def test_retrieval_stages_and_summary_rows():
    rng = np.random.default_rng(1)
    source = rng.normal(size=(30, 40)).astype(np.float32)
    y = source.argmax(1)
    section = retrieval_stages(source, None, source + 1e-3 * rng.normal(size=source.shape), y)
    assert [s.stage for s in section.stages] == ["source", "after quantization"]
    assert section.stages[0].recall_at_1 == 1.0
    rows = dict(retrieval_summary(EvaluationSection(retrieval=section)))
    assert set(rows) == {"recall@10 drop (points)", "top-10 overlap vs source"}


def _recipe(task: str, **gates) -> dict:
    return {"source": {"path": "m.keras", "task": task}, "evaluation": gates}


def test_recipe_refuses_gates_the_task_does_not_measure():
    assert recipe_from_dict(_recipe("retrieval", min_top10_overlap=0.95, max_recall_drop=1.0))
    with pytest.raises(RecipeError) as err:
        recipe_from_dict(_recipe("retrieval", min_agreement=0.97))
    assert err.value.message == "evaluation.min_agreement is not measured for task retrieval"
    assert "min_recall_at_10, max_recall_drop, min_top10_overlap" in err.value.hint
    with pytest.raises(RecipeError) as err:
        recipe_from_dict(_recipe("auto", min_recall_at_10=0.5))
    assert "not measured for task auto" in err.value.message and "source.task: retrieval" in err.value.hint


def test_top_k_parity_and_its_gate():
    labels = [f"p{i}" for i in range(12)]
    scores = np.array([np.arange(12, 0, -1)], dtype=np.float32)  # p0 best ... p11 worst
    same = [[(i, float(12 - i)) for i in range(10)]]
    parity = compare_top_k("lowercased", ["red shoes"], scores, same, labels, 10)
    assert parity.identical == parity.same_set == 1 and parity.max_abs_score_diff == 0.0
    rank_gate(parity)
    swapped = [[(0, 12.0), (2, 10.0), (1, 11.0), *same[0][3:]]]
    parity = compare_top_k("lowercased", ["red shoes"], scores, swapped, labels, 10)
    assert parity.identical == 0 and parity.same_set == 1
    with pytest.raises(GateFailed) as err:
        rank_gate(parity)
    assert err.value.message == (
        "MediaPipe TextClassifier's top 10 differs from the toolchain's on 1 of 1 queries (lowercased), "
        "e.g. 'red shoes' at rank 2: toolchain ['p1', 'p2', 'p3'], MediaPipe ['p2', 'p1', 'p3']"
    )


def test_item_prune_is_the_last_step_of_a_retrieval_recipe():
    prune = {"kind": "item_prune"}
    assert recipe_from_dict(
        {**_recipe("retrieval"), "steps": [prune], "quantization": {"mode": "weight_only"}}
    )
    with pytest.raises(RecipeError, match="item_prune must be the last step"):
        recipe_from_dict({**_recipe("retrieval"), "steps": [prune, {"kind": "lowrank", "rank": 8}]})
    with pytest.raises(RecipeError, match="set source.task: retrieval"):
        recipe_from_dict({**_recipe("auto"), "steps": [prune]})


def test_label_ids_can_map_unknown_labels_to_a_miss(tmp_path):
    from toolchain.base.errors import DataError
    from toolchain.data import load_queries

    path = tmp_path / "q.jsonl"
    path.write_text('{"text": "a", "product_id": "p1"}\n{"text": "b", "product_id": "p9"}\n')
    qs = load_queries(path, "text", "product_id")
    assert qs.label_ids(["p0", "p1"], missing=-1).tolist() == [1, -1]
    with pytest.raises(DataError, match="labels not in the model's label list: p9"):
        qs.label_ids(["p0", "p1"])
