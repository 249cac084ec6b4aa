"""Calibrate once, quantize many times: the TFLite MLIR quantizer's two halves, used for mixed precision.

`calibrate` runs the representative queries through the float model once and returns a float .tflite that
carries each activation's observed min/max. `quantize` turns that into an int8 model in a fraction of a
second, leaving the named nodes (by output tensor name) in float with QUANTIZE/DEQUANTIZE around them: the
same pass TFLite's QuantizationDebugger uses for its denylist. Both are deterministic for the same inputs,
so a saved list of float nodes rebuilds the same bytes without searching again.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from converters.tflite_model import parse_tflite, tflite_schema
from toolchain.base.errors import ConversionError
from toolchain.base.quiet import native_output_silenced
from toolchain.base.tfenv import tf

Progress = Callable[[int, int], None]
# ops that only move or select data: their precision follows their neighbours, they are never a choice
DATA_MOVEMENT = frozenset(
    {
        "RESHAPE",
        "TRANSPOSE",
        "SQUEEZE",
        "EXPAND_DIMS",
        "GATHER",
        "GATHER_ND",
        "SLICE",
        "STRIDED_SLICE",
        "CONCATENATION",
        "PACK",
        "UNPACK",
        "SPLIT",
        "SPLIT_V",
        "SHAPE",
        "CAST",
        "QUANTIZE",
        "DEQUANTIZE",
    }
)


@dataclass(frozen=True)
class Node:
    """A choosable op of the calibrated float model, named by its first output tensor."""

    index: int
    op: str
    name: str


def _failed(stage: str, err: Exception) -> ConversionError:
    text = str(err)
    first = next((ln.strip() for ln in text.splitlines() if "error" in ln.lower()), text[:240])
    return ConversionError(
        f"TFLite {stage} failed: {first[:240]}", hint="EDGECOMP_DEBUG=1 shows the converter log"
    )


def calibrate(converter: Any, representative: Callable[[], Any]) -> bytes:
    """The float model with calibrated activation ranges (int8 kernels preferred, float allowed)."""
    lite = tf().lite
    converter.optimizations = [lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [lite.OpsSet.TFLITE_BUILTINS_INT8, lite.OpsSet.TFLITE_BUILTINS]
    converter.experimental_mlir_quantizer = True
    converter._experimental_calibrate_only = True  # noqa: SLF001 - the documented debugger route
    try:
        with native_output_silenced(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return bytes(converter.convert())
    except Exception as err:
        raise _failed("calibration", err) from None


def quantize(calibrated: bytes, float_nodes: Sequence[str] = ()) -> bytes:
    """int8 weights and activations everywhere except the named nodes; token-id inputs keep their type.

    The output is int8, as in mode int8: the app ranks int8 scores, which the packaged model's tie-break
    makes deterministic. (A float output computed through QUANTIZE/DEQUANTIZE boundaries differed in the
    3rd decimal between MediaPipe's kernel mix and every host kernel set: 4 of 748 near-tie top-1 flips.)
    """
    from tensorflow.lite.python import convert

    try:
        with native_output_silenced(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return bytes(
                convert.mlir_quantize(
                    calibrated,
                    fully_quantize=True,
                    output_data_type=tf().int8,
                    denylisted_nodes=sorted(float_nodes) or None,
                )
            )
    except Exception as err:
        raise _failed("quantization", err) from None


def choosable_nodes(calibrated: bytes) -> list[Node]:
    """Ops whose precision is a real choice: float-output compute ops, in graph order."""

    info = parse_tflite(calibrated)
    nodes = []
    for op in info.ops:
        if op.op in DATA_MOVEMENT or not op.outputs or op.custom:
            continue
        out = info.tensors[op.outputs[0]]
        if out.dtype == "FLOAT32":
            nodes.append(Node(op.index, op.op, out.name))
    return nodes


def activation_ranges(calibrated: bytes) -> dict[str, tuple[float, float]]:
    """The calibrated (min, max) of every activation tensor, by tensor name."""

    schema = tflite_schema()
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(calibrated, 0))
    ranges = {}
    for t in model.subgraphs[0].tensors:
        q = t.quantization
        if q is not None and q.min is not None and q.max is not None and len(q.min) and len(q.max):
            name = t.name.decode() if isinstance(t.name, bytes) else str(t.name)
            ranges[name] = (float(np.min(q.min)), float(np.max(q.max)))
    return ranges
