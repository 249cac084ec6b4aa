"""MediaPipe Tasks metadata and MediaPipe's own TextClassifier, run in their isolated environment.

`mediapipe==0.10.21` is the last wheel with the metadata writer's native module, and its pins (jax,
opencv-contrib) clash with the toolchain's, so it lives in its own venv (toolchain.base.venvs) and our code
runs there as a child process (converters/mediapipe_child.py, stdlib + mediapipe) over the one child
protocol (toolchain/base/child.py): every request has a timeout that a half-written reply cannot defeat, and
a crash names its signal.
"""

from __future__ import annotations

import os
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolchain.base.child import ChildError, ChildFailed, ChildSession
from toolchain.base.errors import EdgecompError
from toolchain.base.progress import Progress, SilentProgress
from toolchain.base.venvs import Venv, VenvSpec, cache_dir, ensure_venv

MEDIAPIPE_VERSION = "0.10.21"  # writes every package's metadata; the default app runtime parity runs in
# The app runtimes `edgecomp package --mediapipe` proves parity in. 1.2.3 carries LiteRT 2.3 (int4 kernels)
# but no metadata writer: 0.10.21 writes the metadata, 1.2.3 runs the model (measured: it reads it).
MEDIAPIPE_RUNTIMES = (MEDIAPIPE_VERSION, "1.2.3")
CHILD_SCRIPT = Path(__file__).with_name("mediapipe_child.py")
# regex classifier, regex-tokenized embedder, BERT (WordPiece, 3 int32 inputs) classifier and embedder
# (+ _spm: the same BERT inputs with MediaPipe's SentencePiece tokenizer, `vocab` the .model file)
METADATA_KINDS = ("regex", "embedder", "bert", "bert_embedder", "bert_spm", "bert_embedder_spm")
BERT_KINDS = ("bert", "bert_embedder", "bert_spm", "bert_embedder_spm")


class MediaPipeError(EdgecompError):
    """MediaPipe could not write metadata into, or run, the model."""

    exit_code = 3


def mediapipe_spec(version: str = MEDIAPIPE_VERSION) -> VenvSpec:
    if version not in MEDIAPIPE_RUNTIMES:
        raise MediaPipeError(
            f"MediaPipe {version} is not an app runtime edgecomp checks parity in",
            hint=f"one of: {', '.join(MEDIAPIPE_RUNTIMES)}",
        )
    return VenvSpec(f"mediapipe-{version}", (f"mediapipe=={version}",))


def mediapipe_env_ready(version: str = MEDIAPIPE_VERSION) -> bool:
    spec = mediapipe_spec(version)
    marker = cache_dir() / "envs" / f"{spec.name}-{spec.key}" / "edgecomp-env.json"
    return marker.is_file()


def ensure_mediapipe(progress: Progress | None = None, version: str = MEDIAPIPE_VERSION) -> Venv:
    """The cached MediaPipe venv; the first call installs it (about 1 GB, ~40 s from the registry)."""
    progress = progress or SilentProgress()
    if mediapipe_env_ready(version):
        return ensure_venv(mediapipe_spec(version))
    desc = f"installing mediapipe=={version} into its own environment (once)"
    with progress.task(desc, 1) as advance:
        env = ensure_venv(mediapipe_spec(version))
        advance(1)
    return env


@dataclass(frozen=True)
class ModelInfo:
    """General metadata written into the model (MediaPipe's ModelMetadata)."""

    name: str
    version: str
    description: str
    author: str | None  # None: left out (edgecomp never writes an author or licence of its own)
    license: str | None


