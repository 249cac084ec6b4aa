"""Issue 12, part 2: reading untrusted files is bounded (.tflite structure, metadata zip, ONNX data, a
received manifest.json)."""

from __future__ import annotations

from pathlib import Path

import pytest

from converters.tflite_model import parse_tflite, verify_tflite
from tests.fixtures.hostile_models import empty_metadata, tflite_bytes, with_zip
from toolchain.base.errors import InputFileError


def test_valid_model_parses():
    info = parse_tflite(tflite_bytes())
    assert info.op_counts == {"ADD": 1} and info.outputs == [2]


def _set(path: str, value):
    def mutate(m):
        obj = m
        *parts, last = path.split(".")
        for p in parts:
            obj = obj[int(p)] if p.isdigit() else getattr(obj, p)
        if last.isdigit():
            obj[int(last)] = value
        else:
            setattr(obj, last, value)

    return mutate


@pytest.mark.parametrize(
    "mutation, message",
    [
        (_set("subgraphs.0.tensors.1.buffer", 99), "names buffer 99"),
        (_set("subgraphs.0.operators.0.opcodeIndex", 7), "opcode index 7"),
        (_set("subgraphs.0.operators.0.inputs", [0, 42]), "names tensor [42]"),
        (_set("subgraphs.0.outputs", []), "no output"),
        (_set("subgraphs.0.inputs", [5]), "input index is out of range"),
        (_set("subgraphs.0.tensors.0.shape", [1 << 20, 1 << 21]), "too large to allocate"),
        (_set("subgraphs.0.tensors.0.shape", [1, -4]), "negative shape"),
        (_set("subgraphs.0.tensors.0.shape", [1] * 40), "rank 40"),
        (_set("subgraphs", []), "no subgraph"),
    ],
)
def test_structural_errors_are_one_line_input_errors(mutation, message):
    data = tflite_bytes(mutation)
    with pytest.raises(InputFileError, match="invalid TFLite model") as err:
        parse_tflite(data, origin="m.tflite")
    assert message in err.value.message and "\n" not in err.value.message


def test_buffer_outside_the_file():
    def far_buffer(m):
        m.buffers[1].data = None
        m.buffers[1].offset, m.buffers[1].size = 1 << 40, 16

    with pytest.raises(InputFileError, match="outside the file"):
        verify_tflite(tflite_bytes(far_buffer))


def test_vector_length_past_the_file_does_not_hang():
    data = bytearray(tflite_bytes())
    # find the buffers vector (3 entries) and claim 2**31 of them
    import struct

    from ai_edge_litert import schema_py_generated as s

    m = s.Model.GetRootAs(bytes(data), 0)
    vec = m._tab.Vector(m._tab.Offset(12))
    assert struct.unpack_from("<I", data, vec - 4)[0] == 3
    struct.pack_into("<I", data, vec - 4, 1 << 31)
    with pytest.raises(InputFileError, match="cannot fit"):
        verify_tflite(bytes(data))


@pytest.mark.parametrize("cut", [9, 20, 60, 150])
def test_truncated_files(cut):
    with pytest.raises(InputFileError):
        parse_tflite(tflite_bytes()[:cut])


def test_metadata_zip_bomb_is_a_clean_error(monkeypatch):
    from converters import metadata_reader

    monkeypatch.setattr(metadata_reader, "MAX_FILE_BYTES", 1 << 20)
    model = with_zip(tflite_bytes(metadata=empty_metadata()), {"vocab.txt": b"\0" * (8 << 20)})
    assert len(model) < 100_000
    with pytest.raises(InputFileError, match="decompresses past"):
        metadata_reader.read_metadata(model, origin="bomb.tflite")


def test_metadata_files_within_the_cap_are_read():
    from converters.metadata_reader import read_metadata

    meta = read_metadata(with_zip(tflite_bytes(metadata=empty_metadata()), {"labels.txt": b"a\nb\n"}))
    assert meta is not None and meta.files == {"labels.txt": b"a\nb\n"}


