"""Runs onnx2tf in a child process of the toolchain's Python, over the one child protocol (edgecomp_wire).

onnx2tf prints, logs, sets global TF/Keras state and on some errors calls sys.exit; a child keeps all of
that out of edgecomp. Its chatter on fd 1 goes to stderr (the protocol has a private fd), which the host
reads for the failing node's message. One op:
  convert {"onnx", "out", "pseudo": [op, ...], "inputs": [name, ...]} -> {"saved_model": out}
"""

from __future__ import annotations

import os

import edgecomp_wire as wire


def convert(args: dict) -> dict:
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import onnx2tf

    onnx2tf.convert(
        input_onnx_file_path=args["onnx"],
        output_folder_path=args["out"],
        non_verbose=True,
        replace_to_pseudo_operators=args["pseudo"],
        output_signaturedefs=True,
        keep_shape_absolutely_input_names=args["inputs"],
    )
    return {"saved_model": args["out"]}


if __name__ == "__main__":
    wire.open_channel()
    wire.serve({"convert": convert}, {"runtime": "onnx2tf", "module": "onnx2tf"})
