"""The suite's own checks (tests/conftest.py): heavy calls are recorded, shared builds are watched."""

from __future__ import annotations

import importlib
import sys

from tests.support import heavy, shared


def test_a_call_is_recorded_when_its_module_is_imported_after_the_hook(tmp_path, monkeypatch):
    (tmp_path / "edgecomp_probe_mod.py").write_text("def convert(x):\n    return x + 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(heavy.PATCHES, "edgecomp_probe_mod", heavy._module_function("convert", "probe"))
    monkeypatch.delitem(sys.modules, "edgecomp_probe_mod", raising=False)
    module = importlib.import_module("edgecomp_probe_mod")
    from edgecomp_probe_mod import convert  # bound after the import: the wrapped function

    try:
        assert convert(1) == 2 and module.convert(2) == 3
        assert heavy.CALLS[-2:] == ["probe", "probe"]
    finally:
        heavy.CALLS.clear()  # the probe is not a real conversion: this test stays fast
        sys.modules.pop("edgecomp_probe_mod", None)


def test_the_real_trainers_and_converters_are_wrapped():
    """Guards the names the hook wraps: a TensorFlow or tf_keras upgrade that moves them fails here."""
    from toolchain.base.tfenv import keras, tf

    assert keras().Model.fit.__heavy__ == "Keras Model.fit"
    lite = sys.modules["tensorflow.lite.python.lite"]
    for cls in (lite.TFLiteKerasModelConverterV2, lite.TFLiteSavedModelConverterV2, lite.TFLiteConverterV2):
        assert cls.convert.__heavy__.startswith("TFLite "), cls
    assert tf().lite.TFLiteConverter is lite.TFLiteConverterV2
    import converters.onnx_tflite
    import devices.runtimes

    assert converters.onnx_tflite.onnx_to_saved_model.__heavy__ == "onnx2tf"
    assert devices.runtimes._qemu_env.__heavy__ == "QEMU runtime"
    import toolchain.quantization.speed

    assert toolchain.quantization.speed.choose_by_speed.__heavy__ == "mixed-precision speed choice"


def test_a_changed_shared_build_is_named(tmp_path, monkeypatch):
    build = tmp_path / "b"
    build.mkdir()
    (build / "report.json").write_text("{}")
    monkeypatch.setattr(shared, "FROZEN", {})
    shared.freeze("probe", build)
    assert shared.changes("probe") == []
    (build / "report.json").write_text('{"validation": {}}')
    (build / "extra.txt").write_text("x")
    assert shared.changes("probe") == [str(build / "extra.txt"), str(build / "report.json")]


def test_a_build_made_once_per_run_is_read_by_the_other_workers(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from tests.support.parallel import made_once

    made: list[str] = []

    def make(root):
        made.append(str(root))
        (root / "model").write_text("built")
        return "made"

    def worker(name):
        return SimpleNamespace(getbasetemp=lambda: tmp_path / name)  # xdist: popen-gw<n> under one run dir

    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")
    assert made_once(worker("popen-gw0"), "b", make, lambda root: "read") == "made"
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
    assert made_once(worker("popen-gw1"), "b", make, lambda root: (root / "model").read_text()) == "built"
    assert made == [str(tmp_path / "b")]


def test_the_heaviest_files_are_queued_first_and_exist():
    """`make test`'s workers take the costly files first (tests/support/schedule.py); a listed file that was
    renamed or removed would silently fall back to the end."""
    from pathlib import Path  # (this file's other tests need no paths)
    from types import SimpleNamespace

    from tests.support.schedule import HEAVIEST_FIRST, heaviest_first

    root = Path(__file__).resolve().parents[2]
    assert all((root / name).is_file() for name in HEAVIEST_FIRST), HEAVIEST_FIRST
    first, second = HEAVIEST_FIRST[:2]
    ids = ["tests/unit/test_x.py::a", f"{second}::b", f"{first}::c", f"{second}::a"]
    ordered = heaviest_first([SimpleNamespace(nodeid=i) for i in ids])
    assert [i.nodeid for i in ordered] == [f"{first}::c", f"{second}::b", f"{second}::a", ids[0]]
