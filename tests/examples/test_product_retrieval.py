"""The product-retrieval example at CI size, end to end: generate (300 products), train, convert (task
retrieval, weight_only), validate on the host, package for MediaPipe with top-10 parity on every query.

One module-scoped build is shared by every test (the suite's time budget: this module adds well under a
minute on 2 cores); the full-size numbers are benchmarks/bench_retrieval.py's.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from converters.tflite_sizes import size_by_kind
from tests.support.browser import assert_report_page
from toolchain.cli.main import app

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "product_retrieval"
PRODUCTS = 300


def _script(name: str):
    spec = importlib.util.spec_from_file_location(f"product_retrieval_{name}", EXAMPLE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def example(tmp_path_factory) -> Path:
    """The reduced example: data, vocab, labels, model.keras and the shipped recipe pointed at them."""
    root = tmp_path_factory.mktemp("product_retrieval")
    assert _script("generate_data").main(["--products", str(PRODUCTS), "--out", str(root)]) == 0
    args = ["--data", str(root), "--epochs", "8", "--dim", "32", "--embed-dim", "32", "--filters", "64"]
    assert _script("train").main(args) == 0
    recipe = yaml.safe_load((EXAMPLE / "recipe.yaml").read_text())
    recipe["output"]["dir"] = "build"
    (root / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    return root


@pytest.fixture(scope="module")
def converted(example) -> dict:
    result = CliRunner().invoke(app, ["convert", "--recipe", str(example / "recipe.yaml"), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_generator_is_deterministic_and_split_by_query(tmp_path):
    gen = _script("generate_data")
    first, second = gen.generate(120, 5), gen.generate(120, 5)
    assert first == second
    products, splits = first
    assert [p["id"] for p in products] == [f"p{i:05d}" for i in range(120)]
    assert len({p["title"] for p in products}) == 120
    keys = {s: {gen.shop.tokens_key(r["text"]) for r in rows} for s, rows in splits.items()}
    assert not keys["test"] & keys["train"] and not keys["val"] & keys["train"]
    clicks = [r["product_id"] for r in splits["train"]]
    counts = sorted((clicks.count(p["id"]) for p in products), reverse=True)
    assert counts[0] > 5 * max(1, counts[len(counts) // 2])  # Zipf: the head is far above the median


def test_convert_reports_retrieval_metrics_and_passes_its_gates(converted):
    assert converted["task"] == "retrieval" and converted["quantization"]["mode"] == "weight_only"
    section = converted["evaluation"]["retrieval"]
    assert section["items"] == PRODUCTS and section["k"] == 10
    source, final = section["stages"][0], section["stages"][-1]
    assert source["stage"] == "source" and final["stage"] == "after quantization"
    assert 0.0 < source["recall_at_1"] <= source["recall_at_10"] <= 1.0
    assert source["recall_at_1"] <= source["mrr"] <= 1.0
    assert final["recall_at_10_drop_points"] <= 1.0 and final["top10_overlap_vs_source"] >= 0.95
    assert converted["ratios_vs_fp32"]["size"] > 3.0
    size = section["size"]
    assert size["item_kernel"] == {"dtype": "INT8", "shape": [PRODUCTS, 32], "scales": PRODUCTS}
    assert 0.0 < size["item_table_share"] < 1.0
    ops = converted["model"]["ops"]
    assert ops["DEQUANTIZE"] >= 4 and ops["FULLY_CONNECTED"] == 3  # every hybrid kernel is float math now
    assert "vs_source_float" not in converted["evaluation"]  # no per-label accuracy over product ids


def test_weight_only_model_ranks_the_same_in_both_host_kernel_sets(example, converted):
    from devices.hostrun import HostRunner
    from toolchain.build import load_build, text_feeds
    from toolchain.data import load_queries

    build = load_build(example / "build" / "product_retrieval")
    texts = load_queries(example / "data" / "test.jsonl", "text", "product_id").texts
    feeds = text_feeds(build.tflite, build.tokenizer.encode_batch(texts))
    xnnpack = HostRunner(build.model_bytes, xnnpack=True).scores(feeds)
    builtin = HostRunner(build.model_bytes, xnnpack=False).scores(feeds)
    assert np.abs(xnnpack - builtin).max() < 1e-3


def test_report_md_and_table_name_the_retrieval_metrics(example, converted):
    md = (example / "build" / "product_retrieval" / "report.md").read_text()
    assert f"## Retrieval quality on {converted['evaluation']['retrieval']['queries']} test queries" in md
    assert "| stage | recall@1 | recall@10 | MRR | top-10 overlap vs source |" in md


def test_validate_then_package_with_top10_parity_in_mediapipe(example, converted, tmp_path):
    build = example / "build" / "product_retrieval"
    runner = CliRunner()
    result = runner.invoke(app, ["validate", str(build), "--device", "x86-host", "--json"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["package", str(build), "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.stdout)
    assert manifest["task"] == "retrieval" and manifest["validation"]["status"] == "passed"
    low = manifest["parity"]["lowercased"]
    queries = converted["evaluation"]["retrieval"]["queries"]
    assert low["k"] == 10 and low["queries"] == queries and low["identical_top_k"] == queries
    assert "max_results 10" in manifest["parity"]["task"]
    assert manifest["server_fallback"]["threshold"] is None
    readme = (tmp_path / "product_retrieval-1.0.0" / "README.md").read_text()
    assert ".setMaxResults(10)" in readme and f"{queries} identical top-10 id lists" in readme
    page = assert_report_page(build, {"quality", "size", "build", "validation", "package"})
    sizes = size_by_kind((build / "model.tflite").read_bytes())  # weight_only: int8 weights + DEQUANTIZE
    assert sizes.kinds["dense"] >= PRODUCTS * 32 and sizes.kinds["embedding"] > 0  # through the DEQUANTIZE
    assert sizes.kinds["other constants"] < 0.01 * sizes.total
    assert "Recall by stage" in page.facts["text"] and "intents" not in page.facts["sections"]
    card = (tmp_path / "product_retrieval-1.0.0" / "model_card.md").read_text()
    assert "| stage | recall@1 | recall@10 | MRR |" in card and "No confidence threshold" in card


def test_a_recall_gate_rejects_with_its_numbers(example, converted):
    recall = converted["evaluation"]["retrieval"]["stages"][-1]["recall_at_10"]
    args = ["convert", "--recipe", str(example / "recipe.yaml"), "-o", str(example / "build" / "strict")]
    result = CliRunner().invoke(app, [*args, "--min-recall-at-10", "1.0"])
    assert result.exit_code == 1
    line = result.stderr.strip().splitlines()[-1]
    assert f"gate min_recall_at_10 failed: recall@10 {recall:.2%} is below 100.00%" in line
    assert "by stage: source recall@10" in line and "--min-recall-at-10" in line
    rejected = example / "build" / "strict.rejected" / "model.tflite"  # same recipe and seed, same bytes
    assert rejected.read_bytes() == (example / "build" / "product_retrieval" / "model.tflite").read_bytes()


def test_full_int8_build_packages_with_the_tie_break_and_the_same_top10(example, tmp_path):
    """int8 scores tie often over hundreds of items; the packaged tie-break orders them as the toolchain."""
    out = example / "build" / "int8"
    args = ["convert", "--recipe", str(example / "recipe.yaml"), "-o", str(out), "-Q", "int8", "--json"]
    args += ["--min-top10-overlap", "0.8"]  # full int8 keeps less of the top 10 (bench_retrieval.py)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["model"]["outputs"][0]["dtype"] == "INT8"
    result = CliRunner().invoke(app, ["package", str(out), "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    parity = json.loads(result.stdout)["parity"]
    assert parity["tie_break"]["rule"].startswith("among equal int8 scores the lower label index")
    low = parity["lowercased"]
    assert low["identical_top_k"] == low["queries"] == report["evaluation"]["retrieval"]["queries"]


def test_item_prune_drops_never_clicked_items_and_keeps_the_metrics_in_the_source_item_space(example):
    recipe = yaml.safe_load((example / "recipe.yaml").read_text())
    recipe.update(name="pruned", steps=[{"kind": "item_prune", "min_clicks": 1}])
    (example / "pruned.yaml").write_text(yaml.safe_dump(recipe))
    result = CliRunner().invoke(app, ["convert", "--recipe", str(example / "pruned.yaml"), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    step = report["steps"][0]
    clicked = {json.loads(line)["product_id"] for line in (example / "data" / "train.jsonl").open()}
    assert step["items_before"] == PRODUCTS and step["items_after"] == len(clicked) < PRODUCTS
    build = example / "build" / "pruned"
    kept = (build / "labels.txt").read_text().split()
    assert kept == [p for p in (example / "labels.txt").read_text().split() if p in clicked]
    section = report["evaluation"]["retrieval"]
    assert section["items"] == PRODUCTS and section["size"]["item_kernel"]["shape"] == [len(kept), 32]
    # a test query whose product was dropped is a miss, counted against the same source item list
    assert section["stages"][-1]["recall_at_10"] <= section["stages"][0]["recall_at_10"] + 0.01
    result = CliRunner().invoke(app, ["validate", str(build), "--device", "x86-host", "--json"])
    assert result.exit_code == 0, result.output  # test labels of dropped products: never predicted
