"""Issue 15: a missed convert gate writes the candidate to <build>.rejected/ and says which stage cost it;
one metric vocabulary everywhere; the post-step float model is saved and is profile's float reference.

Real TF, real converters and runtimes on the tiny project: a pruned build (the good build, also the
profile subject) and a vocab_prune candidate that must miss its gate (4 words left: nearly every query
becomes the same ids, so agreement vs source falls to about one intent in four, all of it from the step).
"""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner

from tests.support.browser import assert_report_page
from tests.support.builds import copy_build, tiny_build
from toolchain.cli.main import app

PRUNE = [{"kind": "prune", "target_sparsity": 0.8, "epochs": 2}]
CANDIDATE = [{"kind": "vocab_prune", "max_size": 4}]
NAMES = ("agreement vs source", "agreement vs post-step float", "accuracy drop (points)")


@pytest.fixture(scope="module")
def pruned(tiny_project, tmp_path_factory) -> Path:
    """A good build with a step: prune 80% + int8."""
    return tiny_build(tiny_project, tmp_path_factory.mktemp("gate"), "gate", steps=PRUNE).dir


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _recipe(tiny_project, path: Path, out: Path, **extra) -> Path:
    spec = tiny_project.recipe_dict(name="gate", output={"dir": str(out)}, steps=CANDIDATE, **extra)
    path.write_text(yaml.safe_dump(json.loads(json.dumps(spec, default=str))))
    return path


@pytest.mark.slow
def test_a_missed_gate_writes_the_candidate_beside_the_good_build(tiny_project, pruned, tmp_path):
    from toolchain.base.errors import GateFailed
    from toolchain.build import load_build

    good = copy_build(pruned, tmp_path / "b")
    before = _files(good)
    recipe = _recipe(tiny_project, tmp_path / "r.yaml", tmp_path / "b")
    result = CliRunner().invoke(
        app, ["convert", "--recipe", str(recipe), "--min-agreement", "0.99", "--json"]
    )
    assert result.exit_code == 1, result.output
    assert _files(good) == before  # the good build is byte-identical
    rejected = tmp_path / "b" / "gate.rejected"
    report = json.loads(result.stdout)  # --json prints the rejected candidate's report
    assert report == json.loads((rejected / "report.json").read_text())
    gate, ev = report["rejected"], report["evaluation"]
    assert gate["gate"] == "min_agreement" and gate["limit"] == 0.99 and gate["cost_most"] == "steps"
    assert gate["measured"] == ev["vs_source_float"]["top1_agreement"] < 0.6
    source, steps, final = ev["by_stage"]["stages"]
    assert (source["stage"], steps["stage"], final["stage"]) == (
        "source",
        "after steps",
        "after quantization",
    )
    assert steps["agreement_vs_source"] < 0.6 and final["agreement_vs_post_step_float"] >= 0.9
    d = ev["by_stage"]["disagreements_vs_source"]
    assert (
        d["total"] == d["from_steps"] + d["from_quantization"]
        and d["from_steps"] > 10 * d["from_quantization"]
    )
    for name in (
        "model.tflite",
        "recipe.yaml",
        "report.md",
        "float.tflite",
        "float.keras",
        ".edgecomp-build",
    ):
        assert (rejected / name).is_file(), name
    md = (rejected / "report.md").read_text()
    assert "**REJECTED: gate min_agreement failed" in md and "after steps (vocab_prune), float" in md
    page = assert_report_page(rejected, {"rejected", "quality", "intents", "size", "build"})
    assert (
        "REJECTED candidate" in page.facts["text"]
        and "after steps (vocab_prune), float" in page.facts["text"]
    )
    (line,) = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    err = " ".join(line.split())
    assert err.startswith("error: gate min_agreement failed: agreement vs source ")
    f = ev["vs_source_float"]["flips"]  # whether the miss is damage or the source's own near-ties
    assert (
        f["total"] == d["total"] and f"({f['total']} flips, {f['where_unsure']} of them where source" in err
    )
    assert f"by stage: source accuracy {source['accuracy']:.2%} -> after steps (vocab_prune)" in err
    assert f"{d['from_steps']} already did after the steps" in err
    assert f"disagree with the source: {d['from_steps']} already after the steps" in md
    assert "hint: the steps (vocab_prune) cost most: make them milder" in err and "gate.rejected/" in err
    with pytest.raises(GateFailed, match="rejected candidate: it missed the convert gate min_agreement"):
        load_build(rejected)  # package's reader: a rejected candidate is never shipped
    assert load_build(rejected, allow_rejected=True).report.rejected is not None  # validate/profile may
    pkg = CliRunner().invoke(app, ["package", str(rejected), "--out", str(tmp_path / "dist")])
    assert pkg.exit_code == 1 and "is a rejected candidate" in pkg.stderr and not (tmp_path / "dist").exists()
    # the same candidate without the gate passes: it replaces the build and removes its stale .rejected/
    ok = CliRunner().invoke(app, ["convert", "--recipe", str(recipe)])
    assert ok.exit_code == 0, ok.output
    assert not rejected.exists() and "removed the stale gate.rejected/" in ok.stderr
    assert json.loads((good / "report.json").read_text())["steps"][0]["kind"] == "vocab_prune"


