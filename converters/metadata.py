"""MediaPipe Tasks metadata and MediaPipe's own TextClassifier, run in their isolated environment.

`mediapipe==0.10.21` is the last wheel with the metadata writer's native module, and its pins (jax,
opencv-contrib) clash with the toolchain's, so it lives in its own venv (toolchain.base.venvs) and our code
runs there as a child process (converters/mediapipe_child.py, stdlib + mediapipe) over a JSON-lines protocol.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolchain.base.errors import EdgecompError
from toolchain.base.progress import Progress, SilentProgress
from toolchain.base.venvs import Venv, VenvSpec, cache_dir, ensure_venv

MEDIAPIPE_VERSION = "0.10.21"
CHILD_SCRIPT = Path(__file__).with_name("mediapipe_child.py")
METADATA_KINDS = ("regex", "embedder")  # regex classifier, regex-tokenized embedder


class MediaPipeError(EdgecompError):
    """MediaPipe could not write metadata into, or run, the model."""

    exit_code = 3


def mediapipe_spec() -> VenvSpec:
    return VenvSpec(f"mediapipe-{MEDIAPIPE_VERSION}", (f"mediapipe=={MEDIAPIPE_VERSION}",))


def mediapipe_env_ready() -> bool:
    spec = mediapipe_spec()
    marker = cache_dir() / "envs" / f"{spec.name}-{spec.key}" / "edgecomp-env.json"
    return marker.is_file()


def ensure_mediapipe(progress: Progress | None = None) -> Venv:
    """The cached MediaPipe venv; the first call installs it (about 1 GB, ~40 s from the registry)."""
    progress = progress or SilentProgress()
    if mediapipe_env_ready():
        return ensure_venv(mediapipe_spec())
    desc = f"installing mediapipe=={MEDIAPIPE_VERSION} into its own environment (once)"
    with progress.task(desc, 1) as advance:
        env = ensure_venv(mediapipe_spec())
        advance(1)
    return env


@dataclass(frozen=True)
class ModelInfo:
    """General metadata written into the model (MediaPipe's ModelMetadata)."""

    name: str
    version: str
    description: str
    author: str
    license: str


class MediaPipeSession:
    """One long-lived child in the MediaPipe env. Use as a context manager; every request has a timeout."""

    def __init__(self, env: Venv, timeout_s: float = 120.0, script: Path = CHILD_SCRIPT) -> None:
        self.env = env
        self.timeout_s = timeout_s
        self.script = script
        self.version = ""
        self._proc: subprocess.Popen[str] | None = None
        self._stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed in __exit__

    def __enter__(self) -> MediaPipeSession:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        environ["GLOG_minloglevel"] = "2"
        self._proc = subprocess.Popen(
            [str(self.env.python), str(self.script)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env=environ,
            start_new_session=True,
        )
        hello = self._read("starting MediaPipe")
        self.version = str(hello.get("mediapipe", ""))
        return self

    def __exit__(self, *exc: object) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.stdin.close()  # type: ignore[union-attr]
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._stderr.close()

    def _stderr_tail(self) -> str:
        self._stderr.flush()
        self._stderr.seek(0)
        lines = [ln for ln in self._stderr.read().splitlines() if ln.strip()]
        return lines[-1][:300] if lines else "(no output)"

    def _read(self, what: str) -> dict[str, Any]:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            if not sel.select(self.timeout_s):
                proc.kill()
                proc.wait()
                raise MediaPipeError(
                    f"MediaPipe timed out after {self.timeout_s:.0f} s while {what}",
                    hint="a larger model or slow machine: raise the timeout",
                )
        line = proc.stdout.readline()
        if not line:
            code = proc.wait()
            raise MediaPipeError(
                f"MediaPipe exited (code {code}) while {what}: {self._stderr_tail()}",
                hint=f"check the environment: {self.env.path}",
            )
        return json.loads(line)

    def request(self, msg: dict[str, Any], what: str) -> dict[str, Any]:
        proc = self._proc
        if proc is None or proc.stdin is None:
            raise RuntimeError("MediaPipeSession used outside its `with` block")
        try:
            proc.stdin.write(json.dumps(msg) + "\n")
            proc.stdin.flush()
        except BrokenPipeError:
            code = proc.wait()
            raise MediaPipeError(
                f"MediaPipe exited (code {code}) before {what}: {self._stderr_tail()}",
                hint=f"check the environment: {self.env.path}",
            ) from None
        reply = self._read(what)
        if not reply.get("ok"):
            raise MediaPipeError(
                f"MediaPipe failed while {what}: {reply.get('error')}",
                hint="the model or its metadata is not what MediaPipe Tasks expects",
            )
        return reply

    def write_metadata(
        self,
        model_in: Path,
        model_out: Path,
        kind: str,
        vocab: Path,
        labels: list[str] | None,
        info: ModelInfo,
        delim: str | None = None,
    ) -> str:
        """Write Tasks metadata (tokenizer + vocab, labels, general info) into a copy; returns its JSON."""
        if kind not in METADATA_KINDS:
            raise MediaPipeError(
                f"unknown metadata kind {kind!r}", hint=f"one of: {', '.join(METADATA_KINDS)}"
            )
        msg = {
            "cmd": "write_metadata",
            "model_in": str(model_in),
            "model_out": str(model_out),
            "kind": kind,
            "vocab": str(vocab),
            "labels": labels,
            "delim": delim,
            "info": info.__dict__,
        }
        return str(self.request(msg, "writing metadata")["metadata_json"])

    def classify(
        self,
        model: Path,
        texts: list[str],
        progress: Progress | None = None,
        what: str = "",
        chunk: int = 200,
    ) -> list[list[tuple[int, float]]]:
        """MediaPipe TextClassifier results per text: (label index, score) in MediaPipe's order."""
        progress = progress or SilentProgress()
        out: list[list[tuple[int, float]]] = []
        with progress.task(f"MediaPipe TextClassifier {what}".strip(), len(texts)) as advance:
            for start in range(0, len(texts), chunk):
                part = texts[start : start + chunk]
                reply = self.request(
                    {"cmd": "classify", "model": str(model), "texts": part}, "classifying queries"
                )
                out.extend([[(int(i), float(s)) for i, s in cats] for cats in reply["results"]])
                advance(len(part))
        return out

    def embed(self, model: Path, texts: list[str]) -> list[list[float]]:
        reply = self.request({"cmd": "embed", "model": str(model), "texts": texts}, "embedding queries")
        return reply["embeddings"]


def timed_session(
    progress: Progress | None = None, timeout_s: float = 120.0
) -> tuple[MediaPipeSession, float]:
    """Provision the env (with progress) and return an unstarted session plus the setup seconds."""
    t0 = time.perf_counter()
    env = ensure_mediapipe(progress)
    return MediaPipeSession(env, timeout_s), round(time.perf_counter() - t0, 2)
