"""The one host runner: a .tflite in the toolchain's ai_edge_litert, every input fed by name, batch 1.

Evaluation at convert, profile's input arrays and package's parity all go through it (validate's host
reference runs in an isolated child instead: devices/host_reference.py), so a model with several inputs
(input_ids, attention_mask, token_type_ids) is fed the same way everywhere. Before it existed the Keras
path fed input 0 only and an ONNX build's attention_mask was left at zeros outside the converter: nothing
failed, the numbers were just wrong.

Feed names match a model input exactly, or after stripping the converter's `serving_default_` prefix and
`:0` suffix (`serving_default_attention_mask:0` is fed by `attention_mask`); a missing feed is an error
that lists the model's inputs. One invoke per row, as on the phone.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from converters.tflite_model import TFLiteModel
from toolchain.base.errors import DataError
from toolchain.base.progress import Progress, SilentProgress


def input_key(name: str) -> str:
    """`serving_default_input_ids:0` -> `input_ids`: the name a user (or an ONNX export) calls it."""
    return name.split(":")[0].removeprefix("serving_default_")


def match_feeds(input_names: list[str], feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """`feeds` re-keyed by the model's own input names; raises DataError naming what is missing."""
    by_key = {input_key(k): v for k, v in feeds.items()}
    out, missing = {}, []
    for name in input_names:
        if name in feeds:
            out[name] = feeds[name]
        elif input_key(name) in by_key:
            out[name] = by_key[input_key(name)]
        else:
            missing.append(name)
    if missing:
        raise DataError(
            f"no data for model input(s) {', '.join(missing)} (got {', '.join(feeds) or 'nothing'})",
            hint=f"the model's inputs: {', '.join(input_names)}",
        )
    rows = {len(v) for v in out.values()}
    if len(rows) > 1:
        raise DataError(f"input arrays have different row counts: { {k: len(v) for k, v in out.items()} }")
    return out


class HostRunner:
    """A .tflite (bytes or path) in ai_edge_litert on this host, fed by input name, batch 1."""

    def __init__(self, model: bytes | Path, threads: int = 1, xnnpack: bool = True) -> None:
        """`xnnpack=False`: TFLite's builtin kernels only (what MediaPipe 0.10.21's CPU tasks ran in our
        measurements: equal to 1e-8, where XNNPACK's int8 rounding differed by one output step)."""
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        from toolchain.base.quiet import native_output_silenced

        content = Path(model).read_bytes() if isinstance(model, Path) else model
        kwargs = (
            {}
            if xnnpack
            else {"experimental_op_resolver_type": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES}
        )
        with native_output_silenced():  # "INFO: Created TensorFlow Lite XNNPACK delegate"
            self.interpreter = Interpreter(model_content=content, num_threads=threads, **kwargs)
            self.interpreter.allocate_tensors()
        self.inputs = self.interpreter.get_input_details()
        self.output = self.interpreter.get_output_details()[0]

    @property
    def input_names(self) -> list[str]:
        return [d["name"] for d in self.inputs]

    @property
    def quantization(self) -> tuple[float, int]:
        """(scale, zero point) of the first output; scale 0.0 for a float output."""
        scale, zero = self.output["quantization"]
        return float(scale), int(zero)

    @property
    def runtime(self) -> str:
        from importlib.metadata import version

        return f"ai_edge_litert {version('ai-edge-litert')} (host)"

    def _resize_dynamic(self, feeds: Mapping[str, np.ndarray]) -> None:
        """A dynamic-length model (shape signature -1, e.g. Keras `Input((None,))`) takes the fed length:
        its inputs are resized to (1, *row shape) instead of refusing everything but length 1."""
        resized = False
        for d in self.inputs:
            sig = [int(s) for s in d.get("shape_signature", d["shape"])]
            row = (1, *np.asarray(feeds[d["name"]]).shape[1:])
            if -1 in sig and len(row) == len(sig) and tuple(int(s) for s in d["shape"]) != row:
                self.interpreter.resize_tensor_input(d["index"], list(row))
                resized = True
        if resized:
            self.interpreter.allocate_tensors()
            self.inputs = self.interpreter.get_input_details()
            self.output = self.interpreter.get_output_details()[0]

    def _set(self, feeds: dict[str, np.ndarray], row: int) -> None:
        for d in self.inputs:
            value = feeds[d["name"]][row]
            want = tuple(int(s) for s in d["shape"][1:])
            if tuple(value.shape) != want:
                raise DataError(
                    f"wrong input shape for '{input_key(d['name'])}': the model takes {list(want)}, "
                    f"got {list(value.shape)}",
                    hint=f"set data.seq_len to {want[-1]} (or leave it unset)" if want else None,
                )
            self.interpreter.set_tensor(d["index"], value[None, ...].astype(d["dtype"]))

    def run(
        self, feeds: Mapping[str, np.ndarray], progress: Progress | None = None, description: str = ""
    ) -> np.ndarray:
        """Raw first output per row (int8 for full-integer models), shape (rows, output size)."""
        named = match_feeds(self.input_names, feeds)
        n = len(next(iter(named.values()))) if named else 0
        self._resize_dynamic(named)
        size = int(np.prod(self.output["shape"]))
        out = np.zeros((n, size), dtype=self.output["dtype"])
        progress = progress or SilentProgress()
        with progress.task(description or "tflite (ai_edge_litert)", n) as advance:
            for i in range(n):
                self._set(named, i)
                self.interpreter.invoke()
                out[i] = self.interpreter.get_tensor(self.output["index"]).reshape(-1)
                advance(1)
        return out

    def dequantize(self, raw: np.ndarray) -> np.ndarray:
        scale, zero = self.quantization
        return (raw.astype(np.float32) - zero) * scale if scale else raw.astype(np.float32)

    def scores(
        self, feeds: Mapping[str, np.ndarray], progress: Progress | None = None, description: str = ""
    ) -> np.ndarray:
        """First output dequantized to float, shape (rows, output size)."""
        return self.dequantize(self.run(feeds, progress, description))


def synthetic_feeds(info: TFLiteModel, n: int) -> dict[str, np.ndarray]:
    """Seeded random rows for every input, keyed by tensor name: token ids within the embedding table
    that gathers them, small integers for masks, normal floats for float inputs."""
    rng = np.random.default_rng(0)
    out = {}
    for i in info.inputs:
        t = info.tensors[i]
        shape = (n, *[max(1, s) for s in t.shape[1:]]) if t.shape else (n,)
        if t.dtype in ("INT32", "INT64"):
            rows = [
                info.tensors[o.inputs[0]].shape[0] for o in info.ops if o.op == "GATHER" and i in o.inputs[1:]
            ]
            arr = rng.integers(0, max(1, min(rows) if rows else 2), shape)
        elif t.dtype in ("INT8", "UINT8", "INT16"):
            arr = rng.integers(-100, 100, shape)
        else:
            arr = rng.standard_normal(shape)
        out[t.name] = arr.astype(
            {"INT32": np.int32, "INT64": np.int64, "INT8": np.int8, "UINT8": np.uint8, "INT16": np.int16}.get(
                t.dtype, np.float32
            )
        )
    return out
