"""Vocabulary trimming on a BERT-class classifier with a realistic (30,522-piece) WordPiece vocabulary.

The fixture (tests/fixtures/make_bert30k.py: WordPiece learned deterministically on a large generated corpus,
a 2-layer hidden-64 BertForSequenceClassification fine-tuned on the shopping example, exported by torch to
a Hugging Face-style folder) is converted side by side through the CLI, with flags only:

- `untrimmed`: `--quantize dynamic` (the whole table, int8 weights);
- `trimmed`: the same with a `vocab_trim` step (the example's train queries' pieces, every special, every
  single character), `dropped: auto` as the presets have it: the tokenizer rewritten (split) or renumbered
  with the ids past the kept pieces clamped to [UNK] in the graph (unk-renumber), whichever agrees better
  with the untrimmed model on val;
- `trimmed-split`: the same with `dropped: split` (the tokenizer always rewritten), side by side;
- `trimmed-unk`: the same with `dropped: unk` (the tokenizer untouched, an int32 id remap in the graph);
- `trim-mixed`: `--preset trim-mixed` (vocab trim, then the mixed-precision search);
- `trim-int4`: `--preset trim-int4` (vocab trim, then the int4 weight search). MediaPipe 0.10.21 cannot
  load INT4 tensors, so it is packaged with `--mediapipe 1.2.3` (parity in MediaPipe 1.2.3, the metadata
  by 0.10.21), and its size is compared with the trimmed int8-weight build (`trimmed`) at top-1 agreement
  with the float model (the untrimmed source and the trimmed float model, in ai-edge-litert).

Each build is packaged for MediaPipe (`edgecomp package --format mediapipe`: metadata with the build's
vocab.txt, parity in MediaPipe 0.10.21's own TextClassifier in its isolated environment). Per row: pieces,
share of the embedding rows removed, size and gzip, test accuracy (the .tflite), MediaPipe top-1 parity,
the queries whose device ids differ from the training tokenizer's, and (trimmed builds) the share of
held-out queries that now split into other pieces. Then the issue's acceptance: >= 80% of the rows
removed, test accuracy within 0.3 pt of the untrimmed model, MediaPipe parity unchanged, and the trimmed
tokenizer and MediaPipe's tokenizer (toolchain/tokenizers/mediapipe_bert.py on the shipped vocab.txt)
giving the same ids on 100% of the plain-ASCII test queries. Writes benchmarks/results/vocab_trim.{json,md}.

    python benchmarks/bench_vocab_trim.py [--tables-only | --only BUILD ...]

`--only` re-runs just those builds and keeps the other rows of the saved results/vocab_trim.json.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT / "examples" / "shopping_intent" / "data"
OUT = ROOT / "benchmarks" / "results"
SEQ_LEN = 32
BUILDS = {  # name -> convert flags after the source
    "untrimmed": ["-Q", "dynamic"],
    "trimmed": ["-Q", "dynamic", "--recipe", "{trim_recipe}"],  # dropped: auto, as the presets
    "trimmed-split": ["-Q", "dynamic", "--recipe", "{split_recipe}"],  # dropped: split (always rewrite)
    "trimmed-unk": ["-Q", "dynamic", "--recipe", "{unk_recipe}"],  # dropped: unk (the int32 remap)
    "trim-mixed": ["--preset", "trim-mixed"],
    "trim-int4": ["--preset", "trim-int4"],
}


def cli(args: list[str], log: Path) -> tuple[int, dict | None]:
    """`edgecomp ARGS --json` in a child; (exit code, the JSON it printed)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    t0 = time.monotonic()
    p = subprocess.run(
        [sys.executable, "-m", "toolchain.cli.main", *args, "--json"], capture_output=True, text=True, env=env
    )
    log.write_text(
        f"$ edgecomp {' '.join(args)}\n# {time.monotonic() - t0:.0f} s, exit {p.returncode}\n"
        f"{p.stderr}\n{p.stdout}"
    )
    try:
        return p.returncode, json.loads(p.stdout) if p.stdout.strip() else None
    except json.JSONDecodeError:
        return p.returncode, None


