"""Per-op profile through LiteRT's C API (libLiteRt.so), run INSIDE the runtime environment.

stdlib + numpy + ai_edge_litert only (no edgecomp import); it speaks the one child protocol (edgecomp_wire,
put on PYTHONPATH by the host, devices/profiling/children.py) with one op, `profile` (the request below ->
the per-op samples). It self-tests the library first (symbols present, event layout sane, a one-op model
profiles), so an interface change becomes an `ok: false` reply of kind "interface" instead of garbage
numbers. A crash (SIGSEGV in the native library) kills only this process; the host reports it.
"""

from __future__ import annotations

import ctypes as C
import os
import time
from pathlib import Path

import edgecomp_wire as wire
import numpy as np

P = C.c_void_p
REQUIRED = [
    "LiteRtCreateEnvironment",
    "LiteRtCreateModelFromBuffer",
    "LiteRtCreateOptions",
    "LiteRtSetOptionsHardwareAccelerators",
    "LiteRtCreateOpaqueOptions",
    "LiteRtAddOpaqueOptions",
    "LiteRtCreateCompiledModel",
    "LiteRtGetModelSignature",
    "LiteRtGetNumSignatureInputs",
    "LiteRtGetNumSignatureOutputs",
    "LiteRtGetSignatureInputTensorByIndex",
    "LiteRtGetSignatureOutputTensorByIndex",
    "LiteRtGetTensorName",
    "LiteRtGetRankedTensorType",
    "LiteRtGetCompiledModelInputBufferRequirements",
    "LiteRtGetCompiledModelOutputBufferRequirements",
    "LiteRtGetCompiledModelInputTensorLayout",
    "LiteRtGetCompiledModelOutputTensorLayouts",
    "LiteRtCreateManagedTensorBufferFromRequirements",
    "LiteRtGetTensorBufferSize",
    "LiteRtLockTensorBuffer",
    "LiteRtUnlockTensorBuffer",
    "LiteRtRunCompiledModel",
    "LiteRtCompiledModelGetProfiler",
    "LiteRtStartProfiler",
    "LiteRtStopProfiler",
    "LiteRtResetProfiler",
    "LiteRtGetNumProfilerEvents",
    "LiteRtGetProfilerEvents",
    "LiteRtGetProfileSummary",
]
# ProfiledEventData as compiled into libLiteRt 2.3 (C++ layout: MemoryUsage is three 64-bit fields).
EVENT_TYPES = {
    1: "default",
    2: "operator",
    4: "delegate_operator",
    8: "delegate_profiled_operator",
    16: "runtime",
}
OP_EVENT_TYPES = (2, 4, 8)
LAYOUT_BYTES = 68  # LiteRtLayout: packed rank + 8 dims + 8 strides


class Event(C.Structure):
    _fields_ = [
        ("tag", P),
        ("event_type", C.c_int32),
        ("start_us", C.c_uint64),
        ("elapsed_us", C.c_uint64),
        ("begin_mem", C.c_int64 * 3),
        ("end_mem", C.c_int64 * 3),
        ("metadata1", C.c_uint64),
        ("metadata2", C.c_uint64),
        ("source", C.c_int32),
    ]


class ApiError(wire.Failure):
    """An `ok: false` reply: kind "interface" (the C API changed), "compile", "load", "input"."""


def load_library(path: str | None) -> C.CDLL:
    if not path:
        import ai_edge_litert

        path = os.path.join(os.path.dirname(ai_edge_litert.__file__), "libLiteRt.so")
    if not os.path.isfile(path):
        raise ApiError("interface", f"{path} not found: this ai-edge-litert has no C API library")
    lib = C.CDLL(path)
    missing = [s for s in REQUIRED if not hasattr(lib, s)]
    if missing:
        raise ApiError("interface", f"libLiteRt.so lacks {', '.join(missing[:4])}: the C API changed")
    lib.LiteRtCreateOpaqueOptions.argtypes = [C.c_char_p, P, P, C.POINTER(P)]
    lib.LiteRtGetProfileSummary.argtypes = [P, P, C.POINTER(P)]
    lib.LiteRtGetTensorName.argtypes = [P, C.POINTER(C.c_char_p)]
    return lib


