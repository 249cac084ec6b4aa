"""The recipe's precision plans of mode mixed and int4 (toolchain/recipe/schema.py's `quantization.mixed` and
`quantization.int4`): what a search writes into the saved recipe, and the int4 search's options."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from toolchain.base.types import Int4Rounding, WeightWidth
from toolchain.recipe.strict import Strict


class MixedSpec(Strict):
    """mode mixed: which nodes stay float. Written by the search into the saved recipe; given, no search."""

    float_nodes: list[str] = Field(
        description="output tensor names of the ops kept in float (the rest is int8)",
    )
    equalized: list[str] = Field(
        default_factory=list,
        description="FULLY_CONNECTED outputs whose channels were equalized before quantizing "
        "(converters/equalize.py; ranges from the search queries)",
    )
    fused_gelu: list[str] = Field(
        default_factory=list,
        description="outputs of composed GELU subgraphs (an exported Erf) fused into one GELU op before "
        "quantizing (converters/fuse.py)",
    )


class Int4Spec(Strict):
    """mode int4: the devices the build must run on, and (written by the search) the plan it replays."""

    devices: list[str] = Field(
        default_factory=lambda: ["x86-host"],
        description="device profiles the build must run on: int4 is chosen only if all their runtimes run it",
    )
    weights: dict[str, WeightWidth] | None = Field(
        None,
        description="weight tensor -> int8/int4/int4_columns/int4_block32 (the saved recipe of an int4 "
        "build has it)",
    )
    blockwise: bool = Field(
        False,
        description="the search also tries FULLY_CONNECTED weights blockwise (int4_block32): ai-edge-litert "
        "2.3 runs them (XNNPACK), MediaPipe 1.2.3 fails to open such a model",
    )
    rounding: Int4Rounding = Field(
        Int4Rounding.NEAREST,
        description="how 4-bit FULLY_CONNECTED weights are rounded: nearest (each value alone), or gptq "
        "(column by column, each column's error moved onto the rest by the layer's inputs on the "
        "calibration queries: a smaller change of the layer's output, the same bytes)",
    )
    blockwise_gain: float = Field(
        1.0,
        ge=1.0,
        description="with blockwise: a FULLY_CONNECTED weight goes blockwise only when that cuts its damage "
        "alone by more than this factor (blockwise kernels run slower than per-channel ones)",
    )
    hybrid_int8: bool = Field(
        False,
        description="8-bit FULLY_CONNECTED / CONV_2D weights go to the op's hybrid kernel (int8_hybrid, "
        "dynamic int8's speed) instead of behind a DEQUANTIZE (float math)",
    )
    blocks: list[Literal[32, 64, 128]] = Field(
        default_factory=lambda: [32],
        min_length=1,
        description="with blockwise: the block sizes tried (input values per scale: int4_block32, "
        "int4_block64, int4_block128); larger blocks have fewer scales and a faster kernel",
    )
    max_kernel_cost: float | None = Field(
        None,
        gt=0,
        description="the plan's FULLY_CONNECTED kernel time, from the target runtimes' kernel table, at "
        "most this many times dynamic int8's (1.0: no slower than -Q dynamic): blockwise weights move to "
        "per channel, the cheapest extra damage first, until it holds; 8-bit dense weights go to the hybrid "
        "kernel (as with hybrid_int8)",
    )
    max_bytes: int | None = Field(
        None,
        ge=1,
        description="a size budget for the .tflite: the search keeps in 8 bits only the most damaging "
        "weights (per byte) that fit in it, and puts the rest in 4 bits even when the targets then miss "
        "(the build's gates still decide)",
    )
