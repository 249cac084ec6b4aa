"""Runs onnx2tf in a child process of the toolchain's Python, over the one child protocol (edgecomp_wire).

onnx2tf prints, logs, sets global TF/Keras state and on some errors calls sys.exit; a child keeps all of
that out of edgecomp. Its chatter on fd 1 goes to stderr (the protocol has a private fd), which the host
reads for the failing node's message. One op:
  convert {"onnx", "out", "pseudo": [op, ...], "inputs": [name, ...]} -> {"saved_model": out}

edgecomp needs onnx2tf's SavedModel only; its own converter makes every .tflite from it. After writing the
SavedModel, onnx2tf goes on to convert it to a float32 and a float16 .tflite that edgecomp never read, and it
has no option to skip them: they took 40-65% of each conversion (BERT fixture, 10.2 s -> 5.8 s and 21.4 s
-> 7.1 s under load). So in this child TFLiteConverter's two constructors end the conversion there
(`_SavedModelWritten`); a SavedModel that onnx2tf failed to write is still reported missing by the host.
"""

from __future__ import annotations

import contextlib
import os

import edgecomp_wire as wire


class _SavedModelWritten(BaseException):
    """Raised where onnx2tf starts its own .tflite outputs (a BaseException: onnx2tf's `except Exception`
    around `from_keras_model` must not catch it)."""


def _stop(*_args, **_kwargs):
    raise _SavedModelWritten


def convert(args: dict) -> dict:
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import onnx2tf
    import tensorflow as tf

    tf.lite.TFLiteConverter.from_keras_model = _stop  # in this child process only
    tf.lite.TFLiteConverter.from_concrete_functions = _stop
    with contextlib.suppress(_SavedModelWritten):
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