def ascii_agreement(build: Path) -> tuple[int, int]:
    """(agreeing, plain-ASCII test queries): the build's tokenizer vs MediaPipe's on its vocab.txt."""
    from toolchain import data as d
    from toolchain.tokenizers.mediapipe_bert import MediaPipeBertTokenizer
    from toolchain.tokenizers.wordpiece import WordPieceTokenizer

    tok = WordPieceTokenizer((build / "tokenizer.json").read_text("utf-8"), SEQ_LEN)
    device = MediaPipeBertTokenizer.from_vocab_file(build / "vocab.txt", SEQ_LEN)
    texts = [t for t in d.load_queries(DATA / "test.jsonl").texts if t.isascii()]
    enc = tok.encode_batch(texts)
    same = sum(
        list(enc["input_ids"][i][: enc["attention_mask"][i].sum()]) == device.ids(t)
        for i, t in enumerate(texts)
    )
    return int(same), len(texts)


def run_build(name: str, folder: Path, work: Path) -> dict:
    recipes = {
        "trim_recipe": work / "trim.yaml",
        "split_recipe": work / "trim-split.yaml",
        "unk_recipe": work / "trim-unk.yaml",
    }
    flags = [f.format(**recipes) for f in BUILDS[name]]
    build = work / name / "build"
    args = ["convert", str(folder), "--seq-len", str(SEQ_LEN), "--out", str(build)]
    args += [
        "--train",
        str(DATA / "train.jsonl"),
        "--val",
        str(DATA / "val.jsonl"),
        "--test",
        str(DATA / "test.jsonl"),
    ]
    t0 = time.monotonic()
    rc, rep = cli(args + flags, work / f"{name}.convert.log")
    row: dict = {"build": name, "convert_exit": rc, "convert_s": round(time.monotonic() - t0)}
    if rc != 0 or rep is None:
        row["error"] = (work / f"{name}.convert.log").read_text()[-600:]
        return row
    ev = rep["evaluation"]
    row.update(
        pieces=rep["tokenizer"]["vocab_size"],
        size=rep["model"]["size_bytes"],
        gzip=rep["model"]["gzip_bytes"],
        fp32_size=rep["source"]["fp32_tflite_bytes"],
        test_accuracy=ev["vs_final_float"]["converted"]["accuracy"],
        source_accuracy=ev["vs_source_float"]["reference"]["accuracy"],
        int8_mac_share=rep["quantization"].get("int8_mac_share"),
        agreement_source=ev["vs_source_float"]["top1_agreement"],
        agreement_final=ev["vs_final_float"]["top1_agreement"],
        int4_params_share=(rep["quantization"].get("int4") or {}).get("int4_params_share"),
    )
    if rep["steps"]:
        step = rep["steps"][0]
        row.update(
            rows_removed=step["rows_removed_share"],
            kept_by_reason=step["kept_by_reason"],
            heldout_changed=step["heldout"]["changed_share"],
            float_before=step["effect"]["accuracy_before"],
            float_after=step["effect"]["accuracy_after"],
            dropped=step.get("dropped", "split"),
            dropped_choice=(step.get("dropped_choice") or {}).get("scores"),
        )
    four = ((rep["quantization"].get("int4") or {}).get("int4_params_share") or 0) > 0
    rc, pkg = cli(
        ["package", str(build), "--format", "mediapipe", "--out", str(work / name / "dist")]
        + (["--mediapipe", "1.2.3"] if four else []),  # 0.10.21 cannot load INT4 tensors
        work / f"{name}.package.log",
    )
    row["package_exit"] = rc
    row["bundle"] = sum(f.stat().st_size for f in (work / name / "dist").glob("*/*.tflite"))
    if rc == 0 and pkg is not None:
        row["mediapipe_agreement"] = pkg["parity"]["lowercased"]["agreement"]
        row["tokenizer_differing"] = pkg["tokenizer_parity"]["differing"]
    elif rc != 0:
        err = (work / f"{name}.package.log").read_text().strip().splitlines()
        row["package_error"] = next(
            (line for line in err if line.startswith("error:")), err[-1] if err else ""
        )
    row["ascii_agree"], row["ascii_queries"] = ascii_agreement(build)
    return row


