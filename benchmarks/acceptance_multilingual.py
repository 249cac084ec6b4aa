"""Issue 24's multilingual line: MediaPipe's lower-casing against a cased XLM-R model, and
`convert --adapt-lowercase`, which removes its cost by changing the model, measured in MediaPipe itself.

MediaPipe's SentencePiece path ASCII-lower-cases every query (bert_preprocessor_calculator.cc); the
multilingual fixture (tests/fixtures/make_xlmr_model.py) was trained on cased text, so its device ids differ
from its training ids on 102 of 261 test queries and 3 predictions flip: MediaPipe agrees with the toolchain
on the training ids on 98.85% (the acceptance asks >= 99%). The flips are the model's, not the packaging's:
MediaPipe reproduces the model on the ids it feeds on 261/261.

`--adapt-lowercase` changes the model, openly (toolchain/sources/hub_adapt.py): before the export, a brief
distillation of the cased model into a copy of itself that sees each train query both as it is and
ASCII-lower-cased, the target being the cased model's own output on the query as it is (no labels). The
report's `hub.adaptation` gives accuracy and cased-vs-lower-cased agreement before and after. Both builds
(the folder as it is, and adapted) go through `edgecomp convert --quantize mixed` and `edgecomp package
--format mediapipe` as children; the table gives MediaPipe's agreement with the toolchain on training ids
(`parity.vs_training_ids`). Writes benchmarks/results/acceptance_multilingual.{json,md}.

    python -m benchmarks.acceptance_multilingual [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.acceptance_hub import cli, host  # noqa: E402 - after the path insert

OUT = ROOT / "benchmarks" / "results"


def through_cli(folder: Path, data: Path, work: Path, tag: str, flags: list[str]) -> dict:
    """`edgecomp convert --quantize mixed` + `package --format mediapipe`: accuracy, MediaPipe parity."""
    build = work / f"{tag}-mixed"
    args = ["convert", str(folder), "--seq-len", "32", "--quantize", "mixed", "--seed", "0", *flags]
    args += ["--train", str(data / "train.jsonl"), "--test", str(data / "test.jsonl")]
    args += ["--calibration", str(data / "train.jsonl"), "--out", str(build)]
    rc, report, err = cli(args, work / f"{tag}.convert.log")
    if rc != 0 or report is None:
        return {"error": f"convert: {err}"}
    ev = report["evaluation"]["vs_source_float"]
    row = {"bytes": report["model"]["size_bytes"], "accuracy": ev["converted"]["accuracy"]}
    row["adaptation"] = (report.get("hub") or {}).get("adaptation")
    rc, m, err = cli(["package", str(build), "--out", str(work / f"{tag}-dist")], work / f"{tag}.package.log")
    if rc != 0 or m is None:
        return {**row, "error": f"package: {err}"}
    par, tp = m["parity"], m["tokenizer_parity"]
    row.update(
        mediapipe_raw=par["raw"]["agreement"],
        vs_training_ids=par["vs_training_ids"]["agreement"],
        vs_training_ids_flips=par["vs_training_ids"]["queries"]
        - round(par["vs_training_ids"]["agreement"] * par["vs_training_ids"]["queries"]),
        queries=par["raw"]["queries"],
        ids_differing=tp["differing"],
        accuracy_device_ids=tp["effect"].get("device_ids_accuracy"),
        accuracy_train_ids=tp["effect"].get("train_ids_accuracy"),
        flipped_by_lowercasing=tp["effect"].get("flipped_predictions"),
    )
    return row


def markdown(res: dict) -> str:
    adapt = res["cli"]["after"].get("adaptation") or {}
    lines = [
        f"Host: {res['host']}. Measured {res['date']}; the fine-tune took {adapt.get('seconds', 0):.0f} s "
        f"({adapt.get('epochs')} epochs, {adapt.get('train_queries')} train queries, no labels) in "
        "edgecomp's PyTorch environment.",
        "",
        "The model in PyTorch (float), report `hub.adaptation`, test split:",
        "",
        "| model | accuracy, cased text | accuracy, lower-cased | top-1 agreement cased vs lower-cased |",
        "|---|---:|---:|---:|",
    ]
    for name, label in (("before", "the folder's model (cased training)"), ("after", "--adapt-lowercase")):
        m = adapt.get(name)
        if m:
            cased, lower = m["accuracy_cased"], m["accuracy_lowercased"]
            lines.append(f"| {label} | {cased:.2%} | {lower:.2%} | {m['agreement']:.2%} |")
    lines += [
        "",
        "Through the CLI (`convert --quantize mixed`, `package --format mediapipe`), test split:",
        "",
        "| model | size | accuracy (.tflite, training ids) | MediaPipe vs model on device ids "
        "| ids differing on device | MediaPipe vs toolchain on training ids |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, label in (("before", "the folder as it is"), ("after", "--adapt-lowercase")):
        c = res["cli"][name]
        if "error" in c:
            lines.append(f"| {label} | FAILED: {c['error'][:120]} | | | | |")
            continue
        lines.append(
            f"| {label} | {c['bytes'] / 1024:.0f} KB | {c['accuracy']:.2%} | {c['mediapipe_raw']:.2%} "
            f"| {c['ids_differing']}/{c['queries']} | {c['vs_training_ids']:.2%} "
            f"({c['vs_training_ids_flips']} flips) |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, help="keep builds and logs here (default: a temporary dir)")
    a = ap.parse_args()
    # reason: the fixture builder imports torch; `--help` stays instant
    from tests.fixtures.common import default_root
    from tests.fixtures.make_xlmr_model import ensure_xlmr_model
    from toolchain.base.atomic import locked

    with locked(default_root() / ".fixtures.lock"):
        xlmr = ensure_xlmr_model()
    folder, data = xlmr / "transformers", xlmr / "data"
    res: dict = {"host": host(), "date": time.strftime("%Y-%m-%d")}
    with tempfile.TemporaryDirectory() as tmp:
        work = a.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        res["cli"] = {
            "before": through_cli(folder, data, work, "as-is", []),
            "after": through_cli(folder, data, work, "adapted", ["--adapt-lowercase"]),
        }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "acceptance_multilingual.json").write_text(json.dumps(res, indent=2))
    md = markdown(res)
    (OUT / "acceptance_multilingual.md").write_text(md)
    print(md)
    return 0 if res["cli"]["after"].get("vs_training_ids", 0) >= 0.99 else 1


if __name__ == "__main__":
    raise SystemExit(main())
