"""Two-input BERT-family exports (input_ids, attention_mask; DistilBERT) through `edgecomp convert` and
`edgecomp package` for MediaPipe 0.10.21's own TextClassifier / TextEmbedder.

MediaPipe's BERT path feeds three int32 inputs, so the packaged model gets a third (`token_type_ids`) that no
op reads (converters/tflite_inputs.py `add_segment_input`); the parity reference is the build's own
two-input model. The classifier is converted like the three-input fixture in test_package_bert_onnx.py
(int8, the same float fallback ops) and must reach the same parity: 748/748 top-1 on raw and lower-cased
test queries. The embedder is converted in dynamic mode with no test or val split, so package checks parity
on a draw of its calibration queries.

Measured (this machine): classifier 748/748 top-1 raw and lower-cased (max score difference 0.036, under
the tie-break's bound; XNNPACK reference), test accuracy 91.58% on both id sets; embedder 500 of 5,984
calibration queries, min cosine 1.0 (max difference 4e-5).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from converters.tflite_model import parse_tflite
from tests.fixtures.session_builds import BERT_INT8_FALLBACK, DATA
from tests.support.builds import copy_build, edit_recipe
from toolchain.build import load_build
from toolchain.cli.main import app

pytestmark = pytest.mark.slow


def _cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def _convert(folder: Path, out: Path, *flags: str) -> Path:
    model = out.parent / f"{out.name}.onnx"
    shutil.copy(folder / "model.onnx", model)  # alone: the tokenizer comes from a flag
    args = ("convert", str(model), "--seq-len", "32", "--out", str(out), "--json")
    code, stdout, stderr = _cli(*args, "--tokenizer", str(folder / "tokenizer.json"), *flags)
    assert code == 0, stderr[-2000:]
    report = json.loads(stdout)
    assert report["tokenizer"]["kind"] == "wordpiece"
    assert [i["name"] for i in report["model"]["inputs"]] == [
        "serving_default_attention_mask:0",
        "serving_default_input_ids:0",
    ]
    return out


@pytest.fixture(scope="module")
def builds(two_input_models, tmp_path_factory) -> dict[str, Path]:
    """The classifier in int8 (test/val/calibration splits) and the embedder in dynamic mode with only a
    calibration split: no test or val."""
    root = tmp_path_factory.mktemp("two-input")
    recipe = root / "int8.yaml"
    recipe.write_text(
        f"quantization: {{mode: int8, float_fallback_ops: [{BERT_INT8_FALLBACK}]}}\nsource: {{path: x}}\n"
    )
    classifier = _convert(
        two_input_models.classifier, root / "classifier", "--recipe", str(recipe),
        "--labels", str(two_input_models.classifier / "labels.txt"), "--test", str(DATA / "test.jsonl"),
        "--val", str(DATA / "val.jsonl"), "--calibration", str(DATA / "train.jsonl"),
    )  # fmt: skip
    embedder = _convert(
        two_input_models.embedder, root / "embedder", "--task", "embedding", "--quantize", "dynamic",
        "--calibration", str(DATA / "train.jsonl"),
    )  # fmt: skip
    return {"classifier": classifier, "embedder": embedder}


@pytest.fixture(scope="module")
def packaged(builds, tmp_path_factory) -> dict[str, tuple[dict, Path]]:
    """Each build packaged for MediaPipe through the CLI: (manifest, the packaged .tflite)."""
    out = tmp_path_factory.mktemp("two-input-dist")
    made = {}
    for name, build in builds.items():
        code, stdout, stderr = _cli("package", str(build), "--out", str(out), "--json")
        assert code == 0, stderr[-2000:]
        made[name] = (json.loads(stdout), out / f"{name}-1.0.0" / f"{name}.tflite")
    return made


def _added_input(manifest: dict) -> None:
    """The manifest records the third input: bound to segment_ids, read by no op."""
    parity = manifest["parity"]
    assert parity["input_names"]["segment_ids"] == "token_type_ids"
    assert parity["int32_inputs"] == ["serving_default_attention_mask:0", "serving_default_input_ids:0"]
    (added,) = parity["added_inputs"]
    assert added["name"] == "token_type_ids" and added["role"] == "segment_ids"
    assert added["consumers"] == 0 and added["dtype"] == "INT32" and added["shape"] == [1, 32]
    inputs = manifest["model"]["inputs"]
    assert len(inputs) == 3 and all(i["dtype"] == "INT32" and i["shape"] == [1, 32] for i in inputs)


def test_two_input_classifier_packages_with_three_input_parity(two_input_models, packaged) -> None:
    m, model = packaged["classifier"]
    _added_input(m)
    parity = m["parity"]
    for feed in ("raw", "lowercased"):  # what test_package_bert_onnx asserts of the three-input fixture
        assert parity[feed]["queries"] == 748 and parity[feed]["agreement"] == 1.0, parity[feed]
    assert parity["task"].startswith("TextClassifier") and parity["tie_break"]["int8_step"] > 0
    tok = m["tokenizer_parity"]
    assert tok["queries"] == 748 and tok["differing"] == 0
    assert tok["effect"]["train_ids_accuracy"] == tok["effect"]["device_ids_accuracy"] > 0.85
    assert two_input_models.facts["test_accuracy_torch"] > 0.85
    meta = json.loads((model.parent / "metadata.json").read_text())["subgraph_metadata"][0]
    assert [t["name"] for t in meta["input_tensor_metadata"]] == ["mask", "ids", "segment_ids"]
    assert "`token_type_ids`: an input added for MediaPipe" in (model.parent / "README.md").read_text()
    code, _, stderr = _cli("inspect", str(model))  # the bundle checks out against its manifest
    assert code == 0, stderr[-1500:]


def test_two_input_embedder_without_a_test_split_packages_for_textembedder(builds, packaged) -> None:
    m, _ = packaged["embedder"]
    assert load_build(builds["embedder"]).recipe.data.test is None
    _added_input(m)
    parity = m["parity"]
    assert m["task"] == "embedder" and parity["task"].startswith("TextEmbedder")
    assert Path(parity["split"]).name == "train.jsonl"  # the calibration split
    assert parity["split_draw"].startswith("500 of 5984 queries, drawn like calibration")
    for feed in ("raw", "lowercased"):
        assert parity[feed]["queries"] == 500 and parity[feed]["min_cosine"] >= 0.999, parity[feed]
    assert m["tokenizer_parity"]["queries"] == 500


def _outputs(model: bytes, ids: np.ndarray, segments: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=model)
    interp.allocate_tensors()
    by_name = {d["name"]: d["index"] for d in interp.get_input_details()}
    rows = []
    for row in range(len(ids)):
        interp.set_tensor(by_name["serving_default_input_ids:0"], ids[row : row + 1])
        interp.set_tensor(
            by_name["serving_default_attention_mask:0"], (ids[row : row + 1] != 0).astype(np.int32)
        )
        interp.set_tensor(by_name["token_type_ids"], segments[row : row + 1])
        interp.invoke()
        rows.append(interp.get_tensor(interp.get_output_details()[0]["index"])[0].copy())
    return np.array(rows)


def test_the_added_segment_input_has_no_effect(builds, packaged) -> None:
    """In LiteRT, any segment ids give bit-identical outputs; and no op reads the tensor."""
    rng = np.random.default_rng(0)
    for name, (_, path) in packaged.items():
        model = path.read_bytes()
        info = parse_tflite(model)
        segment = next(i for i in info.inputs if info.tensors[i].name == "token_type_ids")
        assert not [op.op for op in info.ops if segment in op.inputs]
        tok = load_build(builds[name]).tokenizer
        texts = [json.loads(line)["text"] for line in (DATA / "test.jsonl").read_text().splitlines()[:60]]
        ids = tok.encode_batch(texts)["input_ids"].astype(np.int32)
        zeros = _outputs(model, ids, np.zeros_like(ids))
        for segments in (
            np.ones_like(ids),
            rng.integers(0, 2, ids.shape),
            rng.integers(0, 2**31 - 1, ids.shape),
        ):
            assert np.array_equal(zeros, _outputs(model, ids, segments.astype(np.int32))), name
        assert zeros.std(0).max() > 0  # real outputs, not a constant


def test_no_query_split_refusals(builds, tmp_path: Path) -> None:
    """An embedder with no query split at all, and a classifier with no labelled split: exit 2, nothing
    written."""
    embedder = copy_build(builds["embedder"], tmp_path / "e")
    edit_recipe(embedder, lambda r: r["data"].update(calibration=None, train=None))
    out = tmp_path / "dist"
    code, _, stderr = _cli("package", str(embedder), "--out", str(out))
    assert code == 2 and "has no query split (data.test, val, calibration or train)" in stderr, stderr
    assert "hint: re-convert with --test or --calibration" in stderr
    classifier = copy_build(builds["classifier"], tmp_path / "c")
    edit_recipe(classifier, lambda r: r["data"].update(test=None, val=None))
    code, _, stderr = _cli("package", str(classifier), "--out", str(out))
    assert code == 2 and "has no test or val split (a classifier's parity" in stderr, stderr
    assert not out.exists()