def test_a_foreign_rejected_folder_is_refused_before_any_work(tiny_untrained, tmp_path):
    foreign = tmp_path / "b" / "gate.rejected"
    foreign.mkdir(parents=True)
    (foreign / "notes.txt").write_text("mine")
    recipe = _recipe(tiny_untrained, tmp_path / "r.yaml", tmp_path / "b", evaluation={"min_agreement": 0.9})
    result = CliRunner().invoke(app, ["convert", "--recipe", str(recipe)])
    assert (
        result.exit_code == 2 and "gate.rejected is not empty and is not an edgecomp build" in result.stderr
    )
    assert (foreign / "notes.txt").read_text() == "mine" and not (tmp_path / "b" / "gate").exists()


def test_the_hint_follows_the_stage_that_cost_most():
    from toolchain.evaluation.gates import failed_gate, rejection
    from toolchain.recipe.schema import EvaluationSpec
    from toolchain.report.evaluation import EvaluationSection

    def evaluation(from_steps: int, from_quant: int, post_acc: float) -> EvaluationSection:
        stages = [
            {"stage": "source", "accuracy": 0.9, "macro_f1": 0.9, "agreement_vs_source": 1.0,
             "accuracy_drop_points": 0.0},
            {"stage": "after steps", "accuracy": post_acc, "macro_f1": post_acc, "agreement_vs_source": 0.97,
             "accuracy_drop_points": round((0.9 - post_acc) * 100, 2)},
            {"stage": "after quantization", "accuracy": 0.85, "macro_f1": 0.85, "agreement_vs_source": 0.95,
             "agreement_vs_post_step_float": 0.96, "accuracy_drop_points": 5.0},
        ]  # fmt: skip
        total = from_steps + from_quant
        metrics = {"accuracy": 0.9, "macro_f1": 0.9, "recall": {}}
        comparison = {
            "queries": 100, "reference": metrics, "converted": {**metrics, "accuracy": 0.85},
            "accuracy_drop_points": 5.0, "top1_agreement": 0.95, "max_abs_score_diff": 0.5,
            "recall_change": {}, "worst_recall_change": None, "support": {},
        }  # fmt: skip
        return EvaluationSection.model_validate(
            {
                "vs_source_float": comparison,
                "by_stage": {
                    "queries": 100,
                    "stages": stages,
                    "disagreements_vs_source": {
                        "total": total,
                        "from_steps": from_steps,
                        "from_quantization": from_quant,
                    },
                },
            }
        )

    agree, drop = EvaluationSpec(min_agreement=0.97), EvaluationSpec(max_accuracy_drop=1.0)
    cases = [(agree, evaluation(4, 1, 0.88), "steps"), (agree, evaluation(1, 4, 0.88), "quantization")]
    cases += [(drop, evaluation(1, 4, 0.86), "steps"), (drop, evaluation(4, 1, 0.89), "quantization")]
    for gates, ev, cause in cases:
        miss = failed_gate(gates, ev)
        assert miss is not None
        section = rejection(miss, ev, ["prune"], "build/x.rejected")
        assert section.cost_most == cause, (gates, cause)
        if cause == "steps":
            assert section.hint.startswith("the steps (prune) cost most: make them milder")
        else:
            assert section.hint.startswith("quantization cost most: `edgecomp profile build/x.rejected`")
            assert "--quantize mixed" in section.hint
    assert (
        "5 of 100 test queries that disagree with the source, 4 already did after the steps"
        in section.message
    )
    assert failed_gate(EvaluationSpec(min_agreement=0.95), evaluation(1, 4, 0.88)) is None  # at the limit
    no_steps = evaluation(0, 5, 0.9)
    del no_steps.by_stage.stages[1]  # a build without steps: source -> after quantization
    section = rejection(failed_gate(agree, no_steps), no_steps, [], "b/x.rejected")
    assert section.cost_most == "quantization" and "quantization.mode: mixed" in section.hint
    assert section.message.endswith(
        "after quantization accuracy 85.00%, agreement vs source 95.00%; 5 of 100 test queries disagree with "
        "the source (no steps)"
    )


@pytest.mark.slow
def test_one_metric_vocabulary_in_table_report_and_docs(pruned):
    from toolchain.build import read_report
    from toolchain.cli.convert_table import build_table, stage_table

    typed = read_report(pruned)
    report = typed.to_json()
    console = Console(file=StringIO(), width=300)
    console.print(build_table(typed))
    console.print(stage_table(typed))
    table = console.file.getvalue()
    md = (pruned / "report.md").read_text()
    readme = (Path(__file__).resolve().parents[2] / "docs" / "guides" / "report.md").read_text()  # the docs
    for name in NAMES:
        assert name in table and name in md and name in readme, name
    assert "top-1 agreement" not in table and "top-1 agreement" not in md  # the unlabelled old name
    cmp = report["evaluation"]["vs_source_float"]
    worst, change = cmp["worst_recall_change"]
    n = cmp["support"][worst]
    assert n == 30 and f"{worst} {change * 100:+.1f} pt (n={n})" in table  # 30 test queries per intent
    assert f"agreement vs source: {cmp['top1_agreement']:.2%}" in md
    post = report["evaluation"]["vs_final_float"]["top1_agreement"]
    assert f"agreement vs post-step float: {post:.2%}" in md


