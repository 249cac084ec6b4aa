"""Per-op timing by slicing, run INSIDE a runtime environment (ai_edge_litert or tflite_runtime).

stdlib + numpy + the runtime only (no edgecomp import); it speaks the one child protocol (edgecomp_wire, put
on PYTHONPATH by the host, devices/profiling/children.py) with one op, `run`, doing the request's tasks in
order and answering one dict (a model the runtime refuses is `ok: false` of kind "load"):
  capture  run the whole model with builtin kernels and experimental_preserve_all_tensors, save every
           tensor for the given queries (the intermediates that feed the slices; quantization-error data)
  time     blocks of whole-model invokes alternating with rounds of the single-op slices run as a pipeline
           (each round invokes every slice in model order, fed its captured inputs, so each sees the caches
           as inside the model); a zero-op model's invoke (the call's fixed cost) is timed in the same
           rounds and subtracted by the host
  sweep    whole-model invoke time with the sequence dimension resized to each length
"""

from __future__ import annotations

import time

import edgecomp_wire as wire
import numpy as np


def runtime():
    try:
        from ai_edge_litert import interpreter as mod

        return mod, "ai_edge_litert"
    except ImportError:
        from tflite_runtime import interpreter as mod

        return mod, "tflite_runtime"


class ChildError(wire.Failure):
    """An `ok: false` reply with its kind ("load": the runtime refuses a model)."""


def make(path: str, kernels: str, threads: int, preserve: bool = False):
    mod, _ = runtime()
    resolver = (
        mod.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        if kernels == "builtin"
        else (mod.OpResolverType.AUTO)
    )
    try:
        it = mod.Interpreter(
            model_path=path,
            num_threads=threads,
            experimental_op_resolver_type=resolver,
            experimental_preserve_all_tensors=preserve,
        )
        it.allocate_tensors()
    except (RuntimeError, ValueError) as err:
        text = str(err).strip().splitlines()
        raise ChildError("load", text[0] if text else err.__class__.__name__) from None
    return it


def feed(it, arrays: dict[str, np.ndarray], row: int) -> None:
    resized = False
    for d in it.get_input_details():  # a dynamic-length input (signature -1) takes the fed length
        want = (1, *arrays[d["name"]].shape[1:])
        sig = [int(x) for x in d.get("shape_signature", d["shape"])]
        if -1 in sig and len(sig) == len(want) and tuple(int(x) for x in d["shape"]) != want:
            it.resize_tensor_input(d["index"], list(want))
            resized = True
    if resized:
        it.allocate_tensors()
    for d in it.get_input_details():
        arr = arrays[d["name"]]
        it.set_tensor(d["index"], arr[row % len(arr)].reshape(d["shape"]).astype(d["dtype"]))


def capture(req: dict) -> dict:
    data = np.load(req["inputs"])
    arrays = {k: data[k] for k in data.files}
    it = make(req["model"], "builtin", 1, preserve=True)
    n = min(int(req.get("capture_queries", 4)), len(next(iter(arrays.values()))))
    saved: dict[str, np.ndarray] = {}
    details = it.get_tensor_details()
    for q in range(n):
        feed(it, arrays, q)
        it.invoke()
        for d in details:
            try:
                value = it.get_tensor(d["index"])
            except ValueError:  # tensors without data (optional, unallocated)
                continue
            saved.setdefault(str(d["index"]), []).append(np.array(value))  # type: ignore[arg-type]
    np.savez(req["capture_out"], **{k: np.stack(v) for k, v in saved.items()})
    return {"queries": n, "tensors": len(saved)}


def timed(it, runs: int, rows: int = 1, arrays=None) -> list[float]:
    out = []
    for r in range(runs):
        if arrays is not None:
            feed(it, arrays, r % rows)
        t0 = time.perf_counter_ns()
        it.invoke()
        out.append((time.perf_counter_ns() - t0) / 1e3)
    return out


def once(it) -> float:
    t0 = time.perf_counter_ns()
    it.invoke()
    return (time.perf_counter_ns() - t0) / 1e3


