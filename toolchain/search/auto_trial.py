"""One `student: auto` candidate in its own process (toolchain/search/worker.py runs it for a request with
an `auto` block): build the student as convert would, stop it early when it is hopeless, and write its
per-query predictions on the val split beside result.json, for the parent to judge with the gates.

- the trial recipe evaluates data.val in place of data.test (data.test is never read to choose; training
  never reads it, so the chosen student rebuilds to the same bytes) and carries the real gates (the
  recipe's `evaluation`, else the foreign-teacher defaults the build applies): a student that misses them
  is a rejected build (`<trial>.rejected/`), measured all the same, and the parent judges every trial with
  the same gates on its predictions (toolchain/search/auto.py);
- hopeless: after `after_epochs` epochs of distillation, a student whose val agreement with the teacher
  (the score early stopping keeps) is below `min_agreement` stops there (toolchain/steps/training.py
  EPOCH_HOOK), with the epoch and the numbers as its reason: no conversion, no evaluation;
- predictions.npz: `labels` (val label ids), `teacher_probs` (the teacher's probabilities, from the
  teacher-score cache the build filled) and `student` (the int8 model's top-1, run by LiteRT as the
  build's evaluation runs it).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import yaml

from devices.hostrun import HostRunner
from toolchain.base.atomic import write_bytes
from toolchain.base.errors import BuildRejected
from toolchain.base.progress import SilentProgress
from toolchain.build import load_build, text_feeds
from toolchain.data import load_queries
from toolchain.evaluation.metrics import softmax
from toolchain.pipeline import build
from toolchain.recipe.compose import recipe_from_dict
from toolchain.search.trial import StudentTrial, TrialResult
from toolchain.steps.teachers import step_teacher, teacher_logits
from toolchain.steps.training import EPOCH_HOOK

PREDICTIONS = "predictions.npz"


class Hopeless(Exception):
    """The student is too far below the agreement gate after its first epochs."""


def _hook(after_epochs: int, min_agreement: float | None):
    def check(epoch: int, select: str, score: float) -> None:
        at = min_agreement is not None and select == "agreement" and epoch == after_epochs
        if at and score < min_agreement:  # type: ignore[operator]
            raise Hopeless(
                f"stopped after epoch {epoch}: val agreement with the teacher {score:.2%} < "
                f"{min_agreement:.2%} (the agreement gate minus the hopeless margin)"
            )

    return check


def measure_student(
    recipe_yaml: str, run_dir: Path, after_epochs: int, min_agreement: float | None
) -> TrialResult:
    data = yaml.safe_load(recipe_yaml)
    data["data"]["test"] = data["data"]["val"]  # choose on val
    recipe = recipe_from_dict(data, origin="distill-auto trial")
    token = EPOCH_HOOK.set(_hook(after_epochs, min_agreement))
    try:
        built = build(recipe)
    except Hopeless as err:
        return TrialResult(stopped=str(err))
    except BuildRejected as rejected:  # missed the real gates: measured all the same, judged by the parent
        built = load_build(rejected.rejected_dir, allow_rejected=True)
    finally:
        EPOCH_HOOK.reset(token)
    assert built.tokenizer is not None and built.labels is not None  # a classifier student
    spec = recipe.data
    val = load_queries(spec.val, spec.text_field, spec.label_field)  # type: ignore[arg-type]
    feeds = text_feeds(built.tflite, built.tokenizer.encode_batch(val.texts))
    with HostRunner(built.model_bytes, threads=1, name=f"model.tflite of {recipe.name}") as runner:
        student = runner.scores(feeds).argmax(1)
    teacher = step_teacher(recipe, recipe.steps[0], built.labels, recipe.source.path)
    assert teacher is not None
    probs = softmax(teacher_logits(teacher, val.texts, SilentProgress(), "val"))
    buf = io.BytesIO()
    np.savez(buf, labels=val.label_ids(built.labels), teacher_probs=probs, student=student)
    write_bytes(run_dir / PREDICTIONS, buf.getvalue())
    step = built.report.steps[0]
    return TrialResult(
        student=StudentTrial(
            int8_bytes=built.report.model.size_bytes,
            parameters=getattr(step, "student_parameters", built.report.model.parameters),
            build_dir=str(built.dir),
            predictions=PREDICTIONS,
        )
    )
