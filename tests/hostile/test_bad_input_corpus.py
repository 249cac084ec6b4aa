"""Issue 12: the bad-input corpus. One row per careless or hostile input: args, exit code, message.

Each row runs the real CLI (CliRunner) and asserts one `error:` line (or success, for the dynamic-length
model that must now work) with no traceback. Models are built in code at toy size.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from toolchain.cli.main import app

pytestmark = pytest.mark.slow
EXAMPLE_DATA = Path(__file__).resolve().parents[2] / "examples" / "shopping_intent" / "data"


@dataclass(frozen=True)
class Ctx:
    """Paths a row's arguments are made of."""

    tmp: Path
    data: list[str]  # --train/--val/--test/--labels/--vocab of the tiny project
    models: dict[str, Path]
    a_file: Path


@dataclass(frozen=True)
class Case:
    id: str
    args: Callable[[Ctx], list[str]]
    code: int
    message: str
    env: dict[str, str] | None = None
    read_only: str | None = None  # a folder os.access reports unwritable (root ignores chmod)


def _keras_model(path: Path, seq_len: int | None, dtype: str = "int32", rows: int = 400) -> Path:
    from toolchain.base.tfenv import keras

    k = keras()
    inp = k.Input((seq_len,), dtype=dtype, name="input_ids")
    if dtype == "int32":
        x = k.layers.GlobalMaxPooling1D()(k.layers.Embedding(rows, 8)(inp))
    else:
        x = k.layers.Dense(8)(inp)
    k.Model(inp, k.layers.Dense(4, activation="softmax")(x)).save(path)
    return path


