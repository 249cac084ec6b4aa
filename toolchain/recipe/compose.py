"""A recipe from YAML and/or flags: loading, path resolution, overrides, presets, one-line errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from toolchain.base.errors import InputFileError, RecipeError
from toolchain.recipe.naming import default_build_name
from toolchain.recipe.presets import preset_plan
from toolchain.recipe.schema import Recipe
from toolchain.recipe.steps import STEP_CLASSES, STEP_KINDS, STEP_PATH_FIELDS

DISTILL_FLAGS = {
    "unlabelled": "--unlabelled",
    "student_tokenizer": "--student-tokenizer",
    "student_vocab": "--student-words",
    "augment": "--no-augment",
}
DISTILL_HINT = "add --preset distill-auto (or distill-student-int8, distill-int8), or a distill step"


def _section_model(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model that owns the field at `loc` (for listing valid keys)."""
    model: type[BaseModel] = Recipe
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        ann = field.annotation
        if part == "steps":
            return None
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            model = ann
        else:
            return None
    return model


def describe_validation_error(err: ValidationError, origin: str) -> RecipeError:
    """Turn the first pydantic error into one line that names the key and the valid choices."""
    first = err.errors()[0]
    loc = tuple(first["loc"])
    key = ".".join(str(p) for p in loc) or "steps"
    if first["type"] == "extra_forbidden":
        owner = _section_model(loc)
        valid = ", ".join(owner.model_fields) if owner else "see the recipe docs"
        if len(loc) >= 4 and loc[0] == "steps" and loc[2] in STEP_CLASSES:
            valid = ", ".join(STEP_CLASSES[str(loc[2])].model_fields)
        return RecipeError(f"{origin}: unknown key '{key}'", hint=f"valid keys here: {valid}")
    if first["type"] == "union_tag_invalid":
        return RecipeError(
            f"{origin}: unknown step kind at '{key}'", hint=f"valid step kinds: {', '.join(STEP_KINDS)}"
        )
    if first["type"] == "union_tag_not_found":
        return RecipeError(f"{origin}: step at '{key}' has no 'kind'", hint=f"add kind: one of {STEP_KINDS}")
    msg = first["msg"].removeprefix("Value error, ")
    got = first.get("input")
    got_txt = f" (got {got!r})" if got is not None and not isinstance(got, dict | list) else ""
    return RecipeError(f"{origin}: {key}: {msg}{got_txt}", hint="fix the value in the recipe or the flag")


def recipe_from_dict(data: dict[str, Any], origin: str = "recipe") -> Recipe:
    if not isinstance(data, dict):
        raise RecipeError(f"{origin}: a recipe must be a mapping of keys", hint="see examples/*/recipe.yaml")
    try:
        return Recipe.model_validate(data)
    except ValidationError as err:
        raise describe_validation_error(err, origin) from None


def _resolve_paths(data: dict[str, Any], base: Path) -> None:
    """Resolve relative paths (source, data, output dir) against the recipe file, not the cwd."""
    source = data.get("source")
    if isinstance(source, dict) and isinstance(source.get("path"), str):
        source["path"] = str(base / source["path"])
    section = data.get("data")
    if isinstance(section, dict):
        for key in ("train", "val", "test", "calibration", "vocab", "tokenizer", "labels"):
            if isinstance(section.get(key), str):
                section[key] = str(base / section[key])
    output = data.get("output")
    if isinstance(output, dict) and isinstance(output.get("dir"), str):
        output["dir"] = str(base / output["dir"])
    steps = data.get("steps")
    for step in steps if isinstance(steps, list) else []:  # anything else: the schema names the error
        for key in STEP_PATH_FIELDS:
            if isinstance(step, dict) and isinstance(step.get(key), str):
                step[key] = str(base / step[key])
            elif isinstance(step, dict) and isinstance(step.get(key), list):  # vocab_trim's corpus files
                step[key] = [str(base / v) if isinstance(v, str) else v for v in step[key]]


