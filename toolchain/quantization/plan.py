"""The mixed-precision step of a build, shared by the Keras and ONNX backends.

Given the calibrated float model, either replays the saved plan (`quantization.mixed.float_nodes`, no
search: the same bytes) or searches one (toolchain/quantization/mixed.py) on the search queries. Returns
a `MixedBuild`: the model, the report's `quantization.mixed` section and its int8 MAC share, and the float
nodes, which go into the saved recipe (the pipeline writes them there, so a rebuild replays the plan).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from converters.calibrated import choosable_nodes, quantize
from converters.equalize import equalize_outputs, fc_outputs
from converters.fuse import fuse_gelu
from devices.activations import channel_ranges
from toolchain.base.errors import RecipeError
from toolchain.base.progress import Progress
from toolchain.base.types import Task
from toolchain.quantization.calibration import range_convergence
from toolchain.quantization.mixed import SearchData, int8_mac_share, search
from toolchain.recipe.schema import MixedSpec, Recipe
from toolchain.report.quantization import Convergence, MixedSection


@dataclass(frozen=True)
class MixedBuild:
    """A mixed-precision model and what the report and the saved recipe record of it."""

    tflite: bytes
    section: MixedSection
    int8_mac_share: float
    plan: MixedSpec  # for the saved recipe


def calibrate_with_convergence(
    calibrate: Callable[[list], bytes], items: list, progress: Progress
) -> tuple[bytes, Convergence]:
    """The calibrated model on all `items`, plus how the activation ranges moved as the sample grew
    (a quarter, half, all of the stratified draw: toolchain/quantization/calibration.py)."""
    made: dict[int, bytes] = {}

    def keep(sample: list) -> bytes:
        made[len(sample)] = calibrate(sample)
        return made[len(sample)]

    with progress.task("calibrate on 1/4, 1/2 and all of the queries (range convergence)", None):
        report = range_convergence(keep, items, fractions=(0.25, 0.5, 1.0))
    return made.get(len(items)) or calibrate(items), report


EQUALIZE_ROWS = 64  # search queries whose per-channel FC output ranges set the equalization


def equalized(calibrated: bytes, data: SearchData, only: list[str] | None = None) -> tuple[bytes, dict]:
    """The calibrated model with its FC outputs' outlier channels equalized (converters/equalize.py), on
    the first EQUALIZE_ROWS search queries; `only`: the outputs a saved plan names."""
    names = fc_outputs(calibrated) if only is None else only
    feeds = {k: v[:EQUALIZE_ROWS] for k, v in data.feeds.items()}
    ranges = channel_ranges(calibrated, feeds, names)
    return equalize_outputs(calibrated, ranges, min_ratio=0.0 if only is not None else 2.0)


def build_mixed(
    calibrated: bytes,
    recipe: Recipe,
    task: Task,
    search_data: Callable[[], SearchData],
    progress: Progress,
) -> MixedBuild:
    plan = recipe.quantization.mixed
    if plan is not None:
        if plan.fused_gelu:
            calibrated, fused = fuse_gelu(calibrated, plan.fused_gelu)
            if len(fused) != len(set(plan.fused_gelu)):
                gone = sorted(set(plan.fused_gelu) - set(fused))
                raise RecipeError(
                    f"quantization.mixed.fused_gelu names {len(gone)} GELU(s) this model does not "
                    f"compute, e.g. {gone[0]!r}",
                    hint="the plan was searched on another model or converter version: delete "
                    "quantization.mixed to search again",
                )
        if plan.equalized:
            calibrated, _ = equalized(calibrated, search_data(), plan.equalized)
        known = {n.name for n in choosable_nodes(calibrated)}
        missing = [n for n in plan.float_nodes if n not in known]
        if missing:
            raise RecipeError(
                f"quantization.mixed names {len(missing)} node(s) this model does not have, "
                f"e.g. {missing[0]!r}",
                hint="the plan was searched on another model or converter version: delete quantization.mixed "
                "to search again",
            )
        tflite = quantize(calibrated, plan.float_nodes)
        section = MixedSection(float_nodes=len(plan.float_nodes), plan="replayed from the recipe (no search)")
        return MixedBuild(tflite, section, int8_mac_share(tflite), plan)
    data = search_data()
    with progress.task("mixed: fuse composed GELUs, equalize FC output channels", None):
        calibrated, gelus = fuse_gelu(calibrated) if recipe.conversion.fuse_gelu else (calibrated, [])
        eq, changed = equalized(calibrated, data)
    result = search(
        calibrated, data, recipe.evaluation, task, progress, (eq, changed), recipe.quantization.mac_free_ops
    )
    tflite = quantize(result.calibrated, result.float_nodes)
    spec = MixedSpec(float_nodes=result.float_nodes, equalized=sorted(result.equalized), fused_gelu=gelus)
    section = result.section().model_copy(update={"fused_gelu": gelus or None})
    return MixedBuild(tflite, section, int8_mac_share(tflite), spec)
