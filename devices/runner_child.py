"""The worker that runs INSIDE a runtime: stdlib + numpy + the runtime only (no TF, no edgecomp). The
runtime is a device's (a venv, an ARM sysroot under QEMU) or the toolchain's own ai_edge_litert
(devices/runtimes.toolchain_env: sys.executable, for devices/host_runtime.py).

It speaks the one child protocol (edgecomp_wire, put on PYTHONPATH by the host; devices/runner.py is the
other side). The hello, sent once the runtime is imported (the slow part under QEMU), carries the runtime,
its version, the machine and the RSS after import. Ops (arrays travel as .npz files named in the args):
  probe {"models": [path, ...]}                    -> {"errors": [null | "message", ...]}
  run   {"model", "inputs": npz (one array per model input, keyed by tensor name), "outputs": npz,
         "threads", "xnnpack", "latency_runs", "reuse"}
        -> {"input", "output", "rss_before_kb", "peak_rss_kb", "peak_reset", "latency_ms"}
        a model the runtime refuses is `ok: false` with kind "load" | "allocate" | "invoke".
        The interpreter is kept after the call: a call with "reuse" true and the same model, threads and
        xnnpack (the next chunk of the same run) invokes it again instead of loading the model anew, so
        the rows of one run see one interpreter, as on the phone. Any other call drops it first, before
        the RSS baseline is taken, so a run's peak memory includes its own load alone.
The toolchain's own runs (devices/hostrun.py: evaluation, parity, the mixed search, its speed table) keep
interpreters by handle instead, several at once, and read their rows from a feeds file written once:
  load   {"model", "threads", "xnnpack", "free"}  -> {"handle", "inputs": [details], "output": details}
  invoke {"handle", "inputs": npz, "start", "stop", "outputs": npz} -> {"inputs", "output"} (details)
        rows start..stop of the feeds file (one array per model input, keyed by tensor name), one invoke
        per row; the child keeps the last few feeds files it read (the host never rewrites one).
  time   {"handles", "rounds", "invokes", "rotate", "vary_rows"} -> {"us": [[per handle] per round]}
        mean µs per invoke of each handle per round, rounds alternating between the handles (rotated
        each round with "rotate"; with "vary_rows" each round first sets row `round % n` of the feeds file
        the handle last ran, outside the timed loop); else the inputs stay those of its last invoke.
  free   {"free": [handle, ...]}                  -> {} (a load frees its "free" handles first, too)
Works with both `ai_edge_litert.interpreter` and `tflite_runtime.interpreter` (same Python API).
"""

import os
import resource
import sys
import time

import edgecomp_wire as wire

if __name__ == "__main__":
    wire.open_channel()  # before the runtime import: whatever it prints goes to stderr, not the protocol
T0 = time.perf_counter()
import numpy as np  # noqa: E402

try:
    from ai_edge_litert import interpreter as tfl

    RUNTIME = "litert"
except ImportError:
    from tflite_runtime import interpreter as tfl

    RUNTIME = "tflite-runtime"
IMPORT_S = time.perf_counter() - T0


def _status_kb(field):
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak():
    """Reset VmHWM so the next peak is this model's alone (Linux >= 4.0); False if not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _version():
    try:
        from importlib.metadata import version

        return version("ai-edge-litert" if RUNTIME == "litert" else "tflite-runtime")
    except Exception:
        return str(getattr(sys.modules.get(tfl.__name__.split(".")[0]), "__version__", "unknown"))


def _details(d):
    scale, zero = d.get("quantization", (0.0, 0))
    return {
        "dtype": np.dtype(d["dtype"]).name,
        "shape": [int(x) for x in d["shape"]],
        "scale": float(scale),
        "zero_point": int(zero),
    }


def _interpreter(path, threads, xnnpack):
    kwargs = {"model_path": path, "num_threads": int(threads)}
    if not xnnpack:
        kwargs["experimental_op_resolver_type"] = tfl.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    return tfl.Interpreter(**kwargs)


def _resize_dynamic(interp, feeds):
    """Resize inputs whose signature has -1 dims to (1, *row shape); True if any was resized."""
    resized = False
    for d, arr in feeds:
        sig = [int(x) for x in d.get("shape_signature", d["shape"])]
        row = (1, *arr.shape[1:])
        if -1 in sig and len(row) == len(sig) and tuple(int(x) for x in d["shape"]) != row:
            interp.resize_tensor_input(d["index"], list(row))
            resized = True
    if resized:
        interp.allocate_tensors()
    return resized


def _first_line(err):
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    return lines[0] if lines else err.__class__.__name__


_KEPT = {}  # the last run call's interpreter: {"key": _key(its args), "interp": interpreter}


def _key(args):
    return (args["model"], int(args.get("threads", 1)), bool(args.get("xnnpack", True)))


def _load(args):
    """A new interpreter, allocated and kept for the run's next chunk (a refusal: kind load | allocate)."""
    stage = "load"
    try:
        interp = _interpreter(args["model"], args.get("threads", 1), args.get("xnnpack", True))
        stage = "allocate"
        interp.allocate_tensors()
    except Exception as err:
        raise wire.Failure(stage, _first_line(err)) from None
    _KEPT.update(key=_key(args), interp=interp)
    return interp


