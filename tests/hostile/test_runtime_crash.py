"""A model that really aborts the toolchain's own LiteRT never takes edgecomp down (issue 23).

The model: a tiny Keras intent model whose attention pooling adds `where(ids > 0, 0, float32.min)` to its
scores (the mask onnx2tf writes for a PyTorch BERT), quantized to int8 with plain min/max ranges. The mask
constant gives its tensors a range of 3.4e38, and ai_edge_litert 2.1.0 dies with SIGABRT inside the first
invoke, with XNNPACK and with builtin kernels alike (measured: every run, both kernel sets, no message on
stderr). Nothing here mocks the runtime: the first test proves, in a plain child Python, that the model
aborts the real interpreter, so a LiteRT release that stops aborting fails this file instead of leaving
the tests below passing without a crash behind them. Edgecomp's own convert writes this model itself (its
Keras int8 path calibrates min/max ranges), so the convert test is the user's real path.

The rest asserts that every in-process user of the runtime turned the abort into one clean error naming
the model and the runtime (HostRuntimeFailed, exit 3), that its runtime child is reaped, and that convert
writes nothing; the pytest process surviving each test is the proof that edgecomp survives.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from devices.host_runtime import HostRuntime, HostRuntimeFailed
from devices.hostrun import HostRunner
from toolchain.cli.main import app

pytestmark = pytest.mark.slow  # the aborting model is calibrated and quantized here (a TFLite conversion)
LITERT = f"ai_edge_litert {version('ai-edge-litert')}"
KERNELS = {True: "XNNPACK", False: "builtin kernels"}
PLAIN_CHILD = """
import sys
import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType
builtin = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
kw = {} if sys.argv[2] == "xnnpack" else {"experimental_op_resolver_type": builtin}
it = Interpreter(model_path=sys.argv[1], num_threads=1, **kw)
it.allocate_tensors()
d = it.get_input_details()[0]
for row in np.load(sys.argv[3])["input_ids"]:
    it.set_tensor(d["index"], row[None].astype(d["dtype"]))
    it.invoke()