def _onnx_with_external(tmp_path, location: str):
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((1, 4), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    folder = tmp_path / "model"
    folder.mkdir()
    onnx.save_model(model, folder / "m.onnx", save_as_external_data=True, location="w.bin", size_threshold=0)
    m = onnx.load(str(folder / "m.onnx"), load_external_data=False)
    for entry in m.graph.initializer[0].external_data:
        if entry.key == "location":
            entry.value = location
    onnx.save_model(m, folder / "m.onnx")
    return folder


@pytest.mark.parametrize("how", ["symlink", "dotdot", "absolute"])
def test_onnx_external_data_outside_the_folder_is_refused(tmp_path, how):
    from converters.onnx_tflite import inspect_onnx

    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"SECRETSECRETSECR")
    location = {"symlink": "link.bin", "dotdot": "../secret.bin", "absolute": str(secret)}[how]
    folder = _onnx_with_external(tmp_path, location)
    (folder / "link.bin").symlink_to(secret)
    with pytest.raises(InputFileError, match="not a file inside the model's folder"):
        inspect_onnx(folder / "m.onnx")


def test_onnx_external_data_inside_the_folder_loads(tmp_path):
    from converters.onnx_tflite import inspect_onnx

    folder = _onnx_with_external(tmp_path, "w.bin")
    assert inspect_onnx(folder / "m.onnx").ops == {"Add": 1}


def test_huge_model_input_length_is_a_data_error():
    from toolchain.base.errors import DataError
    from toolchain.data import Tokenizer

    with pytest.raises(DataError, match="more than 65536"):
        Tokenizer({"<PAD>": 0, "<START>": 1, "<UNKNOWN>": 2}, 1 << 40)


def test_huge_onnx_input_shape_is_a_data_error(tmp_path):
    from converters.onnx_tflite import OnnxInfo, OnnxInput, fixed_shapes
    from toolchain.base.errors import DataError

    info = OnnxInfo(tmp_path / "m.onnx", 17, (OnnxInput("input_ids", "int64", (1, 1 << 40)),), ("y",), {})
    with pytest.raises(DataError, match="too large for a query model"):
        fixed_shapes(info, {}, None)
    info = OnnxInfo(tmp_path / "m.onnx", 17, (OnnxInput("input_ids", "int64", ("batch", "seq")),), ("y",), {})
    assert fixed_shapes(info, {}, 32) == {"input_ids": [1, 32]}


def test_inspect_of_a_zip_bomb_is_one_error_line(tmp_path):
    import zlib

    from typer.testing import CliRunner

    from toolchain.cli.main import app

    bomb = zlib.compressobj(1, zlib.DEFLATED, -15)
    body = b"".join(bomb.compress(b"\0" * (1 << 20)) for _ in range(160)) + bomb.flush()  # 160 MiB of zeros
    model = tflite_bytes(metadata=empty_metadata())
    path = tmp_path / "bomb.tflite"
    path.write_bytes(_zip_with_deflated(model, "vocab.txt", body, 160 << 20))
    assert path.stat().st_size < 1 << 20
    result = CliRunner().invoke(app, ["inspect", str(path)])
    assert result.exit_code == 2, result.output
    errors = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "decompresses past 64 MiB" in errors[0]


def _zip_with_deflated(prefix: bytes, name: str, deflated: bytes, size: int) -> bytes:
    """A zip archive of one raw-deflate stream, appended to `prefix` (CRC of `size` zero bytes)."""
    import struct
    import zlib

    crc = 0
    for _ in range(size >> 20):
        crc = zlib.crc32(b"\0" * (1 << 20), crc)
    fname = name.encode()
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, crc, len(deflated), size, len(fname), 0)
    offset = len(prefix)
    central = struct.pack(
        "<IHHHHHHIIIHHHHHII",
        0x02014B50,
        20,
        20,
        0,
        8,
        0,
        0,
        crc,
        len(deflated),
        size,
        len(fname),
        0,
        0,
        0,
        0,
        0,
        offset,
    )
    cd_offset = offset + len(local) + len(fname) + len(deflated)
    cd = central + fname
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(cd), cd_offset, 0)
    return prefix + local + fname + deflated + cd + end


def _write_manifest(tmp_path: Path, manifest: dict | str) -> Path:
    import json

    path = tmp_path / "manifest.json"
    path.write_text(manifest if isinstance(manifest, str) else json.dumps(manifest))
    return path


