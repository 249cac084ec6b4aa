"""Fuzzing the readers of untrusted input (issue 12): any bytes give a result or an EdgecompError.

Brief in the normal test run (a few seconds per reader); `make fuzz` runs them long:
EDGECOMP_FUZZ_EXAMPLES sets hypothesis' max_examples (default 60), EDGECOMP_FUZZ_DEADLINE_MS the
per-example deadline (default: none, so a loaded 2-core machine cannot fail the suite on timing).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fixtures.hostile_models import empty_metadata, tflite_bytes, with_zip
from toolchain.base.errors import EdgecompError

_deadline = os.environ.get("EDGECOMP_FUZZ_DEADLINE_MS")
FUZZ = settings(
    max_examples=int(os.environ.get("EDGECOMP_FUZZ_EXAMPLES", "60")),
    deadline=int(_deadline) if _deadline else None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=os.environ.get("EDGECOMP_FUZZ_EXAMPLES") is None,  # CI: the same examples every run
)
VALID_MODEL = tflite_bytes()
MODEL_WITH_FILES = with_zip(
    tflite_bytes(metadata=empty_metadata()), {"labels.txt": b"a\nb\n", "v.txt": b"x 0"}
)


def _mutated(seed: bytes):
    """Valid bytes with a few bytes overwritten, a slice cut out, or a tail appended."""
    edits = st.lists(st.tuples(st.integers(0, len(seed) - 1), st.integers(0, 255)), min_size=1, max_size=8)
    flipped = edits.map(lambda es: _apply(seed, es))
    cut = st.tuples(st.integers(0, len(seed)), st.integers(0, len(seed))).map(lambda ab: seed[: min(ab)])
    return st.one_of(flipped, cut, st.binary(max_size=64).map(lambda tail: seed + tail))


def _apply(seed: bytes, edits: list[tuple[int, int]]) -> bytes:
    out = bytearray(seed)
    for i, v in edits:
        out[i] = v
    return bytes(out)


def _clean(call) -> None:
    try:
        call()
    except EdgecompError as err:
        assert err.message and "\n" not in err.message


@FUZZ
@given(
    st.one_of(
        _mutated(VALID_MODEL),
        st.binary(max_size=512),
        st.binary(max_size=64).map(lambda b: b[:4] + b"TFL3" + b),
    )
)
def test_fuzz_tflite_reader(data):
    from converters.tflite_model import parse_tflite

    _clean(lambda: parse_tflite(data, origin="fuzz.tflite"))


@FUZZ
@given(_mutated(MODEL_WITH_FILES))
def test_fuzz_metadata_reader(data):
    from converters.metadata_reader import read_metadata

    def read():
        meta = read_metadata(data, origin="fuzz.tflite")
        if meta is not None:
            meta.as_dict()

    _clean(read)


_yaml_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)
)
_yaml_values = st.recursive(
    _yaml_scalars,
    lambda kids: st.one_of(
        st.lists(kids, max_size=4), st.dictionaries(st.text(max_size=12), kids, max_size=4)
    ),
    max_leaves=20,
)
_recipe_keys = st.sampled_from(
    ["name", "seed", "source", "data", "steps", "quantization", "output", "package"]
)
_recipes = st.dictionaries(_recipe_keys, _yaml_values, max_size=6)


@FUZZ
@given(
    st.one_of(
        st.binary(max_size=300), st.text(max_size=300).map(str.encode), _recipes.map(repr).map(str.encode)
    )
)
def test_fuzz_recipe_loader_text(raw):
    from toolchain.recipe.compose import load_recipe

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "recipe.yaml"
        path.write_bytes(raw)
        _clean(lambda: load_recipe(path))


@FUZZ
@given(_recipes)
def test_fuzz_recipe_from_data(data):
    import yaml

    from toolchain.recipe.compose import load_recipe

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "recipe.yaml"
        path.write_text(yaml.safe_dump(data))
        _clean(lambda: load_recipe(path))


_lines = st.lists(
    st.one_of(
        st.text(max_size=40),
        st.builds(lambda t, i: f"{t} {i}", st.text(max_size=10), st.integers()),
        st.builds(lambda t: '{"text": ' + t + ', "intent": "a"}', st.text(max_size=10).map(json.dumps)),
    ),
    max_size=12,
)
_files = st.one_of(
    st.binary(max_size=300), _lines.map(lambda ls: "\n".join(ls).encode("utf-8", "surrogatepass"))
)


@FUZZ
@given(_files, st.sampled_from(["q.jsonl", "q.csv", "vocab.txt", "labels.txt"]))
def test_fuzz_query_vocab_label_readers(raw, name):
    from toolchain import data

    reader = {"vocab.txt": data.load_vocab, "labels.txt": data.load_labels}.get(name, data.load_queries)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(raw)

        def read():
            result = reader(path)
            if name == "vocab.txt" and result:
                data.Tokenizer(result, 8).encode("a b c")

        _clean(read)


def _paths(node, prefix=()):
    """Every key path of a JSON document (dicts and lists)."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        yield (*prefix, key)
        yield from _paths(child, (*prefix, key))


_MANIFEST = None


def _manifest() -> dict:
    global _MANIFEST
    if _MANIFEST is None:
        from tests.support.manifests import written_manifest

        _MANIFEST = written_manifest(VALID_MODEL, n_labels=1)
    return json.loads(json.dumps(_MANIFEST))


def _replaced(edits: list[tuple[int, object]]) -> bytes:
    """The manifest with some values (at paths picked by index) replaced by arbitrary JSON values."""
    manifest = _manifest()
    for index, value in edits:
        paths = list(_paths(manifest))
        *parent, key = paths[index % len(paths)]
        obj = manifest
        for p in parent:
            obj = obj[p]
        obj[key] = value
    return json.dumps(manifest).encode()


_manifests = st.one_of(
    st.lists(st.tuples(st.integers(0, 10_000), _yaml_values), min_size=1, max_size=4).map(_replaced),
    st.builds(lambda: json.dumps(_manifest()).encode()).flatmap(_mutated),
)


@FUZZ
@given(_manifests)
def test_fuzz_manifest_reader(raw):
    """A received manifest.json: parsed and checked against a model, or one EdgecompError line."""
    from toolchain.package.inspect import inspect_model

    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "tiny-app.tflite"
        model.write_bytes(VALID_MODEL)
        (Path(tmp) / "manifest.json").write_bytes(raw)
        _clean(lambda: inspect_model(model))
