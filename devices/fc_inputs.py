"""The input Hessian X^T X / rows of FULLY_CONNECTED layers, from a float model run on real queries.

GPTQ rounding (converters/int4_rounding.py) needs, per 4-bit FULLY_CONNECTED weight, how the layer's inputs
correlate. The float model runs in the host's ai_edge_litert with `experimental_preserve_all_tensors` and
builtin kernels (an XNNPACK-delegated graph does not keep its intermediate tensors), one invoke per query,
and each layer's input rows are summed into X^T X in float64 as they stream past (never kept: 256 queries
x 32 tokens x 1,536 values is 50 MB per layer). With a token mask (1 for a real token, 0 for padding,
[queries, seq_len]), an input whose rows are the sequence's positions counts only the real tokens: a short
query padded to 32 would otherwise fill most of the Hessian with padding positions, whose outputs a mean
pool over the mask throws away. Any other input (the pooled head's) counts every row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from converters.tflite_model import parse_tflite
from devices.activations import all_tensors_interpreter
from devices.hostrun import match_feeds
from toolchain.base.errors import DataError
from toolchain.base.progress import Progress, SilentProgress


def fc_inputs(model: bytes, weights: Sequence[str]) -> dict[str, str]:
    """weight tensor name -> the name of its FULLY_CONNECTED op's input (the first op using it)."""
    info = parse_tflite(model)
    wanted, found = set(weights), {}
    for op in info.ops:
        if op.op != "FULLY_CONNECTED" or len(op.inputs) < 2 or op.inputs[1] < 0:
            continue
        name = info.tensors[op.inputs[1]].name
        if name in wanted and name not in found:
            found[name] = info.tensors[op.inputs[0]].name
    return found


def input_hessians(
    model: bytes,
    feeds: Mapping[str, np.ndarray],
    weights: Sequence[str],
    token_mask: np.ndarray | None = None,
    progress: Progress | None = None,
) -> dict[str, np.ndarray]:
    """weight name -> X^T X / rows (float64, [in, in]) of its FULLY_CONNECTED layer's input over every
    query of `feeds` (by input name); see the module doc for `token_mask`. Weights that are not a
    FULLY_CONNECTED weight of `model` are left out."""
    inputs_of = fc_inputs(model, weights)
    it = all_tensors_interpreter(model)
    index = {d["name"]: d["index"] for d in it.get_tensor_details()}
    missing = sorted(n for n in inputs_of.values() if n not in index)
    if missing:
        raise DataError(f"FULLY_CONNECTED input {missing[0]} is not a tensor of the model")
    inputs = it.get_input_details()
    named = match_feeds([d["name"] for d in inputs], feeds)
    rows = len(next(iter(named.values()))) if named else 0
    if token_mask is not None and len(token_mask) != rows:
        raise DataError(f"a token mask of {len(token_mask)} rows for {rows} queries")
    sums: dict[str, np.ndarray] = {}
    counts: dict[str, float] = {}
    tensors = sorted(set(inputs_of.values()))
    progress = progress or SilentProgress()
    with progress.task("GPTQ: FULLY_CONNECTED inputs (ai_edge_litert, all tensors kept)", rows) as advance:
        for i in range(rows):
            for d in inputs:
                it.set_tensor(d["index"], np.asarray(named[d["name"]][i])[None, ...].astype(d["dtype"]))
            it.invoke()
            for name in tensors:
                x = it.get_tensor(index[name]).astype(np.float64)
                x = x.reshape(-1, x.shape[-1])
                if token_mask is not None and len(x) == token_mask.shape[1]:
                    x = x[np.asarray(token_mask[i]) > 0]
                sums[name] = sums.get(name, 0.0) + x.T @ x
                counts[name] = counts.get(name, 0.0) + len(x)
            advance(1)
    return {w: sums[t] / max(counts[t], 1.0) for w, t in inputs_of.items() if t in sums}
