"""Issue 24's first acceptance line, measured on each Hugging Face folder fixture, through the CLI.

For each folder (tests/fixtures/make_hub_folders.py: BERT transformers folder, DistilBERT two-input folder,
sentence-transformers folder, the Hub's onnx/ layout; tests/fixtures/make_xlmr_model.py: the XLM-R
transformers/ folder, SentencePiece Unigram), given only the folder and its data:
  1. `edgecomp convert` float32, dynamic and `--quantize mixed` (test + calibration splits): the export's
     parity with PyTorch (report `hub.parity`: ONNX vs PyTorch) and the float32 .tflite's with onnxruntime
     (`evaluation.onnx_reference`); accuracy (classifiers) or mean cosine vs onnxruntime (embedders), size;
  2. `edgecomp validate` of the shipped (mixed) build on every device profile (`edgecomp devices list`; the
     ARM ones run under QEMU), the float32 and dynamic builds on --validate-all-profiles-for too;
  3. `edgecomp profile --mode per-node` (per-op) of the mixed build: ops profiled, sum vs whole invoke;
  4. `edgecomp package --format mediapipe` of the mixed build: parity checked in MediaPipe itself.
Each step is a CLI child process (`python -m toolchain.cli.main ... --json`); a failing step is recorded
with its one-line error and the run goes on. Writes benchmarks/results/acceptance_hub.{json,md}.

    python -m benchmarks.acceptance_hub [--only bert,xlmr] [--work DIR] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT / "examples" / "shopping_intent" / "data"
OUT = ROOT / "benchmarks" / "results"
PER_FIXTURE = OUT / "acceptance_hub"  # one JSON per fixture; the table is made from all of them
FIXTURES = ("bert", "distilbert", "sentence", "hub-onnx", "xlmr")
MODES = ("float32", "dynamic", "mixed")
SHIPPED = "mixed"  # the build validated on every profile, profiled and packaged
CLF_TORCH_MAX_ABS, EMB_TORCH_MIN_COS = 1e-4, 0.9999  # the float32-vs-PyTorch bounds
CLF_MP_TOP1, EMB_MP_COS = 0.995, 0.99  # the MediaPipe parity bounds


@dataclass
class Fixture:
    name: str
    folder: Path
    test: Path
    calibration: Path
    embedder: bool = False


def fixtures() -> list[Fixture]:
    # reason: the fixture scripts import torch-free but heavy modules; `--help` stays instant
    from tests.fixtures.common import default_root
    from tests.fixtures.make_hub_folders import ensure_hub_folders
    from tests.fixtures.make_xlmr_model import ensure_xlmr_model
    from toolchain.base.atomic import locked

    with locked(default_root() / ".fixtures.lock"):  # as tests/conftest.py: one builder at a time
        hub, xlmr = ensure_hub_folders(), ensure_xlmr_model()
    test, train = DATA / "test.jsonl", DATA / "train.jsonl"
    return [
        Fixture("bert", hub / "bert-classifier", test, train),
        Fixture("distilbert", hub / "distilbert-classifier", test, train),
        Fixture("sentence", hub / "sentence-embedder", test, train, embedder=True),
        Fixture("hub-onnx", hub / "hub-onnx", test, train),
        Fixture("xlmr", xlmr / "transformers", xlmr / "data" / "test.jsonl", xlmr / "data" / "train.jsonl"),
    ]


def host() -> str:
    """CPU model and the ISA features that matter to LiteRT's kernels (devices/cpuinfo.py)."""
    from devices.cpuinfo import host_cpu  # reason: after the sys.path line, like the bench's other imports

    return host_cpu().summary


