"""validate's host reference: the same .tflite on the build machine, in an isolated LiteRT child.

It used to run inside edgecomp's own process (devices/hostrun.py), so a model with a custom op or a
Select-TF (Flex) op, which the toolchain's interpreter cannot resolve, ended the command with a traceback
(and a kernel that aborts would take edgecomp down with it) instead of a failed row. Now it runs through
the path the device rows use: devices/runner.py's RuntimeWorker in the `x86-host` profile's runtime
(ai-edge-litert 2.3.0, the toolchain's own version, native on x86_64), 1 thread, XNNPACK on, as HostRunner
ran it. The output's scale and zero point come from the flatbuffer (converters/tflite_model.py).

Anything that stops the reference (the ops no runtime has, a refusal at load/allocate/invoke, a crash, a
hang, an environment that cannot be set up) is a `HostReferenceFailed` naming the cause; validate turns it
into a failed check on every device row (exit 1, the gate), never exit 70.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from converters.tflite_model import TFLiteModel
from devices.hostrun import input_key
from devices.profiles.schema import get_profile
from devices.runner import RuntimeWorker, WorkerFailure
from devices.runtimes import provision
from toolchain.base.errors import DataError
from toolchain.base.venvs import EnvSetupError

HOST_PROFILE = "x86-host"


class HostReferenceFailed(Exception):
    """The host reference could not be computed; `message` says why (naming the op when one is to blame)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class HostReference:
    """The same .tflite on the host (1 thread), on the same named arrays."""

    raw: np.ndarray
    quantized: bool
    scale: float
    zero_point: int
    accuracy: float | None
    runtime: str

    def scores(self, raw: np.ndarray) -> np.ndarray:
        if self.quantized:
            return (raw.astype(np.float32) - self.zero_point) * self.scale
        return raw.astype(np.float32)


def output_quantization(model: TFLiteModel) -> tuple[float, int]:
    """(scale, zero point) of the first output; scale 0.0 for a float output (as the interpreter says)."""
    t = model.tensors[model.outputs[0]]
    if not t.scales:
        return 0.0, 0
    return float(t.scales[0]), int(t.zero_points[0]) if t.zero_points else 0


def unresolvable_ops(model: TFLiteModel) -> str | None:
    """Custom and Flex ops, described: the stock LiteRT interpreter resolves neither."""
    custom = model.custom_ops()
    flex = [op for op in custom if op.startswith("Flex")]
    other = [op for op in custom if not op.startswith("Flex")]
    parts = []
    if flex:
        parts.append(f"Select-TF (Flex) ops: {', '.join(flex)}")
    if other:
        parts.append(f"custom ops: {', '.join(other)}")
    return "; ".join(parts) or None


def check_feed_shapes(model: TFLiteModel, feeds: Mapping[str, np.ndarray]) -> None:
    """DataError (exit 2, with the seq_len hint) when a feed's row shape is not the model input's."""

    for i in model.inputs:
        t = model.tensors[i]
        value, sig = feeds.get(t.name), t.shape_signature or t.shape
        want = tuple(max(1, s) for s in t.shape[1:])
        if value is not None and -1 in sig[1:] and len(value.shape) == len(sig):
            continue  # a dynamic-length input takes the fed length (the child resizes it)
        if value is not None and tuple(value.shape[1:]) != want:
            raise DataError(
                f"wrong input shape for '{input_key(t.name)}': the model takes {list(want)}, "
                f"got {list(value.shape[1:])}",
                hint=f"set data.seq_len to {want[-1]} (or leave it unset)" if want else None,
            )


def host_reference(
    model_path: Path,
    model: TFLiteModel,
    feeds: Mapping[str, np.ndarray],
    label_ids: np.ndarray | None,
) -> HostReference:
    """Run the model in the host runtime child; raises HostReferenceFailed (never crashes edgecomp)."""

    check_feed_shapes(model, feeds)
    ops = unresolvable_ops(model)
    if ops:
        raise HostReferenceFailed(f"the host runtime cannot run the model's {ops}")
    profile = get_profile(HOST_PROFILE)
    try:
        env = provision(profile)
        with RuntimeWorker(env, profile.timeout_s, profile.memory_limit_mb) as worker:
            res = worker.run(Path(model_path), feeds, threads=1, xnnpack=True)
    except EnvSetupError as err:
        raise HostReferenceFailed(f"the host runtime could not be set up: {err.message}") from None
    except WorkerFailure as err:
        raise HostReferenceFailed(f"the host runtime failed: {err.message}") from None
    if res.error or res.raw is None:
        raise HostReferenceFailed(f"{res.stage} failed in {profile.runtime_label} (host): {res.error}")
    scale, zero = output_quantization(model)
    ref = HostReference(res.raw, bool(scale), scale, zero, None, f"{profile.runtime_label} (host, isolated)")
    if label_ids is not None:
        ref.accuracy = float(np.mean(ref.scores(res.raw).argmax(1) == label_ids))
    return ref