print("ran every row")
"""


def masked_pooler(vocab_size: int, n_labels: int, seq_len: int):  # noqa: ANN201 - a Keras model
    """Embedding -> scores + where(ids > 0, 0, float32.min) -> softmax pooling -> Dense (loads safely)."""
    from toolchain.base.tfenv import keras, seed_everything, tf

    seed_everything(0)
    k, t = keras(), tf()
    ids = k.Input((seq_len,), dtype="int32", name="input_ids")
    x = k.layers.Embedding(vocab_size, 8, embeddings_initializer=k.initializers.RandomUniform(-1, 1))(ids)
    scores = t.squeeze(k.layers.Dense(1, kernel_initializer=k.initializers.RandomNormal(stddev=3.0))(x), -1)
    weights = t.nn.softmax(scores + t.where(ids > 0, 0.0, t.float32.min), axis=-1)
    pooled = t.reduce_sum(x * t.expand_dims(weights, -1), axis=1)
    return k.Model(ids, k.layers.Dense(n_labels, activation="softmax")(pooled))


@pytest.fixture(scope="module")
def aborting(tiny_project, tmp_path_factory) -> SimpleNamespace:
    """The masked pooler as .keras (on the tiny project's vocab and labels), its calibrated float model,
    its min/max int8 .tflite (aborting.tflite, vocab.txt beside it) and the test queries' ids."""
    import shutil

    from converters.calibrated import quantize
    from converters.keras_tflite import calibrate_keras
    from toolchain import data as d

    root = tmp_path_factory.mktemp("abort")
    tok = d.Tokenizer(d.load_vocab(tiny_project.vocab), tiny_project.seq_len)
    labels = tiny_project.labels.read_text().split()
    model = masked_pooler(tok.vocab_size, len(labels), tiny_project.seq_len)
    model.save(root / "masked.keras")
    cal = tok.encode_batch(d.load_queries(tiny_project.train).texts[:64])
    calibrated = calibrate_keras(model, [[row] for row in cal])
    (root / "aborting.tflite").write_bytes(quantize(calibrated))
    shutil.copy(tiny_project.vocab, root / "vocab.txt")
    texts = d.load_queries(tiny_project.test).texts
    ids = tok.encode_batch(texts)
    np.savez(root / "feeds.npz", input_ids=ids)
    reference = model.predict(ids, verbose=0)
    return SimpleNamespace(root=root, keras=root / "masked.keras", tflite=root / "aborting.tflite",
                           calibrated=calibrated, ids=ids, texts=texts, reference=reference,
                           n_labels=len(labels))  # fmt: skip


def _children() -> set[int]:
    """Pids of this process's children, zombies included (a reaped child is gone from /proc)."""
    me, out = os.getpid(), set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == me:
                out.add(int(entry.name))
    return out


def _crash_message(kernels: str, model: str) -> str:
    return f"{LITERT} ({kernels}, 1 thread) crashed with SIGABRT while running {model} (queries 1-"


@pytest.mark.parametrize("xnnpack", [True, False], ids=["xnnpack", "builtin"])
def test_the_model_really_aborts_the_runtime(aborting, xnnpack):
    run = subprocess.run(
        [sys.executable, "-c", PLAIN_CHILD, str(aborting.tflite), "xnnpack" if xnnpack else "builtin",
         str(aborting.root / "feeds.npz")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == -signal.SIGABRT, (run.returncode, run.stdout, run.stderr[-500:])


@pytest.mark.parametrize("xnnpack", [True, False], ids=["xnnpack", "builtin"])
def test_the_host_runner_turns_the_abort_into_one_clean_line_and_reaps_its_child(aborting, xnnpack):
    runner = HostRunner(aborting.tflite, xnnpack=xnnpack)
    pid = runner.host.worker.proc.pid
    with runner, pytest.raises(HostRuntimeFailed) as err:
        runner.scores({"input_ids": aborting.ids})
    assert str(err.value.message).startswith(_crash_message(KERNELS[xnnpack], "aborting.tflite"))
    assert err.value.exit_code == 3 and "\n" not in str(err.value)
    assert "not in edgecomp" in err.value.hint
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reaped already: not our child any more
    assert runner.host.proc is None


@pytest.fixture(scope="module")
def good_int8(tiny_int8) -> Path:
    """The shared tiny int8 build's model (conftest), read-only."""
    return tiny_int8.model_path


def _in_process(model: Path, ids: np.ndarray, xnnpack: bool) -> np.ndarray:
    """The runner as it ran in edgecomp's process before: one invoke per row, first output, raw."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    kw = (
        {} if xnnpack else {"experimental_op_resolver_type": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES}
    )
    it = Interpreter(model_content=model.read_bytes(), num_threads=1, **kw)
    d = it.get_input_details()[0]
    if list(d["shape"]) != [1, ids.shape[1]]:
        it.resize_tensor_input(d["index"], [1, ids.shape[1]])
    it.allocate_tensors()
    out = it.get_output_details()[0]
    rows = []
    for row in ids:
        it.set_tensor(d["index"], row[None].astype(d["dtype"]))
        it.invoke()
        rows.append(it.get_tensor(out["index"]).reshape(-1).copy())
    return np.stack(rows)


@pytest.mark.parametrize("xnnpack", [True, False], ids=["xnnpack", "builtin"])
def test_the_child_gives_the_in_process_outputs_bit_for_bit(aborting, good_int8, tmp_path, xnnpack):
    from converters.keras_tflite import keras_to_tflite
    from toolchain.base.tfenv import keras

    k = keras()
    ids = k.Input((None,), dtype="int32", name="input_ids")  # dynamic length: the child resizes it
    x = k.layers.GlobalAveragePooling1D()(k.layers.Embedding(60, 8)(ids))
    dynamic = tmp_path / "dynamic.tflite"
    dynamic.write_bytes(keras_to_tflite(k.Model(ids, k.layers.Dense(4)(x)), "float32"))
    for model, feeds in ((good_int8, aborting.ids), (dynamic, aborting.ids[:, :11] % 60)):
        with HostRunner(model, xnnpack=xnnpack) as runner:
            raw = runner.run({"input_ids": feeds})
            want = _in_process(model, feeds, xnnpack)
            assert raw.dtype == want.dtype and np.array_equal(raw, want), model.name
            assert np.array_equal(runner.scores({"input_ids": feeds}), runner.dequantize(want))


def test_a_shared_child_that_crashed_is_replaced_for_the_next_model(aborting, good_int8):
    with HostRuntime() as host:
        bad = HostRunner(aborting.tflite, host=host)
        with pytest.raises(HostRuntimeFailed, match="crashed with SIGABRT"):
            bad.run({"input_ids": aborting.ids})
        first = host.generation
        with HostRunner(good_int8, host=host) as ok:
            scores = ok.scores({"input_ids": aborting.ids})
        assert host.generation == first + 1 and scores.shape == (len(aborting.ids), aborting.n_labels)
        with HostRunner(good_int8) as alone:
            assert np.array_equal(alone.scores({"input_ids": aborting.ids}), scores)


def test_convert_fails_with_one_line_naming_the_model_and_writes_nothing(aborting, tiny_project, tmp_path):
    out = tmp_path / "builds"
    recipe = tmp_path / "crash.yaml"
    spec = tiny_project.recipe_dict(
        name="crash", source={"path": str(aborting.keras)}, output={"dir": str(out)}
    )
    recipe.write_text(yaml.safe_dump(spec))
    before = _children()
    result = CliRunner().invoke(app, ["convert", "--recipe", str(recipe)])
    assert result.exit_code == 3, result.output
    (line,) = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert line.startswith("error: " + _crash_message("XNNPACK", "model.tflite of build crash")), line
    assert "(hint: a bug in LiteRT that this model triggers, not in edgecomp" in line
    assert not out.exists() or not any(out.iterdir()), sorted(p.name for p in out.iterdir())
    assert _children() <= before


@pytest.fixture(scope="module")
def aborting_build(aborting, tiny_project, tmp_path_factory):  # noqa: ANN201 - a Build
    """A build of the masked pooler without a test split: convert skips evaluation, so it is written."""
    from toolchain.pipeline import build
    from toolchain.recipe.compose import recipe_from_dict

    out = tmp_path_factory.mktemp("abort-build")
    data = {**tiny_project.recipe_dict()["data"], "test": None}
    spec = tiny_project.recipe_dict(name="crash", source={"path": str(aborting.keras)}, data=data,
                                    output={"dir": str(out)})  # fmt: skip
    return build(recipe_from_dict(spec))


@pytest.mark.parametrize("xnnpack", [True, False], ids=["xnnpack", "builtin"])
def test_package_parity_is_a_clean_error(aborting, aborting_build, xnnpack):
    from toolchain.base.progress import SilentProgress
    from toolchain.package.mediapipe import model_scores

    before = _children()
    with pytest.raises(HostRuntimeFailed) as err:
        model_scores(aborting_build, aborting.ids, SilentProgress(), "the test split", xnnpack=xnnpack)
    assert err.value.message.startswith(_crash_message(KERNELS[xnnpack], "crash/model.tflite"))
    assert _children() <= before


def test_the_mixed_search_and_its_speed_table_are_clean_errors(aborting):
    from converters.calibrated import quantize
    from toolchain.quantization.mixed import SearchData, search
    from toolchain.quantization.speed import paired_rounds
    from toolchain.recipe.schema import EvaluationSpec

    before = _children()
    data = SearchData({"input_ids": aborting.ids}, aborting.reference, None, "test")
    with pytest.raises(HostRuntimeFailed) as err:
        search(aborting.calibrated, data, EvaluationSpec(), "classification")
    assert err.value.message.startswith(
        _crash_message("XNNPACK", "the full-int8 candidate of the mixed-precision search")
    )
    int8 = quantize(aborting.calibrated)
    with pytest.raises(
        HostRuntimeFailed, match="crashed with SIGABRT while running speed-table model 1 of 2"
    ):
        paired_rounds([int8, int8], {"input_ids": aborting.ids})
    assert _children() <= before


def test_a_tflite_teacher_that_aborts_is_a_clean_error(aborting):
    from toolchain.steps.teachers import load_teacher

    teacher = load_teacher(aborting.tflite, aborting.n_labels)
    with pytest.raises(HostRuntimeFailed) as err:
        teacher.score(aborting.texts, lambda n: None)
    assert err.value.message.startswith(_crash_message("XNNPACK", "the distillation teacher aborting.tflite"))


def test_a_refusal_is_a_clean_error_and_the_child_lives_on(good_int8):
    with HostRuntime() as host:
        with pytest.raises(HostRuntimeFailed, match=f"^{LITERT} \\(XNNPACK, 1 thread\\) could not load junk"):
            HostRunner(b"not a flatbuffer at all", name="junk", host=host).run(
                {"input_ids": np.zeros((1, 16))}
            )
        with HostRunner(good_int8, host=host) as runner:
            pid = host.proc.pid
            with pytest.raises(
                HostRuntimeFailed, match="failed while running model.tflite .*gather index out of"
            ):
                runner.run({"input_ids": np.full((3, 16), 10**6, np.int32)})  # ids beyond the vocab
            assert runner.run({"input_ids": np.ones((3, 16), np.int32)}).shape[0] == 3
            assert host.proc.pid == pid and host.generation == 1  # a refusal is not a crash
