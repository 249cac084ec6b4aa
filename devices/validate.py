"""`edgecomp validate`: run a build the way each device would and gate it against the host reference.

Per device: the profile's op policy and size budget (static), op versions probed in the device runtime,
the real load and a batch-1 run of the eval split inside the runtime (emulated ARM under QEMU), then
accuracy, top-1 agreement, max abs diff (quantized units for integer outputs) and bit-exactness against
the same .tflite on the host (devices/host_reference.py: ai-edge-litert 2.3.0 in an isolated child, like
the device rows), plus peak-memory and (x86 only) latency budgets. A crash or hang of the runtime, or a
host reference that cannot run (custom/Flex ops), is a failed row, never a crash of edgecomp.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from converters.tflite_model import TFLiteModel, parse_tflite
from devices.device_report import DeviceReport, Gates, HostSummary, ValidationReport
from devices.host_reference import HostReference, HostReferenceFailed, host_reference
from devices.hostrun import match_feeds
from devices.kernels import int4_weights_issue
from devices.opsupport import check_op_versions, min_runtime_version
from devices.profiles.schema import Budgets, DeviceProfile
from devices.runner import RuntimeWorker, WorkerFailure
from devices.runtimes import provision
from toolchain.base.progress import Progress, SilentProgress
from toolchain.base.types import CheckStatus, ParityGate
from toolchain.base.venvs import EnvSetupError

PASS, FAIL, SKIP, INFO = CheckStatus.PASS, CheckStatus.FAIL, CheckStatus.SKIP, CheckStatus.INFO
REFUSED_DTYPES = {"FLOAT32": "float32", "FLOAT16": "float16", "FLOAT64": "float64", "INT16": "int16"}


def first_refused_op(model: TFLiteModel, profile: DeviceProfile) -> str | None:
    """The first op (execution order) the profile's op policy refuses, described; None if all allowed."""
    policy = profile.ops
    for op in model.ops:
        where = f"{op.op} (op #{op.index})"
        if op.custom and not policy.custom_ops:
            return f"{where} is a custom op"
        if policy.allowed is not None and not op.custom and op.op not in policy.allowed:
            return f"{where} is not in the device's op list"
        if policy.int8_only:
            for kind, idx in [("input", i) for i in op.inputs] + [("output", i) for i in op.outputs]:
                if idx < 0:
                    continue
                t = model.tensors[idx]
                if t.dtype in REFUSED_DTYPES:
                    return f"{where} has {REFUSED_DTYPES[t.dtype]} {kind} '{t.name}' (device is int8-only)"
    return None


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.where(norms > 0, np.sum(a * b, 1) / np.maximum(norms, 1e-12), 1.0)


def parity_checks(
    rep: DeviceReport, raw: np.ndarray, ref: HostReference, label_ids: np.ndarray | None, gates: Gates
) -> None:
    """Bit-exactness (info), then the gate the build's task takes: top-1 agreement with the host run
    (classifiers, retrieval) or the cosine of the device's vectors with the host's (embedding models, whose
    argmax means nothing), then accuracy vs the labels when the split has them."""
    m = rep.metrics
    host, dev_scores = ref.scores(ref.raw), ref.scores(raw)
    exact = np.all(raw == ref.raw, axis=1)
    m.bit_exact_fraction = round(float(np.mean(exact)), 4)
    diff = np.abs(raw.astype(np.float64) - ref.raw.astype(np.float64))
    m.max_abs_diff = float(diff.max()) if diff.size else 0.0
    m.max_abs_diff_unit = "quantized units (LSB)" if ref.quantized else "float"
    rep.add(
        "bit-exact vs host",
        INFO,
        f"{m.bit_exact_fraction:.2%} of outputs identical, max diff {m.max_abs_diff:g} "
        f"{'LSB' if ref.quantized else ''}".strip(),
    )
    if gates.parity == ParityGate.COSINE:
        cos = _cosines(host.astype(np.float64), dev_scores.astype(np.float64))
        m.mean_cosine, m.min_cosine = round(float(cos.mean()), 6), round(float(cos.min()), 6)
        ok = m.mean_cosine >= gates.min_cosine
        rep.add(
            "cosine vs host",
            PASS if ok else FAIL,
            f"mean {m.mean_cosine:.6f}, worst {m.min_cosine:.6f} (min mean {gates.min_cosine})",
        )
        rep.add("accuracy", SKIP, "an embedding model has no labels to score")
        return
    ref_pred, dev_pred = host.argmax(1), dev_scores.argmax(1)
    m.top1_agreement = round(float(np.mean(ref_pred == dev_pred)), 4)
    ok = m.top1_agreement >= gates.min_agreement
    rep.add(
        "top-1 agreement", PASS if ok else FAIL, f"{m.top1_agreement:.2%} (min {gates.min_agreement:.0%})"
    )
    if label_ids is None or ref.accuracy is None:
        rep.add("accuracy", SKIP, "no labelled eval split")
        return
    acc = float(np.mean(dev_pred == label_ids))
    m.accuracy, m.host_accuracy = round(acc, 4), round(ref.accuracy, 4)
    m.accuracy_diff_points = round((acc - ref.accuracy) * 100, 2)
    ok = abs(m.accuracy_diff_points) <= gates.max_accuracy_diff
    rep.add(
        "accuracy",
        PASS if ok else FAIL,
        f"{acc:.2%} vs host {ref.accuracy:.2%} ({m.accuracy_diff_points:+.2f} pt, "
        f"max ±{gates.max_accuracy_diff})",
    )


