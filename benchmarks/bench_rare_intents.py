"""Rare intents in distillation, per intent, on the long-tail teacher (issue 25, items 2, 3 and 6).

The teacher is tests/fixtures/make_long_tail_teacher.py: a small BERT (sentence encoder + mean-pooling head,
two inputs) fine-tuned on the long-tail 32-intent variant of the example's data (7 intents under 1% of the
queries). Each student is distilled from its ONNX file with the `distill-student-int8` preset's step and
judged by the foreign-teacher default gates (toolchain/evaluation/teacher_gates.py): the training before
issue 25 (`class_balance: none`, `sure_label_weight: 0`) beside the rare-intent handling (toolchain/steps/
rare_intents.py: class balance `sqrt`, the foreign-teacher default; hard labels where the teacher is sure;
both; `inverse` + sure labels), then a wider student (the `distill-int8` preset's, 2,000 words). Per
row: int8 size, accuracy, agreement with the teacher (all, and where it is sure), macro-F1, dead intents
(recall 0 where the teacher's is not), intents below half the teacher's recall, the worst intent and its
recall, and the gates' verdict.
Writes benchmarks/results/rare_intents.{json,md}.

    python benchmarks/bench_rare_intents.py
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "benchmarks" / "results"
TODAY = {"class_balance": "none", "sure_label_weight": 0.0}


def variants() -> list[tuple[str, dict]]:
    """Each student's knobs spelt out, so the rows do not depend on the defaults (class_balance sqrt)."""
    from toolchain.recipe.presets import STUDENT, preset_plan

    preset = preset_plan("distill-student-int8")["steps"][0]
    wider = {**preset, "student": STUDENT, "student_vocab": {"max_size": 2000}}

    def knobs(balance: str, sure: float) -> dict:
        return {"class_balance": balance, "sure_label_weight": sure}

    return [
        ("preset student, before (no rare-intent handling)", {**preset, **knobs("none", 0.0)}),
        ("preset student, class_balance sqrt (the default)", {**preset, **knobs("sqrt", 0.0)}),
        ("preset student, sure labels 0.5 only", {**preset, **knobs("none", 0.5)}),
        ("preset student, class_balance sqrt + sure labels 0.5", {**preset, **knobs("sqrt", 0.5)}),
        ("preset student, class_balance inverse + sure labels 0.5", {**preset, **knobs("inverse", 0.5)}),
        ("distill-int8 student, 2,000 words, before", {**wider, **knobs("none", 0.0)}),
        ("distill-int8 student, 2,000 words, sqrt + sure labels 0.5", {**wider, **knobs("sqrt", 0.5)}),
    ]


def convert(teacher: Path, out: Path, index: int, name: str, step: dict) -> dict:
    from toolchain.base.errors import BuildRejected
    from toolchain.cli.render import RichProgress
    from toolchain.pipeline import build
    from toolchain.recipe.compose import recipe_from_dict

    data = teacher / "data"
    spec = {
        "name": f"rare-{index}",
        "seed": 0,
        "source": {"path": str(teacher / "classifier")},
        "data": {s: str(data / f"{s}.jsonl") for s in ("train", "val", "test")} | {"seq_len": 32},
        "steps": [step],
        "quantization": {"mode": "int8"},
        "output": {"dir": str(out)},
    }
    t0 = time.perf_counter()
    try:
        report, verdict = build(recipe_from_dict(spec), progress=RichProgress()).report, "meets the gates"
    except BuildRejected as rejected:
        report, verdict = rejected.report, f"rejected: {rejected.report.rejected.gate}"
    ev = report.evaluation
    t, cmp, gates = ev.teacher, ev.vs_source_float, ev.gates
    assert t is not None and cmp is not None and gates is not None
    ratios = {k: cmp.converted.recall[k] / r for k, r in cmp.reference.recall.items() if r > 0}
    worst = min(ratios, key=lambda k: (ratios[k], k))
    return {
        "model": name,
        "bytes": report.model.size_bytes,
        "parameters": report.steps[0].student_parameters,
        "accuracy": t.student_accuracy,
        "teacher_accuracy": t.teacher_accuracy,
        "agreement_with_teacher": t.agreement_with_teacher,
        "agreement_where_teacher_sure": t.agreement_where_teacher_sure,
        "teacher_sure_queries": t.teacher_sure_queries,
        "macro_f1": cmp.converted.macro_f1,
        "teacher_macro_f1": cmp.reference.macro_f1,
        "dead_intents": gates.dead_intents,
        "weak_intents": [w.label for w in gates.weak_intents],
        "worst_intent": worst,
        "worst_intent_recall": cmp.converted.recall[worst],
        "worst_intent_teacher_recall": cmp.reference.recall[worst],
        "verdict": verdict,
        "build_seconds": round(time.perf_counter() - t0, 1),
    }


def render(rows: list[dict], seconds: float, facts: dict) -> str:
    lines = [
        "| student (int8) | size | accuracy | agreement | where the teacher is sure | macro-F1 | "
        "dead intents | below half the teacher's recall | worst intent (recall / teacher's) | gates |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['bytes'] / 1024:.1f} KB | {r['accuracy']:.2%} | "
            f"{r['agreement_with_teacher']:.2%} | {r['agreement_where_teacher_sure']:.2%} | "
            f"{r['macro_f1']:.4f} | {r['dead_intents']} | {len(r['weak_intents'])} | {r['worst_intent']} "
            f"{r['worst_intent_recall']:.0%} / {r['worst_intent_teacher_recall']:.0%} | {r['verdict']} |"
        )
    t = rows[0]
    lines += [
        "",
        f"Teacher: tests/fixtures/make_long_tail_teacher.py ({facts['parameters']:,} parameters, two "
        "inputs), "
        f"{t['teacher_accuracy']:.2%} accuracy and macro-F1 {t['teacher_macro_f1']:.4f} on the "
        f"{facts['queries']['test']} test queries of 32 intents (the 7 rarest have 4-7 test queries each); "
        f"sure on {t['teacher_sure_queries']} of them (top-1 probability >= 0.95). Default gates: accuracy "
        "within 1.5 points, agreement >= 95% where the teacher is sure, macro-F1 within 2 points, no intent "
        f"below half the teacher's recall. Total {seconds:.0f} s.",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    from tests.fixtures.make_long_tail_teacher import ensure_teacher

    t_start = time.perf_counter()
    teacher = ensure_teacher()
    facts = json.loads((teacher / "fixture.json").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        rows = [convert(teacher, Path(tmp), i, *v) for i, v in enumerate(variants())]
    seconds = time.perf_counter() - t_start
    md = render(rows, seconds, facts)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "rare_intents.md").write_text(md)
    (OUT / "rare_intents.json").write_text(json.dumps({"rows": rows, "seconds": round(seconds, 1)}, indent=2))
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