class MediaPipeSession:
    """One long-lived child in the MediaPipe env. Use as a context manager; every request has a timeout."""

    def __init__(self, env: Venv, timeout_s: float = 120.0, script: Path = CHILD_SCRIPT) -> None:
        self.env = env
        self.timeout_s = timeout_s
        self.version = ""
        environ = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        environ["GLOG_minloglevel"] = "2"
        self._session = ChildSession(
            [str(env.python), str(script)], environ, hello_timeout=timeout_s, name="MediaPipe"
        )

    def __enter__(self) -> MediaPipeSession:
        try:
            hello = self._session.start()
        except ChildError as err:
            raise self._error(err) from None
        self.version = str(hello.get("mediapipe", ""))
        return self

    def __exit__(self, *exc: object) -> None:
        self._session.close()

    def _error(self, err: ChildError) -> MediaPipeError:
        if isinstance(err, ChildFailed):
            return MediaPipeError(
                err.message, hint="the model or its metadata is not what MediaPipe Tasks expects"
            )
        return MediaPipeError(err.message, hint=f"check the environment: {self.env.path}; {err.hint or ''}")

    def request(self, op: str, args: dict[str, Any], what: str) -> Any:
        """One call to the child; any failure is a MediaPipeError naming `what`."""
        try:
            return self._session.call(op, args, self.timeout_s, what)
        except ChildError as err:
            raise self._error(err) from None

    def write_metadata(
        self,
        model_in: Path,
        model_out: Path,
        kind: str,
        vocab: Path,
        labels: list[str] | None,
        info: ModelInfo,
        delim: str | None = None,
        input_names: tuple[str, str, str] | None = None,
    ) -> str:
        """Write Tasks metadata (tokenizer + vocab, labels, general info) into a copy; returns its JSON.

        BERT kinds need `input_names`: the TFLite tensor names of (ids, mask, segment ids), which the
        writer binds to the metadata names `ids`, `mask`, `segment_ids` (MediaPipe finds the inputs by
        those names, in any order).
        """
        if kind not in METADATA_KINDS:
            raise MediaPipeError(
                f"unknown metadata kind {kind!r}", hint=f"one of: {', '.join(METADATA_KINDS)}"
            )
        if kind in BERT_KINDS and (input_names is None or len(input_names) != 3):
            raise MediaPipeError(
                f"metadata kind {kind!r} needs the three input tensor names (ids, mask, segment ids)",
                hint="find them with converters.tflite_inputs.bert_input_names",
            )
        args = {
            "model_in": str(model_in),
            "model_out": str(model_out),
            "kind": kind,
            "vocab": str(vocab),
            "labels": labels,
            "delim": delim,
            "input_names": list(input_names) if input_names else None,
            "info": info.__dict__,
        }
        return str(self.request("write_metadata", args, "writing metadata")["metadata_json"])

    def classify(
        self,
        model: Path,
        texts: list[str],
        progress: Progress | None = None,
        what: str = "",
        chunk: int = 200,
        max_results: int | None = None,
    ) -> list[list[tuple[int, float]]]:
        """MediaPipe TextClassifier results per text: (label index, score) in MediaPipe's order; with
        `max_results` (the app's option, e.g. 10 for a retrieval model) only the first that many."""
        progress = progress or SilentProgress()
        out: list[list[tuple[int, float]]] = []
        with progress.task(f"MediaPipe TextClassifier {what}".strip(), len(texts)) as advance:
            for start in range(0, len(texts), chunk):
                part = texts[start : start + chunk]
                args = {"model": str(model), "texts": part, "max_results": max_results}
                reply = self.request("classify", args, "classifying queries")
                out.extend([[(int(i), float(s)) for i, s in cats] for cats in reply["results"]])
                advance(len(part))
        return out

    def embed(self, model: Path, texts: list[str]) -> list[list[float]]:
        reply = self.request("embed", {"model": str(model), "texts": texts}, "embedding queries")
        return reply["embeddings"]


def timed_session(
    progress: Progress | None = None, timeout_s: float = 120.0, version: str = MEDIAPIPE_VERSION
) -> tuple[MediaPipeSession, float]:
    """Provision the env (with progress) and return an unstarted session plus the setup seconds."""
    t0 = time.perf_counter()
    env = ensure_mediapipe(progress, version)
    return MediaPipeSession(env, timeout_s), round(time.perf_counter() - t0, 2)


class AppSession:
    """The metadata written by MediaPipe 0.10.21 (the last wheel with the writer), the model run by the app's
    MediaPipe (`runner`; the same session when the app runs 0.10.21). A context manager, like a session."""

    def __init__(self, writer: MediaPipeSession, runner: MediaPipeSession) -> None:
        self.writer, self.runner = writer, runner
        self._stack = ExitStack()

    def __enter__(self) -> AppSession:
        with ExitStack() as stack:
            stack.enter_context(self.writer)
            if self.runner is not self.writer:
                stack.enter_context(self.runner)
            self._stack = stack.pop_all()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    @property
    def version(self) -> str:
        return self.runner.version

    def write_metadata(self, *args: Any, **kwargs: Any) -> str:
        return self.writer.write_metadata(*args, **kwargs)

    def classify(self, *args: Any, **kwargs: Any) -> list[list[tuple[int, float]]]:
        return self.runner.classify(*args, **kwargs)

    def embed(self, model: Path, texts: list[str]) -> list[list[float]]:
        return self.runner.embed(model, texts)


def app_session(
    progress: Progress | None = None, timeout_s: float = 120.0, version: str = MEDIAPIPE_VERSION
) -> tuple[AppSession, float]:
    """The writer and the app runtime `version` (both provisioned, with progress), unstarted, and the setup
    seconds."""
    writer, seconds = timed_session(progress, timeout_s)
    if version == MEDIAPIPE_VERSION:
        return AppSession(writer, writer), seconds
    runner, more = timed_session(progress, timeout_s, version)
    return AppSession(writer, runner), round(seconds + more, 2)
