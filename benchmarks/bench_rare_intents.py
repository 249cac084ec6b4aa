"""Rare intents in distillation: each technique alone, the default, and all together, per intent (issue 25).

The teacher is tests/fixtures/make_long_tail_teacher.py: a small BERT (sentence encoder + mean-pooling head,
two inputs) fine-tuned on the long-tail 32-intent variant of the example's data (7 intents under 1% of the
queries). Every row distils it into the `distill-student-int8` preset's student (a 14.6 KB int8 word CNN)
with the preset's step and one set of the distill step's rare-intent inputs, spelt out so no row depends on
the defaults:

- none: `class_balance: none`, `sure_label_weight: 0`, no log, no augmentation (the training before issue 25);
- class balance: `class_balance: sqrt` (toolchain/steps/rare_intents.py): the default before augmentation
  was on by default;
- sure labels: `sure_label_weight: 0.5`, a hard-label CE on the teacher's top label where it is sure
  (top-1 probability >= `pseudo_label_min_confidence`, 0.9 by default; the gates' 0.95 picks the same
  6,022 of the 6,024 training rows here, and measured with it the three seeds gave the same numbers);
- unlabelled log: `unlabelled:` a log of LOG_SEEDS' queries (below), scored by the teacher;
- augmentation: `augment: {copies: 4}` (toolchain/steps/augment.py, the AugmentSpec defaults);
- class balance + augmentation: the default: a foreign teacher's distill step with no rare-intent knob in
  the recipe trains exactly so (AUTO_BALANCE sqrt, AUTO_SURE_WEIGHT 0, no log, and `augment` unset: the
  AugmentSpec defaults, 4 copies, toolchain/steps/augment.py), so this row is the default's;
- class balance + augmentation + sure labels, and + the log: which of the two `all` adds costs it;
- all: class balance + sure labels + the log + augmentation.

The unlabelled log: the fixture's own generator (tests/fixtures/long_tail_queries.py) run with other seeds
(LOG_SEEDS), so it has the fixture's intent mix (the rare intents stay rare), every query whose text or
token key is in the fixture's train/val/test or already in the log dropped, the labels dropped: one query
per line, deterministic. Each build is judged on the fixture's test split by the foreign-teacher default
gates (under today's rule: the teacher is sure when its top-1 probability is >= 0.95). Seeds: the recipe
seed (student init, shuffling, augmentation), the same seeds for every row; a technique's effect on the
rare intents is compared, seed by seed, with the seed-to-seed spread of the `none` row.

Each (row, seed) build is saved under benchmarks/results/rare_intents_runs/, and the tables are rendered
from every saved build. A run empties that folder first (no build of older code is rendered), unless
`--resume`: then the builds saved by an earlier run of the same code are kept and not built again, so a
run can be split (`--resume --seeds 1` in a second process) and resumed. Writes
benchmarks/results/rare_intents.{json,md}. 27 builds: about an hour on a loaded 2-core machine.

    python benchmarks/bench_rare_intents.py [--seeds 0,1,2] [--rows none,balance,...] [--resume]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "benchmarks" / "results"
RUNS = OUT / "rare_intents_runs"
LOG_SEEDS = (125, 126)  # the fixture's data is seed 25
RARE_SHARE = 0.01  # "rare": under 1% of the fixture's queries
OTHERS = 5  # the worst few other intents shown beside the rare ones
MOVED = 0.10  # a per-intent move (mean over seeds) named in the technique's line
ROWS = {  # name -> (title, knobs)
    "none": ("none (before issue 25)", {}),
    "balance": ("class balance sqrt (the default before)", {"class_balance": "sqrt"}),
    "sure": ("sure labels 0.5", {"sure_label_weight": 0.5}),
    "log": ("unlabelled log", {"log": True}),
    "augment": ("augmentation, 4 copies", {"augment": {"copies": 4}}),
    "balance_aug": (
        "class balance + augmentation (the default)",
        {"class_balance": "sqrt", "augment": {"copies": 4}},
    ),
    "balance_aug_sure": (
        "class balance + augmentation + sure labels",
        {"class_balance": "sqrt", "augment": {"copies": 4}, "sure_label_weight": 0.5},
    ),
    "balance_aug_log": (
        "class balance + augmentation + log",
        {"class_balance": "sqrt", "augment": {"copies": 4}, "log": True},
    ),
    "all": (
        "all: balance + sure + log + augmentation",
        {"class_balance": "sqrt", "sure_label_weight": 0.5, "log": True, "augment": {"copies": 4}},
    ),
}


def make_log(teacher: Path, path: Path) -> dict:
    """The unlabelled log (see the module docstring); returns its facts."""
    from tests.fixtures import long_tail_queries as lt

    taken: set[str] = set()
    for split in ("train", "val", "test"):
        for line in (teacher / "data" / f"{split}.jsonl").read_text("utf-8").splitlines():
            if line:
                text = json.loads(line)["text"]
                taken.update({text, lt.g.tokens_key(text)})
    queries, intents = [], {}
    for seed in LOG_SEEDS:
        for rows in lt.generate(seed).values():
            for r in rows:
                keys = {r["text"], lt.g.tokens_key(r["text"])}
                if not keys & taken:
                    taken.update(keys)
                    queries.append(r["text"])
                    intents[r["intent"]] = intents.get(r["intent"], 0) + 1
    path.write_text("\n".join(queries) + "\n", encoding="utf-8")
    return {"queries": len(queries), "seeds": list(LOG_SEEDS), "by_intent_hidden": intents}


def step(key: str, log: Path) -> dict:
    from toolchain.recipe.presets import preset_plan

    knobs = dict(ROWS[key][1])
    out = {
        **preset_plan("distill-student-int8")["steps"][0],
        "class_balance": "none",
        "sure_label_weight": 0.0,
        "augment": "off",  # a foreign teacher's default is on: each row says whether it augments
    }
    if knobs.pop("log", False):
        out["unlabelled"] = str(log)
    return {**out, **knobs}


def convert(teacher: Path, out: Path, key: str, seed: int, log: Path) -> dict:
    from toolchain.base.errors import BuildRejected
    from toolchain.cli.render import RichProgress
    from toolchain.pipeline import build
    from toolchain.recipe.compose import recipe_from_dict

    data = teacher / "data"
    spec = {
        "name": f"rare-{key}-{seed}",
        "seed": seed,
        "source": {"path": str(teacher / "classifier")},
        "data": {s: str(data / f"{s}.jsonl") for s in ("train", "val", "test")} | {"seq_len": 32},
        "steps": [step(key, log)],
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
    s = report.steps[0]
    return {
        "row": key,
        "seed": seed,
        "bytes": report.model.size_bytes,
        "accuracy": t.student_accuracy,
        "teacher_accuracy": t.teacher_accuracy,
        "agreement_where_teacher_sure": t.agreement_where_teacher_sure,
        "teacher_sure_queries": t.teacher_sure_queries,
        "macro_f1": cmp.converted.macro_f1,
        "teacher_macro_f1": cmp.reference.macro_f1,
        "recall": cmp.converted.recall,
        "teacher_recall": cmp.reference.recall,
        "support": cmp.support,
        "dead_intents": gates.dead_intents,
        "weak_intents": [w.label for w in gates.weak_intents],
        "rows_added": s.rows.to_json(),
        "rare_intents": s.rare_intents.to_json() if s.rare_intents is not None else None,
        "verdict": verdict,
        "build_seconds": round(time.perf_counter() - t0, 1),
    }


def mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def rare_mean(run: dict, rare: list[str]) -> float:
    return mean([run["recall"][k] for k in rare])


def verdict(key: str, by: dict, rare: list[str], base: str = "none") -> tuple[str, str]:
    """helps / no effect / hurts on the rare intents' mean recall, seed by seed against `base`: an effect
    counts when its mean is beyond the larger seed-to-seed spread of the two rows and every seed agrees."""
    seeds = sorted(set(by[base]) & set(by[key]))
    deltas = [rare_mean(by[key][s], rare) - rare_mean(by[base][s], rare) for s in seeds]
    d = mean(deltas)
    if len(seeds) < 2:
        return "unknown (one seed: no noise measured)", f"{d * 100:+.1f} pt (seed {seeds[0]})"
    spread = max(
        max(rare_mean(by[k][s], rare) for s in seeds) - min(rare_mean(by[k][s], rare) for s in seeds)
        for k in (base, key)
    )
    per_seed = ", ".join(f"{x * 100:+.1f}" for x in deltas)
    text = f"{d * 100:+.1f} pt (per seed {per_seed}; seed spread {spread * 100:.1f} pt)"
    if d > spread and all(x > 0 for x in deltas):
        return "helps", text
    if d < -spread and all(x < 0 for x in deltas):
        return "hurts", text
    return "no effect (within seed noise)", text


def technique_line(key: str, base: str, by: dict, rare: list[str], shown: list[str]) -> str:
    """The verdict, the intents it moved (mean over the seeds) and the headline numbers, against `base`."""
    common = set(by[base]) & set(by[key])
    by = {k: {s: r for s, r in by[k].items() if s in common} for k in (base, key)}  # the same seeds

    def recall(k: str, intent: str) -> float:
        return mean([r["recall"][intent] for r in by[k].values()])

    def m(k: str, field: str) -> float:
        return mean([r[field] for r in by[k].values()])

    word, text = verdict(key, by, rare, base)
    moved = sorted(((i, recall(key, i) - recall(base, i)) for i in shown), key=lambda x: (-abs(x[1]), x[0]))
    named = ", ".join(f"{i} {d * 100:+.0f} pt" for i, d in moved if abs(d) >= MOVED) or "none by 10 pt"
    return (
        f"- **{ROWS[key][0]}: {word}** on the rare intents, {text}; moved: {named}; accuracy "
        f"{(m(key, 'accuracy') - m(base, 'accuracy')) * 100:+.2f} pt, macro-F1 "
        f"{(m(key, 'macro_f1') - m(base, 'macro_f1')) * 100:+.2f} pt."
    )


def render(by: dict, facts: dict, log: dict, seconds: float) -> str:
    keys = [k for k in ROWS if k in by and by[k]]
    first = next(iter(by["none"].values()))
    counts = facts["train_counts"]
    every = facts["query_counts"]  # the fixture's queries per intent, all splits
    rare = sorted(
        (k for k in every if every[k] / sum(every.values()) < RARE_SHARE), key=lambda k: (every[k], k)
    )
    seeds = sorted(by["none"])

    def m(key: str, field: str) -> float:
        return mean([r[field] for r in by[key].values()])

    def recall(key: str, intent: str) -> float:
        return mean([r["recall"][intent] for r in by[key].values()])

    others = sorted((k for k in counts if k not in rare), key=lambda k: (min(recall(x, k) for x in keys), k))[
        :OTHERS
    ]
    sure, n_test = first["teacher_sure_queries"], sum(first["support"].values())
    lines = [
        f"Seeds {', '.join(map(str, seeds))}; each number is the mean over the seeds (test split, int8 "
        f"student, {first['bytes'] / 1024:.1f} KB). Teacher: {first['teacher_accuracy']:.2%} accuracy, "
        f"macro-F1 {first['teacher_macro_f1']:.4f}, sure (top-1 probability >= 0.95) on {sure} of {n_test} "
        f"test queries. Unlabelled log: {log['queries']:,} queries, the fixture's generator with seeds "
        f"{', '.join(map(str, log['seeds']))} (the fixture's intent mix), none in the fixture's splits, "
        "no labels.",
        "",
        "| technique | training rows (labelled + log + augmented) | accuracy | agreement where sure | "
        "macro-F1 | rare intents' mean recall | dead | below half the teacher's recall | gates (per seed) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for key in keys:
        runs = list(by[key].values())
        rows = runs[0]["rows_added"]
        added = f"{rows['labelled']:,} + {rows['unlabelled']:,} + {rows['augmented']:,}"
        lines.append(
            f"| {ROWS[key][0]} | {added} | {m(key, 'accuracy'):.2%} | "
            f"{m(key, 'agreement_where_teacher_sure'):.2%} | {m(key, 'macro_f1'):.4f} | "
            f"{mean([rare_mean(r, rare) for r in runs]):.1%} | {m(key, 'dead_intents'):.1f} | "
            f"{mean([len(r['weak_intents']) for r in runs]):.1f} | "
            f"{'; '.join(r['verdict'].replace('rejected: ', 'x ') for r in runs)} |"
        )
    lines += [
        "",
        "Recall per intent (mean over the seeds), the 7 intents under 1% of the queries first, then the "
        f"{OTHERS} other intents with the lowest recall in any row:",
        "",
        "| intent | train / test queries | teacher | " + " | ".join(keys) + " |",
        "|---|---:|---:|" + "---:|" * len(keys),
    ]
    for intent in rare + others:
        cells = " | ".join(f"{recall(k, intent):.0%}" for k in keys)
        lines.append(
            f"| {intent}{' (rare)' if intent in rare else ''} | {counts[intent]} / "
            f"{first['support'][intent]} | {first['teacher_recall'][intent]:.0%} | {cells} |"
        )
    lines += ["", "Against `none`, on the rare intents' mean recall (seed by seed):", ""]
    lines += [technique_line(k, "none", by, rare, rare + others) for k in keys if k != "none"]
    for base, title, tops in (
        ("balance", "On top of class balance (the default before)", ("balance_aug", "all")),
        (
            "balance_aug",
            "On top of class balance + augmentation (the default)",
            ("balance_aug_sure", "balance_aug_log", "all"),
        ),
    ):
        on_top = [k for k in tops if k in keys and base in keys]
        if on_top:
            lines += ["", f"{title}:", ""]
            lines += [technique_line(k, base, by, rare, rare + others) for k in on_top]
    lines += ["", f"Total {seconds:.0f} s of builds ({sum(len(v) for v in by.values())} builds)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from tests.fixtures import long_tail_queries as lt
    from tests.fixtures.make_long_tail_teacher import ensure_teacher

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--rows", default=",".join(ROWS))
    parser.add_argument("--resume", action="store_true", help="keep the builds saved by an earlier run")
    parser.add_argument("--render-only", action="store_true", help="only the tables of the saved builds")
    args = parser.parse_args(argv)
    teacher = ensure_teacher()
    if not (args.resume or args.render_only) and RUNS.is_dir():
        shutil.rmtree(RUNS)  # builds of older code are not rendered beside new ones
    RUNS.mkdir(parents=True, exist_ok=True)
    log_path = RUNS / "unlabelled_log.txt"
    log = make_log(teacher, log_path)
    train = [
        json.loads(x)["intent"] for x in (teacher / "data" / "train.jsonl").read_text().splitlines() if x
    ]
    facts = {"train_counts": {k: train.count(k) for k in sorted(set(train))}, "query_counts": lt.counts()}
    if not args.render_only:
        for seed in [int(s) for s in args.seeds.split(",")]:
            for key in args.rows.split(","):
                saved = RUNS / f"{key}-{seed}.json"
                if saved.is_file():
                    continue
                with tempfile.TemporaryDirectory() as tmp:
                    run = convert(teacher, Path(tmp), key, seed, log_path)
                saved.write_text(json.dumps(run, indent=1))
                print(f"{key} seed {seed}: {run['accuracy']:.2%} {run['verdict']} {run['build_seconds']} s")
    by: dict[str, dict[int, dict]] = {k: {} for k in ROWS}
    for path in sorted(RUNS.glob("*-*.json")):
        run = json.loads(path.read_text())
        by[run["row"]][run["seed"]] = run
    seconds = sum(r["build_seconds"] for v in by.values() for r in v.values())
    md = render(by, facts, log, seconds)
    (OUT / "rare_intents.md").write_text(md)
    (OUT / "rare_intents.json").write_text(json.dumps({"log": log, "runs": by, "seconds": seconds}, indent=1))
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
