"""`edgecomp convert` + `edgecomp package` on the transformers-exported BERT fixtures (tests/fixtures/
make_bert_models.py): int8 via onnx2tf with float fallback ops, packaged for MediaPipe 0.10.21's own
TextClassifier / TextEmbedder through the CLI, plus the tokenizer-mismatch gate's exit code.

Measured (this machine): classifier 748/748 top-1 on raw and lower-cased test queries (reference: XNNPACK
kernels, which MediaPipe reproduced; builtin kernels would flip 2 near-ties), 3 exact int8 ties resolved by
the tie-break; embedder min cosine 1.0 (max difference < 1e-6); tokenizer parity 0/748 on the ASCII split,
accuracy 90.37% on both id sets.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from converters.tflite_model import read_tflite
from tests.support.browser import assert_report_page
from tests.support.builds import copy_build, edit_recipe
from toolchain.cli.main import app

pytestmark = pytest.mark.slow

DATA = Path(__file__).resolve().parents[2] / "examples" / "shopping_intent" / "data"
FALLBACK = "SOFTMAX,MUL,ADD,SUB,DIV,EXP,ABS,NEG,MEAN,SQUARED_DIFFERENCE,RSQRT,SUM,SELECT_V2,BATCH_MATMUL"
TRICKY = ["café shoes", "Éclair phone", "red\u00a0dress", "red\u200bdress", "é" * 60 + " shoes"]


def _cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def builds(bert_models, bert_int8_classifier, tmp_path_factory) -> dict[str, Path]:
    """The classifier's int8 build is shared with test_wordpiece_models (conftest); the embedder's is here."""
    root = tmp_path_factory.mktemp("bert-onnx")
    recipe = root / "int8.yaml"
    recipe.write_text(
        f"quantization: {{mode: int8, float_fallback_ops: [{FALLBACK}]}}\nsource: {{path: x}}\n"
    )
    folder = bert_models.embedder
    model = root / "embedder.onnx"
    shutil.copy(folder / "model.onnx", model)
    code, stdout, stderr = _cli(
        "convert", str(model), "--seq-len", "32", "--out", str(root / "embedder"), "--json",
        "--recipe", str(recipe), "--tokenizer", str(folder / "tokenizer.json"), "--task", "embedding",
        "--test", str(DATA / "test.jsonl"), "--val", str(DATA / "val.jsonl"),
        "--calibration", str(DATA / "train.jsonl"),
    )  # fmt: skip
    assert code == 0, stderr[-2000:]
    assert json.loads(stdout)["tokenizer"]["kind"] == "wordpiece"
    # a copy of the shared classifier build: package records its section in the build
    return {"classifier": copy_build(bert_int8_classifier, root), "embedder": root / "embedder"}


def test_bert_classifier_package_cli(builds, tmp_path: Path) -> None:
    code, stdout, stderr = _cli("package", str(builds["classifier"]), "--out", str(tmp_path), "--json")
    assert code == 0, stderr[-2000:]
    m = json.loads(stdout)
    parity = m["parity"]
    for feed in ("raw", "lowercased"):
        assert parity[feed]["queries"] == 748 and parity[feed]["agreement"] == 1.0, parity[feed]
    assert parity["reference"]["kernels"] in ("xnnpack", "builtin")
    assert len(parity["int32_inputs"]) == 3 and all(i["dtype"] == "INT32" for i in m["model"]["inputs"])
    assert parity["dequantized_outputs"] and parity["tie_break"]["int8_step"] > 0
    tok = m["tokenizer_parity"]
    assert tok["queries"] == 748 and tok["differing"] == 0 and tok["differing_share"] == 0.0
    assert tok["effect"]["train_ids_accuracy"] == tok["effect"]["device_ids_accuracy"] > 0.85
    assert m["tokenizer"]["kind"] == "wordpiece" and m["tokenizer"]["app_must_lowercase"] is False
    page = assert_report_page(builds["classifier"], {"package"})  # WordPiece: the tokenizer parity block
    assert "0 queries (0.00%) get other ids on the device than in training" in page.facts["text"]
    assert "model_card.md" in m["files"]
    card = tmp_path / f"{m['name']}-{m['version']}" / "model_card.md"
    assert f"- device vs training tokenizer: {tok['summary']}" in card.read_text()


def test_bert_embedder_package_cli(builds, tmp_path: Path) -> None:
    code, stdout, stderr = _cli("package", str(builds["embedder"]), "--out", str(tmp_path), "--json")
    assert code == 0, stderr[-2000:]
    m = json.loads(stdout)
    assert m["task"] == "embedder" and m["parity"]["task"].startswith("TextEmbedder")
    for feed in ("raw", "lowercased"):
        assert m["parity"][feed]["queries"] == 748 and m["parity"][feed]["min_cosine"] >= 0.999


def test_tokenizer_mismatch_gate_exits_1(builds, tmp_path: Path) -> None:
    build = copy_build(builds["classifier"], tmp_path)
    rows = [json.loads(ln) for ln in (DATA / "test.jsonl").read_text().splitlines()][:95]
    rows += [{"text": t, "intent": rows[0]["intent"]} for t in TRICKY]
    split = tmp_path / "tricky.jsonl"
    split.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    edit_recipe(build, lambda recipe: recipe["data"].update(test=str(split)))
    args = ("package", str(build), "--out", str(tmp_path / "dist"), "--json")
    code, _, stderr = _cli(*args, "--max-tokenizer-mismatch", "0.01")
    assert code == 1 and "other ids than training on 5 of 100 queries (5.00% >" in stderr, stderr[-1500:]
    assert "long_word 1, format_char 1, unicode_whitespace 1, non_ascii_uppercase 1, accent 1" in stderr
    assert not (tmp_path / "dist").exists()
    code, stdout, stderr = _cli(*args, "--max-tokenizer-mismatch", "0.05")
    assert code == 0, stderr[-2000:]
    assert json.loads(stdout)["tokenizer_parity"]["by_cause"]["accent"] == 1


@pytest.mark.parametrize("dropped", ["unk", "unk-renumber"])
def test_a_wordpiece_trim_read_as_unk_packages_with_the_whole_vocab(
    bert_models, tmp_path: Path, dropped: str
) -> None:
    """vocab_trim `dropped: unk`: the tokenizer stays whole, the ids are remapped in the graph; `dropped:
    unk-renumber`: the tokenizer renumbered (every piece, the kept ones first), the ids clamped in the graph.
    MediaPipe reads the whole vocab.txt and its TextClassifier agrees with the toolchain on every query."""
    recipe = tmp_path / "trim.yaml"
    recipe.write_text(
        f"source: {{path: x}}\nsteps:\n  - {{kind: vocab_trim, splits: [train], dropped: {dropped}}}\n"
    )
    folder = bert_models.classifier
    code, stdout, stderr = _cli(
        "convert", str(folder), "--seq-len", "32", "--out", str(tmp_path / "build"), "--json",
        "-Q", "dynamic", "--recipe", str(recipe), "--train", str(DATA / "train.jsonl"),
        "--test", str(DATA / "test.jsonl"),
    )  # fmt: skip
    assert code == 0, stderr[-2000:]
    rep = json.loads(stdout)
    step = rep["steps"][0]
    whole = len((folder / "vocab.txt").read_text("utf-8").splitlines())
    assert step["dropped"] == dropped and step["vocab_after"] < whole == rep["tokenizer"]["vocab_size"]
    assert step["vocab_before"] == whole
    shipped, original = ((d / "vocab.txt").read_text("utf-8") for d in (tmp_path / "build", folder))
    if dropped == "unk":
        assert step["method"].startswith("in-graph id remap") and shipped == original
    else:  # the same pieces, the kept ones first; no int32 remap table in the .tflite
        lines = shipped.splitlines()
        assert step["method"].startswith("tokenizer renumbered") and lines[0] == "[PAD]"
        assert sorted(lines) == sorted(original.splitlines())
    tensors = read_tflite(tmp_path / "build" / "model.tflite").tensors
    remaps = [t for t in tensors if t.dtype == "INT32" and tuple(t.shape) == (whole,)]
    assert len(remaps) == (1 if dropped == "unk" else 0)  # the int32 remap, 4 bytes per piece, or none
    code, stdout, stderr = _cli("package", str(tmp_path / "build"), "--out", str(tmp_path / "dist"), "--json")
    assert code == 0, stderr[-2000:]
    m = json.loads(stdout)
    for feed in ("raw", "lowercased"):
        assert m["parity"][feed]["queries"] == 748 and m["parity"][feed]["agreement"] == 1.0, m["parity"][
            feed
        ]
    assert m["tokenizer_parity"]["differing"] == 0