def _budget(
    rep: DeviceReport, name: str, value: float | None, limit: float | None, unit: str, note: str = ""
) -> None:
    if limit is None:
        return
    if value is None:
        rep.add(name, FAIL, f"not measured (budget {limit:g} {unit})")
        return
    status = PASS if value <= limit else FAIL
    rep.add(name, status, f"{value:.3g} {unit}{note} (budget {limit:g} {unit})")


def validate_device(
    model_path: Path,
    model: TFLiteModel,
    profile: DeviceProfile,
    feeds: Mapping[str, np.ndarray],
    label_ids: np.ndarray | None,
    ref: HostReference | HostReferenceFailed,
    gates: Gates = Gates(),
    progress: Progress | None = None,
    runner_script: Path | None = None,
) -> DeviceReport:
    """All checks of one device; never raises for a device-side failure (it becomes a failed check).

    `feeds` are keyed by the model's input tensor names (devices.hostrun.match_feeds); `ref` is the host
    reference, or why there is none (then parity is a failed check naming the cause)."""

    progress = progress or SilentProgress()
    t0 = time.perf_counter()
    rep = DeviceReport(
        device=profile.name,
        description=profile.description,
        arch=profile.arch,
        cpu=profile.cpu,
        runtime=profile.runtime_label,
        emulated=profile.emulated,
    )
    b = profile.budgets
    rep.metrics.size_kb = round(model.size_bytes / 1024, 1)
    _budget(rep, "model size", rep.metrics.size_kb, b.model_size_kb, "KB")
    refused = first_refused_op(model, profile)
    rep.add("op policy", FAIL if refused else PASS, refused or "every op allowed")
    if isinstance(ref, HostReferenceFailed):
        rep.add("host reference", FAIL, ref.message)
    with progress.task(f"validate on {profile.name}", 4) as advance:
        try:
            env = provision(profile)
        except EnvSetupError as err:
            rep.add("runtime", FAIL, str(err))
            return _done(rep, t0)
        rep.runtime_lock_sha256 = env.lock_sha256
        if env.debian_lock_sha256 is not None:
            rep.debian_lock_sha256 = env.debian_lock_sha256
        advance(1)
        try:
            with RuntimeWorker(env, profile.timeout_s, profile.memory_limit_mb, runner_script) as worker:
                got = worker.hello.get("version")
                if got != profile.runtime_version:
                    rep.add(
                        "runtime", FAIL, f"{env.module} {got} found, profile wants {profile.runtime_version}"
                    )
                advance(1)
                key = f"{profile.runtime}-{profile.runtime_version}-{profile.arch}"
                issues = check_op_versions(model, worker, key, worker.tmp)
                if issues:
                    rep.add("op versions", FAIL, "; ".join(i.describe(profile.runtime_label) for i in issues))
                elif four := int4_weights_issue(model, worker, key, worker.tmp, profile.runtime_label):
                    rep.add("op versions", FAIL, four)
                else:
                    rep.add("op versions", PASS, f"{len(model.opcodes)} builtin ops supported")
                advance(1)
                if refused:
                    rep.add("loads", SKIP, "not run: the device refuses the model's ops")
                    return _done(rep, t0)
                runs = 200 if not profile.emulated and b.latency_ms is not None else 0
                res = worker.run(model_path, feeds, profile.threads, profile.xnnpack, runs)
                advance(1)
        except WorkerFailure as err:
            rep.add("runs", FAIL, err.message)
            return _done(rep, t0)
    if res.error:
        rep.add("loads", FAIL, f"{res.stage} failed in {profile.runtime_label}: {res.error}")
        return _done(rep, t0)
    rows = len(next(iter(feeds.values())))
    rep.add("loads", PASS, f"{rows} queries run, batch 1, {profile.threads} thread(s)")
    if isinstance(ref, HostReferenceFailed):
        rep.add("host reference", FAIL, f"no parity check: {ref.message}")
        return _done(rep, t0)
    parity_checks(rep, res.raw, ref, label_ids, gates)
    if profile.emulated:
        _same_runtime_on_x86(rep, profile, model_path, feeds, res.raw, ref.quantized, runner_script)
    mem = res.peak_memory_kb / 1024 if res.peak_memory_kb is not None else None
    rep.metrics.peak_memory_mb = round(mem, 2) if mem is not None else None
    twin = rep.metrics.peak_memory_mb_x86_same_runtime
    note = f", same runtime on x86 {twin:.3g} MB: QEMU's code cache counts" if twin is not None else ""
    _budget(rep, "peak memory", mem, b.peak_memory_mb, "MB", note)
    if not profile.emulated:
        rep.metrics.latency_ms = round(res.latency_ms, 4) if res.latency_ms is not None else None
        _budget(rep, "latency", res.latency_ms, b.latency_ms, "ms", " host-measured median")
    return _done(rep, t0)


