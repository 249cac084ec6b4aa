"""`edgecomp package --mediapipe 1.2.3`: a build with 4-bit weights shipped to MediaPipe 1.x, parity proven
there (real MediaPipe 1.2.3 in its own locked env; the metadata written by 0.10.21, which 1.2.3 reads).

MediaPipe 0.10.21 cannot load INT4 tensors, so by default package refuses such a build with a one-line
error naming the flag; 1.2.3 fails to open blockwise 4-bit weights, so it refuses those by name; `--format
edge` ships to LiteRT and the manifest names the runtime that loads DEQUANTIZE v6. Nothing is written on a
refusal."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from converters.tflite_model import parse_tflite, read_tflite
from toolchain.base.errors import DataError, GateFailed

pytestmark = pytest.mark.slow  # one tiny int4 conversion (a search), MediaPipe 0.10.21 and 1.2.3


@pytest.fixture(scope="module")
def int4_build(tiny_project, tmp_path_factory):
    from toolchain.pipeline import build
    from toolchain.recipe.compose import recipe_from_dict

    out = tmp_path_factory.mktemp("package-int4")
    spec = tiny_project.recipe_dict(
        name="tiny-int4",
        # per channel: 1.2.3 opens it; the search scores 40 val queries (quantization.search_queries)
        quantization={"mode": "int4", "int4": {"devices": ["x86-host"]}, "search_queries": 40},
        evaluation={"min_agreement": 0.98},
        output={"dir": str(out)},
    )
    built = build(recipe_from_dict(spec))
    assert "INT4" in {t.dtype for t in read_tflite(built.model_path).tensors}
    section = built.report.quantization.int4
    assert section is not None and section.search_split.endswith("val.jsonl (40 queries)")
    return built


def test_an_int4_build_is_refused_for_mediapipe_0_10_and_packaged_with_parity_in_1_2_3(int4_build, tmp_path):
    from toolchain.cli.main import app
    from toolchain.package.packager import package
    from toolchain.package.types import PackageOptions

    # the default app runtime cannot load it: refused up front, in one line, naming the flag; nothing written
    refused = CliRunner().invoke(app, ["package", str(int4_build.dir), "--out", str(tmp_path / "no")])
    assert refused.exit_code == GateFailed.exit_code, refused.output
    assert "MediaPipe 0.10.21" in refused.output and "--mediapipe 1.2.3" in refused.output
    assert not (tmp_path / "no").exists()
    with pytest.raises(DataError, match=r"--mediapipe 0\.9: edgecomp checks parity in MediaPipe 0\.10"):
        package(int4_build.dir, PackageOptions(out_dir=tmp_path / "no", mediapipe="0.9"))

    # MediaPipe 1.2.3: the model with 0.10.21's metadata, run by 1.2.3's TextClassifier, top-1 parity gated
    result = package(int4_build.dir, PackageOptions(out_dir=tmp_path / "dist", mediapipe="1.2.3"))
    manifest = result.manifest
    assert manifest.parity is not None and manifest.parity.runtime == "MediaPipe 1.2.3"
    low = manifest.parity.lowercased
    assert low.queries > 0 and low.agreement == 1.0  # the gate: every lower-cased test query's top-1
    required = manifest.runtime.required
    assert "mediapipe==1.2.3" in required and "not tasks-text 0.10" in required
    shipped = (result.bundle_dir / manifest.model.file).read_bytes()
    assert "INT4" in {t.dtype for t in parse_tflite(shipped).tensors}  # the 4-bit weights ship as they are
    assert manifest.runtime.op_versions["DEQUANTIZE"] == 6
    readme = (result.bundle_dir / "README.md").read_text()
    assert "tasks-text:0.10.21" not in readme and "MediaPipe 1.x tasks-text" in readme
    on_disk = json.loads((result.bundle_dir / "manifest.json").read_text())
    assert on_disk["parity"]["runtime"] == "MediaPipe 1.2.3"

    # edge: LiteRT, no MediaPipe; the manifest says which interpreter loads DEQUANTIZE v6
    edge_opts = PackageOptions(format="edge", out_dir=tmp_path / "edge", mediapipe="1.2.3")
    edge = package(int4_build.dir, edge_opts)
    assert "--mediapipe 1.2.3 is ignored with --format edge: no MediaPipe runs" in edge.warnings
    assert "DEQUANTIZE v6" in edge.manifest.runtime.required
    assert "tflite-runtime 2.14 cannot load it" in edge.manifest.runtime.required


def test_blockwise_4_bit_weights_are_refused_for_mediapipe_1_2_3_by_name(int4_build, tmp_path):
    from converters.int4 import Quantizer
    from converters.tflite_int4 import blockwise_weights
    from toolchain.base.types import PackageFormat, WeightWidth
    from toolchain.package.packager import check_app_runtime

    with Quantizer((int4_build.dir / "float.tflite").read_bytes()) as quantizer:
        fc = [s.weight for s in quantizer.sites.values() if s.op == "FULLY_CONNECTED"]
        blockwise = quantizer.quantize(dict.fromkeys(fc, WeightWidth.INT4_BLOCK32))
        per_channel = quantizer.quantize(dict.fromkeys(fc, WeightWidth.INT4))
    assert sorted(blockwise_weights(blockwise)) == sorted(fc) and blockwise_weights(per_channel) == []

    class Model:  # what check_app_runtime reads of a Build: its parsed tensors and its bytes
        def __init__(self, data: bytes) -> None:
            self.model_bytes, self.tflite = data, parse_tflite(data)

    with pytest.raises(GateFailed, match=r"blockwise 4-bit weights .*MediaPipe 1\.2\.3 fails to open"):
        check_app_runtime(Model(blockwise), PackageFormat.MEDIAPIPE, "1.2.3")  # type: ignore[arg-type]
    check_app_runtime(Model(per_channel), PackageFormat.MEDIAPIPE, "1.2.3")  # type: ignore[arg-type]
    check_app_runtime(Model(blockwise), PackageFormat.EDGE, "0.10.21")  # type: ignore[arg-type]
    with pytest.raises(GateFailed, match=r"MediaPipe 0\.10\.21.*cannot load INT4"):
        check_app_runtime(Model(per_channel), PackageFormat.ANDROID_ASSETS, "0.10.21")  # type: ignore[arg-type]
