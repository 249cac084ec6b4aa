"""Teacher vs distilled students, side by side in one run (issue 14, item 5).

The teacher is the ONNX BERT intent classifier fixture (tests/fixtures/make_bert_models.py), converted fp32,
dynamic and mixed int8 (its best int8). The students are distilled from that ONNX file with the
`distill-student-int8` step (word-level CNN on its own regex vocab): fp32, int8, int8 with 8 augmented
copies of each training query scored by the teacher, and pruned 50% + int8.
Per row: size, gzip, test accuracy, top-1 agreement with the teacher (onnxruntime), median latency per query
(ai_edge_litert, 1 thread, all six models timed in alternating rounds: benchmarks/bench_transformer.py's
`median_latency`), and size/latency ratios vs the teacher's dynamic int8. Writes
benchmarks/results/distill.{json,md}.

    python benchmarks/bench_distill.py [--rounds 200] [--invokes 10]

Then (`--auto`: only this) `edgecomp convert --preset distill-auto` on the same teacher (the largest
classifier fixture here): every student the default ladder tried, smallest first, with its verdict under
the default gates (toolchain/tasks.py TEACHER_DEFAULT_GATES) and the time; writes
benchmarks/results/distill_auto.{json,md}.

    python benchmarks/bench_distill.py --auto [--workers 2] [--ray-address ADDRESS]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from devices.cpuinfo import bench_header, host_cpu  # noqa: E402  (after the path line)

DATA = ROOT / "examples" / "shopping_intent" / "data"
OUT = ROOT / "benchmarks" / "results"
LATENCY_QUERIES = 64


def _recipe(clf: Path, out: Path, name: str, mode: str, steps: list) -> dict:
    return {
        "name": name,
        "seed": 0,
        "source": {"path": str(clf / "model.onnx"), "task": "classification"},
        "data": {
            "tokenizer": str(clf / "tokenizer.json") if not steps else None,
            "labels": str(clf / "labels.txt"),
            "train": str(DATA / "train.jsonl"),
            "calibration": str(DATA / "train.jsonl"),
            "val": str(DATA / "val.jsonl"),
            "test": str(DATA / "test.jsonl"),
            "seq_len": 32,
        },
        "steps": steps,
        "quantization": {"mode": mode},
        # a gate of the user's, so the students are judged by it rather than by the foreign-teacher defaults
        # (benchmarks/bench_rare_intents.py measures those, on the long-tail teacher)
        "evaluation": {"min_agreement": 0.8},
        "output": {"dir": str(out)},
    }


def variants() -> list[tuple[str, str, list]]:
    from toolchain.recipe.presets import preset_plan

    # augmentation spelt out (a foreign teacher's default is on): only the row that says so augments
    distill = {**preset_plan("distill-student-int8")["steps"][0], "augment": "off"}
    prune = {"kind": "prune", "target_sparsity": 0.5, "epochs": 2}
    return [
        ("teacher fp32", "float32", []),
        ("teacher dynamic int8", "dynamic", []),
        ("teacher mixed int8", "mixed", []),
        ("student fp32", "float32", [distill]),
        ("student int8", "int8", [distill]),
        ("student int8, 8 augmented copies/query", "int8", [{**distill, "augment": {"copies": 8}}]),
        ("student pruned 50% int8", "int8", [distill, prune]),
    ]


def convert(clf: Path, out: Path, index: int, name: str, mode: str, steps: list) -> dict:
    from toolchain.cli.render import RichProgress
    from toolchain.pipeline import build
    from toolchain.recipe.compose import recipe_from_dict

    spec = _recipe(clf, out, f"distill-{index}", mode, steps)
    spec["data"] = {k: v for k, v in spec["data"].items() if v is not None}
    t0 = time.perf_counter()
    built = build(recipe_from_dict(spec), progress=RichProgress())
    r = built.report
    ev = r.evaluation
    if ev.teacher is not None:  # a student: compared with the teacher and the labels
        accuracy, agreement = ev.teacher.student_accuracy, ev.teacher.agreement_with_teacher
        sure = ev.teacher.agreement_where_teacher_sure
    else:  # the teacher converted: compared with itself in onnxruntime
        accuracy = ev.vs_source_float.converted.accuracy
        agreement, sure = ev.onnx_reference.top1_agreement, None
    return {
        "model": name,
        "mode": mode,
        "bytes": r.model.size_bytes,
        "gzip_bytes": r.model.gzip_bytes,
        "accuracy": accuracy,
        "agreement_with_teacher": agreement,
        "agreement_where_teacher_sure": sure,
        "build_seconds": round(time.perf_counter() - t0, 1),
        "model_bytes": built.model_bytes,
        "feeds": built.eval_set("test", limit=LATENCY_QUERIES).feeds,
    }


def render(rows: list[dict], args, seconds: float) -> str:
    base = next(r for r in rows if r["model"] == "teacher dynamic int8")
    lines = [
        "| model | size | gzip | x smaller than teacher dynamic | accuracy | agreement with teacher | "
        "where the teacher is sure | µs/query | x faster than teacher dynamic |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        sure = r["agreement_where_teacher_sure"]
        lines.append(
            f"| {r['model']} | {r['bytes'] / 1024:.1f} KB | {r['gzip_bytes'] / 1024:.1f} KB | "
            f"{base['bytes'] / r['bytes']:.1f}x | {r['accuracy']:.2%} | {r['agreement_with_teacher']:.2%} | "
            f"{'' if sure is None else f'{sure:.2%}'} | {r['latency_us']:.1f} | "
            f"{base['latency_us'] / r['latency_us']:.1f}x |"
        )
    lines += [
        "",
        f"Teacher: ONNX BERT fixture (2 layers, hidden 64, seq 32), onnxruntime accuracy "
        f"{rows[0]['accuracy']:.2%}. Latency: median of {args.rounds} alternating rounds x {args.invokes} "
        f'invokes, 1 thread, ai_edge_litert. Total {seconds:.0f} s. "Where the teacher is sure": test '
        "queries whose teacher top-1 probability is >= 0.95 (tasks.py TEACHER_SURE_MIN_PROB).",
    ]
    return "\n".join(lines) + "\n"


def auto(clf: Path, workers: int, ray_address: str | None) -> int:
    """distill-auto on the teacher with the default ladder and gates; the candidates table and the time."""
    from toolchain.base.errors import GateFailed
    from toolchain.cli.render import RichProgress
    from toolchain.recipe.compose import apply_preset, recipe_from_dict
    from toolchain.report.distill_auto import DistillAutoSection, candidates_markdown
    from toolchain.search.auto import build_auto

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        spec = _recipe(clf, Path(tmp), "distill-auto", "int8", [])
        spec.pop("evaluation")  # no gate of the user's: the foreign-teacher defaults judge the candidates
        spec["data"] = {k: v for k, v in spec["data"].items() if v is not None}
        recipe = apply_preset(recipe_from_dict(spec), "distill-auto")
        kept = None
        try:
            built = build_auto(recipe, RichProgress(), workers, ray_address)
            kept = f"kept: test accuracy {built.report.evaluation.teacher.student_accuracy:.2%}"
        except GateFailed as err:
            kept = f"none kept: {err.message}"
        found = Path(tmp) / "distill-auto.distill-auto" / "candidates.json"
        section = DistillAutoSection.model_validate_json(found.read_text())
        md = candidates_markdown(section).split("\n", 2)[2]  # the table without the page's heading
        md = md.replace(tmp, "<work>")  # a temp dir means nothing to a reader
    seconds = time.perf_counter() - t0
    md += f"\nTeacher: the ONNX BERT fixture. {kept}. Total {seconds:.0f} s ({workers} worker(s)).\n"
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "distill_auto.md").write_text(md)
    (OUT / "distill_auto.json").write_text(
        json.dumps({"section": section.to_json(), "kept": kept, "seconds": round(seconds, 1)}, indent=2)
    )
    print(md)
    return 0


def main(argv: list[str] | None = None) -> int:
    from bench_transformer import median_latency

    from tests.fixtures.make_bert_models import ensure_models

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--invokes", type=int, default=10)
    parser.add_argument("--auto", action="store_true", help="only distill-auto on the teacher")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--ray-address", default=None)
    args = parser.parse_args(argv)
    if args.auto:
        return auto(ensure_models() / "classifier", args.workers, args.ray_address)
    t_start = time.perf_counter()
    clf = ensure_models() / "classifier"
    with tempfile.TemporaryDirectory() as tmp:
        rows = [convert(clf, Path(tmp), i, *v) for i, v in enumerate(variants())]
    timed = {r["model"]: (r.pop("model_bytes"), r.pop("feeds")) for r in rows}
    latency = median_latency(timed, args.rounds, args.invokes)
    for r in rows:
        r["latency_us"] = latency[r["model"]]
    seconds = time.perf_counter() - t_start
    md = render(rows, args, seconds)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "distill.md").write_text(bench_header() + md)
    (OUT / "distill.json").write_text(
        json.dumps({"host_cpu": host_cpu().to_json(), "rows": rows, "seconds": round(seconds, 1)}, indent=2)
    )
    print(bench_header() + md)
    return auto(clf, args.workers, args.ray_address)


if __name__ == "__main__":
    sys.exit(main())
