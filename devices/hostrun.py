"""The one host runner: a .tflite in the toolchain's ai_edge_litert, every input fed by name, batch 1, in a
runtime child (devices/host_runtime.py) that may crash without taking edgecomp down.

Evaluation at convert, package's parity, the mixed-precision search and its speed table, a .tflite
distillation teacher and profile's input arrays all go through it (validate's host reference runs in the
`x86-host` device runtime instead: devices/host_reference.py), so a model with several inputs
(input_ids, attention_mask, token_type_ids) is fed the same way everywhere. Before it existed the Keras
path fed input 0 only and an ONNX build's attention_mask was left at zeros outside the converter: nothing
failed, the numbers were just wrong.

Feed names match a model input exactly, or after stripping the converter's `serving_default_` prefix and
`:0` suffix (`serving_default_attention_mask:0` is fed by `attention_mask`); a missing feed is an error
that lists the model's inputs. One invoke per row, as on the phone.

The child builds the interpreter as the in-process runner did (num_threads, XNNPACK or
BUILTIN_WITHOUT_DEFAULT_DELEGATES, the same dynamic-length resize, one invoke per row) and returns the raw
first output; dequantization stays here, so scores are bit-identical to the in-process ones (tested, and
the regression builds' model bytes and report numbers did not move). Rows go in calls of FIRST_ROWS, then
sized to take about CALL_S (at most MAX_ROWS): progress advances per call, and the child's timeout is per
call. `time_rounds` times invokes inside the child, for the speed table and the benchmarks.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from converters.tflite_model import TFLiteModel
from devices.host_runtime import HostRuntime
from devices.runner import WorkerFailure
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


FIRST_ROWS, MAX_ROWS = 32, 1024  # rows per call: the first call's, then sized to take about CALL_S
CALL_S = 0.25  # seconds of invokes per call


def _host_details(d: dict[str, Any]) -> dict[str, Any]:
    """A child's tensor details as the interpreter gives them (dtype a numpy dtype, quantization a pair)."""
    return {**d, "dtype": np.dtype(d["dtype"]), "quantization": (d["scale"], d["zero_point"])}


