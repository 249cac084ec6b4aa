"""The worker that runs INSIDE a device runtime: stdlib + numpy + the runtime only (no TF, no edgecomp).

Protocol (devices/runner.py is the other side): one JSON object per line on stdin, one JSON reply per
line on stdout; arrays travel as .npz files named in the messages. On start it prints
{"event": "ready", ...} once the runtime is imported (the slow part under QEMU), then serves:
  {"cmd": "probe", "models": [path, ...]}          -> {"ok": true, "errors": [null | "message", ...]}
  {"cmd": "run", "model": path, "inputs": npz, "outputs": npz, "threads": n, "xnnpack": bool,
   "latency_runs": n}                              -> {"ok": true, "error": null | "message", "stage": ...}
  (a run's inputs npz holds one array per model input, keyed by tensor name)
  {"cmd": "quit"}
Works with both `ai_edge_litert.interpreter` and `tflite_runtime.interpreter` (same Python API).
"""

import json
import os
import platform
import resource
import sys
import time

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


def _first_line(err):
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    return lines[0] if lines else err.__class__.__name__


def probe(msg):
    errors = []
    for path in msg["models"]:
        try:
            _interpreter(path, 1, False)
            errors.append(None)
        except Exception as err:
            errors.append(_first_line(err))
    return {"ok": True, "errors": errors}


def run(msg):
    reset = _reset_peak()
    rss_before = _status_kb("VmRSS")
    reply = {"ok": True, "error": None, "stage": "load", "rss_before_kb": rss_before, "peak_reset": reset}
    try:
        interp = _interpreter(msg["model"], msg.get("threads", 1), msg.get("xnnpack", True))
        reply["stage"] = "allocate"
        interp.allocate_tensors()
    except Exception as err:
        reply["error"] = _first_line(err)
        return reply
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    reply["input"], reply["output"] = _details(inp), _details(out)
    data = np.load(msg["inputs"])
    # every input by tensor name, cast once (the latency loop then times set_tensor + invoke + get_tensor)
    feeds = [(d, data[d["name"]].astype(d["dtype"])) for d in interp.get_input_details()]
    n = len(feeds[0][1])
    rows = np.zeros((n, int(np.prod(out["shape"]))), dtype=out["dtype"])
    reply["stage"] = "invoke"

    def set_row(i):
        for d, arr in feeds:
            interp.set_tensor(d["index"], arr[i].reshape(d["shape"]))

    try:
        for i in range(n):
            set_row(i)
            interp.invoke()
            rows[i] = interp.get_tensor(out["index"]).reshape(-1)
        times = []
        for i in range(int(msg.get("latency_runs", 0))):  # one query: set_tensor + invoke + get_tensor
            t0 = time.perf_counter()
            set_row(i % n)
            interp.invoke()
            interp.get_tensor(out["index"])
            times.append(time.perf_counter() - t0)
    except Exception as err:
        reply["error"] = _first_line(err)
        return reply
    reply["stage"] = "done"
    np.savez(msg["outputs"], raw=rows)
    hwm = _status_kb("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    reply["peak_rss_kb"] = hwm
    reply["latency_ms"] = float(np.median(times) * 1e3) if times else None
    return reply


def main():
    out = sys.stdout
    sys.stdout = sys.stderr  # anything the runtime prints goes to stderr, not into the protocol
    hello = {
        "event": "ready",
        "runtime": RUNTIME,
        "version": _version(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "import_s": round(IMPORT_S, 3),
        "rss_kb": _status_kb("VmRSS"),
        "pid": os.getpid(),
    }
    out.write(json.dumps(hello) + "\n")
    out.flush()
    handlers = {"probe": probe, "run": run}
    for line in sys.stdin:
        if not line.strip():
            continue
        msg = json.loads(line)
        if msg.get("cmd") == "quit":
            break
        handler = handlers.get(msg.get("cmd"))
        reply = handler(msg) if handler else {"ok": False, "error": f"unknown cmd {msg.get('cmd')!r}"}
        out.write(json.dumps(reply) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