@pytest.mark.slow
def test_the_post_step_float_model_is_saved_and_hashed(pruned):
    from toolchain.base.tfenv import keras
    from toolchain.build import load_build
    from toolchain.sources.keras import predict_keras

    b = load_build(pruned)
    assert {"float.tflite", "float.keras"} <= set(b.report.files or {})
    assert b.report.float_model is not None and b.report.float_model.to_json() == {
        "tflite": "float.tflite",
        "keras": "float.keras",
        "after_steps": ["0 prune"],
    }
    model = keras().models.load_model(pruned / "float.keras")
    ev = b.eval_set("test")
    acc = float(np.mean(predict_keras(model, ev.feeds["input_ids"]).argmax(1) == ev.label_ids))
    after_steps = b.report.evaluation.to_json()["by_stage"]["stages"][1]
    assert after_steps["stage"] == "after steps" and round(acc, 4) == after_steps["accuracy"]
    kernel = next(w for w in model.get_weights() if w.ndim == 2 and w.shape[0] == 32)  # `hidden`, pruned
    assert np.mean(kernel == 0) >= 0.75


@pytest.mark.slow
def test_profile_measures_quantization_error_against_the_post_step_float(tiny_project, pruned):
    """After 80% pruning the source is another model: against it the int8 error looks many dB worse."""
    from devices.profiling.profiler import ProfileOptions
    from toolchain.device_stages import profile_target

    fast = dict(method="litert", mode="per-node", runs=20, warmup=2, processes=1)
    default = profile_target(pruned, ProfileOptions(**fast))
    assert default.quant_reference == str(pruned / "float.tflite")
    assert f"measured against {pruned / 'float.tflite'} (the build's post-step float model)" in " ".join(
        default.notes
    )
    vs_source = profile_target(pruned, ProfileOptions(**fast, float_reference=tiny_project.model))
    assert vs_source.quant_reference == str(tiny_project.model)

    def output_snr(result) -> float:
        return [e.snr_db for e in result.quant_error if e.snr_db is not None][-1]

    # measured: 48.67 dB vs the post-step float, 9.09 dB vs the source (seeded, the same on every run)
    assert output_snr(default) > output_snr(vs_source) + 20, (output_snr(default), output_snr(vs_source))


def test_onnx_gates_name_the_worst_query_even_with_braces_in_it():
    """max_abs_error / min_cosine: the message names the worst query as the user wrote it."""
    from toolchain.evaluation.gates import failed_gate
    from toolchain.recipe.schema import EvaluationSpec
    from toolchain.report.evaluation import EvaluationSection

    check = {"queries": 2, "max_abs_error": 0.25, "mean_cosine": 0.97, "min_cosine": 0.9,
             "worst_abs_query": 1, "worst_cosine_query": 0, "top1_agreement": 1.0}  # fmt: skip
    ev = EvaluationSection.model_validate({"onnx_reference": check})
    texts = ["red {shoes}", "where is my {parcel}"]
    miss = failed_gate(EvaluationSpec(max_abs_error=0.1), ev, texts)
    assert miss is not None and (miss.gate, miss.measured, miss.limit) == ("max_abs_error", 0.25, 0.1)
    assert miss.text == "output differs from onnxruntime by 0.25 (limit 0.1) on query 'where is my {parcel}'"
    miss = failed_gate(EvaluationSpec(min_cosine=0.99), ev, texts)
    assert miss is not None and miss.text == (
        "mean cosine vs onnxruntime 0.9700 below 0.99; worst 0.9000 on 'red {shoes}'"
    )
    assert failed_gate(EvaluationSpec(min_cosine=0.97, max_abs_error=0.25), ev) is None


@pytest.mark.slow
def test_a_where_sure_gate_the_source_cannot_be_judged_by_is_announced(tiny_project, tmp_path):
    """The tiny source is sure (top-1 >= 0.95) of no test query: the gate cannot judge it and says so."""
    spec = tiny_project.recipe_dict(name="sure", output={"dir": str(tmp_path / "b")})
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(json.loads(json.dumps(spec, default=str))))
    result = CliRunner().invoke(
        app, ["convert", "--recipe", str(recipe), "--min-agreement-where-sure", "0.9"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "b" / "sure" / "report.json").read_text())
    assert report["evaluation"]["vs_source_float"]["flips"]["sure_queries"] == 0
    assert (
        "gate min_agreement_where_sure not applied: the source is sure (top-1 probability >= 0.95) of none"
        in (" ".join(result.stderr.split()))
    )
