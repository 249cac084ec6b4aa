"""The typed, versioned recipe that describes one build. Loaded from YAML or filled from CLI flags."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from toolchain.errors import InputFileError, RecipeError

RECIPE_VERSION = 1
QuantMode = Literal["float32", "float16", "dynamic", "int8", "int16x8"]
QUANT_MODES: tuple[str, ...] = ("float32", "float16", "dynamic", "int8", "int16x8")


class Strict(BaseModel):
    """Base for every recipe section: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SourceSpec(Strict):
    path: Path = Field(description="Keras .keras/.h5 file, SavedModel directory, or .onnx file")
    format: Literal["auto", "keras", "savedmodel", "onnx"] = "auto"
    input_shapes: dict[str, list[int]] = Field(
        default_factory=dict, description="fixed shapes for dynamic inputs, e.g. {input_ids: [1, 32]}"
    )


class DataSpec(Strict):
    train: Path | None = Field(None, description="labelled jsonl/csv used by training steps")
    val: Path | None = None
    test: Path | None = Field(None, description="labelled split used for the evaluation report")
    calibration: Path | None = Field(None, description="queries for int8 calibration (default: train)")
    vocab: Path | None = Field(None, description="tokenizer vocab ('token id' per line)")
    labels: Path | None = Field(None, description="one label per line, in output order")
    text_field: str = "text"
    label_field: str = "intent"
    seq_len: int | None = Field(
        None, gt=1, description="tokens per query (default: the model's input length)"
    )


class PruneStep(Strict):
    """Magnitude pruning with a tfmot schedule, fine-tuned on the train split."""

    kind: Literal["prune"] = "prune"
    schedule: Literal["polynomial", "constant"] = "polynomial"
    target_sparsity: float = Field(0.8, gt=0.0, lt=1.0)
    initial_sparsity: float = Field(0.0, ge=0.0, lt=1.0)
    epochs: int = Field(4, ge=1)
    batch_size: int = Field(64, ge=1)
    learning_rate: float = Field(1e-3, gt=0.0)
    begin_step: int | None = Field(None, ge=0)
    end_step: int | None = Field(None, ge=1)
    frequency: int | None = Field(None, ge=1, description="prune every N steps (default: derived)")
    exclude: list[str] = Field(default_factory=list, description="layer names left dense")

    @model_validator(mode="after")
    def _check(self) -> PruneStep:
        if self.schedule == "polynomial" and self.initial_sparsity >= self.target_sparsity:
            raise ValueError("initial_sparsity must be below target_sparsity for the polynomial schedule")
        if self.begin_step is not None and self.end_step is not None and self.end_step <= self.begin_step:
            raise ValueError("end_step must be greater than begin_step")
        return self


Step = Annotated[PruneStep, Field(discriminator="kind")]
STEP_CLASSES: dict[str, type[BaseModel]] = {"prune": PruneStep}
STEP_KINDS: tuple[str, ...] = tuple(STEP_CLASSES)


class QuantizationSpec(Strict):
    mode: QuantMode = "int8"
    calibration_samples: int = Field(500, ge=1, description="queries drawn for the representative dataset")
    min_calibration_samples: int = Field(100, ge=1, description="fewer usable queries than this is an error")


class EvaluationSpec(Strict):
    max_accuracy_drop: float | None = Field(
        None, ge=0.0, description="fail the build if converted accuracy drops more (points)"
    )
    min_agreement: float | None = Field(None, ge=0.0, le=1.0, description="fail below this top-1 agreement")


class OutputSpec(Strict):
    dir: Path = Path("build")


class Recipe(Strict):
    """Everything that determines a build. Saved beside the artifact it produced."""

    version: Literal[1] = RECIPE_VERSION
    name: str = Field("model", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    seed: int = 0
    source: SourceSpec
    data: DataSpec = Field(default_factory=DataSpec)
    steps: list[Step] = Field(default_factory=list)
    quantization: QuantizationSpec = Field(default_factory=QuantizationSpec)
    evaluation: EvaluationSpec = Field(default_factory=EvaluationSpec)
    output: OutputSpec = Field(default_factory=OutputSpec)

    @property
    def build_dir(self) -> Path:
        return self.output.dir / self.name

    def to_yaml(self) -> str:
        data = self.model_dump(mode="json", exclude_none=True)
        return yaml.safe_dump(data, sort_keys=False)


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
    key = ".".join(str(p) for p in loc)
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
    """Make the recipe's relative file paths relative to the recipe file, not the cwd."""
    source = data.get("source")
    if isinstance(source, dict) and isinstance(source.get("path"), str):
        source["path"] = str(base / source["path"])
    section = data.get("data")
    if isinstance(section, dict):
        for key in ("train", "val", "test", "calibration", "vocab", "labels"):
            if isinstance(section.get(key), str):
                section[key] = str(base / section[key])


def load_recipe(path: Path) -> Recipe:
    """Load a recipe YAML; relative data paths resolve against the recipe's directory."""
    if not path.is_file():
        raise InputFileError(f"recipe not found: {path}", hint="pass an existing YAML file to --recipe")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise RecipeError(
            f"{path}: not valid YAML ({err.__class__.__name__})", hint="check indentation"
        ) from None
    if isinstance(data, dict):
        _resolve_paths(data, path.parent)
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


def compose_recipe(
    recipe_path: Path | None,
    source: Path | None,
    overrides: dict[str, Any],
    prune: dict[str, Any] | None = None,
) -> Recipe:
    """One recipe from a YAML file and/or flags: flags win. `prune` edits (or adds) the prune step."""
    if recipe_path is not None:
        recipe = load_recipe(recipe_path)
        if source is not None:
            recipe = apply_overrides(recipe, {"source.path": str(source)})
    elif source is not None:
        data = discover_data(source)
        recipe = recipe_from_dict(
            {
                "name": source.stem if source.suffix else source.name,
                "source": {"path": str(source)},
                "data": data,
            },
            origin="flags",
        )
    else:
        raise RecipeError("no model given", hint="pass a model path, or --recipe with a source section")
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
    return recipe
