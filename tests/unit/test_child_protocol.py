"""The one child-process protocol (toolchain/base/child.py + wire/edgecomp_wire.py) with real subprocesses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from toolchain.base.child import ChildCrashed, ChildError, ChildFailed, ChildSession, ChildTimeout

ROOT = Path(__file__).resolve().parents[2]
SERVE = """
import os, sys, time
import edgecomp_wire as wire

def boom(args):
    raise ValueError("no such model: " + args["model"])

def fail(args):
    raise wire.Failure("load", "the runtime refused it")

def double(args):
    arrays = wire.load_arrays(args["inputs"])
    return {"out": wire.save_arrays(args["out"], {k: v * 2 for k, v in arrays.items()})}

def chatter(args):
    os.write(1, b"native chatter without a newline ")
    print("a Python print", flush=True)
    os.write(1, b'{"id": 99, "ok": true}\\n')
    return {"echo": args["x"]}

def half_line(args):
    wire.open_channel().out.write('{"id": ')
    wire.open_channel().out.flush()
    time.sleep(600)

def segfault(args):
    import ctypes
    ctypes.string_at(1)

def environ(args):
    return {k: os.environ.get(k) for k in args["keys"]}

def spawn(args):
    import subprocess
    return {"pid": subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"]).pid}

wire.serve({"boom": boom, "fail": fail, "double": double, "chatter": chatter, "half_line": half_line,
            "segfault": segfault, "spawn": spawn, "environ": environ}, {"runtime": "fake", "version": "0.0"})
"""


@pytest.fixture
def child(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(SERVE)
    with ChildSession([sys.executable, str(script)], name="test child") as session:
        yield session


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    with open(f"/proc/{pid}/stat") as fh:  # a zombie waiting for init counts as gone
        return fh.read().split(")")[-1].split()[0] == "Z"


def _wait_gone(pid: int, within_s: float = 30.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if _gone(pid):
            return True
        time.sleep(0.05)
    return False


def test_hello_names_the_child(child):
    hello = child.hello
    assert hello["protocol"] == 1 and hello["pid"] == child.proc.pid
    assert hello["python"] == ".".join(map(str, sys.version_info[:3])) and hello["runtime"] == "fake"


def test_a_raising_handler_is_ok_false_and_the_loop_goes_on(child):
    with pytest.raises(ChildFailed, match="while loading: ValueError: no such model: m.tflite") as info:
        child.call("boom", {"model": "m.tflite"}, what="loading")
    assert info.value.kind == "internal"
    with pytest.raises(ChildFailed) as info:
        child.call("fail")
    assert (info.value.kind, info.value.detail) == ("load", "the runtime refused it")
    with pytest.raises(ChildFailed, match="unknown op 'nope'"):
        child.call("nope")
    assert child.call("chatter", {"x": 1}) == {"echo": 1}


def test_arrays_round_trip_as_npz(child):
    ids = np.arange(12, dtype=np.int32).reshape(3, 4)
    src, out = child.work / "in.npz", child.work / "out.npz"
    np.savez(src, ids=ids)
    result = child.call("double", {"inputs": str(src), "out": str(out)})
    with np.load(result["out"]) as data:
        np.testing.assert_array_equal(data["ids"], ids * 2)
        assert data["ids"].dtype == np.int32


def test_native_chatter_on_fd1_does_not_corrupt_replies(child):
    for x in range(3):
        assert child.call("chatter", {"x": x}) == {"echo": x}
    assert "native chatter" in child.stderr() and "a Python print" in child.stderr()


def test_a_half_written_line_is_cut_off_by_the_timeout(child):
    grandchild = child.call("spawn")["pid"]
    pid = child.proc.pid
    with pytest.raises(ChildTimeout, match="timed out after 2 s while half_line"):
        child.call("half_line", timeout=2)
    assert _wait_gone(pid) and _wait_gone(grandchild)  # the whole process group, no orphan


def test_a_segfault_is_child_crashed_naming_sigsegv(child):
    with pytest.raises(ChildCrashed, match="test child crashed with SIGSEGV while segfault") as info:
        child.call("segfault")
    assert info.value.signal == "SIGSEGV" and info.value.returncode == -signal.SIGSEGV


def test_a_child_that_dies_before_hello_names_its_exit_and_stderr(tmp_path):
    script = tmp_path / "bad.py"
    script.write_text("import sys; sys.stderr.write('ImportError: no runtime here\\n'); sys.exit(3)\n")
    with pytest.raises(ChildCrashed, match="exited with code 3 while starting: ImportError: no runtime here"):
        ChildSession([sys.executable, str(script)]).start()


def test_close_asks_for_shutdown_and_removes_the_work_dir(child):
    work = child.work
    child.close()
    assert child.proc.returncode == 0 and not work.exists()  # served `shutdown`, was not killed


def test_a_missing_interpreter_is_a_child_error(tmp_path):
    with pytest.raises(ChildError, match="could not start"):
        ChildSession([str(tmp_path / "no-python"), "x.py"]).start()


HOST = """
import sys, time
from toolchain.base.child import ChildSession
session = ChildSession([sys.executable, sys.argv[1]])
session.start()
print(session.proc.pid, session.call("spawn")["pid"], flush=True)
time.sleep(600)
"""


def test_sigterm_to_the_host_kills_the_child_group(tmp_path):
    child_script, host_script = tmp_path / "child.py", tmp_path / "host.py"
    child_script.write_text(SERVE)
    host_script.write_text(textwrap.dedent(HOST))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    host = subprocess.Popen(
        [sys.executable, str(host_script), str(child_script)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        pids = [int(p) for p in host.stdout.readline().split()]
        assert len(pids) == 2, "the host did not start its child"
        assert not any(_gone(p) for p in pids)
        host.send_signal(signal.SIGTERM)
        assert host.wait(timeout=60) == -signal.SIGTERM  # still dies of SIGTERM, as by default
        assert all(_wait_gone(p) for p in pids)
    finally:
        host.kill()
        host.wait()


def test_a_child_gets_the_startup_loader_path_not_what_a_library_set_since(tmp_path, monkeypatch):
    """OpenCV's wheel prepends its lib64 to LD_LIBRARY_PATH when the converters import it; a LiteRT profiler
    child that inherited it crashed with SIGSEGV. Children get the loader variables edgecomp started with."""
    from toolchain.base import STARTUP_ENV

    monkeypatch.setenv("LD_LIBRARY_PATH", str(tmp_path / "injected-lib64") + ":")
    monkeypatch.setenv("LD_PRELOAD", str(tmp_path / "injected.so"))
    monkeypatch.setenv("EDGECOMP_TEST_OTHER", "kept")
    script = tmp_path / "child.py"
    script.write_text(SERVE)
    keys = ["LD_LIBRARY_PATH", "LD_PRELOAD", "EDGECOMP_TEST_OTHER"]
    with ChildSession([sys.executable, str(script)], name="test child") as session:
        seen = session.call("environ", {"keys": keys})
    assert seen["LD_LIBRARY_PATH"] == STARTUP_ENV.get("LD_LIBRARY_PATH")
    assert seen["LD_PRELOAD"] == STARTUP_ENV.get("LD_PRELOAD")
    assert seen["EDGECOMP_TEST_OTHER"] == "kept"


_FORK_HOOKS: list[str] = []
os.register_at_fork(
    before=lambda: _FORK_HOOKS.append("before"), after_in_parent=lambda: _FORK_HOOKS.append("parent")
)


def test_no_python_runs_in_the_host_between_fork_and_exec(tmp_path):
    """A clean-clone CI run printed "Exception ignored in: <function _releaseLock>" and a traceback when a
    SIGTERM came while a child started: a `preexec_fn` made Popen run Python's at-fork hooks, and the signal's
    exception was raised (and swallowed) inside one. The spawn runs no at-fork hook now, so a signal cannot
    land in one."""
    script = tmp_path / "child.py"
    script.write_text(SERVE)
    _FORK_HOOKS.clear()
    with ChildSession([sys.executable, str(script)], name="test child"):
        assert _FORK_HOOKS == []


def _core_limits(pid: int) -> tuple[str, str]:
    with open(f"/proc/{pid}/limits") as fh:
        line = next(ln for ln in fh if ln.startswith("Max core file size"))
    soft, hard = line.split()[4:6]
    return soft, hard


def test_a_child_writes_no_core_file_and_the_host_keeps_its_limit(tmp_path):
    import resource

    script = tmp_path / "child.py"
    script.write_text(SERVE)
    before = resource.getrlimit(resource.RLIMIT_CORE)
    with ChildSession([sys.executable, str(script)], name="test child") as session:
        assert _core_limits(session.proc.pid)[0] == "0"
    assert resource.getrlimit(resource.RLIMIT_CORE) == before
