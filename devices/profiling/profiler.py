"""`edgecomp profile`: where an on-device query spends its time, op by op, and which op loses accuracy.

Two methods, each run in the runtime's own environment in child processes (a native crash never reaches
edgecomp): `litert` reads LiteRT's per-op profiler through the C API of ai-edge-litert 2.3 (devices/
profiler_child.py); `slice` times single-op slices fed the real intermediate tensors, on any runtime
(devices/profiling/slicer.py + slice_child.py). Both repeat in separate processes and are compared with an
unprofiled whole invoke of the same runtime and kernels.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from converters.keras_tflite import keras_to_tflite, load_keras_model
from converters.tflite_model import TFLiteModel, read_tflite
from devices import opcost
from devices.cpuinfo import host_cpu
from devices.hostrun import match_feeds, synthetic_feeds
from devices.profiles.schema import DeviceProfile, get_profile
from devices.profiling import quant_error, slicer
from devices.profiling.children import ProfilerError, run_child
from devices.profiling.quant_error import OpQuantError
from devices.profiling.stats import MethodResult, merge_litert, merge_slicing
from toolchain.base.errors import EdgecompError, InputFileError
from toolchain.base.progress import Progress, SilentProgress
from toolchain.base.venvs import ensure_venv, runtime_venv_spec

HOST_RUNTIME = ("litert", "2.3.0")
LIB_ENV = "EDGECOMP_LITERT_LIB"  # test hook: profile with another libLiteRt.so


@dataclass(frozen=True)
class Target:
    """Where the numbers come from: always this host's CPU, with a device's runtime and threads."""

    runtime: str
    version: str
    threads: int
    xnnpack: bool = True
    device: str = "host"
    arch: str = "x86_64"

    @property
    def emulated(self) -> bool:
        return self.arch != "x86_64"

    @property
    def note(self) -> str:
        base = f"timed on this host's CPU with {self.runtime} {self.version}, {self.threads} thread(s)"
        if self.emulated:
            return (
                f"device {self.device} is {self.arch} (emulated here): {base} as its profile says; "
                "emulated time is 10-400x off and not proportional, so it is never shown as latency"
            )
        return base


def resolve_target(device: str | DeviceProfile | None, threads: int | None = None) -> Target:
    """The runtime/version/threads to profile with: a device profile's (by name, or the profile itself when
    it came from another folder: --profiles-dir), or the host default."""
    if device is None:
        return Target(*HOST_RUNTIME, threads or 1)

    p = device if isinstance(device, DeviceProfile) else get_profile(device)
    return Target(p.runtime, p.runtime_version, threads or p.threads, p.xnnpack, p.name, p.arch)


@dataclass
class ProfileOptions:
    method: str = "auto"  # auto | litert | slice | both
    mode: str = "deployed"  # deployed (XNNPACK, as shipped) | per-node (builtin kernels, 1:1 TFLite nodes)
    runs: int = 300
    warmup: int = 30
    processes: int = 3
    queries: int = 16
    seq_lens: tuple[int, ...] = ()
    float_reference: Path | None = None
    quant_error: bool = True
    trust_model_code: bool = False  # a Keras .h5/SavedModel float reference may run its code when loaded


@dataclass
class ProfileResult:
    model: str
    target: dict
    methods: list[MethodResult]
    costs: list[opcost.OpCost]
    quant_error: list[OpQuantError] = field(default_factory=list)
    quant_reference: str | None = None
    sweep: list[dict] = field(default_factory=list)
    input_source: str = ""
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {**asdict(self), "methods": [m.to_dict() for m in self.methods]}


# ---------------------------------------------------------------- child processes
def runtime_python(target: Target) -> Path:

    return ensure_venv(runtime_venv_spec(target.runtime, target.version)).python


# ---------------------------------------------------------------- the two methods
def _kernels(target: Target, options: ProfileOptions) -> str:
    return "builtin" if options.mode == "per-node" or not target.xnnpack else "default"


def profile_litert(
    python: Path,
    target: Target,
    model: Path,
    inputs: Path,
    options: ProfileOptions,
    work: Path,
    progress: Progress,
) -> MethodResult:
    import os

    (work / "selftest.tflite").write_bytes(slicer.add_model(1))
    (work / "null.tflite").write_bytes(slicer.null_model())
    mode = "per-node" if _kernels(target, options) == "builtin" else "deployed"
    request = {
        "model": str(model),
        "selftest_model": str(work / "selftest.tflite"),
        "null_model": str(work / "null.tflite"),
        "inputs": str(inputs),
        "mode": mode,
        "threads": target.threads,
        "warmup": options.warmup,
        "runs": options.runs,
        "lib": os.environ.get(LIB_ENV),
    }
    results = []
    with progress.task(f"LiteRT profiler ({mode}) x{options.processes} processes", options.processes) as adv:
        for p in range(options.processes):
            results.append(run_child(python, "profiler_child.py", "profile", request, f"litert-profiler-{p}"))
            adv(1)
    return merge_litert(results, mode, target.threads, options.runs)


def profile_slicing(
    python: Path,
    target: Target,
    model: Path,
    info: TFLiteModel,
    inputs: Path,
    options: ProfileOptions,
    work: Path,
    progress: Progress,
) -> MethodResult:
    slices = slicer.slice_model(model.read_bytes())
    paths = slicer.write_slices(slices, work / "slices")
    (work / "null.tflite").write_bytes(slicer.null_model())
    kernels = _kernels(target, options)
    request = {
        "model": str(model),
        "inputs": str(inputs),
        "capture_out": str(work / "capture.npz"),
        "null_model": str(work / "null.tflite"),
        "kernels": kernels,
        "threads": target.threads,
        "warmup": options.warmup,
        "runs": options.runs,
        "tasks": ["capture", "time"],
        "slices": [
            {"index": s.op_index, "path": paths[s.op_index], "inputs": list(s.feeds)}
            for s in slices
            if s.op_index in paths
        ],
    }
    results = []
    with progress.task(
        f"slice timing ({kernels} kernels) x{options.processes} processes", options.processes
    ) as adv:
        for p in range(options.processes):
            results.append(run_child(python, "slice_child.py", "run", request, f"slicing-{p}"))
            adv(1)
    unsliceable = [f"op {s.op_index} {s.op}: {s.reason}" for s in slices if s.model is None]
    return merge_slicing(results, info, kernels, target.threads, options.runs, unsliceable)


def capture(python: Path, model: Path, inputs: Path, out: Path, work: Path, n: int) -> dict[str, np.ndarray]:
    request = {
        "model": str(model),
        "inputs": str(inputs),
        "capture_out": str(out),
        "tasks": ["capture"],
        "capture_queries": n,
    }
    run_child(python, "slice_child.py", "run", request, f"capture-{out.stem}")
    data = np.load(out)
    return {k: data[k] for k in data.files}


def sweep(
    python: Path, target: Target, model: Path, inputs: Path, options: ProfileOptions, work: Path
) -> list:
    request = {
        "model": str(model),
        "inputs": str(inputs),
        "lengths": list(options.seq_lens),
        "tasks": ["sweep"],
        "threads": target.threads,
        "warmup": options.warmup,
        "runs": options.runs,
        "kernels": _kernels(target, options),
    }
    out = run_child(python, "slice_child.py", "run", request, "sweep")["sweep"]
    rows = []
    for r in out:
        if "error" in r:
            rows.append({"length": r["length"], "error": r["error"]})
        else:
            v = np.asarray(r["samples_us"])
            rows.append(
                {
                    "length": r["length"],
                    "median_us": round(float(np.median(v)), 2),
                    "p90_us": round(float(np.percentile(v, 90)), 2),
                }
            )
    return rows


# ---------------------------------------------------------------- entry point
def profile_model(
    model_path: Path,
    options: ProfileOptions | None = None,
    device: str | DeviceProfile | None = None,
    threads: int | None = None,
    progress: Progress | None = None,
    *,
    arrays: Mapping[str, np.ndarray] | None = None,
    input_source: str | None = None,
    float_reference: Path | None = None,
) -> ProfileResult:
    """Profile one .tflite; raises EdgecompError subclasses, never prints, reads no build directory.

    `arrays` are real query inputs by input name (toolchain/device_stages.py makes them from a build's split);
    without them seeded synthetic inputs are used. `float_reference` (a float .tflite or Keras model)
    enables the per-op quantization error of a quantized model.
    """

    options, progress = options or ProfileOptions(), progress or SilentProgress()
    if options.method not in ("auto", "litert", "slice", "both") or options.mode not in (
        "deployed",
        "per-node",
    ):
        raise EdgecompError(
            "unknown --method/--mode", hint="method: auto|litert|slice|both; mode: deployed|per-node"
        )
    target = resolve_target(device, threads)
    model = Path(model_path)
    if not model.is_file():
        raise InputFileError(f"model not found: {model}", hint="pass a build dir (build/<name>) or a .tflite")
    info = read_tflite(model)
    if arrays is None:
        arrays, input_source = (
            synthetic_feeds(info, options.queries),
            f"{options.queries} synthetic inputs (seed 0)",
        )
    else:
        arrays = match_feeds([info.tensors[i].name for i in info.inputs], arrays)
        arrays = {k: np.asarray(v)[: options.queries] for k, v in arrays.items()}
    has_capi = target.runtime == "litert" and tuple(int(x) for x in target.version.split(".")[:2]) >= (2, 3)
    method = options.method if options.method != "auto" else ("litert" if has_capi else "slice")
    if method in ("litert", "both") and not has_capi:
        raise ProfilerError(
            f"{target.runtime} {target.version} has no C-API profiler",
            hint="use --method slice (works on every runtime)",
        )
    python = runtime_python(target)
    notes = [target.note]
    with tempfile.TemporaryDirectory(prefix="edgecomp-profile-") as tmp:
        work = Path(tmp)
        inputs = work / "inputs.npz"
        np.savez(inputs, **arrays)
        methods = []
        if method in ("litert", "both"):
            methods.append(profile_litert(python, target, model, inputs, options, work, progress))
        if method in ("slice", "both"):
            methods.append(profile_slicing(python, target, model, info, inputs, options, work, progress))
        result = ProfileResult(
            str(model),
            {**asdict(target), "emulated": target.emulated, "host_cpu": host_cpu().to_json()},
            methods,
            opcost.model_costs(info),
            input_source=input_source or "",
            notes=notes,
        )
        if options.seq_lens:
            result.sweep = sweep(python, target, model, inputs, options, work)
        is_quant = any(info.tensors[o.outputs[0]].dtype in ("INT8", "INT16") for o in info.ops if o.outputs)
        ref = float_reference or options.float_reference
        if options.quant_error and is_quant and ref is not None:
            ref_model = _float_tflite(Path(ref), work, options.trust_model_code)
            n = min(options.queries, 8)
            q = capture(python, model, inputs, work / "quant.npz", work, n)
            f = capture(python, ref_model, inputs, work / "float.npz", work, n)
            errors = quant_error.per_op_error(info, q, read_tflite(ref_model), f)
            result.quant_error = errors
            result.quant_reference = str(ref)
        elif options.quant_error and is_quant:
            result.notes.append("no float reference for quantization error: pass --float-reference")
    return result


def _float_tflite(ref: Path, work: Path, trust_model_code: bool = False) -> Path:
    if ref.suffix == ".tflite":
        read_tflite(ref)
        return ref
    if ref.suffix == ".onnx":
        raise ProfilerError(
            f"{ref.name} is ONNX: the quantization error needs a float .tflite",
            hint="pass --float-reference FLOAT.tflite, or --no-quant-error",
        )

    out = work / "float-reference.tflite"
    out.write_bytes(keras_to_tflite(load_keras_model(ref, trust_model_code), "float32"))
    return out


if __name__ == "__main__":  # pragma: no cover
    print(json.dumps(profile_model(Path(sys.argv[1])).to_dict(), indent=1, default=str))
