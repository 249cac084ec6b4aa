"""`student: auto` (`--preset distill-auto`): students tried from small to large, the smallest int8 one
that meets the gates kept, with the search machinery.

- **The ladder**: the step's `auto.candidates`, else toolchain/recipe/presets.py AUTO_LADDER (word-level
  CNNs and BiGRUs at several widths, a CNN on the teacher's own tokenizer started from the teacher's
  embedding table). Each is ordered by its parameters, counted on the untrained Keras student with the
  vocab it would get (the word vocab built from train + unlabelled, or the teacher's), smallest first.
- **Each candidate is a trial**: the base recipe with that student, built in its own process
  (toolchain/search/worker.py -> auto_trial.py) by the search's executors: `--workers N` local processes
  or Ray tasks on `--ray-address`. It is measured on the val split; data.test is never read to choose.
- **The gates** are the final build's (toolchain/evaluation/teacher_gates.py `effective_gates`: the
  recipe's `evaluation` gates, else the foreign-teacher defaults of toolchain/tasks.py), checked by
  toolchain/evaluation/gates.py on each candidate's per-query val predictions
  (toolchain/evaluation/student_gates.py); the table shows every gate's number and verdict.
- **Small to large, stop at the first pass**: candidates run in batches of `--workers` in ladder order;
  after a batch with a passing candidate no larger one is tried, and the smallest passing one is kept
  (the same batches locally and on Ray, and builds are deterministic by the seed: the same choice).
- **Hopeless candidates stop early**: after `auto.hopeless_after_epochs` epochs, a student whose val
  agreement is below the agreement gate minus `auto.hopeless_margin` stops (Optuna's PRUNED).
- **The teacher scores once**: the train and val queries are scored here into the teacher-score cache,
  so the trials of a batch read them instead of each scoring them at once.
- **Resumable**: an Optuna JournalStorage in build/<name>.distill-auto/study.journal; rerunning the same
  command skips the candidates already measured (one left running by an interrupted run is run again);
  another recipe, ladder, gates or seed refuses the old folder.
- **Then the build**: the chosen student's recipe (student: its concrete spec, so recipe.yaml replays
  without a search) is built as convert builds, evaluated on test, with the `distill_auto` report section
  listing every candidate. None passing: GateFailed (exit 1) naming the closest, after candidates.md/json.
"""

from __future__ import annotations

import json
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from toolchain import pipeline
from toolchain.base.atomic import write_text
from toolchain.base.errors import EdgecompError, GateFailed, RecipeError
from toolchain.base.progress import Progress, SilentProgress
from toolchain.base.types import SourceFormat, Task
from toolchain.build import Build, rejected_dir
from toolchain.data import load_queries
from toolchain.evaluation.student_gates import QueryPredictions, gate_texts, student_gates
from toolchain.evaluation.teacher_gates import effective_gates
from toolchain.recipe.compose import recipe_from_dict
from toolchain.recipe.presets import AUTO_LADDER
from toolchain.recipe.schema import Recipe
from toolchain.recipe.students import AutoStudents, StudentCandidate, StudentSpec
from toolchain.report.distill_auto import (
    CandidateResult,
    DistillAutoSection,
    StudentQuality,
    candidates_markdown,
)
from toolchain.report.evaluation import GateCheck
from toolchain.search import journal_mark
from toolchain.search.execute import TrialJob, TrialOutcome, make_executor
from toolchain.search.study import base_dict
from toolchain.sources.detect import source_format
from toolchain.sources.loaded import find_labels, parity_texts, student_tokenizer
from toolchain.steps.augment import augmented, resolve_augment
from toolchain.steps.teachers import Teacher, step_teacher, teacher_encoder, teacher_logits

STUDY_NAME = "edgecomp-distill-auto"


@dataclass(frozen=True)
class Candidate:
    spec: StudentCandidate
    parameters: int
    skipped: str | None = None  # why this family cannot be built for this teacher


