"""Per-task behaviour as data: which gates apply, which MediaPipe task runs it, what parity compares.

- classification: one score per label; accuracy/agreement gates; TextClassifier, parity on the top-1 label.
- embedding: a vector per query; closeness to onnxruntime; TextEmbedder, parity on the vectors.
- retrieval: one score per catalog item (labels.txt = item ids); recall@k / top-10 overlap gates
  (toolchain/evaluation/retrieval.py); TextClassifier over the item ids, parity on the whole top-10 list.

A recipe that sets a gate its task never measures is refused (a gate that does not apply would otherwise
pass silently). The ONNX closeness gates apply to classification and embedding (retrieval takes Keras).
"""

from __future__ import annotations

from dataclasses import dataclass

ONNX_GATES = ("min_cosine", "max_abs_error")
CLASSIFIER_GATES = ("max_accuracy_drop", "min_agreement")
RETRIEVAL_GATES = ("min_recall_at_10", "max_recall_drop", "min_top10_overlap")


@dataclass(frozen=True)
class TaskSpec:
    name: str
    gates: tuple[str, ...]  # evaluation.<gate> keys this task's evaluation measures
    mediapipe_task: str  # TextClassifier | TextEmbedder
    parity_top_k: int | None  # ranks MediaPipe must reproduce (None: vectors)


TASKS = {
    "classification": TaskSpec("classification", (*CLASSIFIER_GATES, *ONNX_GATES), "TextClassifier", 1),
    "embedding": TaskSpec("embedding", ONNX_GATES, "TextEmbedder", None),
    "retrieval": TaskSpec("retrieval", RETRIEVAL_GATES, "TextClassifier", 10),
}
AUTO_GATES = (*CLASSIFIER_GATES, *ONNX_GATES)  # task auto resolves to classification or embedding


def task_spec(task: str) -> TaskSpec:
    """The spec of a resolved task; an unknown name (an old or hand-edited report) reads as classification."""
    return TASKS.get(task, TASKS["classification"])


def check_task_gates(task: str, gates: dict[str, object]) -> None:
    """RecipeError naming the key, for a gate the task does not measure (raised as is through pydantic)."""
    from toolchain.base.errors import RecipeError

    allowed = AUTO_GATES if task == "auto" else task_spec(task).gates
    wrong = [g for g in gates if g not in allowed]
    if wrong:
        which = "task auto (classification or embedding)" if task == "auto" else f"task {task}"
        retrieval = " or set source.task: retrieval (--task retrieval)" if wrong[0] in RETRIEVAL_GATES else ""
        raise RecipeError(
            f"evaluation.{wrong[0]} is not measured for {which}",
            hint=f"use the gates of this task ({', '.join(allowed)}){retrieval}",
        )