def time_slices(req: dict) -> dict:
    """Time the whole model and each slice; the slices run as a pipeline: a round invokes each in model order.

    So when a slice is timed, the ops before it (this round) and after it (last round) have just run, as
    inside the whole model: same weights and activations touched in the same order, so the caches hold what
    they would hold. (Timing each slice after an untimed whole-model invoke instead evicts more, since the
    model's own copy of the op's weights sits at other addresses: that inflated small int8 ops by up to 60%.)
    The zero-op model is timed in the same round, and its median is the call overhead the host subtracts
    from each slice; it is also timed pair by pair beside each whole-model invoke, for the whole invoke's
    own subtraction. The two zero-op medians differ by context (after a slice vs after the whole model):
    that spread is the smallest per-op time this method can tell from zero, which the host reports.
    """
    kernels, threads, warmup, runs = req["kernels"], req["threads"], req["warmup"], req["runs"]
    data = np.load(req["inputs"])
    arrays = {k: data[k] for k in data.files}
    captured = np.load(req["capture_out"])
    whole = make(req["model"], kernels, threads)
    rows = len(next(iter(arrays.values())))
    null = make(req["null_model"], kernels, threads)
    null.set_tensor(null.get_input_details()[0]["index"], np.zeros((1, 4), np.float32))
    stages, ops = [], []
    for s in req["slices"]:
        try:
            it = make(s["path"], kernels, threads)
        except ChildError as err:
            ops.append({"index": s["index"], "error": str(err)})
            continue
        # the captured tensors feeding this slice, one row per query, keyed by the slice's input names
        details = it.get_input_details()
        merged = {d["name"]: captured[str(t)] for d, t in zip(details, s["inputs"], strict=False)}
        q = len(next(iter(merged.values()))) if merged else 1
        stages.append((s["index"], it, merged, q, []))
    whole_samples: list[float] = []
    null_alone: list[float] = []
    null_samples: list[float] = []

    def pipeline_round(r: int, keep: bool) -> None:
        for _, it, merged, q, samples in stages:
            feed(it, merged, r % q)  # written last, as the op before it would have just written it
            t0 = time.perf_counter_ns()
            it.invoke()
            if keep:
                samples.append((time.perf_counter_ns() - t0) / 1e3)
        t0 = time.perf_counter_ns()
        null.invoke()
        if keep:
            null_samples.append((time.perf_counter_ns() - t0) / 1e3)

    # Blocks of whole-model invokes alternate with blocks of pipeline rounds (each block after one untimed
    # run to set its cache state), so both sample the same stretch of the process: its speed drifts as it
    # settles, by more than the 10% the per-op sum is checked against.
    timed(whole, warmup, rows=rows, arrays=arrays)
    for r in range(warmup):
        pipeline_round(r, keep=False)
    done, block = 0, max(1, int(req.get("block", 50)))
    while done < runs:
        k = min(block, runs - done)
        timed(whole, 1, rows=rows, arrays=arrays)
        for r in range(done, done + k):  # whole and zero-op invokes in pairs, order alternating
            feed(whole, arrays, r % rows)
            if r % 2:
                null_alone.append(once(null))
                whole_samples.append(once(whole))
            else:
                whole_samples.append(once(whole))
                null_alone.append(once(null))
        pipeline_round(done, keep=False)
        for r in range(done, done + k):
            pipeline_round(r, keep=True)
        done += k
    result = {"whole_us": whole_samples, "null_us": null_alone, "null_interleaved_us": null_samples}
    ops += [{"index": index, "samples_us": samples} for index, _, _, _, samples in stages]
    result["ops"] = sorted(ops, key=lambda o: o["index"])
    return result


def sweep(req: dict) -> dict:
    mod, _ = runtime()
    data = np.load(req["inputs"])
    ids = data[data.files[0]]
    out = []
    for length in req["lengths"]:
        try:
            resolver = (
                mod.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
                if req["kernels"] == "builtin"
                else (mod.OpResolverType.AUTO)
            )
            it = mod.Interpreter(
                model_path=req["model"], num_threads=req["threads"], experimental_op_resolver_type=resolver
            )
            d = it.get_input_details()[0]
            it.resize_tensor_input(d["index"], [1, int(length)], strict=False)
            it.allocate_tensors()
            row = np.zeros((1, int(length)), d["dtype"])
            n = min(int(length), ids.shape[1])
            row[0, :n] = ids[0, :n]
            it.set_tensor(d["index"], row)
            timed(it, req["warmup"])
            out.append({"length": int(length), "samples_us": timed(it, req["runs"])})
        except (RuntimeError, ValueError) as err:
            out.append({"length": int(length), "error": str(err).strip().splitlines()[0][:200]})
    return {"sweep": out}


def run(req: dict) -> dict:
    out: dict = {"runtime_module": runtime()[1]}
    for task in req["tasks"]:
        if task == "capture":
            out["capture"] = capture(req)
        elif task == "time":
            out.update(time_slices(req))
        elif task == "sweep":
            out.update(sweep(req))
    return out


if __name__ == "__main__":
    wire.open_channel()  # before the runtime loads: its native chatter on fd 1 goes to stderr
    wire.serve({"run": run}, {"runtime_module": runtime()[1]})