def is_auto(recipe: Recipe) -> bool:
    step = recipe.steps[0] if recipe.steps else None
    return step is not None and step.kind == "distill" and step.student == "auto"


def candidate_recipe(recipe: Recipe, cand: StudentCandidate, trial_dir: Path | None = None) -> Recipe:
    """The base recipe with `cand` as its first step's student (`trial_dir`: a trial's own build dir)."""
    data = base_dict(recipe)
    step = dict(data["steps"][0])
    for key in ("auto", "student", "student_tokenizer", "student_vocab"):
        step.pop(key, None)
    data["steps"][0] = {**step, **cand.step_fields(recipe.steps[0].student_vocab)}
    fallback = cand.float_fallback_ops()
    if fallback and recipe.quantization.mode == "int8":  # LayerNorm/softmax arithmetic stays float
        data["quantization"] = {**data.get("quantization", {}), "float_fallback_ops": fallback}
    if not cand.per_channel and recipe.quantization.mode == "int8":  # one weight scale per tensor
        data["quantization"] = {**data.get("quantization", {}), "per_channel": False}
    if trial_dir is not None:
        data["name"], data["output"] = trial_dir.name, {"dir": str(trial_dir.parent)}
    return recipe_from_dict(data, origin=f"distill-auto candidate {cand.label}")


def ladder(recipe: Recipe, teacher: Teacher, labels: list[str]) -> list[Candidate]:
    """The candidates with their parameters, smallest first (ties keep the ladder's order)."""
    step = recipe.steps[0]
    specs = step.auto.candidates if step.auto is not None and step.auto.candidates else None
    specs = specs or [StudentCandidate(**c) for c in AUTO_LADDER]
    train = load_queries(recipe.data.train, recipe.data.text_field, None).texts  # type: ignore[arg-type]
    out = []
    for cand in specs:
        own = cand.family in ("teacher-cnn", "tiny-bert")  # on the teacher's tokenizer
        if own and (teacher.tokenizer is None or teacher.onnx_file is None):
            why = f"needs an ONNX teacher with its tokenizer; {teacher.path.name} is {teacher.kind}"
            out.append(Candidate(cand, 0, why))
            continue
        if cand.family == "tiny-bert":
            cand, why = teacher_sizes(cand, teacher)
            if why is not None:
                out.append(Candidate(cand, 0, why))
                continue
        trial = candidate_recipe(recipe, cand)
        tok = student_tokenizer(trial, teacher, train)
        names = tuple(tok.encode_batch(["a"])) if own else ("input_ids",)
        spec = StudentSpec.model_validate(cand.step_fields()["student"])
        n = spec.parameters(tok.vocab_size, tok.seq_len, len(labels), names)
        key = (cand.family, cand.width, cand.hidden, cand.per_channel, n)  # rungs differing in vocab cap only
        same = [
            c.spec.label
            for c in out
            if not own
            and (c.spec.family, c.spec.width, c.spec.hidden, c.spec.per_channel, c.parameters) == key
        ]
        why = f"the same student as {same[0]}: its vocab is as large on these queries" if same else None
        out.append(Candidate(cand, n, why))
    return sorted(out, key=lambda c: c.parameters)


def teacher_sizes(cand: StudentCandidate, teacher: Teacher) -> tuple[StudentCandidate, str | None]:
    """A tiny-bert candidate with its "teacher" sizes read from the teacher's layers (and why not)."""
    asks = [k for k in ("width", "hidden", "heads") if getattr(cand, k) == "teacher"]
    if not asks:
        return cand, None
    assert teacher.tokenizer is not None
    enc = teacher_encoder(teacher, teacher.tokenizer.vocab_size)
    if not enc.layers:
        return cand, f"cannot read the teacher's encoder layers for its {', '.join(asks)}"
    sizes = {"width": enc.hidden, "hidden": enc.layers[0].ffn, "heads": enc.layers[0].heads}
    return cand.model_copy(update={k: sizes[k] for k in asks}), None