class CompiledModel:
    """One model compiled on CPU with profiling on; its input/output buffers live as long as it does."""

    def __init__(self, lib: C.CDLL, env: P, data: bytes, mode: str, threads: int) -> None:
        self.lib, self.env = lib, env
        self._bytes = C.create_string_buffer(data, len(data))  # the model aliases this memory
        self.model, opts, self.cm = P(), P(), P()
        self._ok(
            lib.LiteRtCreateModelFromBuffer(env, self._bytes, C.c_size_t(len(data)), C.byref(self.model)),
            "load the model",
            "model",
        )
        self._ok(lib.LiteRtCreateOptions(C.byref(opts)), "create options")
        self._ok(lib.LiteRtSetOptionsHardwareAccelerators(opts, 1), "select the CPU")
        self._opaque(opts, "runtime_options_string", "enable_profiling = true\n")
        cpu = f"num_threads = {int(threads)}\n" + ('kernel_mode = "builtin"\n' if mode == "per-node" else "")
        self._opaque(opts, "xnnpack", cpu)
        self._ok(lib.LiteRtCreateCompiledModel(env, self.model, opts, C.byref(self.cm)), "compile", "compile")
        self.sig = P()
        self._ok(
            lib.LiteRtGetModelSignature(self.model, C.c_size_t(0), C.byref(self.sig)), "read the signature"
        )
        self._make_buffers(resized=False)
        self.profiler = P()
        self._ok(lib.LiteRtCompiledModelGetProfiler(self.cm, C.byref(self.profiler)), "get the profiler")
        if not self.profiler:
            raise ApiError("interface", "LiteRtCompiledModelGetProfiler returned no profiler")

    def _make_buffers(self, resized: bool) -> None:
        self.inputs, self.input_names = self._buffers(True)
        self.outputs, _ = self._buffers(False, resized)
        self._in = (P * len(self.inputs))(*self.inputs)
        self._out = (P * len(self.outputs))(*self.outputs)
        self.input_bytes = [self.buffer_bytes(b) for b in self.inputs]  # read once, not on every write

    def buffer_bytes(self, buf: P) -> int:
        size = C.c_size_t()
        self._ok(self.lib.LiteRtGetTensorBufferSize(buf, C.byref(size)), "read a buffer size")
        return size.value

    def fit_inputs(self, rows: list[np.ndarray]) -> None:
        """Resize inputs whose buffer does not hold one query row (a dynamic-length model compiles at its
        placeholder shape, e.g. [1, 1]): writing the row anyway overran the heap and crashed the process
        now and then. Refused as an "input" failure when LiteRT cannot resize."""
        resize = getattr(self.lib, "LiteRtCompiledModelResizeInputTensor", None)
        resized = False
        for i, row in enumerate(rows):
            have = self.input_bytes[i]
            if have == row.nbytes:
                continue
            dims = (C.c_int * row.ndim)(*row.shape)
            st = (
                -1
                if resize is None
                else resize(self.cm, C.c_size_t(0), C.c_size_t(i), dims, C.c_size_t(row.ndim))
            )
            if st == 0:
                resized = True
            # otherwise a static input whose buffer is padded past the row: the row fits as it is
            elif have < row.nbytes:
                raise ApiError(
                    "input",
                    f"model input {self.input_names[i]!r} holds {have} bytes and LiteRT could not resize it "
                    f"to the queries' shape {list(row.shape)} (status {st})",
                )
        if resized:
            self._make_buffers(resized=True)
            for i, row in enumerate(rows):
                if self.input_bytes[i] < row.nbytes:
                    raise ApiError("input", f"model input {self.input_names[i]!r} is smaller than one query")

    def _ok(self, status: int, what: str, kind: str = "interface") -> None:
        if status != 0:
            raise ApiError(kind, f"LiteRT could not {what} (status {status})")

    def _opaque(self, opts: P, identifier: str, text: str) -> None:
        libc = C.CDLL(None)
        libc.strdup.restype, libc.strdup.argtypes = P, [C.c_char_p]
        payload, handle = libc.strdup(text.encode()), P()
        free = C.cast(libc.free, P)
        self._ok(
            self.lib.LiteRtCreateOpaqueOptions(identifier.encode(), P(payload), free, C.byref(handle)),
            f"create {identifier} options",
        )
        self._ok(self.lib.LiteRtAddOpaqueOptions(opts, handle), f"add {identifier} options")

    def _buffers(self, is_input: bool, resized: bool = False) -> tuple[list[P], list[str]]:
        lib, side = self.lib, "Input" if is_input else "Output"
        n = C.c_size_t()
        getattr(lib, f"LiteRtGetNumSignature{side}s")(self.sig, C.byref(n))
        layouts = C.create_string_buffer(LAYOUT_BYTES * max(n.value, 1) + 64)
        if not is_input:
            self._ok(
                lib.LiteRtGetCompiledModelOutputTensorLayouts(
                    self.cm, C.c_size_t(0), C.c_size_t(n.value), layouts, C.c_bool(resized)
                ),
                "read output layouts",
            )
        bufs, names = [], []
        for i in range(n.value):
            req, tensor, name = P(), P(), C.c_char_p()
            getattr(lib, f"LiteRtGetCompiledModel{side}BufferRequirements")(
                self.cm, C.c_size_t(0), C.c_size_t(i), C.byref(req)
            )
            getattr(lib, f"LiteRtGetSignature{side}TensorByIndex")(self.sig, C.c_size_t(i), C.byref(tensor))
            lib.LiteRtGetTensorName(tensor, C.byref(name))
            ttype = C.create_string_buffer(256)
            self._ok(lib.LiteRtGetRankedTensorType(tensor, ttype), "read a tensor type")
            if is_input:
                layout = C.create_string_buffer(256)
                self._ok(
                    lib.LiteRtGetCompiledModelInputTensorLayout(
                        self.cm, C.c_size_t(0), C.c_size_t(i), layout
                    ),
                    "read an input layout",
                )
                C.memmove(C.addressof(ttype) + 4, layout, LAYOUT_BYTES)
            else:
                C.memmove(C.addressof(ttype) + 4, C.addressof(layouts) + LAYOUT_BYTES * i, LAYOUT_BYTES)
            buf = P()
            self._ok(
                lib.LiteRtCreateManagedTensorBufferFromRequirements(self.env, ttype, req, C.byref(buf)),
                "create a tensor buffer",
            )
            bufs.append(buf)
            names.append((name.value or b"").decode())
        return bufs, names

    def write_input(self, i: int, arr: np.ndarray) -> None:
        addr = P()
        self._ok(self.lib.LiteRtLockTensorBuffer(self.inputs[i], C.byref(addr), 1), "lock an input")
        raw = np.ascontiguousarray(arr).tobytes()
        size = self.input_bytes[i]
        if len(raw) > size:  # never write past the buffer (fit_inputs sizes it first)
            self.lib.LiteRtUnlockTensorBuffer(self.inputs[i])
            raise ApiError("input", f"an input row of {len(raw)} bytes does not fit its {size}-byte buffer")
        C.memmove(addr, raw, len(raw))
        self.lib.LiteRtUnlockTensorBuffer(self.inputs[i])

    def run(self) -> None:
        st = self.lib.LiteRtRunCompiledModel(
            self.cm,
            C.c_size_t(0),
            C.c_size_t(len(self.inputs)),
            self._in,
            C.c_size_t(len(self.outputs)),
            self._out,
        )
        if st != 0:
            raise ApiError("invoke", f"LiteRtRunCompiledModel failed (status {st})")

    def events(self) -> list[Event]:
        n = C.c_int()
        self._ok(self.lib.LiteRtGetNumProfilerEvents(self.profiler, C.byref(n)), "count profiler events")
        arr = (Event * max(n.value, 1))()
        self._ok(self.lib.LiteRtGetProfilerEvents(self.profiler, n, arr), "read profiler events")
        events = list(arr[: n.value])
        for e in events:  # check the layout before dereferencing any tag pointer
            if e.event_type not in (1, 2, 4, 8, 16, 32, 64, 128, 256) or e.source not in (0, 1, 2):
                raise ApiError(
                    "interface", "profiler events do not match the expected ProfiledEventData layout"
                )
        return events

    def summary(self) -> str:
        out = P()
        if self.lib.LiteRtGetProfileSummary(self.profiler, self.cm, C.byref(out)) != 0 or not out:
            return ""
        text = C.string_at(out).decode("utf-8", "replace")
        C.CDLL(None).free(out)
        return text