def load_recipe(path: Path) -> Recipe:
    """Load a recipe YAML; relative data paths resolve against the recipe's directory."""
    if not path.is_file():
        raise InputFileError(f"recipe not found: {path}", hint="pass an existing YAML file to --recipe")
    try:
        data = yaml.safe_load(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise RecipeError(f"{path}: not a UTF-8 text file", hint="a recipe is a YAML text file") from None
    except yaml.constructor.ConstructorError as err:  # !!python/object and friends: never constructed
        tag = f" {err.problem.split()[-1]}" if err.problem else ""
        raise RecipeError(
            f"{path}: YAML tag{tag} is not allowed in a recipe", hint="recipes are plain data: remove the tag"
        ) from None
    except (yaml.YAMLError, RecursionError) as err:
        where = getattr(err, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        raise RecipeError(
            f"{path}: not valid YAML{at} ({err.__class__.__name__})", hint="check indentation"
        ) from None
    if isinstance(data, dict):
        _resolve_paths(data, path.resolve().parent)
    return recipe_from_dict(data, origin=str(path))


def apply_overrides(recipe: Recipe, overrides: dict[str, Any], origin: str = "flags") -> Recipe:
    """Return a new recipe with dotted-key overrides (from CLI flags) applied and re-validated."""
    data = recipe.model_dump(mode="python")
    for dotted, value in overrides.items():
        if value is None:
            continue
        node = data
        parts = dotted.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return recipe_from_dict(data, origin=origin)


def discover_data(source: Path) -> dict[str, str]:
    """Splits found next to a model (<model dir>/data/{train,val,test}.jsonl), for flag-only use."""
    base = source if source.is_dir() else source.parent
    found = {}
    for split in ("train", "val", "test"):
        candidate = base / "data" / f"{split}.jsonl"
        if candidate.is_file():
            found[split] = str(candidate)
    return found


def apply_preset(recipe: Recipe, name: str) -> Recipe:
    """The recipe with its steps and quantization mode replaced by the preset's (re-validated); the
    preset's int4 options (trim-int4) fill what the recipe's `quantization.int4` does not set itself."""
    plan = preset_plan(name)
    data = recipe.model_dump(mode="python")
    data["steps"] = plan["steps"]
    quant = {**data["quantization"], **{k: v for k, v in plan["quantization"].items() if k != "int4"}}
    mine = recipe.quantization.int4
    if "int4" in plan["quantization"]:
        written = {k: quant["int4"][k] for k in mine.model_fields_set} if mine is not None else {}
        quant["int4"] = {**(quant["int4"] or {}), **plan["quantization"]["int4"], **written}
    data["quantization"] = quant
    return recipe_from_dict(data, origin=f"preset {name}")


def _log_into_trim(recipe: Recipe, distill: dict[str, Any] | None) -> tuple[Recipe, dict[str, Any] | None]:
    """--unlabelled with a vocab_trim step: the trim keeps the log's pieces too (its `corpus`); the flag
    still goes to a distill step when there is one."""
    log = (distill or {}).get("unlabelled")
    if log is None or not any(s.kind == "vocab_trim" for s in recipe.steps):
        return recipe, distill
    data = recipe.model_dump(mode="python")
    trim = next(s for s in data["steps"] if s["kind"] == "vocab_trim")
    if Path(log) not in [Path(p) for p in trim.get("corpus") or []]:
        trim["corpus"] = [*(trim.get("corpus") or []), log]
    if not any(s["kind"] == "distill" for s in data["steps"]):
        distill = {k: v for k, v in (distill or {}).items() if k != "unlabelled"} or None
    return recipe_from_dict(data, origin="flags"), distill


def compose_recipe(
    recipe_path: Path | None,
    source: Path | None,
    overrides: dict[str, Any],
    prune: dict[str, Any] | None = None,
    preset: str | None = None,
    distill: dict[str, Any] | None = None,
) -> Recipe:
    """One recipe from a YAML file and/or flags: flags win. `prune` edits (or adds) the prune step. A
    `preset` (toolchain.recipe.presets) replaces the steps and quantization mode of the file/flag recipe
    and keeps
    its source, data, evaluation and output; flags are applied after it, so they override the preset."""
    if recipe_path is not None:
        recipe = load_recipe(recipe_path)
        if source is not None:
            recipe = apply_overrides(recipe, {"source.path": str(source)})
    elif source is not None:
        data = discover_data(source)
        recipe = recipe_from_dict(
            {
                "name": default_build_name(source),
                "source": {"path": str(source)},
                "data": data,
            },
            origin="flags",
        )
    else:
        raise RecipeError("no model given", hint="pass a model path, or --recipe with a source section")
    if preset is not None:
        recipe = apply_preset(recipe, preset)
    recipe = apply_overrides(recipe, overrides)
    if prune:
        data = recipe.model_dump(mode="python")
        steps = data["steps"]
        existing = next((s for s in steps if s["kind"] == "prune"), None)
        if existing is None:
            steps.insert(0, {"kind": "prune", **{k: v for k, v in prune.items() if v is not None}})
        else:
            existing.update({k: v for k, v in prune.items() if v is not None})
        recipe = recipe_from_dict(data, origin="flags")
    recipe, distill = _log_into_trim(recipe, distill)
    if distill:  # flags for the first distill step (--unlabelled, --student-tokenizer, --student-words, ...)
        data = recipe.model_dump(mode="python")
        step = next((s for s in data["steps"] if s["kind"] == "distill"), None)
        if step is None:
            raise RecipeError(
                f"{DISTILL_FLAGS[next(iter(distill))]} is for a distill step, and the recipe has none",
                hint=DISTILL_HINT,
            )
        for key, value in distill.items():  # a dict flag (student_vocab) merges into the recipe's
            step[key] = {**(step.get(key) or {}), **value} if isinstance(value, dict) else value
        recipe = recipe_from_dict(data, origin="flags")
    return recipe