def _onnx_float_model(path: Path) -> Path:
    """An ONNX classifier whose `input_ids` is float32 [1, 16] (features, not token ids)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((16, 4)).astype(np.float32), "w")
    nodes = [
        helper.make_node("MatMul", ["input_ids", "w"], ["mm"]),
        helper.make_node("Softmax", ["mm"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "float_input",
        [helper.make_tensor_value_info("input_ids", TensorProto.FLOAT, [1, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _vocab_past_the_table(onnx_models: Path, out: Path) -> Path:
    """The fixture's vocab.txt ('token id' lines) grown 10 ids past the model's embedding table."""
    from converters.onnx_tflite import embedding_rows

    rows = embedding_rows(onnx_models / "intent_encoder.onnx", "input_ids")
    assert rows is not None
    lines = (onnx_models / "vocab.txt").read_text(encoding="utf-8").splitlines()
    top = max(int(ln.rsplit(" ", 1)[1]) for ln in lines if ln.strip())
    lines += [f"zzextra{i} {i}" for i in range(top + 1, rows + 10)]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def ctx(tiny_project, tiny_float32, onnx_models, tmp_path_factory) -> Ctx:
    tmp = tmp_path_factory.mktemp("corpus")
    p = tiny_project
    data = ["--train", str(p.train), "--val", str(p.val), "--test", str(p.test)]
    data += ["--labels", str(p.labels), "--vocab", str(p.vocab)]
    models = {
        "dynamic": _keras_model(tmp / "dynamic.keras", None),
        "float": _keras_model(tmp / "float_in.keras", 16, "float32"),
        "short_table": _keras_model(tmp / "short_table.keras", 16, rows=5),
        "onnx_float": _onnx_float_model(tmp / "float_in.onnx"),
        "onnx": onnx_models / "intent_encoder.onnx",
        "onnx_labels": onnx_models / "labels.txt",
        "big_vocab": _vocab_past_the_table(onnx_models, tmp / "big_vocab.txt"),
    }
    (tmp / "ok").mkdir()  # the shared float32 build's model (conftest): the bytes `convert -Q float32` writes
    models["tflite"] = Path(shutil.copy(tiny_float32.model_path, tmp / "ok" / "model.tflite"))
    a_file = tmp / "a_file"
    a_file.write_text("not a folder\n")
    return Ctx(tmp, data, models, a_file)


CASES = [
    Case(
        "float-input-where-ids-expected",
        lambda c: ["convert", str(c.models["float"]), *c.data, "-Q", "float32", "--out", str(c.tmp / "f")],
        2,
        "takes float32, but edgecomp feeds it token ids",
    ),
    Case(
        "onnx-float-input-where-ids-expected",
        lambda c: ["convert", str(c.models["onnx_float"]), *c.data, "--out", str(c.tmp / "of")],
        2,
        "model input input_ids takes float32, but edgecomp feeds it token ids",
    ),
    Case(
        "vocab-larger-than-the-embedding-onnx",
        lambda c: [
            "convert",
            str(c.models["onnx"]),
            "--vocab",
            str(c.models["big_vocab"]),
            "--labels",
            str(c.models["onnx_labels"]),
            "--test",
            str(EXAMPLE_DATA / "test.jsonl"),
            "--seq-len",
            "32",
            "-Q",
            "float32",
            "--out",
            str(c.tmp / "bv"),
        ],
        2,
        "embedding table has",
    ),
    Case(
        "vocab-larger-than-the-embedding-keras",
        lambda c: [
            "convert",
            str(c.models["short_table"]),
            *c.data,
            "-Q",
            "float32",
            "--out",
            str(c.tmp / "st"),
        ],
        2,
        "short_table.keras's embedding table has 5 rows",
    ),
    Case(
        "dynamic-length-with-the-suggested-seq-len",
        lambda c: [
            "convert",
            str(c.models["dynamic"]),
            *c.data,
            "--seq-len",
            "16",
            "--out",
            str(c.tmp / "d"),
        ],
        0,
        "",
    ),
    Case(
        "dynamic-length-without-seq-len",
        lambda c: ["convert", str(c.models["dynamic"]), *c.data, "--out", str(c.tmp / "d2")],
        2,
        "the model's input length is dynamic",
    ),
    Case(
        "cache-path-is-a-file",
        lambda c: ["validate", str(c.models["tflite"]), "-d", "x86-host"],
        2,
        "is a file, not a folder",
        env={"EDGECOMP_CACHE": "{a_file}"},
    ),
    Case(
        "cache-path-under-a-file",
        lambda c: ["validate", str(c.models["tflite"]), "-d", "x86-host"],
        2,
        "is under a file",
        env={"EDGECOMP_CACHE": "{a_file}/cache"},
    ),
    Case(
        "profile-csv-under-a-file",
        lambda c: ["profile", str(c.models["tflite"]), "--csv", str(c.a_file / "ops.csv")],
        2,
        "cannot write --csv",
    ),
    Case(
        "profile-csv-is-a-folder",
        lambda c: ["profile", str(c.models["tflite"]), "--csv", str(c.tmp)],
        2,
        "--csv",
    ),
    Case(
        "profile-png-unwritable-folder",
        lambda c: ["profile", str(c.models["tflite"]), "--png", str(c.tmp / "ro" / "ops.png")],
        2,
        "cannot write --png",
        read_only="ro",
    ),
    Case(
        "out-parent-not-writable",
        lambda c: [
            "convert",
            str(c.models["dynamic"]),
            *c.data,
            "--seq-len",
            "16",
            "--out",
            str(c.tmp / "ro" / "b"),
        ],
        2,
        "is not writable",
        read_only="ro",
    ),
    Case(
        "out-under-a-file",
        lambda c: [
            "convert",
            str(c.models["dynamic"]),
            *c.data,
            "--seq-len",
            "16",
            "--out",
            str(c.a_file / "b"),
        ],
        2,
        "is a file, not a folder",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(ctx, case, monkeypatch):
    if case.read_only:
        ro = (ctx.tmp / case.read_only).absolute()
        ro.mkdir(exist_ok=True)
        real = os.access
        monkeypatch.setattr(os, "access", lambda p, mode, **k: False if Path(p) == ro else real(p, mode, **k))
    env = {k: v.format(a_file=ctx.a_file) for k, v in (case.env or {}).items()}
    result = CliRunner().invoke(app, case.args(ctx), env=env)
    assert "Traceback" not in result.output
    assert result.exit_code == case.code, result.output
    if case.code:
        lines = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
        assert len(lines) == 1 and case.message in lines[0], result.output


def test_dynamic_length_build_validates_on_the_host(ctx):
    build = ctx.tmp / "d"
    if not build.exists():  # the row builds it; run alone, build it here
        args = ["convert", str(ctx.models["dynamic"]), *ctx.data, "--seq-len", "16", "--out", str(build)]
        assert CliRunner().invoke(app, args).exit_code == 0
    result = CliRunner().invoke(app, ["validate", str(build), "-d", "x86-host", "--json"])
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    assert "120 queries run, batch 1" in result.output  # the device child resized the input too


def test_dynamic_length_build_profiles(ctx):
    build = ctx.tmp / "d"
    if not build.exists():
        args = ["convert", str(ctx.models["dynamic"]), *ctx.data, "--seq-len", "16", "--out", str(build)]
        assert CliRunner().invoke(app, args).exit_code == 0
    result = CliRunner().invoke(app, ["profile", str(build), "--json"])
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output[-2000:]


FIT_SCRIPT = """
import ctypes as C, sys
import numpy as np
import profiler_child as pc
lib = pc.load_library(None)
env = C.c_void_p()
assert lib.LiteRtCreateEnvironment(0, None, C.byref(env)) == 0
m = pc.CompiledModel(lib, env, open(sys.argv[1], "rb").read(), "deployed", 1)
before = m.buffer_bytes(m.inputs[0])
m.fit_inputs([np.zeros((1, 16), np.int32)])
after = m.buffer_bytes(m.inputs[0])
try:
    m.write_input(0, np.zeros((1, 17), np.int32))
    refused = False
except pc.ApiError:
    refused = True
print(before, after, refused)
"""


def test_the_profiler_sizes_a_dynamic_length_input_before_writing_it(ctx, tmp_path):
    """A dynamic-length model compiles at its placeholder shape ([1, 1]: a 4-byte input buffer). The C-API
    profiler child wrote each 16-token row into it anyway, past the buffer: the heap overrun crashed the child
    now and then (twice in a row once, on a loaded machine). It now resizes the input to the rows' shape and
    refuses a row that does not fit."""
    import os
    import subprocess

    from devices.profiling.children import HERE
    from devices.profiling.profiler import resolve_target, runtime_python
    from toolchain.base.child import WIRE_DIR

    build = ctx.tmp / "d"
    if not build.exists():
        args = ["convert", str(ctx.models["dynamic"]), *ctx.data, "--seq-len", "16", "--out", str(build)]
        assert CliRunner().invoke(app, args).exit_code == 0
    python = runtime_python(resolve_target(None))
    script = tmp_path / "fit.py"
    script.write_text(FIT_SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = f"{HERE}:{WIRE_DIR}"
    out = subprocess.run(
        [str(python), str(script), str(build / "model.tflite")], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-2000:]
    before, after, refused = out.stdout.split()[-3:]
    assert (int(before), int(after), refused) == (4, 64, "True")