def warm_scores(recipe: Recipe, teacher: Teacher, progress: Progress) -> None:
    """The teacher's scores of the train and val queries, computed once here into the score cache
    (steps/teachers.py) that every trial process reads, instead of by each of the first batch's trials at
    once (a trial with an unlabelled log scores another set: left to it). With augmentation (on by default
    for a foreign teacher) the train set is the training queries and their perturbed copies, as the distill
    step makes them (toolchain/steps/augment.py): the same texts, so the trials read them from the cache."""
    step, spec = recipe.steps[0], recipe.data
    if step.unlabelled is not None:
        return
    aug, _ = resolve_augment(step.augment, teacher)
    for name, path in (("train", spec.train), ("val", spec.val)):
        texts = load_queries(path, spec.text_field, spec.label_field).texts  # type: ignore[arg-type]
        if name == "train" and aug is not None:
            texts, name = texts + augmented(aug, texts, recipe.seed), "train + augmented"
        teacher_logits(teacher, texts, progress, name)


def fingerprint(recipe: Recipe, cands: list[Candidate], gates: list[str]) -> dict[str, Any]:
    """What the journal is resumable for (toolchain/search/journal_mark.py)."""
    ladder = [c.spec.model_dump(exclude={"per_channel"} if c.spec.per_channel else None) for c in cands]
    return {"recipe": base_dict(recipe), "ladder": ladder, "gates": gates, "seed": recipe.seed}


def open_study(out: Path, mark: dict[str, Any], seed: int) -> Any:
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    out.mkdir(parents=True, exist_ok=True)
    storage = JournalStorage(JournalFileBackend(str(out / "study.journal")))
    study = optuna.create_study(
        study_name=STUDY_NAME,
        storage=storage,
        load_if_exists=True,
        direction="minimize",  # the int8 size; the ladder's order, not the sampler, picks the trials
        sampler=optuna.samplers.TPESampler(seed=seed),
    )
    journal_mark.check(study, mark, out, "distill-auto run")
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        optuna.trial.Trial(study, t._trial_id).set_user_attr("interrupted", True)
        study.tell(t.number, state=optuna.trial.TrialState.FAIL)  # its candidate runs again
    return study


def done_candidates(study: Any) -> dict[int, Any]:
    """Candidate index -> its finished trial (an interrupted one does not count)."""
    done = {}
    for t in study.get_trials(deepcopy=False):
        if t.state.is_finished() and not t.user_attrs.get("interrupted"):
            done[int(t.params["candidate"])] = t
    return done


def _job(out: Path, recipe: Recipe, cand: Candidate, trial: Any, min_agreement: float | None) -> TrialJob:
    trial_dir = out.resolve() / "trials" / f"trial-{trial.number:03d}"
    run_dir = trial_dir.parent / f"run-{trial.number:03d}"
    for stale in (trial_dir, rejected_dir(trial_dir), run_dir):
        if stale.exists():
            shutil.rmtree(stale)
    run_dir.mkdir(parents=True)
    step = recipe.steps[0]
    after = (step.auto or AutoStudents()).hopeless_after_epochs
    request = {
        "recipe_yaml": candidate_recipe(recipe, cand.spec, trial_dir).to_yaml(),
        "device": "x86-host",
        "auto": {"after_epochs": after, "min_agreement": min_agreement},
    }
    (run_dir / "request.json").write_text(json.dumps(request))
    return TrialJob(trial.number, run_dir / "request.json")