def acceptance(rows: dict[str, dict]) -> list[tuple[str, bool, str]]:
    base, trim = rows["untrimmed"], rows["trimmed"]
    if "error" in base or "error" in trim:
        return [("untrimmed and trimmed builds", False, "a build failed: see the logs")]
    drop = (base["test_accuracy"] - trim["test_accuracy"]) * 100
    out = [
        (">= 80% of the embedding rows removed", trim["rows_removed"] >= 0.8, f"{trim['rows_removed']:.1%}"),
        ("test accuracy within 0.3 pt of untrimmed", abs(drop) <= 0.3, f"{drop:.2f} pt lower"),
        (
            "MediaPipe parity unchanged",
            trim.get("mediapipe_agreement") == base.get("mediapipe_agreement") is not None,
            f"{trim.get('mediapipe_agreement')} vs {base.get('mediapipe_agreement')}",
        ),
        (
            "trimmed tokenizer == MediaPipe's on plain-ASCII test queries",
            trim["ascii_agree"] == trim["ascii_queries"],
            f"{trim['ascii_agree']}/{trim['ascii_queries']}",
        ),
    ]
    split = rows.get("trimmed-split", {})
    if "ascii_agree" in split:  # the rewritten tokenizer (auto may have kept the whole one)
        out.append(
            (
                "rewritten tokenizer (trimmed-split) == MediaPipe's on plain-ASCII test queries",
                split["ascii_agree"] == split["ascii_queries"],
                f"{split['ascii_agree']}/{split['ascii_queries']}",
            )
        )
    mixed = rows.get("trim-mixed", {})
    out.append(
        (
            "trim-mixed with flags only",
            "error" not in mixed and mixed.get("package_exit") == 0,
            mixed.get("error", "")[-120:] or "ok",
        )
    )
    four = rows.get("trim-int4")
    if four is None:
        return out
    if "error" in four:
        return [*out, ("trim-int4 with flags only", False, four["error"][-120:])]
    ratio = four["size"] / trim["size"]
    agree = min(four["agreement_source"], four["agreement_final"])
    refused = four.get("package_error", "")
    return [
        *out,
        ("trim-int4 with flags only", True, "ok"),
        ("trim-int4 <= 0.6x the trimmed int8 build's size", ratio <= 0.6, f"{ratio:.2f}x"),
        (
            "trim-int4 agreement with the float model >= 99% (ai-edge-litert)",
            agree >= 0.99,
            f"{four['agreement_source']:.2%} vs the untrimmed source, "
            f"{four['agreement_final']:.2%} vs the trimmed float model",
        ),
        (
            "trim-int4 packaged for MediaPipe 1.2.3 (`--mediapipe 1.2.3`), top-1 parity 100%",
            not refused and four.get("mediapipe_agreement") == 1.0,
            f"package refused it: {refused[:160]}"
            if refused
            else f"packaged, parity {four.get('mediapipe_agreement')}",
        ),
    ]


# Acceptance rows measured unmet on this fixture for a reason the docs state (docs/guides/int4.md, "Where it
# does not pay"): each is still measured and printed, and reads "NO (known gap)" while unmet; it does not
# fail `make bench`. A row met reads "yes". Any other unmet row fails the bench.
KNOWN_GAPS = {
    "trim-int4 <= 0.6x the trimmed int8 build's size": "0.6x needs the table in 4 bits, which flips 1.2-2.9% "
    "of the queries in every scale form measured (docs/guides/int4.md)",
}


def verdict(what: str, ok: bool) -> str:
    return "yes" if ok else ("NO (known gap: " + KNOWN_GAPS[what] + ")" if what in KNOWN_GAPS else "NO")


def failing(checks: list[tuple[str, bool, str]]) -> list[str]:
    """The unmet rows that fail the bench: every unmet row but the known gaps."""
    return [what for what, ok, _ in checks if not ok and what not in KNOWN_GAPS]


def trim_cells(r: dict) -> tuple[str, str, str, str, str]:
    """A trimmed build's table cells (also bench_vocab_trim_spm's): rows removed, held-out queries split
    otherwise, dropped (with auto's measured choice), int8 MAC share, int4 weight share."""
    removed = f"{r['rows_removed']:.1%}" if "rows_removed" in r else "-"
    changed = f"{r['heldout_changed']:.1%}" if "heldout_changed" in r else "-"
    dropped = r.get("dropped", "-")
    if r.get("dropped_choice"):
        dropped += " (" + ", ".join(f"{k} {v:.2%}" for k, v in r["dropped_choice"].items()) + ")"
    macs = f"{r['int8_mac_share']:.0%}" if r.get("int8_mac_share") is not None else "-"
    four = f"{r['int4_params_share']:.0%}" if r.get("int4_params_share") is not None else "-"
    return removed, changed, dropped, macs, four


