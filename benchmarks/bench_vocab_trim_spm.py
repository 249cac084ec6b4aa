"""Vocabulary trimming on a multilingual SentencePiece classifier with a realistic (~32k-piece) vocabulary.

The fixture (tests/fixtures/make_xlmr30k.py: a Unigram SentencePiece model learned on a large generated
corpus in six scripts, the XLM-R-style 2-layer hidden-64 classifier trained on the multilingual queries
of English, German, French and Russian, two inputs) is converted side by side through the CLI:

- `untrimmed`: `--quantize dynamic` (the whole table, int8 weights);
- `trimmed`: the same with a `vocab_trim` step on the train queries (`dropped: auto`, as the presets: the
  .model and tokenizer.json cut to the kept pieces, or the whole ones with the ids remapped in the graph,
  whichever agrees better with the untrimmed model on val);
- `trimmed-split`: `dropped: split` (the .model and tokenizer.json always cut);
- `trimmed-unk`: `dropped: unk` (the tokenizer and the .model whole, an int32 id remap in the graph: what
  every SentencePiece trim was before 2026-12-07);
- `trim-mixed`, `trim-int4`: `--preset trim-mixed` / `--preset trim-int4`, flags only (the int4 build
  packaged with `--mediapipe 1.2.3`: MediaPipe 0.10.21 cannot load INT4 tensors).

Each build is packaged for MediaPipe (`edgecomp package`: the SentencePiece metadata with the build's
.model, packaging's raw-id table and <s>/</s> placement in the graph, parity in MediaPipe 0.10.21's own
TextClassifier, raw and lower-cased queries). Per row: pieces, the share of embedding rows removed, the
.tflite, the .model file, the packaged .tflite (the .model inside), test accuracy, agreement with the
untrimmed float model, MediaPipe parity, and the test queries whose device ids (MediaPipe's lower-cased
path) differ from the training ids, by cause. Acceptance: >= 80% of the rows removed, test accuracy within
0.3 pt of the untrimmed build, MediaPipe parity unchanged, no query whose device ids differ for a cause
other than MediaPipe's lower-casing (the same count as untrimmed), the cut .model and the bundle smaller
than the remap route's, and both presets packaged with MediaPipe parity 100%. Writes
benchmarks/results/vocab_trim_spm.{json,md}.

    python benchmarks/bench_vocab_trim_spm.py
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.bench_vocab_trim import cli, trim_cells  # noqa: E402

OUT = ROOT / "benchmarks" / "results"
SEQ_LEN = 32
BUILDS = {  # name -> the vocab_trim step's `dropped` (a recipe), or a preset
    "untrimmed": None,
    "trimmed": "auto",
    "trimmed-split": "split",
    "trimmed-unk": "unk",
    "trim-mixed": "--preset trim-mixed",
    "trim-int4": "--preset trim-int4",
}


def run_build(name: str, root: Path, work: Path) -> dict:
    data, folder, build = root / "data", root / "classifier", work / name / "build"
    args = ["convert", str(folder), "--seq-len", str(SEQ_LEN), "--out", str(build)]
    args += ["--train", str(data / "train.jsonl"), "--val", str(data / "val.jsonl")]
    args += ["--test", str(data / "test.jsonl"), "--calibration", str(data / "train.jsonl")]
    how = BUILDS[name]
    if how is not None and how.startswith("--preset"):
        args += how.split()
    else:
        args += ["-Q", "dynamic"]
    if how is not None and not how.startswith("--preset"):
        recipe = work / f"{name}.yaml"
        recipe.write_text(
            f"name: {name}\nsource: {{path: {folder}}}\n"
            f"steps:\n  - {{kind: vocab_trim, splits: [train], dropped: {BUILDS[name]}}}\n"
        )
        args += ["--recipe", str(recipe)]
    t0 = time.monotonic()
    rc, rep = cli(args, work / f"{name}.convert.log")
    row: dict = {"build": name, "convert_exit": rc, "convert_s": round(time.monotonic() - t0)}
    if rc != 0 or rep is None:
        row["error"] = (work / f"{name}.convert.log").read_text()[-600:]
        return row
    ev = rep["evaluation"]["vs_source_float"]
    row.update(
        pieces=rep["tokenizer"]["vocab_size"],
        size=rep["model"]["size_bytes"],
        spm_bytes=(build / "sentencepiece.model").stat().st_size,
        test_accuracy=ev["converted"]["accuracy"],
        agreement_source=ev["top1_agreement"],
        int8_mac_share=rep["quantization"].get("int8_mac_share"),
        int4_params_share=(rep["quantization"].get("int4") or {}).get("int4_params_share"),
    )
    if rep["steps"]:
        step = rep["steps"][0]
        row.update(
            rows_removed=step["rows_removed_share"],
            dropped=step["dropped"],
            dropped_choice=(step.get("dropped_choice") or {}).get("scores"),
            heldout_changed=step["heldout"]["changed_share"],
            method=step["method"],
        )
    four = (row["int4_params_share"] or 0) > 0  # MediaPipe 0.10.21 cannot load INT4 tensors
    flags = ["--mediapipe", "1.2.3"] if four else []
    rc, pkg = cli(
        ["package", str(build), "--out", str(work / name / "dist"), *flags], work / f"{name}.package.log"
    )
    row["package_exit"] = rc
    if rc != 0 or pkg is None:
        row["package_error"] = (work / f"{name}.package.log").read_text()[-400:]
        return row
    row["bundle"] = sum(f.stat().st_size for f in (work / name / "dist").glob("*/*.tflite"))
    row["mediapipe"] = {feed: pkg["parity"][feed]["agreement"] for feed in ("raw", "lowercased")}
    row["mediapipe_runtime"] = pkg["parity"]["runtime"]
    row["device_ids_differ"] = pkg["tokenizer_parity"]["by_cause"]
    row["test_queries"] = pkg["parity"]["raw"]["queries"]
    return row


def acceptance(rows: dict[str, dict]) -> list[tuple[str, bool, str]]:
    base, trim, unk = rows["untrimmed"], rows["trimmed"], rows.get("trimmed-unk", {})
    if any("error" in r or "package_error" in r for r in (base, trim)):
        return [("untrimmed and trimmed builds convert and package", False, "a build failed: see the logs")]
    drop = (base["test_accuracy"] - trim["test_accuracy"]) * 100
    other = {k: v for k, v in trim["device_ids_differ"].items() if k != "case"}
    out = [
        (">= 80% of the embedding rows removed", trim["rows_removed"] >= 0.8, f"{trim['rows_removed']:.1%}"),
        ("test accuracy within 0.3 pt of untrimmed", abs(drop) <= 0.3, f"{drop:.2f} pt lower"),
        (
            "MediaPipe parity unchanged (raw and lower-cased)",
            trim["mediapipe"] == base["mediapipe"],
            f"{trim['mediapipe']} vs {base['mediapipe']}",
        ),
        (
            "device ids differ only by MediaPipe's lower-casing, as untrimmed",
            not any(other.values()) and trim["device_ids_differ"] == base["device_ids_differ"],
            f"{trim['device_ids_differ']} vs {base['device_ids_differ']}",
        ),
    ]
    split = rows.get("trimmed-split", {})
    if "bundle" in split and "bundle" in unk:
        out.append(
            (
                "trimmed-split: .model and bundle smaller than trimmed-unk's (the remap route)",
                split["spm_bytes"] < unk["spm_bytes"] and split["bundle"] < unk["bundle"],
                f".model {split['spm_bytes'] / 1024:,.0f} vs {unk['spm_bytes'] / 1024:,.0f} KB, bundle "
                f"{split['bundle'] / 1024:,.0f} vs {unk['bundle'] / 1024:,.0f} KB",
            )
        )
    for preset in ("trim-mixed", "trim-int4"):
        r = rows.get(preset, {})
        ok = "bundle" in r and r["mediapipe"] == {"raw": 1.0, "lowercased": 1.0}
        got = r.get("error", r.get("package_error", ""))[-120:] or (
            f"{r['size'] / 1024:,.0f} KB, {r['agreement_source']:.2%} agreement, {r['mediapipe_runtime']} "
            f"parity {r['mediapipe']}"
        )
        out.append((f"--preset {preset} with flags only, packaged, MediaPipe parity 100%", ok, got))
    return out


def markdown(rows: dict[str, dict], checks: list, facts: dict) -> str:
    lines = [
        f"Fixture: {facts['vocab_size']:,}-piece Unigram SentencePiece vocabulary (learned with "
        f"`sentencepiece` on {facts['corpus_texts']:,} generated texts in six scripts; .model sha256 "
        f"{facts['spm_sha256'][:12]}), XLM-R-style 2-layer hidden-64 classifier trained from scratch on the "
        f"multilingual queries (English, German, French, Russian), embedding table "
        f"{facts['embedding_share']:.0%} of its {facts['parameters']:,} weights; trimmed to the train "
        "queries. dropped: split cuts tokenizer.json and the .model to the kept pieces; unk keeps both whole "
        "and remaps ids in the graph (int32, 4 bytes per piece); auto measures the two on val (top-1 "
        "agreement with the untrimmed model in brackets). Accuracy: the .tflite on the test queries; "
        "bundle: the packaged MediaPipe .tflite (the .model and packaging's raw-id table inside); parity: "
        "MediaPipe 0.10.21 TextClassifier vs the toolchain (trim-int4: MediaPipe 1.2.3), top-1, raw / "
        "lower-cased queries; device ids "
        "differ: test queries whose MediaPipe ids differ from the training ids, by cause (case: "
        "MediaPipe lower-cases A-Z).",
        "",
        "| build | pieces | rows removed | dropped | .tflite | .model | bundle | test accuracy "
        "| agreement vs untrimmed float | held-out split otherwise | int8 MACs | int4 weights "
        "| MediaPipe parity | device ids differ |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, r in rows.items():
        if "error" in r:
            lines.append(f"| {name} | error: {r['error'][-80:]!r} | | | | | | | | | | | | |")
            continue
        removed, changed, dropped, macs, four = trim_cells(r)
        bundle = f"{r['bundle'] / 1024:,.0f} KB" if r.get("bundle") else "refused"
        mp = r.get("mediapipe", {})
        parity = f"{mp['raw']:.2%} / {mp['lowercased']:.2%}" if mp else "-"
        if mp and r.get("mediapipe_runtime", "").endswith("1.2.3"):
            parity += " (MediaPipe 1.2.3)"
        differ = ", ".join(f"{k} {v}" for k, v in r.get("device_ids_differ", {}).items())
        lines.append(
            f"| {name} | {r['pieces']:,} | {removed} | {dropped} | {r['size'] / 1024:,.0f} KB "
            f"| {r['spm_bytes'] / 1024:,.0f} KB | {bundle} | {r['test_accuracy']:.2%} "
            f"| {r['agreement_source']:.2%} | {changed} | {macs} | {four} | {parity} | {differ} |"
        )
    lines += ["", "| acceptance | met | measured |", "|---|---|---|"]
    lines += [f"| {what} | {'yes' if ok else 'NO'} | {value} |" for what, ok, value in checks]
    return "\n".join(lines) + "\n"


def main() -> int:
    from tests.fixtures.make_xlmr30k import ensure_model

    root = ensure_model()
    facts = json.loads((root / "fixture.json").read_text())
    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench-vocab-trim-spm-") as tmp:
        for name in BUILDS:
            print(f"[vocab_trim_spm] {name}", flush=True)
            rows[name] = run_build(name, root, Path(tmp))
    checks = acceptance(rows)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "vocab_trim_spm.json").write_text(
        json.dumps({"fixture": facts, "rows": rows, "acceptance": checks}, indent=2)
    )
    text = markdown(rows, checks, facts)
    (OUT / "vocab_trim_spm.md").write_text(text)
    print(text)
    bad = [what for what, ok, _ in checks if not ok]
    print(f"FAIL: {'; '.join(bad)}" if bad else "acceptance: every row met")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