def tag(e: Event) -> str:
    return C.string_at(e.tag).decode("utf-8", "replace") if e.tag else ""


def split_runs(events: list[Event]) -> list[dict]:
    """Group events per run: the 'Invoke' default event opens a run, op events belong to it."""
    runs: list[dict] = []
    for e in events:
        if e.event_type == 1 and tag(e) == "Invoke":
            runs.append({"invoke_us": int(e.elapsed_us), "ops": []})
        elif e.event_type in OP_EVENT_TYPES and runs:
            runs[-1]["ops"].append((int(e.event_type), int(e.metadata1), tag(e), int(e.elapsed_us)))
    return runs


def wall_us(model: CompiledModel, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        model.run()
        out.append((time.perf_counter_ns() - t0) / 1e3)
    return out


def self_test(lib: C.CDLL, env: P, path: str, mode: str) -> dict:
    m = CompiledModel(lib, env, Path(path).read_bytes(), mode, 1)
    m.write_input(0, np.ones((1, 8), np.float32))
    m.run()
    C.CDLL(None)  # keep libc loaded
    lib.LiteRtStartProfiler(m.profiler)
    m.run()
    lib.LiteRtStopProfiler(m.profiler)
    runs = split_runs(m.events())
    if not runs or not runs[-1]["ops"]:
        raise ApiError("interface", "the profiler recorded no op event for a one-op model")
    return {"ok": True, "events_per_run": len(runs[-1]["ops"]), "op_tags": [o[2] for o in runs[-1]["ops"]]}


def profile(req: dict) -> dict:
    lib = load_library(req.get("lib"))
    env = P()
    if lib.LiteRtCreateEnvironment(0, None, C.byref(env)) != 0:
        raise ApiError("interface", "LiteRtCreateEnvironment failed")
    result: dict = {"selftest": self_test(lib, env, req["selftest_model"], req["mode"])}
    if os.environ.get("EDGECOMP_PROFILER_CRASH_AFTER_SELFTEST") == "1":  # test hook: a real native crash
        C.string_at(1)
    once = os.environ.get("EDGECOMP_PROFILER_CRASH_ONCE")  # test hook: crash in the first child only
    if once and not os.path.exists(once):
        open(once, "w").close()
        C.string_at(1)
    m = CompiledModel(lib, env, Path(req["model"]).read_bytes(), req["mode"], req["threads"])
    # The zero-op model: what one LiteRtRunCompiledModel call costs by itself, timed beside every run.
    null = CompiledModel(lib, env, Path(req["null_model"]).read_bytes(), req["mode"], req["threads"])
    null.write_input(0, np.zeros((1, 4), np.float32))
    data = np.load(req["inputs"])
    feeds = []
    for name in m.input_names:
        if name not in data.files:
            raise ApiError("input", f"no data for model input {name!r} (have {', '.join(data.files)})")
        feeds.append(data[name])
    n_rows = len(feeds[0]) if feeds else 1
    m.fit_inputs([arr[0][None] for arr in feeds])

    def feed(r: int) -> None:
        for i, arr in enumerate(feeds):
            m.write_input(i, arr[r % n_rows][None])

    for r in range(req["warmup"]):
        feed(r)
        m.run()
    # Profiled batches alternate with unprofiled timed batches of the same size, so the whole-invoke wall
    # time and the op events sample the same stretch of the process (a process's speed drifts as it settles).
    # Each unprofiled run is paired with a zero-op run right beside it (order alternating), so the call's
    # fixed cost is subtracted pair by pair, never from a number taken at another time (which went negative
    # for one- and ten-op models on a loaded machine).
    walls: list[float] = []
    null_walls: list[float] = []
    runs: list[dict] = []
    done, batch = 0, max(1, int(req.get("batch", 100)))
    while done < req["runs"]:
        k = min(batch, req["runs"] - done)
        for r in range(k):  # unprofiled (profiler stopped), each run paired with a zero-op run
            feed(done + r)
            if (done + r) % 2:
                null_walls += wall_us(null, 1)
                walls += wall_us(m, 1)
            else:
                walls += wall_us(m, 1)
                null_walls += wall_us(null, 1)
        lib.LiteRtResetProfiler(m.profiler)
        lib.LiteRtStartProfiler(m.profiler)
        for r in range(k):
            feed(done + r)
            m.run()
        lib.LiteRtStopProfiler(m.profiler)
        runs += split_runs(m.events())
        done += k
    if len(runs) != req["runs"]:
        raise ApiError(
            "interface", f"expected {req['runs']} profiled runs, the profiler recorded {len(runs)}"
        )
    first = runs[0]["ops"]
    ops = [
        {
            "event_type": EVENT_TYPES.get(t, str(t)),
            "index": idx,
            "tag": name,
            "samples_us": [r["ops"][j][3] for r in runs if len(r["ops"]) == len(first)],
        }
        for j, (t, idx, name, _) in enumerate(first)
    ]
    result.update(
        ops=ops,
        invoke_profiled_us=[r["invoke_us"] for r in runs],
        wall_unprofiled_us=walls,
        null_wall_us=null_walls,
        summary=m.summary(),
        input_names=m.input_names,
    )
    return result


if __name__ == "__main__":
    wire.open_channel()  # before the runtime loads: its native chatter on fd 1 goes to stderr
    wire.serve({"profile": profile}, {"runtime": "litert", "module": "ai_edge_litert"})
