"""Runs inside the ai-edge-quantizer==0.10.0 environment (stdlib + ai_edge_quantizer; never imports edgecomp).

The LiteRT Quantizer (AEQ) hard-pins ai-edge-litert 2.3.0, so it lives in its own locked environment
(converters/int4.py provisions it) and this script speaks the one child protocol (edgecomp_wire on
PYTHONPATH). The hello carries AEQ's version. Ops:
  weights {"model_in", "model_out", "ops": [{"scope": op scope (output names + ";"), "op":
          "FULLY_CONNECTED"|"CONV_2D"|"DEPTHWISE_CONV_2D"|"BATCH_MATMUL", "bits": 4|8,
          "dynamic": bool, "block": 0|32|64|128|256}]} -> {"bytes": n}
      symmetric, per output channel (AEQ's CHANNELWISE), or with "block" > 0 one scale per block of that
      many input values of each output channel (AEQ's BLOCKWISE_<n>; dynamic int4 only). dynamic
      false: weight-only, the weights behind an explicit DEQUANTIZE feeding the float op; dynamic true:
      the op takes the int weights itself and quantizes its activations per call (hybrid kernels). Each
      op is matched by its exact scope, so ops not listed stay as they were.
Any failure is an `ok: false` reply; the parent decides what it means.
"""

from __future__ import annotations

import os
import re

import edgecomp_wire as wire


def _weights(req: dict) -> dict:
    from ai_edge_quantizer import qtyping, quantizer

    qt = quantizer.Quantizer(req["model_in"])
    for item in req["ops"]:
        block = int(item.get("block", 0))
        granularity = (
            qtyping.QuantGranularity(f"BLOCKWISE_{block}") if block else qtyping.QuantGranularity.CHANNELWISE
        )
        weights = qtyping.TensorQuantizationConfig(
            num_bits=int(item["bits"]), symmetric=True, granularity=granularity
        )
        qt.update_quantization_recipe(
            regex="^" + re.escape(item["scope"]) + "$",
            operation_name=qtyping.TFLOperationName(item["op"]),
            op_config=qtyping.OpQuantizationConfig(
                weight_tensor_config=weights,
                compute_precision=qtyping.ComputePrecision.INTEGER
                if item["dynamic"]
                else qtyping.ComputePrecision.FLOAT,
                explicit_dequantize=not item["dynamic"],
            ),
        )
    result = qt.quantize()
    if os.path.exists(req["model_out"]):
        os.remove(req["model_out"])
    result.export_model(req["model_out"])
    return {"bytes": os.path.getsize(req["model_out"])}


HANDLERS = {"weights": _weights}


def main() -> None:
    wire.open_channel()  # before importing AEQ: absl/LiteRT chatter on fd 1 goes to stderr
    from importlib.metadata import version

    wire.serve(HANDLERS, {"quantizer": version("ai-edge-quantizer"), "litert": version("ai-edge-litert")})


if __name__ == "__main__":
    main()
