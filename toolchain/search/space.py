"""The search space as recipe data (`search:` in a recipe) and how sampled params become a recipe.

Every knob maps onto one existing step or the quantization mode, so a trial is an ordinary recipe: the
chosen one is saved as best.recipe.yaml and `edgecomp convert` rebuilds it byte for byte. A knob set to
null is left out of the space. The defaults search four quantization modes, prune sparsity (or 2:4),
low-rank parameter reduction, QAT on/off and, for a word-level (regex vocab) Keras classifier, the
vocabulary's minimum word count and a distilled student (the three distill presets' students); when the
recipe distills already, its student's width is searched instead.

The default space holds every shipped preset (toolchain/recipe/presets.py) as one point, and
`seed_presets` runs
the presets it holds as the first trials: the same steps, epochs and mode as `edgecomp convert --preset`,
so the same bytes. The front is then never worse than a preset on the val split, and TPE starts from them.
"""

from __future__ import annotations

from typing import Any

from toolchain.base.errors import RecipeError
from toolchain.recipe.presets import PRESETS, preset_plan
from toolchain.recipe.space import SearchSpec

NONE = "none"  # the categorical value meaning "no such step in this trial"


def search_choices(spec: SearchSpec, has_distill: bool, word_vocab: bool = False) -> dict[str, Any]:
    """The space as Optuna-free data: name -> list of choices, or (low, high) for a float range."""
    space: dict[str, Any] = {"quant_mode": list(dict.fromkeys(spec.quant_modes))}
    if word_vocab and spec.vocab_min_counts:
        space["vocab_min_count"] = sorted(set(spec.vocab_min_counts))
    if spec.prune_sparsity is not None:
        space["prune"] = [NONE, "magnitude", *(["2:4"] if spec.prune_2_4 else [])]
        space["prune_sparsity"] = tuple(spec.prune_sparsity)
    elif spec.prune_2_4:
        space["prune"] = [NONE, "2:4"]
    if spec.lowrank_reduction is not None:
        space["lowrank"] = [False, True]
        space["lowrank_reduction"] = tuple(spec.lowrank_reduction)
    if spec.qat:
        space["qat"] = [False, True]
    if has_distill and spec.student_widths:
        space["student_width"] = sorted(set(spec.student_widths))
    elif not has_distill and word_vocab and spec.students:
        space["student"] = [NONE, *dict.fromkeys(spec.students)]
    knobs = [v for v in space.values() if isinstance(v, tuple) or len(v) > 1]
    if not knobs:
        raise RecipeError(
            "the search space is empty: every knob has one value",
            hint="give `search:` at least two quant_modes, or a prune_sparsity / lowrank_reduction range",
        )
    return space


def apply_params(base: dict[str, Any], params: dict[str, Any], spec: SearchSpec) -> dict[str, Any]:
    """A recipe dict (model_dump of the base recipe) with the sampled params applied; `search` removed.

    Steps keep the order check_step_order wants: distill -> lowrank -> prune -> qat; steps of the base
    recipe of the searched kinds are replaced, others (vocab_prune, distill) are kept.
    """
    data = {k: v for k, v in base.items() if k != "search"}
    mode = params["quant_mode"]
    searched = ("lowrank", "prune", "qat", *(("vocab_prune",) if "vocab_min_count" in params else ()))
    steps = [dict(s) for s in data.get("steps", []) if s["kind"] not in searched]
    if int(params.get("vocab_min_count", 1)) > 1:  # first: every later step trains on the smaller table
        steps.insert(0, {"kind": "vocab_prune", "min_count": int(params["vocab_min_count"])})
    student = params.get("student", NONE)
    if student != NONE:
        at = 1 if steps and steps[0]["kind"] == "vocab_prune" else 0  # the student learns the pruned vocab
        steps.insert(at, dict(preset_plan(student)["steps"][0]))
    elif "student_width" in params:
        for s in steps:
            if s["kind"] == "distill" and isinstance(s.get("student"), dict):
                s["student"] = {**s["student"], "embed_dim": int(params["student_width"])}
    if params.get("lowrank"):
        reduction = float(params["lowrank_reduction"])
        steps.append({"kind": "lowrank", "param_reduction": reduction, "epochs": spec.lowrank_epochs})
    prune = params.get("prune", NONE)
    if prune == "magnitude":
        sparsity = float(params["prune_sparsity"])
        if student != NONE:  # a fresh, small student: the distill-prune-int8 chain's fine-tuning
            steps.append({"kind": "prune", "target_sparsity": sparsity, "epochs": spec.student_prune_epochs,
                          "learning_rate": spec.student_prune_learning_rate})  # fmt: skip
        else:
            steps.append({"kind": "prune", "target_sparsity": sparsity, "epochs": spec.prune_epochs})
    elif prune == "2:4":
        steps.append(
            {"kind": "prune", "m_by_n": "2:4", "schedule": "constant", "epochs": spec.prune_2_4_epochs}
        )
    if params.get("qat") and mode == "int8":
        steps.append({"kind": "qat", "epochs": spec.qat_epochs})
    data["steps"] = steps
    quant = {k: v for k, v in dict(data.get("quantization") or {}).items() if k != "mixed"}
    data["quantization"] = {**quant, "mode": mode}
    return data


def preset_params(space: dict[str, Any], spec: SearchSpec, base: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Preset name -> the params whose trial recipe has exactly the preset's steps and mode.

    A preset is left out when this space cannot express it: a mode or step not searched, a range that
    excludes its value, other epochs or settings, or a student when the recipe distills already.
    """

    out: dict[str, dict[str, Any]] = {}
    for name, plan_of in PRESETS.items():
        plan = plan_of()
        mode, steps = plan["quantization"]["mode"], plan["steps"]
        if mode not in space["quant_mode"]:
            continue
        params = _preset_guess(space, mode, steps, name)
        if params is None:
            continue
        tried = apply_params(base, params, spec)
        if tried["steps"] == steps and tried["quantization"]["mode"] == mode:
            out[name] = params
    return out


def _preset_guess(
    space: dict[str, Any], mode: str, steps: list[dict[str, Any]], name: str
) -> dict[str, Any] | None:
    """The params a preset would have in this space (checked against its steps by preset_params)."""
    p: dict[str, Any] = {"quant_mode": mode}
    defaults = {"prune": NONE, "lowrank": False, "vocab_min_count": 1, "student": NONE}
    p.update({k: v for k, v in defaults.items() if k in space})
    if "qat" in space and mode == "int8":
        p["qat"] = False
    for step in steps:
        kind = step["kind"]
        if kind == "distill" and name in space.get("student", []):
            p["student"] = name
        elif kind == "lowrank" and "lowrank" in space:
            lo, hi = space["lowrank_reduction"]
            if not lo <= step.get("param_reduction", -1) <= hi:
                return None
            p["lowrank"], p["lowrank_reduction"] = True, step["param_reduction"]
        elif kind == "qat" and "qat" in p:
            p["qat"] = True
        elif kind == "prune" and "m_by_n" in step and "2:4" in space.get("prune", []):
            p["prune"] = "2:4"
        elif kind == "prune" and "magnitude" in space.get("prune", []):
            lo, hi = space["prune_sparsity"]
            if not lo <= step.get("target_sparsity", -1) <= hi:
                return None
            p["prune"], p["prune_sparsity"] = "magnitude", step["target_sparsity"]
        else:
            return None
    return p