def test_manifests_of_this_and_older_versions_load(tmp_path):
    import json

    from tests.support.manifests import older_manifest, written_manifest
    from toolchain.base.types import ManifestKind, ValidationStatus
    from toolchain.package.manifest_model import read_manifest

    current = written_manifest(tflite_bytes())
    got = read_manifest(_write_manifest(tmp_path, current))
    assert json.dumps(got.to_json()) == json.dumps(current)  # same keys, same order, same values
    assert got.parity.raw_without_case_variants.disagreements[0].toolchain == "returns_refunds"
    old = read_manifest(_write_manifest(tmp_path, older_manifest(tflite_bytes())))
    assert old.task == ManifestKind.CLASSIFIER and old.validation == ValidationStatus.NOT_RUN
    assert old.parity.tie_break is None and old.parity.lowercased.one_step_flips == 0
    assert old.tokenizer.packed_vocab_lines is None and "task" not in old.to_json()


def _put(path: str, value):
    def mutate(manifest):
        *parts, last = path.split(".")
        obj = manifest
        for p in parts:
            obj = obj[int(p)] if p.isdigit() else obj[p]
        obj[int(last) if last.isdigit() else last] = value
        return manifest

    return mutate


@pytest.mark.parametrize(
    "mutate, where",
    [
        (_put("model", 5), "model: Input should be a valid dictionary"),
        (_put("model.sha256", 5), "model.sha256: Input should be a valid string"),
        (_put("evil", {"rm": "-rf"}), "evil: Extra inputs are not permitted"),
        (_put("labels.count", "many"), "labels.count: Input should be a valid integer"),
        (_put("parity.lowercased", {"feed": "x"}), "parity.lowercased.top1.queries: Field required"),
        (_put("parity.raw.k", "ten"), "parity.raw.rank.k: Input should be a valid integer"),
        (_put("validation", "maybe"), "validation"),
        (_put("files", ["README.md"]), "files: Input should be a valid dictionary"),
        (
            _put("server_fallback.threshold", [0.5]),
            "server_fallback.threshold: Input should be a valid number",
        ),
        (lambda m: m.pop("runtime") and m, "runtime: Field required"),
    ],
)
def test_a_malformed_manifest_is_one_line_naming_the_first_bad_key(tmp_path, mutate, where):
    from tests.support.manifests import written_manifest
    from toolchain.package.manifest_model import read_manifest

    path = _write_manifest(tmp_path, mutate(written_manifest(tflite_bytes())))
    with pytest.raises(InputFileError) as err:
        read_manifest(path)
    assert err.value.message.startswith(f"{path} is not a manifest: {where}"), err.value.message
    assert "\n" not in err.value.message


@pytest.mark.parametrize(
    "text, message",
    [
        ("[" * 100_000 + "]" * 100_000, "is not valid JSON"),
        ('{"model": ' * 500 + "1" + "}" * 500, "is not a manifest: manifest_version"),
        ("[]", "is not a manifest: a JSON list, no object"),
        ('{"manifest_version": NaN}', "manifest_version: Input should be a finite number"),
    ],
    ids=["deep-array", "deep-object", "list", "nan"],
)
def test_hostile_manifest_json_is_one_line(tmp_path, text, message):
    from toolchain.package.manifest_model import read_manifest

    with pytest.raises(InputFileError) as err:
        read_manifest(_write_manifest(tmp_path, text))
    assert message in err.value.message and "\n" not in err.value.message


def test_inspect_checks_a_model_against_a_received_manifest(tmp_path):
    from typer.testing import CliRunner

    from tests.support.manifests import written_manifest
    from toolchain.cli.main import app

    model = tmp_path / "tiny-app.tflite"
    model.write_bytes(tflite_bytes())
    n_out = parse_tflite(tflite_bytes()).tensors[parse_tflite(tflite_bytes()).outputs[0]].shape[-1]
    _write_manifest(tmp_path, written_manifest(model.read_bytes(), n_labels=int(n_out)))
    ok = CliRunner().invoke(app, ["inspect", str(model)])
    assert ok.exit_code == 0, ok.output
    assert "matches the manifest" in ok.output
    _write_manifest(tmp_path, _put("labels.count", -1.5)(written_manifest(model.read_bytes())))
    bad = CliRunner().invoke(app, ["inspect", str(model)])
    assert bad.exit_code == 2, bad.output
    errors = [ln for ln in bad.output.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "manifest.json is not a manifest: labels.count" in errors[0]