def _tell(study: Any, trial: Any, out: TrialOutcome, gates: Any, labels: list[str], run_dir: Path) -> None:
    import optuna

    result = out.result
    if result is None or (result.student is None and result.stopped is None):
        trial.set_user_attr("reasons", [out.error or "failed"])
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        return
    if result.student is None:
        trial.set_user_attr("reasons", [result.stopped])
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        return
    s = result.student
    with np.load(run_dir / s.predictions) as z:
        p = QueryPredictions(z["labels"], z["teacher_probs"], z["student"], labels)
    verdict = gates(p)
    assert verdict.quality is not None
    trial.set_user_attr("passed", verdict.passed)
    trial.set_user_attr("reasons", verdict.reasons)
    trial.set_user_attr("quality", verdict.quality.to_json())
    trial.set_user_attr("gates", [c.to_json() for c in verdict.checks])
    trial.set_user_attr("int8_bytes", s.int8_bytes)
    study.tell(trial, float(s.int8_bytes))


def _result(i: int, cand: Candidate, t: Any) -> CandidateResult:
    c = cand.spec
    base = {**c.model_dump(include={"family", "width", "hidden", "vocab", "vocab_coverage", "per_channel"}),
            "parameters": cand.parameters}  # fmt: skip
    if c.family == "tiny-bert":
        base.update(layers=c.layers, heads=c.heads)
    if t is None:
        verdict = "skipped" if cand.skipped else "not tried"
        reasons = [cand.skipped] if cand.skipped else ["a smaller student met the gates first"]
        return CandidateResult(
            trial=None, int8_bytes=None, quality=None, verdict=verdict, reasons=reasons, **base
        )
    a = t.user_attrs
    state = t.state.name
    verdict = {"PRUNED": "stopped", "FAIL": "failed"}.get(state, "passed" if a.get("passed") else "rejected")
    quality = StudentQuality.model_validate(a["quality"]) if "quality" in a else None
    checks = [GateCheck.model_validate(c) for c in a.get("gates", [])]
    return CandidateResult(trial=t.number, int8_bytes=a.get("int8_bytes"), quality=quality,
                           verdict=verdict, reasons=list(a.get("reasons", [])), gates=checks,
                           **base)  # fmt: skip


