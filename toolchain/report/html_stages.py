"""report.html's late sections: the device table (validate), per-op latency beside per-op quantization
error (profile), and the package with its app-runtime and tokenizer parity (package); plus the small
building blocks every section uses (a Section, a table, number formats). toolchain/report/html.py
assembles the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from devices.validate import DeviceReport, ValidationReport
from toolchain.base.types import CheckStatus
from toolchain.report.charts import NARROW, Bar, bars
from toolchain.report.model import Report
from toolchain.report.stages import MethodSummary, PackageSection, ProfileSection, QuantErrorRow

LOW_SNR_DB = 20.0  # an op output below this SNR is drawn red: its int8 error is about 10% of the signal


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    body: str  # HTML, already escaped
    css: str = ""

    def render(self) -> str:
        cls = f' class="{self.css}"' if self.css else ""
        return f'<section id="{self.id}"{cls}><h2>{escape(self.title)}</h2>{self.body}</section>'


def kb(n: int) -> str:
    return f"{n / 1024:.1f} KB"


def pct(v: float | None) -> str:
    return "" if v is None else f"{v:.2%}"


def table(
    head: list[str],
    rows: list[list[str]],
    raw: frozenset[int] = frozenset(),
    text: frozenset[int] = frozenset({0}),
) -> str:
    """A table of escaped text; the columns in `raw` hold HTML made here (a status span), the columns in
    `text` are left-aligned words (the rest are numbers)."""
    heads = (f"<th{' class=t' if i in text else ''}>{escape(h)}</th>" for i, h in enumerate(head))
    out = ["<table><thead><tr>", *heads, "</tr></thead><tbody>"]
    for row in rows:
        cells = (c if i in raw else escape(c) for i, c in enumerate(row))
        out.append(
            "<tr>" + "".join(f"<td{' class=t' if i in text else ''}>{c}</td>" for i, c in enumerate(cells))
        )
    out.append("</tbody></table>")
    return "".join(out)


def _status(passed: bool) -> str:
    return '<span class="pass">pass</span>' if passed else '<span class="fail">FAIL</span>'


def _device_row(d: DeviceReport) -> list[str]:
    m = d.metrics
    agreement = pct(m.top1_agreement) if m.top1_agreement is not None else (
        f"cos {m.mean_cosine:.4f}" if m.mean_cosine is not None else "")  # fmt: skip
    failures = "; ".join(f"{c.name}: {c.detail}" for c in d.checks if c.status == CheckStatus.FAIL)
    return [
        d.device,
        _status(d.passed),
        d.arch + (" (emulated)" if d.emulated else ""),
        d.runtime,
        agreement,
        pct(m.bit_exact_fraction),
        pct(m.accuracy),
        "" if m.accuracy_diff_points is None else f"{m.accuracy_diff_points:+.2f}",
        "" if m.latency_ms is None else f"{m.latency_ms:.3g}",
        "" if m.peak_memory_mb is None else f"{m.peak_memory_mb:.3g}",
        failures or "-",
    ]


def validation_section(val: ValidationReport | None) -> Section | None:
    if val is None:
        return None
    ref = val.reference
    head = ["device", "result", "arch", "runtime", "agreement vs host", "bit-exact", "accuracy",
            "vs host (pt)", "latency ms", "peak MB", "failures"]  # fmt: skip
    rows = [_device_row(d) for _, d in sorted(val.devices.items())]
    host = (
        f"host reference: {escape(ref.runtime or 'none')} on {ref.queries} queries of "
        f"<code>{escape(ref.eval_split)}</code>"
    )
    if ref.host_accuracy is not None:
        host += f", accuracy {pct(ref.host_accuracy)}"
    if ref.min_runtime_version:
        host += f"; needs a runtime from {escape(ref.min_runtime_version)}"
    body = (
        f"<p>{_status(val.passed)} on {len(rows)} device(s). {host}</p>"
        f"{table(head, rows, raw=frozenset({1}), text=frozenset({0, 3, 10}))}"
        "<p class=sub>latency is measured on this machine (emulated devices: the host's own run of the "
        "device's runtime), not on a phone</p>"
    )
    return Section("validation", "Devices", body)


def _snr(row: QuantErrorRow) -> str:
    return "" if row.snr_db is None else f"{row.snr_db:.1f}"


def _method_bars(m: MethodSummary) -> str:
    invoke = "below resolution" if m.invoke_us is None else f"{m.invoke_us:.2f} µs"
    rows = [Bar(f"#{o.index} {o.name}", o.time_us, f"{o.time_us:.2f} µs",
                "muted" if o.below_resolution else "a") for o in m.top_ops]  # fmt: skip
    return (
        f"<h3>{escape(m.method)} ({escape(str(m.mode))})</h3><p class=sub>sum of per-op times "
        f"{m.sum_us:.2f} µs, "
        f"whole invoke {invoke}; the {len(m.top_ops)} slowest ops (grey: below the timer's resolution)</p>"
        f"{bars(rows, title=f'per-op latency, {m.method}', widths=NARROW)}"
    )


def _error_bars(errors: list[QuantErrorRow]) -> str:
    if not errors:
        return (
            "<p class=sub>no per-op quantization error (a float build, or profile ran with "
            "--no-quant-error)</p>"
        )
    top = max((e.snr_db for e in errors if e.snr_db is not None and e.snr_db != float("inf")), default=60.0)
    rows = [
        Bar(f"#{e.index} {e.op}", min(e.snr_db, top) if e.snr_db is not None else 0.0,
            _snr(e) + " dB" if e.snr_db is not None else "n/a",
            "bad" if e.snr_db is not None and e.snr_db < LOW_SNR_DB else "good")
        for e in errors
    ]  # fmt: skip
    return (
        "<h3>quantization error per op</h3><p class=sub>SNR of each op's int8 output vs the float model's "
        f"(dB, higher is better; red below {LOW_SNR_DB:g} dB)</p>{bars(rows, top, 'per-op SNR', NARROW)}"
    )


def _joined(prof: ProfileSection) -> str:
    """One row per op with its time in each node-indexed method beside its quantization error."""
    node_methods = [m for m in prof.methods if all(o.kind == "node" for o in m.top_ops)]
    errors = {e.index: e for e in prof.quant_error}
    indices = sorted({o.index for m in node_methods for o in m.top_ops} | set(errors))
    if not node_methods or not indices:
        return ""
    names = {o.index: o.name for m in node_methods for o in m.top_ops} | {i: e.op for i, e in errors.items()}
    times = {m.method: {o.index: o for o in m.top_ops} for m in node_methods}
    rows = []
    for i in indices:
        e = errors.get(i)
        cells = [f"#{i} {names[i]}"]
        for m in node_methods:
            o = times[m.method].get(i)
            cells.append("" if o is None else f"{o.time_us:.2f}")
        cells += ["", "", "", ""] if e is None else [
            _snr(e), "" if e.added_snr_db is None else f"{e.added_snr_db:+.1f}",
            "" if e.cosine is None else f"{e.cosine:.6f}", f"{e.max_abs_error:.3g}"]  # fmt: skip
        rows.append(cells)
    head = ["op", *(f"{m.method} µs" for m in node_methods), "SNR dB", "added dB", "cosine", "max abs error"]
    return "<h3>side by side, by op</h3>" + table(head, rows)


def profile_section(prof: ProfileSection | None) -> Section | None:
    if prof is None:
        return None
    t = prof.target
    left = "".join(_method_bars(m) for m in prof.methods)
    body = (
        f"<p class=sub>{escape(t.runtime)} {escape(t.version)}, {t.threads} thread(s), "
        f"{escape(t.device)} ({escape(t.arch)}"
        f"{', emulated' if t.emulated else ''})</p>"
        f"<div class=side><div>{left}</div><div>{_error_bars(prof.quant_error)}</div></div>{_joined(prof)}"
    )
    if any(o.kind != "node" for m in prof.methods for o in m.top_ops):
        body += (
            "<p class=sub>deployed mode times XNNPACK's fused operators, which do not map one to one onto "
            "the model's ops: run <code>edgecomp profile BUILD --mode per-node</code> to join time and "
            "error op by op</p>"
        )
    if prof.mixed_float_ops:
        rows = [[f"#{f.index} {f.op}", f.node, str(f.reason or ""),
                 ", ".join(f"{k} {v:.2f} µs" for k, v in f.time_us.items() if v is not None)]
                for f in prof.mixed_float_ops]  # fmt: skip
        body += "<h3>ops the mixed plan kept in float</h3>" + table(
            ["op", "node", "reason", "time"], rows, text=frozenset({0, 1, 2, 3})
        )
    if prof.sweep:
        rows = [[str(s.length), "" if s.median_us is None else f"{s.median_us:.2f}",
                 "" if s.p90_us is None else f"{s.p90_us:.2f}", s.error or ""]
                for s in prof.sweep]  # fmt: skip
        head = ["tokens", "median µs", "p90 µs", "error"]
        body += "<h3>latency by sequence length</h3>" + table(head, rows, text=frozenset({3}))
    return Section("profile", "Per-op latency and quantization error", body)


def package_section(pkg: PackageSection | None, report: Report) -> Section | None:
    if pkg is None:
        return None
    tok = report.tokenizer
    rows = [
        ["format", str(pkg.format)],
        ["bundle", pkg.bundle],
        ["validation when packaged", str(pkg.validation)],
        ["model sha256", pkg.model_sha256],
    ]
    fb = pkg.server_fallback
    if fb.threshold is not None:
        rows.append(["server fallback", f"below {fb.threshold:.4g}: {pct(fb.coverage)} of queries stay on "
                     f"device at {pct(fb.accuracy_above)} accuracy"])  # fmt: skip
    elif fb.note:
        rows.append(["server fallback", fb.note])
    body = table(["", ""], rows)
    if pkg.parity:
        chart = [Bar(feed, v, pct(v)) for feed, v in pkg.parity.items() if v is not None]
        body += (
            "<h3>app-runtime parity (MediaPipe vs the toolchain)</h3>"
            f"{bars(chart, 1.0, 'app-runtime parity')}"
        )
    tok_line = f"tokenizer: {escape(str(tok.kind))}, {tok.seq_len} tokens"
    tok_line += f", lowercase {tok.lowercase}" if tok.lowercase is not None else ""
    body += f"<h3>tokenizer parity</h3><p>{tok_line}</p>"
    tp = pkg.tokenizer_parity
    if tp is not None:
        causes = [[cause, str(n)] for cause, n in sorted(tp.by_cause.items(), key=lambda kv: -kv[1])]
        e = tp.effect
        effect = ", ".join(
            f"{name} {value:.4g}"
            for name, value in (("accuracy delta (points)", e.accuracy_delta),
                                ("flipped predictions", e.flipped_predictions),
                                ("min cosine train vs device ids", e.min_cosine_train_vs_device_ids))
            if value is not None
        )  # fmt: skip
        body += (
            f"<p>{tp.differing} queries ({pct(tp.differing_share)}) get other ids on the device than in "
            f"training; effect: {escape(effect or 'none measured')}</p>{table(['cause', 'queries'], causes)}"
        )
    else:
        body += "<p class=sub>the device tokenizer is the build's own (regex vocab): ids are the same</p>"
    return Section("package", "Package", body)
