"""Subgraph 0 of a .tflite (flatbuffers object API) as a graph: which op writes and reads each tensor,
and the float values of constants, whatever their storage (float32, float16 behind DEQUANTIZE, int8)."""

from __future__ import annotations

import numpy as np

from converters.tflite_model import builtin_op_name, tflite_schema


class Graph:
    """Producers, consumers and constants of subgraph 0 of a ModelT."""

    def __init__(self, model) -> None:
        self.model, self.sg = model, model.subgraphs[0]
        self.ops = list(self.sg.operators)
        codes = [model.operatorCodes[op.opcodeIndex] for op in self.ops]
        self.kind = [builtin_op_name(max(c.builtinCode, c.deprecatedBuiltinCode)) for c in codes]
        self.producer: dict[int, int] = {}
        self.consumers: dict[int, list[int]] = {}
        for i, op in enumerate(self.ops):
            for t in op.outputs if op.outputs is not None else []:
                self.producer[int(t)] = i
            for t in op.inputs if op.inputs is not None else []:
                if int(t) >= 0:
                    self.consumers.setdefault(int(t), []).append(i)
        self.outputs = {int(t) for t in self.sg.outputs}

        self._values: dict[int, np.ndarray | None] = {}

    def data(self, t: int) -> np.ndarray | None:
        """The raw bytes of a tensor stored in the model (not produced by an op), else None."""
        tensor = self.sg.tensors[t]
        data = self.model.buffers[tensor.buffer].data if tensor.buffer else None
        if t in self.producer or data is None or len(data) == 0:
            return None
        return data

    def constant(self, t: int) -> np.ndarray | None:
        """The float values of a constant: float32 data, float16 data, an int8/uint8/int16 constant
        dequantized by its scales, or the output of a DEQUANTIZE of such a constant; else None."""
        if t not in self._values:
            self._values[t] = self._constant(t)
        return self._values[t]

    def _constant(self, t: int) -> np.ndarray | None:
        p = self.producer.get(t)
        if p is not None:  # float16 (and int8) weights reach their readers through a DEQUANTIZE
            return self.constant(int(self.ops[p].inputs[0])) if self.kind[p] == "DEQUANTIZE" else None
        data, tensor, types = self.data(t), self.sg.tensors[t], tflite_schema().TensorType
        if data is None:
            return None
        shape = tuple(int(s) for s in tensor.shape) if tensor.shape is not None else ()
        if tensor.type in (types.FLOAT32, types.FLOAT16):
            dtype = np.float32 if tensor.type == types.FLOAT32 else np.float16
            return np.frombuffer(bytes(data), dtype).astype(np.float32).reshape(shape)
        q = tensor.quantization
        kinds = {types.INT8: np.int8, types.UINT8: np.uint8, types.INT16: np.int16}
        if tensor.type not in kinds or q is None or q.scale is None or len(q.scale) == 0:
            return None
        raw = np.frombuffer(bytes(data), kinds[tensor.type]).reshape(shape).astype(np.float32)
        scale, zero = np.asarray(q.scale, np.float32), np.asarray(q.zeroPoint, np.float32)
        if len(scale) > 1:  # per channel along the quantized dimension
            at = [1] * len(shape)
            at[q.quantizedDimension] = len(scale)
            scale, zero = scale.reshape(at), zero.reshape(at)
        return ((raw - zero) * scale).astype(np.float32)
