"""`edgecomp package` end to end in the real app runtime: MediaPipe 0.10.21's TextClassifier in its own env.

The first run installs mediapipe==0.10.21 into the edgecomp cache (~40 s); later runs reuse it.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support.builds import copy_build, edit_recipe, edit_report, rehash
from tests.support.shared import shared_as
from toolchain.base.errors import GateFailed
from toolchain.cli.main import app
from toolchain.package.packager import package
from toolchain.package.types import PackageOptions
from toolchain.recipe.compose import recipe_from_dict

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def int8_build(tiny_project, tiny_int8, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("package-builds")
    package = {
        "version": "2.1.0",
        "author": "search team",
        "license": "MIT",
        "description": "Routes shop queries.",
    }
    spec = tiny_project.recipe_dict(name="tiny-app", output={"dir": str(out)}, package=package)
    return shared_as(tiny_int8, recipe_from_dict(spec))  # the shared int8 build, as convert writes it here


@pytest.fixture(scope="module")
def packaged(int8_build, tmp_path_factory):
    dist = tmp_path_factory.mktemp("dist")
    return package(int8_build, PackageOptions(out_dir=dist))


def test_bundle_layout_and_manifest(packaged, int8_build):
    root = packaged.bundle_dir
    assert root.name == "tiny-app-2.1.0"
    m = json.loads((root / "manifest.json").read_text())
    asset = root / "android/app/src/main/assets/tiny-app.tflite"
    for rel in ("tiny-app.tflite", "labels.txt", "vocab.txt", "metadata.json", "README.md"):
        assert (root / rel).is_file(), rel
    assert asset.read_bytes() == (root / "tiny-app.tflite").read_bytes()
    assert m["metadata"] == {
        "name": "tiny-app",
        "version": "2.1.0",
        "description": "Routes shop queries.",
        "author": "search team",
        "license": "MIT",
    }
    assert packaged.notes == []  # every metadata field was set: nothing to say
    assert m["quantization"] == "int8" and m["validation"] == "not run"
    assert m["model"]["inputs"][0]["dtype"] == "INT32" and m["model"]["inputs"][0]["shape"][-1] == 16
    assert m["model"]["outputs"][0]["dtype"] == "FLOAT32"  # int8 scores + one exact DEQUANTIZE
    assert m["runtime"]["op_versions"]["DEQUANTIZE"] == 2
    assert m["labels"]["count"] == 4
    from toolchain.build import read_report
    from toolchain.package.bundle import report_digest
    from toolchain.package.manifest import sha256

    assert m["recipe_sha256"] == sha256((int8_build / "recipe.yaml").read_bytes())
    assert m["report_sha256"] == report_digest(read_report(int8_build))
    assert json.dumps(packaged.manifest.to_json(), indent=2) + "\n" == (root / "manifest.json").read_text()
    for rel, entry in m["files"].items():
        assert sha256((root / rel).read_bytes()) == entry["sha256"], rel
    with zipfile.ZipFile(packaged.zip_path) as zf:
        assert zf.read("tiny-app-2.1.0/manifest.json") == (root / "manifest.json").read_bytes()
    readme = (root / "README.md").read_text()
    assert "TextClassifier.createFromOptions" in readme and "classifier.classify(query)" in readme
    assert m["tokenizer"]["app_must_lowercase"] is False  # raw agreement 100% with the case variants
    assert m["tokenizer"]["packed_vocab_lines"] > m["tokenizer"]["vocab_size"]
    assert 'setModelAssetPath("tiny-app.tflite")' in readme
    section = json.loads((int8_build / "report.json").read_text())["package"]
    assert section["model_sha256"] == m["model"]["sha256"] and section["zip"] == str(packaged.zip_path)


def test_mediapipe_textclassifier_agrees_with_the_toolchain(packaged):
    parity = packaged.manifest.parity
    low = parity.lowercased
    assert parity.runtime == "MediaPipe 0.10.21"
    assert low.queries == 120
    # Strict: the packaged tie-break makes MediaPipe's order among equal int8 scores the toolchain's argmax.
    assert low.agreement == 1.0 and low.disagreements_count == 0, low.disagreements
    tie_break = parity.tie_break
    assert 0 < low.max_abs_score_diff <= tie_break.max_score_change + 1e-6
    assert tie_break.max_score_change < tie_break.int8_step / 4
    assert parity.raw.queries == 120  # measured too (the tiny split is lower-case already)


def test_server_fallback_threshold(packaged, int8_build, tiny_project):
    from devices.hostrun import HostRunner
    from toolchain import data as d

    fb = packaged.manifest.server_fallback
    assert fb.split.endswith("val.jsonl") and fb.queries == 80 and fb.target_accuracy == 0.98
    # The toy model answers every val query right with no tied top score, so the device keeps them all and
    # the threshold is the lowest top score, recomputed here from the build's model on the raw val texts.
    assert fb.overall_accuracy == 1.0 and fb.tied_to_server == 0
    assert fb.coverage == 1.0 and fb.accuracy_above == 1.0
    val = d.load_queries(tiny_project.val)
    ids = d.Tokenizer(d.load_vocab(int8_build / "vocab.txt"), tiny_project.seq_len).encode_batch(val.texts)
    runner = HostRunner(int8_build / "model.tflite")
    scores = runner.scores({runner.input_names[0]: ids})
    assert fb.threshold == pytest.approx(float(scores.max(1).min()), abs=1e-6)


def test_inspect_round_trips_the_manifest(packaged, int8_build):
    from converters.metadata_reader import read_metadata
    from toolchain.package.inspect import inspect_model

    root = packaged.bundle_dir
    for model in (root / "tiny-app.tflite", root / "android/app/src/main/assets/tiny-app.tflite"):
        result = inspect_model(model)
        assert result.manifest_path == root / "manifest.json"
        assert result.ok and {c.name for c in result.checks} >= {"sha256", "labels", "tokenizer", "vocab"}
        # the count convert reported: the DEQUANTIZE adds none, the tie-break bias is not a parameter
        built = json.loads((int8_build / "report.json").read_text())["model"]["parameters"]
        assert result.summary.parameters == built
    meta = read_metadata((root / "tiny-app.tflite").read_bytes())
    written = json.loads((root / "metadata.json").read_text())  # MediaPipe's own JSON of what it wrote
    assert meta.name == written["name"] == "tiny-app" and meta.version == written["version"]
    assert (meta.author, meta.license, meta.description) == ("search team", "MIT", "Routes shop queries.")
    assert meta.author == written["author"] and meta.license == written["license"]
    unit = written["subgraph_metadata"][0]["input_tensor_metadata"][0]["process_units"][0]["options"]
    assert meta.tokenizer.delim_regex == unit["delim_regex_pattern"] == r"[^\w']+"
    assert meta.labels == (root / "labels.txt").read_text().split()
    assert meta.files["vocab.txt"] == (root / "vocab.txt").read_bytes()


def _largest_weight_offset(data: bytes) -> int:
    """The file offset of the middle byte of the largest int8 weight buffer (the embedding table): a byte that
    changes a weight, wherever the metadata puts the buffers (the file's middle may be metadata)."""
    from converters.tflite_model import tflite_schema

    model = tflite_schema().Model.GetRootAsModel(data, 0)
    sg = model.Subgraphs(0)
    arrays = [model.Buffers(sg.Tensors(i).Buffer()).DataAsNumpy() for i in range(sg.TensorsLength())]
    biggest = max((a for a in arrays if not isinstance(a, int)), key=len)
    start = data.find(biggest.tobytes())
    assert start > 0
    return start + len(biggest) // 2


def test_inspect_cli_detects_a_changed_model(packaged, tmp_path):
    runner = CliRunner()
    bundle = tmp_path / "bundle"
    shutil.copytree(packaged.bundle_dir, bundle)
    ok = runner.invoke(app, ["inspect", str(bundle / "tiny-app.tflite"), "--json"])
    assert ok.exit_code == 0, ok.output
    data = json.loads(ok.stdout)
    assert data["ok"] and data["metadata"]["labels_count"] == 4 and data["metadata"]["version"] == "2.1.0"
    model = bundle / "tiny-app.tflite"
    data = bytearray(model.read_bytes())
    data[_largest_weight_offset(bytes(data))] ^= (
        0xFF  # one weight byte: still valid, no longer the packaged one
    )
    model.write_bytes(bytes(data))
    bad = runner.invoke(app, ["inspect", str(model)])
    assert bad.exit_code == 1
    assert "does not match" in bad.output and "sha256 mismatch" in bad.output


def test_packaging_is_deterministic(int8_build, packaged, tmp_path):
    again = package(int8_build, PackageOptions(out_dir=tmp_path))
    assert again.zip_path.read_bytes() == packaged.zip_path.read_bytes()


def test_parity_gate_catches_a_tokenizer_mismatch(int8_build, tiny_project, tmp_path, monkeypatch):
    """A wrong delimiter in the metadata (whitespace only) makes MediaPipe see 'track,my,package' as one
    unknown word while the toolchain splits it: the gate must refuse and name a query. (The build's own
    delimiter is read from its report and must be one edgecomp knows; the fault is put in the metadata.)"""
    from converters.metadata import MediaPipeSession

    write = MediaPipeSession.write_metadata

    def wrong_delimiter(self, *args):  # noqa: ANN001, ANN202
        return write(self, *args[:-1], r"\s+")

    monkeypatch.setattr(MediaPipeSession, "write_metadata", wrong_delimiter)
    build = copy_build(int8_build, tmp_path)
    rows = [json.loads(ln) for ln in tiny_project.test.read_text().splitlines()]
    commas = tmp_path / "commas.jsonl"
    commas.write_text("".join(json.dumps({**r, "text": r["text"].replace(" ", ",")}) + "\n" for r in rows))
    edit_recipe(build, lambda recipe: recipe["data"].update(test=str(commas)))
    with pytest.raises(
        GateFailed, match=r"MediaPipe TextClassifier disagrees with the toolchain on \d+ of 120"
    ):
        package(build, PackageOptions(out_dir=tmp_path / "dist"))
    assert not (tmp_path / "dist").exists()


def test_case_variants_fix_raw_queries_in_mediapipe(int8_build, tiny_project, tmp_path):
    """MediaPipe's RegexTokenizer does not lower-case: 'Return My Shoes' was [UNKNOWN]*3 in MediaPipe.
    The packed vocab maps Capitalized / UPPER / seen forms to the lower-case id, so those raw queries now
    agree; a mixed-case spelling never seen ('rEtUrN') cannot be fixed and stays listed."""
    build = copy_build(int8_build, tmp_path)
    rows = [json.loads(ln) for ln in tiny_project.test.read_text().splitlines()]
    cased, fixable = [], set()
    for i, r in enumerate(rows):
        words = r["text"].split()
        forms = [r["text"].upper(), " ".join(w.capitalize() for w in words)]
        fixable.update(forms)
        if i % 10 == 0:  # rEtUrN mY sHoEs: a form neither packed nor seen in train/val
            forms.append(" ".join("".join(c.upper() if k % 2 else c for k, c in enumerate(w)) for w in words))
        cased += [{**r, "text": f} for f in forms]
    split = tmp_path / "cased.jsonl"
    split.write_text("".join(json.dumps(r) + "\n" for r in cased))
    edit_recipe(build, lambda recipe: recipe["data"].update(test=str(split)))
    parity = package(build, PackageOptions(out_dir=tmp_path / "dist")).manifest.parity
    before, after = parity.raw_without_case_variants, parity.raw
    assert parity.lowercased.agreement == 1.0
    assert before.agreement < 0.9 < after.agreement, (before.agreement, after.agreement)
    assert all(d.query not in fixable for d in after.disagreements)  # only rEtUrN-style forms left


def test_cli_package_json_and_android_assets(int8_build, tmp_path):
    res = CliRunner().invoke(
        app, ["package", str(int8_build), "--format", "android-assets", "--version", "3.0.0", "--out",
              str(tmp_path), "--json"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    m = json.loads(res.stdout)
    root = tmp_path / "tiny-app-3.0.0"
    assert (
        m["format"] == "android-assets"
        and m["model"]["file"] == "android/app/src/main/assets/tiny-app.tflite"
    )
    assert not (root / "tiny-app.tflite").exists() and (root / m["model"]["file"]).is_file()
    assert (tmp_path / "tiny-app-3.0.0.zip").is_file()


@pytest.fixture(scope="module")
def embedding_build(int8_build, tiny_project, tmp_path_factory) -> Path:
    """An int8 text-embedding model (the tiny classifier cut at its hidden layer) laid out as a build."""
    from converters.keras_tflite import keras_to_tflite, load_keras_model
    from toolchain.base.tfenv import keras
    from toolchain.data import Tokenizer, load_queries, load_vocab

    model = load_keras_model(tiny_project.model)
    encoder = keras().Model(model.inputs, model.get_layer("hidden").output)
    tok = Tokenizer(load_vocab(tiny_project.vocab), tiny_project.seq_len)
    calibration = [[tok.encode(t)] for t in load_queries(tiny_project.train).texts[:100]]
    build = copy_build(int8_build, tmp_path_factory.mktemp("embedding"), skip=("labels.txt", "model.tflite"))
    (build / "model.tflite").write_bytes(keras_to_tflite(encoder, "int8", calibration))
    # an embedding build says so in its recipe and report, and its report describes this model
    edit_recipe(build, lambda recipe: recipe["source"].update(task="embedding"))
    edit_report(build, lambda report: report.update(task="embedding", labels=[]))
    edit_report(build, lambda report: report["files"].pop("labels.txt"))  # an embedding build has none
    edit_recipe(build, lambda recipe: recipe.pop("package"))  # a user's recipe without a package section
    rehash(build, "model.tflite")
    return build


@pytest.fixture(scope="module")
def embedded(embedding_build, tmp_path_factory):
    return package(
        embedding_build, PackageOptions(out_dir=tmp_path_factory.mktemp("embedded"), name="tiny-embed")
    )


def test_no_author_or_licence_is_made_up(embedded):
    """A recipe without package metadata: nothing claims authorship; the description says what it is."""
    from converters.metadata_reader import read_metadata

    meta = read_metadata((embedded.bundle_dir / "tiny-embed.tflite").read_bytes())
    assert meta.author is None and meta.license is None
    assert meta.description == "tiny-embed: maps a search query to a 32-value embedding vector."
    written = (embedded.bundle_dir / "metadata.json").read_text()  # MediaPipe's JSON of what it wrote
    assert "edgecomp" not in written and "Apache" not in written and "tiny-embed: maps" in written
    assert embedded.manifest.metadata.to_json() == {
        "name": "tiny-embed",
        "version": "1.0.0",
        "description": meta.description,
        "author": None,
        "license": None,
    }
    assert embedded.notes == [
        "package metadata: author and license not set, so left out of the package "
        "(set package.author / package.license in the recipe, or pass --author / --license)"
    ]


def test_embedding_model_gets_text_embedder_metadata_and_exact_vectors(embedded, embedding_build):
    from toolchain.package.inspect import inspect_model

    res = embedded
    m = res.manifest
    assert m.task == "embedder" and m.labels is None
    assert m.parity.task.startswith("TextEmbedder")
    low = m.parity.lowercased
    assert low.queries == 120 and low.identical == 120 and low.max_abs_diff == 0.0
    assert "TextEmbedder.createFromOptions" in (res.bundle_dir / "README.md").read_text()
    assert not (res.bundle_dir / "labels.txt").exists()
    result = inspect_model(res.bundle_dir / "tiny-embed.tflite")
    assert result.ok and result.metadata.labels is None and result.metadata.tokenizer.kind == "regex"
    assert result.metadata.vocab_size == m.tokenizer.packed_vocab_lines
    packed = (res.bundle_dir / "vocab.txt").read_text().splitlines()
    assert packed[: m.tokenizer.vocab_size] == (embedding_build / "vocab.txt").read_text().splitlines()
    shoes = next(ln.split()[1] for ln in packed if ln.split()[0] == "shoes")
    assert {f"Shoes {shoes}", f"SHOES {shoes}"} <= set(packed)  # case variants share the word's id
