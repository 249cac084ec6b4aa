"""The one parameter count, used by every command: convert's report and table, steps, distill, inspect.

parameters = how many weight values the model carries: the elements of its weight tensors (kernels, biases,
embedding tables, norm scales), whatever their dtype (float32, float16, int8, an int8 model's int32 biases).
Not counted: integer constants that are not weights (reshape shapes, axes, gather indices: int32/int64/bool
tensors without quantization parameters) and training-only state (QAT fake-quant ranges and the optimizer
step, pruning masks and thresholds) and the tie-break bias `package` adds after a classifier's output
(converters/tflite_edit.py: a fixed ordering rule for equal scores, not a weight of the model), so the
packaged model `inspect` reads has the count convert reported.

The same model gets the same number in every form: a Keras model's weights (trainable and non-trainable of
its own layers), its .tflite's constant tensors, an ONNX graph's initializers. Measured on the shopping
example's teacher: Keras 131,990; its fp32 and int8 .tflite 131,990 each (the int8 file's 5 extra constant
elements are reshape/axis constants, which an all-constants count used to add). One honest exception: the
TFLite converter drops an all-zero bias (an untrained layer's), so such a .tflite counts fewer than its Keras
model; a trained model has no all-zero bias.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from converters.tflite_edit import TIE_BREAK_SUFFIX

INDEX_DTYPES = frozenset({"INT32", "INT64", "BOOL", "STRING", "UINT32", "UINT64"})
_ONNX_INDEX_TYPES = frozenset({6, 7, 8, 9, 12, 13})  # TensorProto INT32, INT64, STRING, BOOL, UINT32, UINT64
# tfmot layers that add training-only state as their own non-trainable weights: QAT ranges and optimizer step
# (QuantizeWrapper*, QuantizeLayer), pruning masks, thresholds and step (PruneLowMagnitude)
_TFMOT_LAYERS = ("QuantizeWrapper", "QuantizeWrapperV2", "QuantizeLayer", "PruneLowMagnitude")


def _elements(shape: Any) -> int:
    dims = [int(d) for d in shape]
    return int(np.prod(dims)) if dims else 1


def is_weight_tensor(name: str, dtype: str, is_constant: bool, quantized: bool) -> bool:
    """A .tflite tensor that holds weights: a constant that is not an unquantized index/shape constant
    and not the package step's tie-break bias."""
    if not is_constant or name.endswith(TIE_BREAK_SUFFIX):
        return False
    return quantized or dtype not in INDEX_DTYPES


def tflite_parameters(tensors: Any) -> int:
    """Parameters of a .tflite from its tensors (converters.tflite_model.TensorInfo)."""
    return sum(
        _elements(t.shape)
        for t in tensors
        if is_weight_tensor(t.name, t.dtype, t.is_constant, bool(t.scales))
    )


def keras_parameters(model: Any) -> int:
    """Parameters of a Keras model: its layers' weights, without the state tfmot wrappers add for training.

    A wrapper's non-trainable weights that are not the wrapped layer's are that state (measured with tfmot
    0.8: a QAT Dense adds optimizer_step, kernel_min/max and activation min/max; a pruned layer adds mask,
    threshold and pruning_step), so a BatchNorm's moving statistics inside a wrapper still count.
    """
    state: set[int] = set()
    for layer in _all_layers(model):
        if type(layer).__name__ in _TFMOT_LAYERS:
            inner = getattr(layer, "layer", None)
            own = {id(w) for w in inner.weights} if inner is not None else set()
            state |= {id(w) for w in layer.non_trainable_weights if id(w) not in own}
    unique = {id(w): w for w in model.weights}
    return sum(_elements(w.shape) for key, w in unique.items() if key not in state)


def _all_layers(model: Any) -> list[Any]:
    """Every layer, nested models included (a functional model inside a functional model)."""
    out, stack = [], list(getattr(model, "layers", []))
    while stack:
        layer = stack.pop()
        out.append(layer)
        stack.extend(getattr(layer, "layers", []))
    return out


def onnx_parameters(initializers: Any) -> int:
    """Parameters of an ONNX graph from its initializers (onnx TensorProto; external data not needed)."""
    return sum(_elements(t.dims) for t in initializers if t.data_type not in _ONNX_INDEX_TYPES)


def count_parameters(model: Any) -> int:
    """The parameter count of a Keras model, a parsed .tflite (converters.tflite_model.TFLiteModel, whose
    `parameter_count` is this) or an ONNX ModelProto: the one definition above."""
    if hasattr(model, "tensors") and hasattr(model, "opcodes"):
        return tflite_parameters(model.tensors)
    if hasattr(model, "graph") and hasattr(model.graph, "initializer"):
        return onnx_parameters(model.graph.initializer)
    if hasattr(model, "weights"):
        return keras_parameters(model)
    raise TypeError(f"cannot count the parameters of a {type(model).__name__}")