def _same_runtime_on_x86(
    rep: DeviceReport,
    profile: DeviceProfile,
    model_path: Path,
    feeds: Mapping[str, np.ndarray],
    raw: np.ndarray,
    quantized: bool,
    runner_script: Path | None,
) -> None:
    """Bit-exactness of the emulated device against the same runtime version natively on x86 (info)."""

    twin = profile.model_copy(update={"arch": "x86_64", "cpu": "host", "budgets": Budgets()})
    try:
        env = provision(twin)
        with RuntimeWorker(env, profile.timeout_s, profile.memory_limit_mb, runner_script) as worker:
            res = worker.run(model_path, feeds, profile.threads, profile.xnnpack)
    except (EnvSetupError, WorkerFailure) as err:
        rep.add("bit-exact vs x86 twin", INFO, f"not measured: {err.message}")
        return
    if res.error or res.raw is None or res.raw.shape != raw.shape:
        rep.add("bit-exact vs x86 twin", INFO, f"not measured: {res.error or 'output shape differs'}")
        return
    frac = float(np.mean(np.all(res.raw == raw, axis=1)))
    diff = float(np.max(np.abs(res.raw.astype(np.float64) - raw.astype(np.float64)))) if raw.size else 0.0
    rep.metrics.bit_exact_vs_x86_same_runtime = round(frac, 4)
    rep.metrics.max_abs_diff_vs_x86_same_runtime = diff
    if res.peak_memory_kb is not None:
        rep.metrics.peak_memory_mb_x86_same_runtime = round(res.peak_memory_kb / 1024, 2)
    unit = " LSB" if quantized else ""
    rep.add(
        "bit-exact vs x86 twin",
        INFO,
        f"{frac:.2%} identical to {profile.runtime_label} on x86_64, max diff {diff:g}{unit}",
    )


def _done(rep: DeviceReport, t0: float) -> DeviceReport:
    rep.seconds = round(time.perf_counter() - t0, 2)
    return rep


def validate(
    model_path: Path,
    feeds: Mapping[str, np.ndarray],
    label_ids: np.ndarray | None,
    profiles: list[DeviceProfile],
    gates: Gates = Gates(),
    progress: Progress | None = None,
    runner_script: Path | None = None,
    source: str = "",
    target: str | None = None,
) -> ValidationReport:
    """Validate one .tflite on each profile with the given named input arrays (one row per query).

    Reads no build directory and writes nothing: toolchain/device_stages.py supplies the arrays and records
    the result in a build's report.
    """

    progress = progress or SilentProgress()
    model_path = Path(model_path)
    data = model_path.read_bytes()
    model = parse_tflite(data, origin=str(model_path))
    named = match_feeds([model.tensors[i].name for i in model.inputs], feeds)
    with progress.task("host reference (isolated host runtime)", 1) as advance:
        try:
            ref: HostReference | HostReferenceFailed = host_reference(model_path, model, named, label_ids)
        except HostReferenceFailed as err:
            ref = err
        advance(1)
    reference = HostSummary(
        runtime=None if isinstance(ref, HostReferenceFailed) else ref.runtime,
        queries=0 if isinstance(ref, HostReferenceFailed) else len(ref.raw),
        eval_split=source,
        host_accuracy=None
        if isinstance(ref, HostReferenceFailed) or ref.accuracy is None
        else round(ref.accuracy, 4),
        min_runtime_version=min_runtime_version(data),  # what the converter recorded
        op_versions=dict(sorted(model.opcodes.items())),
    )
    if isinstance(ref, HostReferenceFailed):
        reference.error = ref.message
    devices = [
        validate_device(model_path, model, p, named, label_ids, ref, gates, progress, runner_script)
        for p in profiles
    ]
    return ValidationReport.of(target or str(model_path), reference, gates, devices)
