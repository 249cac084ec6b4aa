"""report.html in a real headless browser (Debian's chromium-headless-shell, tests/support/browser.py):
written at convert, re-rendered by validate, profile and package with their sections; no console error,
no request beyond the file itself (and the check itself sees a page that logs an error or fetches). And
model_card.md in the packaged example's bundle; the size breakdown by tensor kind adds up.

The shared session builds are read-only: the example build is copied before the stages write into it;
the ONNX embedder is only read. The retrieval and the rejected build are checked where those builds are
made (tests/examples/test_product_retrieval.py, tests/e2e/test_gate_rejected.py).
"""

from __future__ import annotations

import json

import pytest

from tests.support.browser import assert_report_page, load
from tests.support.builds import copy_build

pytestmark = pytest.mark.slow  # the shared builds; the browser is a system package `make test` installs
CONVERT_SECTIONS = {"quality", "intents", "size", "build"}


def test_the_classifier_report_gains_each_stage_and_the_bundle_a_model_card(example_build, tmp_path):
    from devices.profiles.schema import select_profiles
    from devices.profiling.profiler import ProfileOptions
    from toolchain.device_stages import profile_target, validate_target
    from toolchain.package.packager import package
    from toolchain.package.types import PackageOptions

    build_dir = copy_build(example_build.dir, tmp_path)
    page = assert_report_page(build_dir, CONVERT_SECTIONS)
    assert not {"validation", "profile", "package"} & set(page.facts["sections"])
    text = page.facts["text"]
    assert "Accuracy by stage" in text and "after quantization (.tflite)" in text
    assert "product_search_brand (n=34)" in text  # the per-intent change with its support
    for kind in ("embedding", "dense", "bias", "metadata", "graph"):
        assert f"\n{kind}\t" in text, kind  # the size table, one row per tensor kind

    validate_target(build_dir, select_profiles(["x86-host"]))
    options = ProfileOptions(method="litert", mode="per-node", runs=20, warmup=2, processes=1)
    profile_target(build_dir, options)
    from devices.cpuinfo import host_cpu  # reason: beside the other imports of this test

    recorded = json.loads((build_dir / "report.json").read_text())["profile"]["target"]["host_cpu"]
    assert recorded == host_cpu().to_json()  # typed in ProfileTarget, so every speed figure names its host
    assert f"measured on {host_cpu().summary}" in (build_dir / "report.md").read_text()
    result = package(build_dir, PackageOptions(out_dir=tmp_path / "dist"))
    page = assert_report_page(build_dir, CONVERT_SECTIONS | {"validation", "profile", "package"})
    text = page.facts["text"]
    assert "x86-host\tpass" in text and "side by side, by op" in text and "SNR dB" in text
    assert "app-runtime parity" in text and "tokenizer parity" in text

    card = (result.bundle_dir / "model_card.md").read_text()
    for heading in ("Source", "Data", "Metrics by stage", "Devices validated", "Tokenizer and its caveats",
                    "Intended use", "Limitations"):  # fmt: skip
        assert f"\n## {heading}\n" in card, heading
    report = example_build.report
    final = report.evaluation.by_stage.stages[-1]
    assert f"| after quantization | {final.accuracy:.4f} |" in card
    assert "| x86-host | pass | litert" in card and "product_search_brand: -" in card
    manifest = json.loads((result.bundle_dir / "manifest.json").read_text())
    assert (
        "model_card.md" in manifest["files"]
        and "`model_card.md`" in (result.bundle_dir / "README.md").read_text()
    )


def test_the_embedding_report_renders_its_onnx_closeness(onnx_float_builds):
    page = assert_report_page(onnx_float_builds.emb, {"quality", "size", "build"})
    assert "intents" not in page.facts["sections"]  # an embedder has no intents
    assert "Closeness to onnxruntime" in page.facts["text"]


def test_the_size_kinds_add_up_to_the_file(example_build):
    from converters.tflite_sizes import size_by_kind

    sizes = size_by_kind(example_build.model_bytes)
    assert sum(sizes.kinds.values()) == sizes.total == len(example_build.model_bytes)
    model = example_build.tflite
    (gather,) = [op for op in model.ops if op.op == "GATHER"]
    table = model.tensors[gather.inputs[0]]  # the int8 embedding table: vocab x dim bytes
    assert sizes.kinds["embedding"] == table.nbytes == table.shape[0] * table.shape[1]
    weights = sum(
        model.tensors[op.inputs[1]].nbytes for op in model.ops if op.op in ("FULLY_CONNECTED", "CONV_2D")
    )
    assert sizes.kinds["dense"] == weights
    assert (
        sum(sizes.kinds[k] for k in ("embedding", "dense", "bias", "other constants")) == model.weight_bytes
    )


def test_the_browser_check_sees_console_errors_exceptions_and_fetches(tmp_path):
    page = tmp_path / "bad.html"
    page.write_text(
        '<!DOCTYPE html><html><body><section id="s"><h2>t</h2></section><script>console.error("boom");'
        'missing();</script><img src="http://127.0.0.1:9/x.png"></body></html>'
    )
    loaded = load(page)
    assert any("boom" in e for e in loaded.errors)
    assert any("missing is not defined" in e for e in loaded.errors)
    assert loaded.requests == ["http://127.0.0.1:9/x.png"] and loaded.facts["sections"] == ["s"]


def test_hostile_label_names_are_text_not_markup(example_build, tmp_path):
    """A label is user data (labels.txt): in report.html it is escaped text, never an element."""
    from toolchain.report.html import html
    from toolchain.report.model import Report

    hostile = '<img src=x onerror="console.error(1)"><script>console.error(2)</script>'
    data = example_build.report.to_json()
    for comparison in (data["evaluation"]["vs_source_float"], data["evaluation"]["vs_final_float"]):
        for key in ("recall_change", "support"):
            comparison[key][hostile] = comparison[key].pop("product_search_brand")
    page = tmp_path / "report.html"
    page.write_text(html(Report.model_validate(data), example_build.model_bytes))
    loaded = load(page)
    assert loaded.errors == [] and loaded.requests == [] and loaded.facts["scripts"] == 0
    assert "&lt;script&gt;console.error(2)&lt;/script&gt;" in page.read_text()  # shown as the text it is
