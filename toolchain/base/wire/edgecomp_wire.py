"""The child side of edgecomp's one child-process protocol; stdlib only, imported by every child script.

Children run in environments without edgecomp (device runtime venvs, ARM sysroots under QEMU, the
MediaPipe venv, onnx2tf), so this file stands alone in its own folder: the host (toolchain/base/child.py)
puts that folder on the child's PYTHONPATH and the child does `import edgecomp_wire`.

Wire format: one JSON object per line (UTF-8).
  child -> host, once at start: {"id": 0, "ok": true, "result": {"protocol": 1, "pid", "python", "machine",
                                  ...the child's own facts: runtime module/version...}}
  host -> child: {"id": n, "op": "name", "args": {...}}
  child -> host: {"id": n, "ok": true, "result": ...}
              or {"id": n, "ok": false, "error": {"kind": str, "message": str}}
An exception in a handler is an `ok: false` reply (kind from `Failure`, else "internal"; a handler's
sys.exit is kind "exit"); the loop goes on. `shutdown` (or EOF on the request stream) ends the loop.
Arrays never travel as JSON lists: the args/result name .npz files (`save_arrays`, `load_arrays`).

Native libraries (TF, LiteRT, MediaPipe's glog) write to fd 1 behind Python's back, so `open_channel()`
takes a private dup of fd 1 for replies and points fd 1 at stderr; requests come in on a dup of fd 0 and
fd 0 becomes /dev/null. Call it before importing the chatty library.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import traceback

PROTOCOL = 1


class Failure(Exception):
    """Raise in a handler for an `ok: false` reply with this `kind` (e.g. "load", "interface")."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class Channel:
    """The protocol's private file descriptors; fd 1 -> stderr and fd 0 -> /dev/null once opened."""

    def __init__(self) -> None:
        sys.stdout.flush()
        self.out = os.fdopen(os.dup(1), "w", encoding="utf-8")
        self.inp = os.fdopen(os.dup(0), "r", encoding="utf-8")
        os.dup2(2, 1)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        sys.stdout = sys.stderr  # Python-level prints go to stderr as well

    def send(self, message: dict) -> None:
        self.out.write(json.dumps(message) + "\n")
        self.out.flush()


_CHANNEL: Channel | None = None


def open_channel() -> Channel:
    """Take the protocol's fds (idempotent); call before importing a library that writes to stdout."""
    global _CHANNEL
    if _CHANNEL is None:
        _CHANNEL = Channel()
    return _CHANNEL


def _error(kind: str, message: str) -> dict:
    return {"kind": kind, "message": message[:2000]}


def _call(handler, args: dict) -> dict:
    try:
        return {"ok": True, "result": handler(args)}
    except Failure as err:
        return {"ok": False, "error": _error(err.kind, err.message)}
    except SystemExit as err:
        return {"ok": False, "error": _error("exit", f"the handler called sys.exit({err.code})")}
    except Exception as err:
        where = traceback.extract_tb(err.__traceback__)[-1]
        msg = f"{type(err).__name__}: {err} (at {os.path.basename(where.filename)}:{where.lineno})"
        return {"ok": False, "error": _error("internal", msg)}


def serve(handlers: dict, info: dict | None = None) -> None:
    """Say hello (protocol, pid, python, machine + `info`), then answer requests until shutdown or EOF."""
    channel = open_channel()
    hello = {
        "protocol": PROTOCOL,
        "pid": os.getpid(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        **(info or {}),
    }
    channel.send({"id": 0, "ok": True, "result": hello})
    for line in channel.inp:
        if not line.strip():
            continue
        try:
            req = json.loads(line)
            rid, op, args = req["id"], req["op"], req.get("args") or {}
        except (ValueError, KeyError, TypeError) as err:
            channel.send({"id": None, "ok": False, "error": _error("protocol", f"bad request: {err}")})
            continue
        if op == "shutdown":
            channel.send({"id": rid, "ok": True, "result": None})
            return
        handler = handlers.get(op)
        if handler is None:
            reply = {"ok": False, "error": _error("protocol", f"unknown op {op!r}; ops: {sorted(handlers)}")}
        else:
            reply = _call(handler, args)
        channel.send({"id": rid, **reply})


def save_arrays(path: str, arrays: dict) -> str:
    """Write named arrays to an .npz file (numpy is in every child environment); returns the path."""
    import numpy as np

    np.savez(path, **arrays)
    return path


def load_arrays(path: str) -> dict:
    import numpy as np

    with np.load(path) as data:
        return {k: data[k] for k in data.files}