def run_candidates(
    recipe: Recipe, progress: Progress, workers: int = 1, ray_address: str | None = None
) -> tuple[list[Candidate], DistillAutoSection]:
    """Run (or resume) the ladder until a candidate passes or none is left; the typed section."""
    t0 = time.perf_counter()
    if recipe.data.val is None or recipe.data.train is None:
        raise RecipeError(
            "distill-auto chooses the student on the val split, and the recipe has no data.val/data.train",
            hint="add --val (labelled queries kept out of training and of --test) and --train",
        )
    labels = find_labels(recipe)
    if not labels:
        raise RecipeError("distill-auto needs the teacher's labels", hint="pass --labels labels.txt")
    splits = {"test": load_queries(recipe.data.val, recipe.data.text_field, None)}
    parity = parity_texts(splits)  # a Hugging Face folder teacher's export is checked on these
    step0 = recipe.steps[0]
    is_keras = (
        step0.teacher is None
        and step0.teacher_scores is None
        and source_format(recipe)
        in (
            SourceFormat.KERAS,
            SourceFormat.SAVEDMODEL,
        )
    )
    teacher = None if is_keras else step_teacher(recipe, recipe.steps[0], labels, recipe.source.path, parity)
    if teacher is None:
        raise RecipeError(
            "student auto chooses a student for a foreign teacher (an ONNX model, a Hugging Face folder, "
            "a scores file or a .tflite as the source, or distill.teacher); this one is the Keras source",
            hint="name a student (--preset distill-student-int8), or `edgecomp search` the Keras chain",
        )
    with progress.task("distill-auto: counting the candidates' parameters", None):
        cands = ladder(recipe, teacher, labels)
    warm_scores(recipe, teacher, progress)
    task = Task.CLASSIFICATION  # a distilled student is a classifier
    spec, gates_from = effective_gates(recipe.evaluation, task, foreign_teacher=True)
    texts = gate_texts(spec)
    gates = student_gates(recipe.evaluation, task)  # the same gates as the final build's
    step = recipe.steps[0]
    margin = (step.auto or AutoStudents()).hopeless_margin
    agree = spec.min_agreement if spec.min_agreement is not None else spec.min_agreement_where_sure
    min_agreement = None if agree is None else round(agree - margin, 4)
    out = recipe.output.dir / f"{recipe.name}.distill-auto"
    try:
        import optuna
    except ImportError:
        raise EdgecompError(
            "distill-auto needs Optuna, which is not installed", hint="pip install 'edgecomp[search]'"
        ) from None
    study = open_study(out, fingerprint(recipe, cands, texts), recipe.seed)
    runnable = [i for i, c in enumerate(cands) if c.skipped is None]
    executor = None
    try:
        while True:
            done = done_candidates(study)
            if any(t.user_attrs.get("passed") for t in done.values()):
                break
            todo = [i for i in runnable if i not in done]
            if not todo:
                break
            executor = executor or make_executor(workers, ray_address)
            batch = todo[: executor.slots]
            trials = []
            for i in batch:
                study.enqueue_trial({"candidate": i})
                trial = study.ask(
                    {"candidate": optuna.distributions.CategoricalDistribution(tuple(range(len(cands))))}
                )
                assert int(trial.params["candidate"]) == i
                trials.append(trial)
            jobs = [_job(out, recipe, cands[i], t, min_agreement) for i, t in zip(batch, trials, strict=True)]
            names = ", ".join(cands[i].spec.label for i in batch)
            with progress.task(f"distill-auto: {names}", None):
                outcomes = executor.run_batch(jobs)
            for t, o, job in zip(trials, outcomes, jobs, strict=True):
                _tell(study, t, o, gates, labels, job.request.parent)
    finally:
        if executor is not None:
            executor.close()
    done = done_candidates(study)
    results = [_result(i, c, done.get(i)) for i, c in enumerate(cands)]
    passed = [i for i, r in enumerate(results) if r.verdict == "passed"]
    section = DistillAutoSection(
        split="val",
        gates=texts,
        gates_from=gates_from,
        order="parameters, smallest first; stop at the first batch with a student that meets the gates",
        candidates=results,
        chosen=passed[0] if passed else None,
        runner=f"ray {ray_address}" if ray_address else f"local workers {workers}",
        search_dir=str(out),
        seconds=round(time.perf_counter() - t0, 1),
    )
    write_text(out / "candidates.json", json.dumps(section.to_json(), indent=1) + "\n")
    write_text(out / "candidates.md", candidates_markdown(section))
    return cands, section


def build_auto(
    recipe: Recipe, progress: Progress | None = None, workers: int = 1, ray_address: str | None = None
) -> Build:
    """`edgecomp convert` of a recipe whose student is `auto` (any other recipe: `build` itself)."""
    progress = progress or SilentProgress()
    if not is_auto(recipe):
        if workers != 1 or ray_address is not None:
            raise RecipeError(
                "--workers and --ray-address build the candidate students of distill-auto; this recipe "
                "names its student",
                hint="add --preset distill-auto (or distill.student: auto), or drop those flags",
            )
        return pipeline.build(recipe, progress)
    cands, section = run_candidates(recipe, progress, workers, ray_address)
    if section.chosen is None:
        tried = [r for r in section.candidates if r.quality is not None]
        near = ""
        if tried:
            c = max(tried, key=lambda r: r.quality.agreement)  # type: ignore[union-attr]
            near = f"; closest: {c.family} {c.width}/{c.hidden} ({'; '.join(c.reasons)})"
        raise GateFailed(
            f"distill-auto: none of the {len(section.candidates)} students meets the gates "
            f"({', '.join(section.gates)}){near}",
            hint=f"see {section.search_dir}/candidates.md; add larger candidates (distill.auto.candidates), "
            "unlabelled queries (--unlabelled) or relax the gates",
        )
    final = candidate_recipe(recipe, cands[section.chosen].spec)
    return pipeline.build(final, progress, distill_auto=section)
