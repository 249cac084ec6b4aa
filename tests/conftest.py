"""Fixtures every test folder shares, and the checks that keep markers and shared builds honest.

Models and data are built in code at toy size (tests/fixtures/): every test runs real TF, tfmot and LiteRT.
- `tiny_data`: the tiny project's splits, vocab and labels (no model, no TensorFlow); `tiny_project` adds
  the trained Keras model (a few seconds of `fit`); `tiny_untrained` is its twin with the model never
  trained, for tests where the CLI refuses before loading it.
- Builds shared across files, made once per session (tests/fixtures/session_builds.py): `tiny_int8`,
  `tiny_float32`, `example_build`, `onnx_float_builds`, `bert_int8_classifier`, `bert_dynamic_classifier`.
  They are read-only: a test that writes into a build (validate, profile, package, an edited file) works
  on a copy (tests/support/builds.py `copy_build`, or tests/support/shared.py `shared_as` for its own
  name); a test that leaves a shared build changed fails.
- `slow` marks a test that trains or converts a real model. A test that uses a fixture in SLOW_FIXTURES, or
  that calls Keras `fit`, a TFLite converter, onnx2tf or the fixture scripts' torch training itself
  (tests/support/heavy.py records these), fails unless it is marked slow; one that starts an emulated ARM
  runtime fails unless it is marked qemu. So `make test-fast` (`-m "not slow and not qemu"`) neither
  trains, converts nor emulates.
- `make test` runs two pytest-xdist workers, a test file in one worker; the expensive shared builds are made
  once per run (tests/support/parallel.py). Then, alone, the tests marked `serial`: a build whose result
  depends on measured speed (the mixed-precision search); a test that measures without it fails.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures import session_builds as sb
from tests.fixtures.common import default_root
from tests.fixtures.tiny import TinyData, TinyProject, make_tiny_data, train_tiny_model, untrained_tiny_model
from tests.support import heavy, parallel, shared
from tests.support.schedule import heaviest_first
from toolchain.base.atomic import locked

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
heavy.install()

# Session fixtures that train or convert (or load what a fixture script trained): their users are slow.
SLOW_FIXTURES = frozenset(
    {"tiny_project", "tiny_int8", "tiny_float32", "example_build", "onnx_models", "onnx_float_builds"}
    | {"bert_models", "bert_int8_classifier", "bert_dynamic_classifier", "keras_bert", "two_input_models"}
    | {"xlmr_model"}
    | {"xlmr_embedder"}
)
_NOT_MARKED: dict[str, str] = {}  # nodeid -> why it must be marked slow


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items[:] = heaviest_first(items)  # the workers' queue (make test: --no-loadscope-reorder)
    for item in items:
        used = sorted(SLOW_FIXTURES & set(getattr(item, "fixturenames", ())))
        if used and item.get_closest_marker("slow") is None:
            _NOT_MARKED[item.nodeid] = f"uses {', '.join(used)} (trains or converts)"


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    heavy.CALLS.clear()  # from here on: this test's fixtures, its body and its teardown
    heavy.EMULATED.clear()
    heavy.TIMED.clear()
    if item.nodeid in _NOT_MARKED:
        pytest.fail(f"not marked slow but {_NOT_MARKED[item.nodeid]}: add @pytest.mark.slow", pytrace=False)


@pytest.fixture(autouse=True)
def _suite_honesty(request: pytest.FixtureRequest):
    """After the test: no training or conversion unless it is marked slow, no emulated ARM unless it is
    marked qemu, no speed-dependent build unless it is marked serial, every shared build it used
    unchanged."""
    yield
    if heavy.CALLS and request.node.get_closest_marker("slow") is None:
        calls = ", ".join(dict.fromkeys(heavy.CALLS))
        pytest.fail(f"not marked slow but trains or converts ({calls}): add @pytest.mark.slow", pytrace=False)
    if heavy.EMULATED and request.node.get_closest_marker("qemu") is None:
        devices = ", ".join(dict.fromkeys(heavy.EMULATED))
        pytest.fail(
            f"not marked qemu but runs emulated ARM ({devices}): add @pytest.mark.qemu", pytrace=False
        )
    if heavy.TIMED and request.node.get_closest_marker("serial") is None:
        pytest.fail(
            "not marked serial but its build depends on measured speed (mixed precision): add "
            "@pytest.mark.serial (make test runs it alone, after the two workers)",
            pytrace=False,
        )
    for name in sorted(shared.FROZEN.keys() & set(request.fixturenames)):
        changed = shared.changes(name)
        if changed:
            pytest.fail(
                f"changed the shared build of `{name}` ({', '.join(changed)}): work on a copy "
                "(tests/support/builds.py copy_build)",
                pytrace=False,
            )


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> TinyData:
    """The tiny project's files: 4 intents, 400/80/120 queries, regex vocab, labels (no model)."""
    return make_tiny_data(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def tiny_project(tiny_data) -> TinyProject:
    """`tiny_data` + model.keras: the toy classifier trained on it (seed 0, 6 epochs)."""
    return train_tiny_model(tiny_data)


@pytest.fixture(scope="session")
def tiny_untrained(tmp_path_factory) -> TinyProject:
    """The same files with the model built (seed 0) but never trained: for tests that never run it."""
    return untrained_tiny_model(make_tiny_data(tmp_path_factory.mktemp("tiny-untrained")))


@pytest.fixture(scope="session")
def _tiny_builds(tiny_project, tmp_path_factory) -> dict:
    made = sb.tiny_builds(tiny_project, tmp_path_factory.mktemp("tiny-builds"))
    shared.freeze("tiny_int8", made["int8"].dir)
    shared.freeze("tiny_float32", made["float32"].dir)
    return made


@pytest.fixture(scope="session")
def tiny_int8(_tiny_builds):
    """The Build of the tiny project's recipe_dict in int8 (name tiny-int8), shared read-only."""
    return _tiny_builds["int8"]


@pytest.fixture(scope="session")
def tiny_float32(_tiny_builds):
    """The Build of the tiny project's recipe_dict in float32 (name tiny-float32), shared read-only."""
    return _tiny_builds["float32"]


@pytest.fixture(scope="session")
def example_build(tmp_path_factory):
    """The Build of the shipped example's recipe (what `make demo` converts), shared read-only."""
    made = parallel.made_once(tmp_path_factory, "example-build", sb.example_build, sb.read_example_build)
    shared.freeze("example_build", made.dir)
    return made


def _cached(ensure, *args):
    """A fixture script's cached folder (~/.cache/edgecomp/fixtures), built under a lock: test workers
    running at once (pytest -n) wait for the first one's build instead of replacing it under each other."""
    with locked(default_root() / ".fixtures.lock"):
        return ensure(*args)


@pytest.fixture(scope="session")
def onnx_models() -> Path:
    """Real PyTorch-exported ONNX models (tests/fixtures/make_onnx_models.py), built once and cached."""
    from tests.fixtures.make_onnx_models import ensure_models

    return _cached(ensure_models)


@pytest.fixture(scope="session")
def onnx_float_builds(onnx_models, tmp_path_factory) -> sb.OnnxFloatBuilds:
    """float32 builds of intent_encoder.onnx (from an external-data copy) and embedder.onnx."""
    make = functools.partial(sb.onnx_float_builds, onnx_models)
    made = parallel.made_once(tmp_path_factory, "onnx-float-builds", make, sb.read_onnx_float_builds)
    shared.freeze("onnx_float_builds", made.ext, made.clf, made.emb)
    return made


@dataclass(frozen=True)
class BertModels:
    """Hugging Face-style folders (model.onnx, tokenizer.json, vocab.txt, config.json), as users export."""

    root: Path
    classifier: Path  # + labels.txt; output `logits`
    embedder: Path  # output `sentence_embedding`
    facts: dict  # fixture.json: measured test accuracy, max abs error vs torch, build seconds, versions


@pytest.fixture(scope="session")
def bert_models() -> BertModels:
    """Built once per cache key by tests/fixtures/make_bert_models.py (about a minute)."""
    from tests.fixtures.make_bert_models import ensure_models

    root = _cached(ensure_models)
    facts = json.loads((root / "fixture.json").read_text(encoding="utf-8"))
    return BertModels(root, root / "classifier", root / "embedder", facts)


@dataclass(frozen=True)
class HubFolders:
    """Hugging Face folders as users bring them (tests/fixtures/make_hub_folders.py)."""

    root: Path
    bert: Path  # BertForSequenceClassification, model.safetensors, three inputs
    distilbert: Path  # DistilBertForSequenceClassification, two inputs
    sentence: Path  # sentence-transformers: BertModel + mean Pooling + Normalize
    pickle: Path  # the BERT classifier as pytorch_model.bin
    hub_onnx: Path  # onnx/model.onnx + onnx/model_quantized.onnx, tokenizer files at the top
    facts: dict


@pytest.fixture(scope="session")
def hub_folders() -> HubFolders:
    """Built once per cache key by tests/fixtures/make_hub_folders.py (about a minute); their ONNX
    exports are cached in the edgecomp cache dir by content, so every test after the first reuses them."""
    from tests.fixtures.make_hub_folders import ensure_hub_folders

    root = _cached(ensure_hub_folders)
    facts = json.loads((root / "fixture.json").read_text(encoding="utf-8"))
    names = (
        "bert-classifier",
        "distilbert-classifier",
        "sentence-embedder",
        "bert-classifier-bin",
        "hub-onnx",
    )
    return HubFolders(root, *(root / n for n in names), facts)


@pytest.fixture(scope="session")
def two_input_models(bert_models) -> BertModels:
    """DistilBERT folders with two inputs (no token_type_ids) on the same WordPiece tokenizer:
    tests/fixtures/make_two_input_models.py, built once per cache key (about 20 s)."""
    from tests.fixtures.make_two_input_models import ensure_models

    root = _cached(ensure_models, bert_models.root)
    facts = json.loads((root / "fixture.json").read_text(encoding="utf-8"))
    return BertModels(root, root / "classifier", root / "embedder", facts)


@pytest.fixture(scope="session")
def bert_int8_classifier(bert_models, tmp_path_factory) -> Path:
    """The BERT classifier in int8 with float fallback ops, through the CLI (session_builds.py); the build
    dir, shared read-only by test_package_bert_onnx and test_wordpiece_models."""
    make = functools.partial(sb.bert_int8_classifier, bert_models.classifier)
    out = parallel.made_once(tmp_path_factory, "bert-int8", make, lambda root: root / "int8")
    shared.freeze("bert_int8_classifier", out)
    return out


@pytest.fixture(scope="session")
def bert_dynamic_classifier(bert_models, tmp_path_factory) -> Path:
    """The BERT classifier in dynamic mode, tokenizer from --vocab (session_builds.py); the build dir,
    shared read-only by test_wordpiece_models and test_distill_foreign_teacher."""
    make = functools.partial(sb.bert_dynamic_classifier, bert_models.classifier)
    out = parallel.made_once(tmp_path_factory, "bert-dynamic", make, lambda root: root / "dynamic")
    shared.freeze("bert_dynamic_classifier", out)
    return out


@pytest.fixture(scope="session")
def xlmr_model() -> Path:
    """The multilingual XLM-R classifier (tests/fixtures/make_xlmr_model.py, about 30 s once): data/,
    classifier/ (model.onnx + tokenizer.json + sentencepiece.bpe.model + labels), transformers/."""
    from tests.fixtures.make_xlmr_model import ensure_xlmr_model

    return _cached(ensure_xlmr_model)


@pytest.fixture(scope="session")
def xlmr_embedder(xlmr_model) -> Path:
    """The XLM-R fixture's encoder as a mean-pooled, normalised embedder (tests/fixtures/
    make_xlmr_embedder.py, a few seconds once): embedder/ (model.onnx + the XLM-R tokenizer files)."""
    from tests.fixtures.make_xlmr_embedder import ensure_xlmr_embedder

    return _cached(ensure_xlmr_embedder) / "embedder"


@pytest.fixture(scope="session")
def long_tail_teacher() -> Path:
    """A small two-input BERT on the long-tail 32-intent data (tests/fixtures/make_long_tail_teacher.py,
    a few minutes once, then cached): data/, labels.txt, classifier/ (model.onnx + tokenizer + labels)."""
    from tests.fixtures.make_long_tail_teacher import ensure_teacher

    return _cached(ensure_teacher)


@pytest.fixture(scope="session")
def keras_bert(bert_models) -> Path:
    """A Keras BERT-style classifier (three int inputs) on the WordPiece tokenizer of `bert_models`.

    tests/fixtures/make_keras_bert.py: model.keras + tokenizer.json/vocab.txt + labels.txt + splits, built
    once per cache key (about 25 s).
    """
    from tests.fixtures.make_keras_bert import ensure_model

    return _cached(ensure_model, bert_models.root)
