"""The mixed-precision step of a build, shared by the Keras and ONNX backends.

Given the calibrated float model, either replays the saved plan (`quantization.mixed.float_nodes`, no
search: the same bytes) or searches one (toolchain/quantization/mixed.py) on the search queries. Returns
the model and
the quantization report entries; `float_nodes` goes into the saved recipe.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from toolchain.base.errors import RecipeError
from toolchain.base.progress import Progress
from toolchain.base.types import Task
from toolchain.quantization.mixed import SearchData, int8_mac_share, search
from toolchain.recipe.schema import Recipe
from toolchain.report.quantization import MixedSection


def calibrate_with_convergence(
    calibrate: Callable[[list], bytes], items: list, progress: Progress
) -> tuple[bytes, dict[str, Any]]:
    """The calibrated model on all `items`, plus how the activation ranges moved as the sample grew
    (a quarter, half, all of the stratified draw: toolchain/quantization/calibration.py)."""
    from toolchain.quantization.calibration import range_convergence

    made: dict[int, bytes] = {}

    def keep(sample: list) -> bytes:
        made[len(sample)] = calibrate(sample)
        return made[len(sample)]

    with progress.task("calibrate on 1/4, 1/2 and all of the queries (range convergence)", None):
        report = range_convergence(keep, items, fractions=(0.25, 0.5, 1.0))
    return made.get(len(items)) or calibrate(items), report


def build_mixed(
    calibrated: bytes,
    recipe: Recipe,
    task: Task,
    search_data: Callable[[], SearchData],
    progress: Progress,
) -> tuple[bytes, dict[str, Any]]:
    from converters.calibrated import choosable_nodes, quantize

    plan = recipe.quantization.mixed
    if plan is not None:
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
        info: dict[str, Any] = {
            "mixed": MixedSection(
                float_nodes=len(plan.float_nodes), plan="replayed from the recipe (no search)"
            )
        }
        floats = list(plan.float_nodes)
    else:
        result = search(calibrated, search_data(), recipe.evaluation, task, progress)
        tflite = quantize(calibrated, result.float_nodes)
        info = {"mixed": result.section()}
        floats = result.float_nodes
    info.update(full_integer=False, int8_mac_share=int8_mac_share(tflite), mixed_float_nodes=floats)
    return tflite, info