def cli(args: list[str], log: Path) -> tuple[int, dict | None, str]:
    """Run `edgecomp ARGS --json` in a child; (exit code, the JSON printed, the last error line)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    t0 = time.monotonic()
    p = subprocess.run(
        [sys.executable, "-m", "toolchain.cli.main", *args, "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=log.parent,
    )
    log.write_text(
        f"$ edgecomp {' '.join(args)}\n# {time.monotonic() - t0:.0f} s, exit {p.returncode}\n"
        f"{p.stderr}\n{p.stdout}"
    )
    try:
        data = json.loads(p.stdout) if p.stdout.strip() else None
    except json.JSONDecodeError:
        data = None
    lines = [ln.strip() for ln in p.stderr.splitlines() if ln.strip() and not ln.startswith("…")]
    err = next(
        (ln for ln in reversed(lines) if ln.lower().startswith(("error", "gate"))), lines[-1] if lines else ""
    )
    return p.returncode, data, err


def convert(fx: Fixture, mode: str, work: Path, reuse: bool) -> dict:
    out = work / f"{fx.name}-{mode}"
    args = ["convert", str(fx.folder), "--test", str(fx.test), "--calibration", str(fx.calibration)]
    args += ["--quantize", mode, "--out", str(out), "--seed", "0"]
    if reuse and (out / "report.json").is_file():  # a build of an earlier run in the same --work
        rc, r, err = 0, json.loads((out / "report.json").read_text()), ""
    else:
        rc, r, err = cli(args, work / f"{fx.name}-{mode}.convert.log")
    row: dict = {"mode": mode, "exit": rc, "dir": str(out)}
    if rc != 0 or r is None:
        return {**row, "error": err}
    hub, ev = r.get("hub") or {}, r.get("evaluation") or {}
    ref, vs = ev.get("onnx_reference") or {}, ev.get("vs_source_float") or ev.get("vs_final_float") or {}
    tp = hub.get("parity") or {}
    row.update(
        bytes=r["model"]["size_bytes"],
        exported=hub.get("exported"),
        torch_queries=tp.get("queries"),
        torch_max_abs=tp.get("max_abs_error"),
        torch_min_cos=tp.get("min_cosine"),
        ort_max_abs=ref.get("max_abs_error"),
        ort_mean_cos=ref.get("mean_cosine"),
        ort_min_cos=ref.get("min_cosine"),
        ort_agreement=ref.get("top1_agreement"),
        queries=ref.get("queries"),
        accuracy=(vs.get("converted") or {}).get("accuracy"),
        source_accuracy=(vs.get("reference") or {}).get("accuracy"),
        warnings=r.get("warnings") or [],
    )
    return row


def direct_vs_torch(build_dir: Path, torch_dir: Path) -> dict:
    """The float32 .tflite against PyTorch itself on the test split: PyTorch's outputs are the ones the
    export cached (`~/.cache/edgecomp/hub-exports/<key>/torch-<ids>.npy`, one row per test query)."""
    # reason: TensorFlow-free but heavy; only this end-to-end check needs them
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    from toolchain.build import load_build

    build = load_build(build_dir)
    ev = build.eval_set("test")
    found = [a for p in sorted(torch_dir.glob("torch-*.npy")) if (a := np.load(p)).shape[0] == len(ev)]
    if len(found) != 1:
        raise RuntimeError(f"{len(found)} PyTorch output files for {len(ev)} queries in {torch_dir}")
    want = found[0].astype(np.float64)
    interp = Interpreter(model_path=str(build_dir / "model.tflite"), num_threads=1)
    interp.allocate_tensors()
    by_name = {d["name"]: d for d in interp.get_input_details()}
    out = interp.get_output_details()[0]["index"]
    got = np.zeros_like(want)
    for i in range(len(ev)):
        for name, arr in ev.feeds.items():
            d = by_name.get(name) or next(d for n, d in by_name.items() if f"_{name}:" in n)
            interp.set_tensor(d["index"], arr[i : i + 1].astype(d["dtype"]))
        interp.invoke()
        got[i] = interp.get_tensor(out)[0]
    cos = (got * want).sum(1) / np.maximum(np.linalg.norm(got, axis=1) * np.linalg.norm(want, axis=1), 1e-12)
    return {
        "queries": len(ev),
        "max_abs": float(np.abs(got - want).max()),
        "min_cos": float(cos.min()),
        "top1": float(np.mean(got.argmax(1) == want.argmax(1))),
        "torch_dir": str(torch_dir),
    }


def add_direct(results: list[dict]) -> None:
    """Fill `float32.direct` (TFLite vs PyTorch): each folder its own export's PyTorch outputs; the Hub
    ONNX layout has no weights, its model.onnx is the BERT folder's model (make_hub_folders.py), so BERT's."""
    dirs = {}
    for res in results:
        f32 = res["builds"].get("float32", {})
        report = Path(f32.get("dir", "")) / "report.json"
        if report.is_file() and (hub := json.loads(report.read_text()).get("hub") or {}).get("exported"):
            dirs[res["fixture"]] = Path(hub["onnx_file"]).parent
    dirs.setdefault("hub-onnx", dirs.get("bert"))
    for res in results:
        f32, torch_dir = res["builds"].get("float32", {}), dirs.get(res["fixture"])
        if "error" not in f32 and torch_dir is not None and "max_abs" not in (f32.get("direct") or {}):
            f32["direct"] = guarded(direct_vs_torch, Path(f32["dir"]), torch_dir)


def validate(build: Path, work: Path, tag: str, limit: int | None) -> dict:
    args = ["validate", str(build), "--device", "all"] + (["--limit", str(limit)] if limit else [])
    rc, r, err = cli(args, work / f"{tag}.validate.log")
    return validation_row(rc, r, err)


def validation_row(rc: int | None, r: dict | None, err: str) -> dict:
    """Per device: passed, and its first failed check as `name: detail`."""
    if r is None:
        return {"exit": rc, "error": err}
    devices = {}
    for name, d in (r.get("devices") or {}).items():
        fails = [f"{c['name']}: {c['detail']}" for c in d.get("checks") or [] if c.get("status") == "fail"]
        devices[name] = {"passed": d.get("passed"), "failure": fails[0] if fails else None}
    return {"exit": rc, "devices": devices, "error": None if devices else err}


def reread_validation(res: dict, work: Path) -> None:
    """`--render-only`: the validation rows again from the logs this script left in --work."""
    for mode, b in res["builds"].items():
        log = work / f"{res['fixture']}-{mode}.validate.log"
        if "validate" in b and log.is_file():
            text = log.read_text()
            start = text.find("\n{")
            data = json.loads(text[start + 1 :]) if start >= 0 else None
            b["validate"] = validation_row(b["validate"].get("exit"), data, b["validate"].get("error") or "")


def profile(build: Path, work: Path, tag: str) -> dict:
    args = ["profile", str(build), "--mode", "per-node", "--method", "litert", "--no-quant-error"]
    rc, r, err = cli(args + ["--processes", "2", "--runs", "200"], work / f"{tag}.profile.log")
    if rc != 0 or r is None:
        return {"exit": rc, "error": err}
    m = r["methods"][0]
    ops = [o for o in m["ops"] if o.get("kind", "node") == "node"]
    return {
        "exit": rc,
        "method": m["method"],
        "ops": len(ops),
        "model_ops": len(r.get("costs") or []) or None,  # the model's nodes, one cost row each
        "sum_us": m["sum_us"],
        "invoke_us": m["invoke_us"],
        "ratio": m["ratio"],
    }


def package(build: Path, work: Path, tag: str, allow_failed: bool) -> dict:
    args = ["package", str(build), "--format", "mediapipe", "--out", str(work / f"{tag}-dist")]
    rc, r, err = cli(
        args + (["--allow-failed-validation"] if allow_failed else []), work / f"{tag}.package.log"
    )
    if rc != 0 or r is None:
        return {"exit": rc, "error": err}
    par = r.get("parity") or {}
    feeds = {k: par[k] for k in ("lowercased", "raw", "vs_training_ids") if par.get(k)}
    tp = r.get("tokenizer_parity") or {}
    return {
        "exit": rc,
        "runtime": par.get("runtime"),
        "added_inputs": [a["name"] for a in par.get("added_inputs") or []],
        "feeds": {
            k: {
                "queries": f["queries"],
                "agreement": f.get("agreement"),
                "identical": f.get("identical"),
                "min_cosine": f.get("min_cosine"),
                "max_abs_diff": f.get("max_abs_score_diff", f.get("max_abs_diff")),
            }
            for k, f in feeds.items()
        },
        "tokenizer_differing": tp.get("differing"),
        "tokenizer_queries": tp.get("queries"),
        "tokenizer_by_cause": tp.get("by_cause"),
        "override": r.get("allow_failed_validation"),
    }


def guarded(step, *args) -> dict:
    """A step whose report this script misreads is a row with the exception, not the end of the run."""
    try:
        return step(*args)
    except Exception as e:  # noqa: BLE001 - recorded in the table, the run goes on
        return {"exit": None, "error": f"benchmark script: {type(e).__name__}: {e}"}


def run_fixture(fx: Fixture, work: Path, limit: int | None, validate_all: set[str], reuse: bool) -> dict:
    t0 = time.monotonic()
    res: dict = {
        "fixture": fx.name,
        "validate_limit": limit,
        "folder": str(fx.folder),
        "embedder": fx.embedder,
        "builds": {},
    }
    for mode in MODES:
        print(f"[{fx.name}] convert {mode}", flush=True)
        res["builds"][mode] = b = guarded(convert, fx, mode, work, reuse)
        if "error" in b:
            continue
        if mode == SHIPPED or mode in validate_all:
            print(f"[{fx.name}] validate {mode} on every profile", flush=True)
            b["validate"] = guarded(validate, Path(b["dir"]), work, f"{fx.name}-{mode}", limit)
    shipped = res["builds"][SHIPPED]
    if "error" not in shipped:
        build = Path(shipped["dir"])
        print(f"[{fx.name}] profile {SHIPPED}", flush=True)
        res["profile"] = guarded(profile, build, work, f"{fx.name}-{SHIPPED}")
        failed = any(not d["passed"] for d in (shipped.get("validate") or {}).get("devices", {}).values())
        print(f"[{fx.name}] package {SHIPPED}", flush=True)
        res["package"] = guarded(package, build, work, f"{fx.name}-{SHIPPED}", failed)
    res["seconds"] = round(time.monotonic() - t0)
    return res


def _f(v, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def checks(res: dict) -> list[tuple[str, bool | None, str]]:
    """(check, passed or None when not measurable, measured value) for one fixture."""
    b, emb, out = res["builds"], res["embedder"], []
    f32 = b.get("float32", {})
    direct = f32.get("direct") or {}
    if "error" in f32:
        out.append(("float32 converts", False, f32["error"][:120]))
    elif "max_abs" not in direct:
        out.append(("float32 vs PyTorch", None, f"not measured: {direct.get('error', 'no PyTorch outputs')}"))
    elif emb:
        out.append(
            (
                "float32 .tflite vs PyTorch: min cosine >= 0.9999",
                direct["min_cos"] >= EMB_TORCH_MIN_COS,
                f"min cosine {direct['min_cos']:.7f} on {direct['queries']} queries",
            )
        )
    else:
        out.append(
            (
                "float32 .tflite vs PyTorch: max abs logit < 1e-4",
                direct["max_abs"] < CLF_TORCH_MAX_ABS,
                f"{direct['max_abs']:.1e} on {direct['queries']} queries (top-1 {direct['top1']:.2%})",
            )
        )
    for mode in ("dynamic", "mixed"):
        x = b.get(mode, {})
        out.append(
            (
                f"{mode} builds",
                "error" not in x,
                x.get("error", "")[:120] or f"{_f(x.get('bytes', 0) / 1024, '.0f')} KB",
            )
        )
    val = b.get(SHIPPED, {}).get("validate")
    if val is not None:
        devs = val.get("devices") or {}
        bad = [f"{d}: {v['failure']}" for d, v in devs.items() if not v["passed"]]
        out.append(
            (
                f"validate ({SHIPPED}) on every profile",
                bool(devs) and not bad,
                "; ".join(bad)[:300] or f"{len(devs)}/{len(devs)} passed" if devs else val.get("error", ""),
            )
        )
    prof = res.get("profile")
    if prof is not None:
        ok = "error" not in prof
        out.append(
            (
                "per-op profile",
                ok,
                prof.get("error", "")[:120]
                if not ok
                else f"{prof['ops']} ops, sum/invoke {_f(prof['ratio'], '.2f')}",
            )
        )
    pkg = res.get("package")
    if pkg is not None:
        if "error" in pkg:
            out.append(("MediaPipe package + parity", False, pkg["error"][:160]))
        else:
            feed = pkg["feeds"].get("raw") or pkg["feeds"].get("lowercased") or {}
            if emb:
                v = feed.get("min_cosine")
                out.append(
                    (
                        "MediaPipe parity: cosine >= 0.99",
                        v is not None and v >= EMB_MP_COS,
                        f"min cosine {_f(v, '.6f')}",
                    )
                )
            else:
                v = feed.get("agreement")
                out.append(
                    (
                        "MediaPipe parity: top-1 >= 99.5%",
                        v is not None and v >= CLF_MP_TOP1,
                        f"{_f(v, '.2%')} of {feed.get('queries')}",
                    )
                )
    return out


def markdown(results: list[dict], host_line: str) -> str:
    lines = [
        f"Host: {host_line}. Measured {time.strftime('%Y-%m-%d')}; minutes per folder: "
        + ", ".join(f"{r['fixture']} {r['seconds'] / 60:.0f}" for r in results)
        + (
            f"; validation on the first {results[0]['validate_limit']} test queries"
            if results[0].get("validate_limit")
            else ""
        )
        + ".",
        "",
        "| folder | build | size | accuracy (cls) / mean cos (emb) | vs onnxruntime | .tflite vs PyTorch |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for res in results:
        for mode, b in res["builds"].items():
            if "error" in b:
                lines.append(f"| {res['fixture']} | {mode} | FAILED: {b['error'][:90]} | | | |")
                continue
            metric = _f(b.get("ort_mean_cos"), ".6f") if res["embedder"] else _f(b.get("accuracy"), ".2%")
            vs = (
                f"min cos {_f(b.get('ort_min_cos'), '.6f')}"
                if res["embedder"]
                else f"max abs {_f(b.get('ort_max_abs'), '.1e')}, agree {_f(b.get('ort_agreement'), '.2%')}"
            )
            d = b.get("direct") or {}
            torch = (
                "-"
                if "max_abs" not in d
                else f"min cos {d['min_cos']:.7f}"
                if res["embedder"]
                else f"max abs {d['max_abs']:.1e}"
            )
            lines.append(
                f"| {res['fixture']} | {mode} | {b['bytes'] / 1024:.0f} KB | {metric} | {vs} | {torch} |"
            )
    devices = sorted(
        {
            d
            for r in results
            for b in r["builds"].values()
            for d in (b.get("validate") or {}).get("devices", {})
        }
    )
    lines += [
        "",
        f"Validation of the {SHIPPED} build (pass / FAIL: first failure):",
        "",
        "| folder | " + " | ".join(devices) + " |",
        "|---|" + "---|" * len(devices),
    ]
    for res in results:
        val = res["builds"].get(SHIPPED, {}).get("validate") or {}
        devs = val.get("devices") or {}
        cells = [
            ("pass" if devs[d]["passed"] else f"FAIL: {(devs[d]['failure'] or '')[:70]}")
            if d in devs
            else "-"
            for d in devices
        ]
        lines.append(f"| {res['fixture']} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Per-op profile and MediaPipe package of the {SHIPPED} build:",
        "",
        "| folder | per-op profile (LiteRT, per-node) | MediaPipe parity "
        "| tokenizer ids differing on device |",
        "|---|---|---|---|",
    ]
    for res in results:
        p, k = res.get("profile") or {}, res.get("package") or {}
        prof = (
            f"FAILED: {p['error'][:80]}"
            if "error" in p
            else f"{p['ops']}/{p.get('model_ops') or '?'} ops, sum {p['sum_us']:.0f} µs "
            f"/ invoke {_f(p['invoke_us'], '.0f')} µs"
            if p
            else "-"
        )
        if "error" in k:
            par = f"FAILED: {k['error'][:100]}"
        elif k:
            par = "; ".join(
                f"{name} "
                + (
                    f"min cos {f['min_cosine']:.6f}"
                    if f.get("min_cosine") is not None
                    else f"{f['agreement']:.2%} of {f['queries']}"
                )
                for name, f in k["feeds"].items()
            )
            par += f" (added input {', '.join(k['added_inputs'])})" if k["added_inputs"] else ""
        else:
            par = "-"
        tok = (
            f"{k['tokenizer_differing']}/{k['tokenizer_queries']} "
            + (", ".join(f"{c} {n}" for c, n in (k["tokenizer_by_cause"] or {}).items() if n) or "")
            if k.get("tokenizer_queries")
            else "-"
        )
        lines.append(f"| {res['fixture']} | {prof} | {par} | {tok} |")
    heads = [
        "float32 vs PyTorch",
        "dynamic",
        "mixed",
        "validate, every profile",
        "per-op profile",
        "MediaPipe",
    ]
    lines += ["", "Acceptance (the issue's bounds; details in acceptance_hub.json):", ""]
    lines += ["| folder | " + " | ".join(heads) + " |", "|---|" + "---|" * len(heads)]
    for res in results:
        verdicts = ["n/a" if ok is None else "PASS" if ok else "FAIL" for _, ok, _ in checks(res)]
        lines.append(
            f"| {res['fixture']} | " + " | ".join(verdicts + ["-"] * (len(heads) - len(verdicts))) + " |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help="comma-separated fixtures: " + ",".join(FIXTURES))
    ap.add_argument("--work", type=Path, help="keep builds and logs here (default: a temporary dir)")
    ap.add_argument("--reuse", action="store_true", help="reuse the builds an earlier run left in --work")
    ap.add_argument("--limit", type=int, help="validate on the first N test queries only")
    ap.add_argument("--render-only", action="store_true", help="only remake the table from the JSON (+ logs)")
    ap.add_argument(
        "--validate-all-profiles-for", default="", help="also validate these builds, e.g. float32"
    )
    a = ap.parse_args()
    chosen = [] if a.render_only else [f for f in fixtures() if not a.only or f.name in a.only.split(",")]
    extra = {m for m in a.validate_all_profiles_for.split(",") if m}
    host_line = host()
    print(f"host: {host_line}", flush=True)
    PER_FIXTURE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = a.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for fx in chosen:
            res = run_fixture(fx, work, a.limit, extra, a.reuse)
            res["host"] = host_line
            (PER_FIXTURE / f"{fx.name}.json").write_text(json.dumps(res, indent=2))
    # the table holds every fixture measured so far (runs with --only fill it in parts)
    results = [json.loads(p.read_text()) for n in FIXTURES if (p := PER_FIXTURE / f"{n}.json").is_file()]
    if a.render_only and a.work:
        for res in results:
            reread_validation(res, a.work)
    add_direct(results)
    for res in results:
        (PER_FIXTURE / f"{res['fixture']}.json").write_text(json.dumps(res, indent=2))
    md = markdown(results, host_line)
    (OUT / "acceptance_hub.md").write_text(md)
    (OUT / "acceptance_hub.json").write_text(json.dumps({"host": host_line, "results": results}, indent=2))
    print(md)
    mine = [r for r in results if r["fixture"] in {f.name for f in chosen}]
    return 0 if all(ok is not False for r in mine for _, ok, _ in checks(r)) else 1


if __name__ == "__main__":
    raise SystemExit(main())
