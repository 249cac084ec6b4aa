"""`edgecomp profile` on real runtimes: models of 1, 10 and 100 ops, both methods, errors, a native crash."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from devices.cpuinfo import host_cpu
from devices.profiling import slicer
from devices.profiling.children import ProfilerError
from devices.profiling.profiler import ProfileOptions, profile_model
from tests.support.shared import shared_as
from toolchain.base.child import WIRE_DIR
from toolchain.cli.main import app
from toolchain.recipe.compose import recipe_from_dict

FAST = dict(runs=40, warmup=5, processes=1, quant_error=False)


@pytest.fixture(scope="module")
def add_models(tmp_path_factory) -> dict[int, Path]:
    root = tmp_path_factory.mktemp("addmodels")
    out = {}
    for n in (1, 10, 100):
        out[n] = root / f"add{n}.tflite"
        out[n].write_bytes(slicer.add_model(n, width=16))
    return out


def _sound(m) -> None:
    """What every method result must satisfy, however loaded the machine: no negative time, no ratio
    that is not a measurement, flags that agree with the stated resolution."""
    assert m.resolution_us > 0 and m.invoke_resolution_us >= 0
    assert all(o.time_us >= 0 for o in m.ops) and m.sum_us == pytest.approx(
        sum(o.time_us for o in m.ops), abs=1e-2
    )
    assert all(o.below_resolution == (o.time_us < m.resolution_us) for o in m.ops)
    assert m.invoke_us is None or m.invoke_us > m.invoke_resolution_us
    assert all(v is None or v > 0 for v in m.invoke_spread)
    if m.resolved:
        assert m.invoke_us is not None and m.ratio == round(m.sum_us / m.invoke_us, 3)
    else:
        assert m.ratio is None and any("below" in n for n in m.notes)


@pytest.mark.parametrize("n_ops", [1, 10, 100])
def test_litert_both_methods_map_every_node(add_models, n_ops):
    res = profile_model(add_models[n_ops], ProfileOptions(method="both", mode="per-node", **FAST))
    prof, sliced = res.methods
    assert prof.method == "litert-profiler" and sliced.method == "slicing"
    for m in res.methods:  # per-node events map 1:1 to TFLite nodes, in order
        assert [o.index for o in m.ops] == list(range(n_ops))
        assert {o.name for o in m.ops} == {"ADD"} and all(o.kind == "node" for o in m.ops)
        _sound(m)
        if m.sum_us > 0:
            assert abs(sum(o.share for o in m.ops) - 1) < 0.01
    # A 16-float ADD costs a fraction of a microsecond: LiteRT's whole-microsecond events cannot resolve it,
    # so the profiler says so instead of offering a sum/invoke ratio.
    assert all(o.below_resolution for o in prof.ops) and not prof.resolved and prof.ratio is None
    assert "Run Order" in prof.extra["summary"]  # the runtime's own summary text is kept
    assert [c.op for c in res.costs] == ["ADD"] * n_ops and res.costs[0].flops == 16


def test_ops_large_enough_are_resolved_by_both_methods(tmp_path):
    """Three ADDs over 300k floats (~100 µs each): far above either method's resolution, loaded or not."""
    model = tmp_path / "big.tflite"
    model.write_bytes(slicer.add_model(3, width=300_000))
    res = profile_model(model, ProfileOptions(method="both", mode="per-node", **FAST))
    for m in res.methods:
        _sound(m)
        assert m.resolved and m.invoke_us is not None and m.ratio is not None
        assert not any(o.below_resolution for o in m.ops)


def test_a_one_float_add_is_never_a_negative_time(tmp_path):
    """A model whose whole invoke is hardly more than an empty call: reported as below resolution."""
    model = tmp_path / "add1.tflite"
    model.write_bytes(slicer.add_model(1, width=1))
    res = profile_model(model, ProfileOptions(method="both", mode="per-node", **FAST))
    for m in res.methods:
        _sound(m)


def test_deployed_mode_reports_xnnpack_operators(add_models):
    res = profile_model(add_models[10], ProfileOptions(method="litert", mode="deployed", **FAST))
    ops = res.methods[0].ops
    assert len(ops) == 10 and all(o.kind == "xnnpack" and o.name.startswith("Add") for o in ops)


@pytest.mark.parametrize("n_ops", [1, 10, 100])
def test_tflite_runtime_slicing(add_models, n_ops, monkeypatch):
    import devices.profiling.profiler as p

    monkeypatch.setattr(p, "resolve_target", lambda device, threads: p.Target("tflite-runtime", "2.14.0", 1))
    res = profile_model(add_models[n_ops], ProfileOptions(method="auto", **FAST))
    (m,) = res.methods
    assert m.method == "slicing" and m.extra["runtime_module"] == "tflite_runtime"
    assert [o.index for o in m.ops] == list(range(n_ops))
    with pytest.raises(ProfilerError, match="no C-API profiler"):
        profile_model(add_models[1], ProfileOptions(method="litert", **FAST))


def test_corrupt_tflite_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\x18\x00\x00\x00TFL3" + b"\xff" * 64)
    result = CliRunner().invoke(app, ["profile", str(bad)])
    assert result.exit_code == 2 and "corrupt TFLite model" in result.output
    result = CliRunner().invoke(app, ["profile", str(tmp_path / "missing.tflite")])
    assert result.exit_code == 2 and "model not found" in result.output


@pytest.mark.parametrize("method", ["litert", "slice"])
def test_op_the_runtime_lacks(add_models, tmp_path, method):
    model = tmp_path / "custom.tflite"
    model.write_bytes(slicer.with_custom_op(add_models[10].read_bytes(), 3))
    with pytest.raises(ProfilerError, match="cannot run this model.*EdgecompMissingOp"):
        profile_model(model, ProfileOptions(method=method, **FAST))