def probe(args):
    errors = []
    for path in args["models"]:
        try:
            _interpreter(path, 1, False)
            errors.append(None)
        except Exception as err:
            errors.append(_first_line(err))
    return {"errors": errors}


def run(args):
    if not (args.get("reuse") and _KEPT.get("key") == _key(args)):
        _KEPT.clear()  # frees the previous run's interpreter before the RSS baseline below
    reset = _reset_peak()
    reply = {"rss_before_kb": _status_kb("VmRSS"), "peak_reset": reset}
    interp = _KEPT["interp"] if _KEPT else _load(args)
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    reply["input"], reply["output"] = _details(inp), _details(out)
    data = np.load(args["inputs"])
    # every input by tensor name, cast once (the latency loop then times set_tensor + invoke + get_tensor)
    details = interp.get_input_details()
    missing = [d["name"] for d in details if d["name"] not in data.files]
    if missing:
        raise wire.Failure("input", f"no data for model input(s) {', '.join(missing)} (have {data.files})")
    feeds = [(d, data[d["name"]].astype(d["dtype"])) for d in details]
    n = len(feeds[0][1])
    if _resize_dynamic(interp, feeds):  # a dynamic-length model (signature -1) takes the fed length
        details = interp.get_input_details()
        feeds = [(details[i], feeds[i][1]) for i in range(len(feeds))]
        out = interp.get_output_details()[0]
        reply["input"], reply["output"] = _details(details[0]), _details(out)
    rows = np.zeros((n, int(np.prod(out["shape"]))), dtype=out["dtype"])

    def set_row(i):
        for d, arr in feeds:
            interp.set_tensor(d["index"], arr[i].reshape(d["shape"]))

    try:
        for i in range(n):
            set_row(i)
            interp.invoke()
            rows[i] = interp.get_tensor(out["index"]).reshape(-1)
        times = []
        for i in range(int(args.get("latency_runs", 0))):  # one query: set_tensor + invoke + get_tensor
            t0 = time.perf_counter()
            set_row(i % n)
            interp.invoke()
            interp.get_tensor(out["index"])
            times.append(time.perf_counter() - t0)
    except Exception as err:
        raise wire.Failure("invoke", _first_line(err)) from None
    np.savez(args["outputs"], raw=rows)
    hwm = _status_kb("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    reply["peak_rss_kb"] = hwm
    reply["latency_ms"] = float(np.median(times) * 1e3) if times else None
    return reply


_HANDLES = {}  # handle -> {"interp", "inputs": the feeds file of its last invoke}
_LOADS = [0]  # handles ever given out: a freed handle is never reused
_FEEDS = {}  # feeds file -> {tensor name: array}: the last few files read (the host never rewrites one)
_FEEDS_KEPT = 4


def _full(d):
    return {
        **_details(d),
        "name": d["name"],
        "index": int(d["index"]),
        "shape_signature": [int(x) for x in d.get("shape_signature", d["shape"])],
    }


def load(args):
    """A new interpreter kept under a handle until `free` (a refusal: kind load | allocate); the handles
    in "free" go first."""
    free(args)
    stage = "load"
    try:
        interp = _interpreter(args["model"], args.get("threads", 1), args.get("xnnpack", True))
        stage = "allocate"
        interp.allocate_tensors()
    except Exception as err:
        raise wire.Failure(stage, _first_line(err)) from None
    _LOADS[0] += 1
    handle = _LOADS[0]
    _HANDLES[handle] = {"interp": interp, "inputs": None}
    return {
        "handle": handle,
        "inputs": [_full(d) for d in interp.get_input_details()],
        "output": _full(interp.get_output_details()[0]),
    }


def _feeds(path):
    if path not in _FEEDS:
        while len(_FEEDS) >= _FEEDS_KEPT:
            _FEEDS.pop(next(iter(_FEEDS)))
        with np.load(path) as data:
            _FEEDS[path] = {k: data[k] for k in data.files}
    return _FEEDS[path]


def _set_row(interp, feeds, i):
    for d, arr in feeds:
        interp.set_tensor(d["index"], arr[i].reshape(d["shape"]))


def invoke(args):
    entry = _HANDLES[int(args["handle"])]
    interp, data = entry["interp"], _feeds(args["inputs"])
    start, stop = int(args["start"]), int(args["stop"])
    details = interp.get_input_details()
    missing = [d["name"] for d in details if d["name"] not in data]
    if missing:
        raise wire.Failure("input", f"no data for model input(s) {', '.join(missing)} (have {list(data)})")
    feeds = [(d, data[d["name"]][start:stop].astype(d["dtype"])) for d in details]
    try:
        if _resize_dynamic(interp, feeds):  # a dynamic-length model (signature -1) takes the fed length
            details = interp.get_input_details()
            feeds = [(details[i], feeds[i][1]) for i in range(len(feeds))]
    except Exception as err:
        raise wire.Failure("allocate", _first_line(err)) from None
    out = interp.get_output_details()[0]
    rows = np.zeros((stop - start, int(np.prod(out["shape"]))), dtype=out["dtype"])
    try:
        for i in range(stop - start):
            _set_row(interp, feeds, i)
            interp.invoke()
            rows[i] = interp.get_tensor(out["index"]).reshape(-1)
    except Exception as err:
        raise wire.Failure("invoke", _first_line(err)) from None
    entry["inputs"] = args["inputs"]
    np.savez(args["outputs"], raw=rows)
    return {"inputs": [_full(d) for d in details], "output": _full(out)}


def _set_feeds_row(interp, path, r):
    """Row `r % n` of a feeds file as every input (set outside the timed loop)."""
    data = _feeds(path)
    for d in interp.get_input_details():
        arr = data[d["name"]]
        interp.set_tensor(d["index"], arr[r % len(arr)].astype(d["dtype"]).reshape(d["shape"]))


def time_invokes(args):
    entries = [_HANDLES[int(h)] for h in args["handles"]]
    rounds, invokes = int(args["rounds"]), int(args["invokes"])
    rotate, vary = bool(args.get("rotate")), bool(args.get("vary_rows"))
    samples = []
    try:
        for r in range(rounds):
            order = list(range(len(entries)))
            if rotate:
                order = order[r % len(order) :] + order[: r % len(order)]
            row = [0.0] * len(entries)
            for i in order:
                interp = entries[i]["interp"]
                if vary and entries[i]["inputs"]:
                    _set_feeds_row(interp, entries[i]["inputs"], r)
                t0 = time.perf_counter()
                for _ in range(invokes):
                    interp.invoke()
                row[i] = (time.perf_counter() - t0) / invokes * 1e6
            samples.append(row)
    except Exception as err:
        raise wire.Failure("invoke", _first_line(err)) from None
    return {"us": samples}


def free(args):
    for h in args.get("free", []):
        _HANDLES.pop(int(h), None)
    return {}


if __name__ == "__main__":
    info = {
        "runtime": RUNTIME,
        "module": tfl.__name__.split(".")[0],
        "version": _version(),
        "numpy": np.__version__,
        "import_s": round(IMPORT_S, 3),
        "rss_kb": _status_kb("VmRSS"),
    }
    ops = {"probe": probe, "run": run, "load": load, "invoke": invoke, "time": time_invokes, "free": free}
    wire.serve(ops, info)
    sys.stderr.flush()
    os._exit(0)  # no interpreter teardown: it took 40-170 ms of a 10 ms shutdown (measured), saves nothing