class HostRunner:
    """A .tflite (bytes or path) in the toolchain's ai_edge_litert, in a child process, fed by input name,
    batch 1. Use it as a context manager (or close() it)."""

    def __init__(
        self,
        model: bytes | Path,
        threads: int = 1,
        xnnpack: bool = True,
        name: str | None = None,
        host: HostRuntime | None = None,
    ) -> None:
        """`xnnpack=False`: TFLite's builtin kernels only (what MediaPipe 0.10.21's CPU tasks ran in our
        measurements: equal to 1e-8, where XNNPACK's int8 rounding differed by one output step).
        `name`: how errors call the model (default: its file name). `host`: a child shared with other
        runners (default: one of its own, started on first use and ended by close())."""
        self.model, self.threads, self.xnnpack = model, threads, xnnpack
        self.name = name or (Path(model).name if isinstance(model, Path) else "the .tflite model")
        self.host = host if host is not None else HostRuntime()
        self._own_host = host is None
        self._loaded: tuple[int, int] | None = None  # (host generation, handle)
        self._details: dict[str, Any] = {}

    def __enter__(self) -> HostRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """End the runner's own child, or free its interpreter in a shared one."""
        if self._own_host:
            self.host.close()
        elif self._loaded is not None and self._loaded[0] == self.host.generation:
            self.host.released.append(self._loaded[1])
        self._loaded = None

    @property
    def runtime(self) -> str:
        kernels = "XNNPACK" if self.xnnpack else "builtin kernels"
        threads = f"{self.threads} thread{'s' if self.threads != 1 else ''}"
        return f"ai_edge_litert {self.host.version} ({kernels}, {threads})"

    def _call(self, op: str, args: dict[str, Any], what: str) -> Any:
        try:
            return self.host.call(op, args, what)
        except WorkerFailure as err:
            raise self.host.failure(err, self.runtime, self.name, what) from None

    def handle(self) -> int:
        """The interpreter's handle in the child, loading the model there first if needed."""
        self.host.worker  # noqa: B018 - starts the child, which moves the generation
        if self._loaded is not None and self._loaded[0] == self.host.generation:
            return self._loaded[1]
        if isinstance(self.model, Path):
            path = Path(self.model).resolve()
        else:
            path = self.host.path("model", ".tflite")
            path.write_bytes(self.model)
        args = {"model": str(path), "threads": self.threads, "xnnpack": self.xnnpack}
        try:
            reply = self._call("load", {**args, "free": self.host.released}, f"loading {self.name}")
        finally:
            if not isinstance(self.model, Path):
                path.unlink(missing_ok=True)  # the interpreter holds the model now (Linux keeps it mapped)
        self.host.released = []
        self._details = {
            "inputs": [_host_details(d) for d in reply["inputs"]],
            "output": _host_details(reply["output"]),
        }
        self._loaded = (self.host.generation, int(reply["handle"]))
        return self._loaded[1]

    @property
    def inputs(self) -> list[dict[str, Any]]:
        """The interpreter's input details (name, index, shape, shape_signature, dtype, quantization)."""
        self.handle()
        return self._details["inputs"]

    @property
    def output(self) -> dict[str, Any]:
        self.handle()
        return self._details["output"]

    @property
    def input_names(self) -> list[str]:
        return [d["name"] for d in self.inputs]

    @property
    def quantization(self) -> tuple[float, int]:
        """(scale, zero point) of the first output; scale 0.0 for a float output."""
        scale, zero = self.output["quantization"]
        return float(scale), int(zero)

    def _check_shapes(self, named: Mapping[str, np.ndarray]) -> None:
        for d in self.inputs:
            row, sig = tuple(named[d["name"]].shape[1:]), d["shape_signature"]
            if -1 in sig and len(sig) == len(row) + 1:
                continue  # a dynamic-length input (Keras `Input((None,))`) takes the fed length
            want = tuple(int(s) for s in d["shape"][1:])
            if row != want:
                raise DataError(
                    f"wrong input shape for '{input_key(d['name'])}': the model takes {list(want)}, "
                    f"got {list(row)}",
                    hint=f"set data.seq_len to {want[-1]} (or leave it unset)" if want else None,
                )

    def run(
        self, feeds: Mapping[str, np.ndarray], progress: Progress | None = None, description: str = ""
    ) -> np.ndarray:
        """Raw first output per row (int8 for full-integer models), shape (rows, output size)."""
        named = {k: np.asarray(v) for k, v in match_feeds(self.input_names, feeds).items()}
        n = len(next(iter(named.values()))) if named else 0
        self._check_shapes(named)
        if n == 0:
            return np.zeros((0, int(np.prod(self.output["shape"]))), dtype=self.output["dtype"])
        path, parts = self.host.feeds_file(named), []
        progress = progress or SilentProgress()
        start, size = 0, FIRST_ROWS
        with progress.task(description or f"tflite ({self.runtime})", n) as advance:
            while start < n:
                stop, t0 = min(n, start + size), time.perf_counter()
                parts.append(self._invoke(path, start, stop, n))
                seconds = max(time.perf_counter() - t0, 1e-4)
                size = int(min(MAX_ROWS, max(1.0, (stop - start) * CALL_S / seconds)))
                advance(stop - start)
                start = stop
        return np.concatenate(parts)

    def _invoke(self, feeds_file: str, start: int, stop: int, n: int) -> np.ndarray:
        handle = self.handle()
        out = self.host.path("out", ".npz")
        args = {"handle": handle, "inputs": feeds_file, "start": start, "stop": stop, "outputs": str(out)}
        reply = self._call("invoke", args, f"running {self.name} (queries {start + 1}-{stop} of {n})")
        self._details = {
            "inputs": [_host_details(d) for d in reply["inputs"]],
            "output": _host_details(reply["output"]),
        }
        with np.load(out) as data:
            raw = data["raw"]
        out.unlink(missing_ok=True)
        return raw

    def dequantize(self, raw: np.ndarray) -> np.ndarray:
        scale, zero = self.quantization
        return (raw.astype(np.float32) - zero) * scale if scale else raw.astype(np.float32)

    def scores(
        self, feeds: Mapping[str, np.ndarray], progress: Progress | None = None, description: str = ""
    ) -> np.ndarray:
        """First output dequantized to float, shape (rows, output size)."""
        return self.dequantize(self.run(feeds, progress, description))


def time_rounds(
    runners: Sequence[HostRunner], rounds: int, invokes: int, rotate: bool = False, vary_rows: bool = False
) -> np.ndarray:
    """Mean µs per invoke, rounds (rows) x runners (columns), timed INSIDE their shared runtime child, the
    loop next to the interpreters (no protocol round trip is timed): each round runs `invokes`
    back-to-back invokes of every runner in turn (the order rotated every round with `rotate`). Each
    runner must have run first: its inputs stay those of its last row (with `vary_rows`, row `round % n`
    of the feeds of its last run, set before the timed loop)."""
    host = runners[0].host
    assert all(r.host is host for r in runners), "time_rounds needs runners sharing one HostRuntime"
    handles = [r.handle() for r in runners]
    what = f"timing {', '.join(r.name for r in runners)}"
    args = {"handles": handles, "rounds": rounds, "invokes": invokes, "rotate": rotate}
    try:
        reply = host.call("time", {**args, "vary_rows": vary_rows}, what)
    except WorkerFailure as err:
        raise host.failure(err, runners[0].runtime, runners[0].name, what) from None
    return np.array(reply["us"], dtype=float).reshape(rounds, len(runners))


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