def test_crash_after_selftest_is_reported_not_raised(add_models, monkeypatch):
    monkeypatch.setenv("EDGECOMP_PROFILER_CRASH_AFTER_SELFTEST", "1")
    with pytest.raises(ProfilerError, match=r"crashed \(SIGSEGV\)"):
        profile_model(add_models[1], ProfileOptions(method="litert", **FAST))


def test_a_child_that_crashes_once_is_started_again(add_models, monkeypatch, tmp_path):
    """A real native crash (SIGSEGV) in the first profiler child only: the measurement is a fresh process
    anyway, so it is started once more and the profile completes (a second crash is reported, above)."""
    marker = tmp_path / "crashed-once"
    monkeypatch.setenv("EDGECOMP_PROFILER_CRASH_ONCE", str(marker))
    res = profile_model(add_models[1], ProfileOptions(method="litert", **FAST))
    assert marker.exists() and res.methods[0].ops


def _required_symbols() -> list[str]:
    if str(WIRE_DIR) not in sys.path:
        sys.path.append(str(WIRE_DIR))  # profiler_child imports edgecomp_wire, as in the runtime env
    from devices.profiling.profiler_child import REQUIRED

    return REQUIRED


def _fake_lib(tmp_path: Path, crash: bool, drop: str | None = None) -> Path:
    """A stand-in libLiteRt.so: every C-API symbol, LiteRtCreateEnvironment dereferences NULL."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed")
    body = [
        "int LiteRtCreateEnvironment(int n, void* o, void** e) { return *(volatile int*)0; }"
        if crash
        else "int LiteRtCreateEnvironment(int n, void* o, void** e) { return 1; }"
    ]
    stubs = [s for s in _required_symbols() if s not in ("LiteRtCreateEnvironment", drop)]
    body += [f"int {s}(void) {{ return 1; }}" for s in stubs]
    src, lib = tmp_path / "fake.c", tmp_path / "libfake.so"
    src.write_text("\n".join(body) + "\n")
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(lib), str(src)], check=True)
    return lib


def test_segfaulting_profiler_library(add_models, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGECOMP_LITERT_LIB", str(_fake_lib(tmp_path, crash=True)))
    result = CliRunner().invoke(app, ["profile", str(add_models[1]), "--method", "litert", "--runs", "5"])
    assert result.exit_code == 3
    assert "crashed (SIGSEGV)" in result.output and "Traceback" not in result.output


def test_changed_interface_fails_the_selftest(add_models, tmp_path, monkeypatch):
    monkeypatch.setenv(
        "EDGECOMP_LITERT_LIB", str(_fake_lib(tmp_path, crash=False, drop="LiteRtGetProfilerEvents"))
    )
    with pytest.raises(ProfilerError, match="self-test failed: libLiteRt.so lacks LiteRtGetProfilerEvents"):
        profile_model(add_models[1], ProfileOptions(method="litert", **FAST))


def test_cli_outputs(add_models, tmp_path):
    out = {k: tmp_path / f"p.{k}" for k in ("csv", "png", "json")}
    result = CliRunner().invoke(
        app,
        [
            "profile",
            str(add_models[10]),
            "--method",
            "both",
            "--mode",
            "per-node",
            "--runs",
            "30",
            "--processes",
            "2",
            "--json",
            "--csv",
            str(out["csv"]),
            "--png",
            str(out["png"]),
            "--model-explorer",
            str(out["json"]),
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [m["method"] for m in data["methods"]] == ["litert-profiler", "slicing"]
    assert data["target"]["host_cpu"] == host_cpu().to_json()  # the CPU and ISA the times come from
    assert all(len(m["invoke_spread"]) == 2 for m in data["methods"])
    assert all(m["ratio"] is None or m["resolved"] for m in data["methods"])
    assert out["csv"].read_text().count("\n") == 1 + 20
    assert out["png"].read_bytes()[:4] == b"\x89PNG"
    explorer = json.loads(out["json"].read_text())
    assert len(explorer["results"]) == 10 and all("value" in v for v in explorer["results"].values())


@pytest.mark.slow
def test_build_dir_with_quantization_error(tiny_project, tiny_int8, tmp_path):
    """A real int8 build: real queries, the float source as reference, SNR per op, section in report.json."""
    spec = tiny_project.recipe_dict(name="prof", output={"dir": str(tmp_path)})
    build_dir = shared_as(
        tiny_int8, recipe_from_dict(spec)
    )  # the shared int8 build, as convert writes it here
    result = CliRunner().invoke(
        app,
        [
            "profile",
            str(build_dir),
            "--runs",
            "30",
            "--processes",
            "1",
            "--seq-lens",
            "16,32",
            "--json",
            "--model-explorer",
            str(tmp_path / "snr.json"),
            "--overlay",
            "snr",
        ],  # fmt: skip
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert "real queries" in data["input_source"]
    overlay = json.loads((tmp_path / "snr.json").read_text())["results"]  # the quantization error overlay
    assert sorted(v["value"] for v in overlay.values()) == sorted(
        round(e["snr_db"], 4) for e in data["quant_error"] if e["snr_db"] is not None
    )
    errors = {e["op"]: e for e in data["quant_error"]}
    assert "FULLY_CONNECTED" in errors and all(
        e["snr_db"] is None or e["snr_db"] > 5 for e in errors.values()
    )
    assert 0.9 < errors["FULLY_CONNECTED"]["cosine"] <= 1.0
    assert [s["length"] for s in data["sweep"]] == [16, 32]
    report = json.loads((build_dir / "report.json").read_text())
    assert report["profile"]["methods"][0]["sum_us"] > 0
