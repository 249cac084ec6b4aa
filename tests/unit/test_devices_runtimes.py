"""Isolated runtimes (venv / QEMU sysroot) and the runtime worker's failure handling."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from devices.profiles.schema import get_profile
from devices.runner import RuntimeWorker, WorkerFailure
from devices.runtimes import is_provisioned, provision, self_test
from devices.sysroot import SysrootSpec, base_marker, read_debian_lock
from toolchain.base.venvs import EnvSetupError

SEGFAULT_RUNNER = """
import ctypes, edgecomp_wire as wire
wire.serve({"probe": lambda args: ctypes.string_at(0)}, {"version": "x"})  # a real segfault in the runtime
"""
HANG_RUNNER = """
import time, edgecomp_wire as wire
wire.serve({"probe": lambda args: time.sleep(600)}, {"version": "x"})
"""
MEMORY_RUNNER = """
import time, edgecomp_wire as wire

def probe(args):
    hog = bytearray(400 * 1024 * 1024)
    for i in range(0, len(hog), 4096):
        hog[i] = 1
    time.sleep(600)

wire.serve({"probe": probe}, {"version": "x"})
"""
EXIT_RUNNER = "import sys; sys.stderr.write('ImportError: no module named tflite\\n'); sys.exit(3)\n"


@pytest.fixture(scope="module")
def host_env():
    return provision(get_profile("x86-host"))


def _script(tmp_path, text):
    path = tmp_path / "broken_runner.py"
    path.write_text(text)
    return path


def test_x86_runtime_is_an_isolated_venv_without_tensorflow(host_env, tmp_path):
    assert host_env.argv[0].endswith("bin/python") and not host_env.emulated
    assert host_env.module == "ai_edge_litert"
    assert self_test(host_env).startswith("1.")  # numpy<2 inside the runtime
    import subprocess

    code = "import importlib.util as u; print(*(u.find_spec(m) is None for m in ('tensorflow', 'toolchain')))"
    out = subprocess.run(
        host_env.command("-c", code), env=host_env.environ(), capture_output=True, text=True, cwd=tmp_path
    )
    assert out.stdout.split() == ["True", "True"], out.stderr
    assert is_provisioned(get_profile("x86-host"))


def test_worker_reports_segfault_as_failure(host_env, tmp_path):
    script = _script(tmp_path, SEGFAULT_RUNNER)
    with RuntimeWorker(host_env, timeout_s=30, script=script) as worker:
        with pytest.raises(WorkerFailure, match="crashed with SIGSEGV"):  # noqa: SIM117
            worker.probe([tmp_path / "x.tflite"])
        assert not list(worker.tmp.glob("*core*"))


def test_worker_kills_a_hang(host_env, tmp_path):
    with RuntimeWorker(host_env, timeout_s=2, script=_script(tmp_path, HANG_RUNNER)) as worker:
        with pytest.raises(WorkerFailure, match="timed out after 2 s"):
            worker.probe([tmp_path / "x.tflite"])
        assert worker.proc.poll() is not None  # killed, not leaked


def test_worker_enforces_memory_limit(host_env, tmp_path):
    with (
        RuntimeWorker(
            host_env, timeout_s=60, memory_limit_mb=200, script=_script(tmp_path, MEMORY_RUNNER)
        ) as w,
        pytest.raises(WorkerFailure, match="over the memory limit 200 MB"),
    ):
        w.probe([tmp_path / "x.tflite"])


def test_worker_that_cannot_start_names_the_exit(host_env, tmp_path):
    with pytest.raises(WorkerFailure, match="exited with code 3.*no module named tflite"):
        RuntimeWorker(host_env, timeout_s=30, script=_script(tmp_path, EXIT_RUNNER)).start()


def _counter_model(path):
    """A model with state: a variable that every invoke increments, added to the input."""
    from toolchain.base.tfenv import tf

    t = tf()

    class Counter(t.Module):
        def __init__(self) -> None:
            super().__init__()
            self.n = t.Variable(0.0)

        @t.function(input_signature=[t.TensorSpec([1, 1], t.float32, name="x")])
        def __call__(self, x):
            self.n.assign_add(1.0)
            return x + self.n

    counter = Counter()
    converter = t.lite.TFLiteConverter.from_concrete_functions(
        [counter.__call__.get_concrete_function()], counter
    )
    converter.experimental_enable_resource_variables = True
    path.write_bytes(converter.convert())
    return path


@pytest.mark.slow
def test_one_interpreter_runs_every_chunk_of_a_run(host_env, tmp_path):
    """The rows go to the runtime in chunks, each under its own timeout, but meet one interpreter, as on
    the phone: the counter runs on across the chunks, and the next run starts with a new interpreter."""
    from converters.tflite_model import read_tflite
    from devices.hostrun import synthetic_feeds

    model = _counter_model(tmp_path / "counter.tflite")
    feeds = {name: np.zeros_like(v) for name, v in synthetic_feeds(read_tflite(model), 10).items()}
    with RuntimeWorker(host_env, timeout_s=60) as worker:
        runs = [worker.run(model, feeds, chunk_rows=4), worker.run(model, feeds, chunk_rows=64)]
    for res in runs:
        assert res.error is None, res.error
        assert res.raw.reshape(-1).tolist() == [float(i) for i in range(1, 11)]
        assert res.peak_memory_kb is not None


def test_missing_qemu_says_what_to_install(monkeypatch):
    import devices.sysroot as sysroot

    monkeypatch.setattr(sysroot.shutil, "which", lambda tool: None)
    with pytest.raises(EnvSetupError, match="apt-get install --no-install-recommends qemu-user-static"):
        provision(get_profile("android-arm64-litert"))


@pytest.mark.qemu
def test_arm64_runtime_under_qemu(tmp_path):
    prof = get_profile("android-arm64-litert")
    env = provision(prof, check=True)
    assert env.emulated and env.argv[1:3] == ("-cpu", "cortex-a76") and env.argv[3] == "-L"
    assert (env.root / "proc" / "cpuinfo").read_text().count("0xd0b") >= 1  # Cortex-A76 part number
    spec = SysrootSpec(prof.arch, prof.runtime, prof.runtime_version)  # installed from its two locks
    assert env.lock_sha256 == hashlib.sha256(spec.wheel_lock.read_bytes()).hexdigest()
    assert env.debian_lock_sha256 == hashlib.sha256(spec.debian_lock.read_bytes()).hexdigest()
    base = base_marker(env.root)
    assert base["debian"] == {name: pin[0] for name, pin in read_debian_lock(spec.debian_lock).items()}
    assert (base["lock"], base["debian_lock"]) == (spec.wheel_lock.name, spec.debian_lock.name)
    marker = env.root / "edgecomp-sysroot.json"
    before = marker.stat().st_mtime_ns
    again = provision(prof)  # re-running is safe and rebuilds nothing
    assert again == env and marker.stat().st_mtime_ns == before
    with RuntimeWorker(env, timeout_s=120) as worker:
        assert worker.hello["machine"] == "aarch64"
        assert worker.hello["version"] == "2.3.0"


@pytest.mark.qemu
def test_segfault_under_qemu_is_a_failure(tmp_path):
    env = provision(get_profile("android-arm64-litert"))
    with RuntimeWorker(env, timeout_s=120, script=_script(tmp_path, SEGFAULT_RUNNER)) as worker:
        with pytest.raises(WorkerFailure, match="crashed with SIGSEGV"):  # noqa: SIM117
            worker.probe([tmp_path / "x.tflite"])
        assert not list(worker.tmp.glob("*core*"))  # RLIMIT_CORE=0: QEMU leaves no core dump


@pytest.mark.qemu
def test_cli_setup_reports_time_and_disk_and_rejects_unknown_cpu(tmp_path):
    import json

    import yaml
    from typer.testing import CliRunner

    from toolchain.cli.main import app

    runner = CliRunner()
    res = runner.invoke(app, ["devices", "setup", "android-arm64-litert", "--json"])
    assert res.exit_code == 0, res.output
    row = json.loads(res.stdout)[0]
    assert row["arch"] == "aarch64" and row["disk_mb"] > 50 and isinstance(row["seconds"], float)
    assert (row["profile"], row["runtime"], row["emulated"]) == ("android-arm64-litert", "litert 2.3.0", True)
    data = get_profile("android-arm64-litert").model_dump(mode="json")
    data.update(name="a55-phone", cpu="cortex-a55")  # QEMU 7.2 has no Cortex-A55 model
    (tmp_path / "a55-phone.yaml").write_text(yaml.safe_dump(data))
    res = runner.invoke(app, ["devices", "setup", "a55-phone", "--profiles-dir", str(tmp_path)])
    assert res.exit_code == 4
    assert "does not emulate CPU 'cortex-a55'" in res.output and "cortex-a53" in res.output