def markdown(rows: dict[str, dict], checks: list, facts: dict) -> str:
    lines = [
        f"Fixture: {facts['vocab_size']:,}-piece WordPiece vocabulary (learned as `tokenizers`' "
        f"WordPieceTrainer learns it, ties broken by the pieces: vocab.txt sha256 "
        f"{facts.get('vocab_sha256', '?')[:12]}) on {facts['corpus_texts']:,} generated texts, 2-layer "
        f"hidden-64 BERT classifier trained from scratch, embedding table {facts['embedding_share']:.0%} of "
        f"its {facts['parameters']:,} weights; trimmed to the example's train queries. dropped: what a "
        "dropped piece becomes (split: the tokenizer rewritten, the word split into kept pieces; "
        "unk-renumber: the tokenizer renumbered with every piece, the kept ones first, and an id past them "
        "clamped in the graph to the [UNK] row; unk: the tokenizer kept whole, the id remapped in the graph "
        "by an int32 table; `auto`, as the presets, measures split and unk-renumber on val: top-1 "
        "agreement with the untrimmed model in brackets). Accuracy: the "
        ".tflite on the 748 test queries; bundle: the packaged MediaPipe .tflite, metadata and vocab.txt "
        "inside; parity: MediaPipe 0.10.21 TextClassifier vs the toolchain, top-1 (trim-int4: MediaPipe "
        "1.2.3, `package --mediapipe 1.2.3`; 0.10.21 cannot load INT4).",
        "",
        "| build | pieces | rows removed | dropped | size | gzip | bundle | test accuracy "
        "| agreement vs float (source / trimmed) | held-out split otherwise | int8 MACs | int4 weights "
        "| MediaPipe parity | device ids differ "
        "| ASCII tokenizer agreement |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in rows.items():
        if "error" in r:
            lines.append(f"| {name} | error: {r['error'][-80:]!r} | | | | | | | | | | | | | |")
            continue
        removed, changed, dropped, macs, four = trim_cells(r)
        agree = (
            f"{r['agreement_source']:.2%} / {r['agreement_final']:.2%}" if "agreement_source" in r else "n/a"
        )
        parity = r.get("mediapipe_agreement", "refused by package" if r.get("package_error") else "n/a")
        bundle = f"{r['bundle'] / 1024:,.0f} KB" if r.get("bundle") else "-"
        lines.append(
            f"| {name} | {r['pieces']:,} | {removed} | {dropped} | {r['size'] / 1024:,.0f} KB "
            f"| {r['gzip'] / 1024:,.0f} KB | {bundle} | "
            f"{r['test_accuracy']:.2%} | {agree} | {changed} | {macs} | {four} | {parity} | "
            f"{r.get('tokenizer_differing', 'n/a')} | {r['ascii_agree']}/{r['ascii_queries']} |"
        )
    lines += ["", "| acceptance | met | measured |", "|---|---|---|"]
    lines += [f"| {what} | {verdict(what, ok)} | {value} |" for what, ok, value in checks]
    return "\n".join(lines) + "\n"


def rewrite() -> int:
    """The markdown again from results/vocab_trim.json (after a change to the tables, no new builds)."""
    saved = json.loads((OUT / "vocab_trim.json").read_text())
    checks = acceptance(saved["rows"])
    (OUT / "vocab_trim.md").write_text(markdown(saved["rows"], checks, saved["fixture"]))
    return 1 if failing(checks) else 0


def main() -> int:
    if sys.argv[1:] == ["--tables-only"]:
        return rewrite()
    only = sys.argv[2:] if sys.argv[1:2] == ["--only"] else list(BUILDS)
    from tests.fixtures.make_bert30k import ensure_model

    root = ensure_model()
    facts = json.loads((root / "fixture.json").read_text())
    saved = OUT / "vocab_trim.json"
    rows: dict[str, dict] = json.loads(saved.read_text())["rows"] if only != list(BUILDS) else {}
    with tempfile.TemporaryDirectory(prefix="bench-vocab-trim-") as tmp:
        work = Path(tmp)
        folder = root / "classifier"
        for recipe, dropped in (
            ("trim.yaml", "auto"),
            ("trim-split.yaml", "split"),
            ("trim-unk.yaml", "unk"),
        ):
            (work / recipe).write_text(
                f"name: trimmed\nsource: {{path: {folder}}}\n"
                f"steps:\n  - {{kind: vocab_trim, dropped: {dropped}}}\n"
            )
        for name in only:
            print(f"[vocab_trim] {name}", flush=True)
            rows[name] = run_build(name, folder, work)
    rows = {name: rows[name] for name in BUILDS if name in rows}
    checks = acceptance(rows)
    OUT.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps({"fixture": facts, "rows": rows, "acceptance": checks}, indent=2))
    text = markdown(rows, checks, facts)
    (OUT / "vocab_trim.md").write_text(text)
    print(text)
    bad = failing(checks)
    print(f"FAIL: {'; '.join(bad)}" if bad else "acceptance: every row met or a known gap (see above)")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
