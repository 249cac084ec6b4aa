"""Hugging Face folders (transformers, sentence-transformers) to ONNX, in an isolated PyTorch environment.

PyTorch and transformers are not in the toolchain environment (their pins would meet TensorFlow's), so
they live in their own venv, provisioned on first use like the MediaPipe one (toolchain/base/venvs.py)
with the versions of the `onnx-fixtures` extra, and the export runs there as a child process
(converters/hf_export_child.py) over the one child protocol (toolchain/base/child.py): edgecomp's own
process never imports torch and never unpickles a weights file.

Measured on this project's machine (2 cores, 2026-12-06): provisioning took 58 s (without onnx) and
1278 MB installed (with onnx, which torch.onnx.export needs); torch's CPU wheel and the rest come from the
package mirrors configured for pip as local files, which pip does not cache (~/.cache/pip stayed empty),
so there is no wheel cache to reuse: the env is made once per machine (keyed by the pins) under the
edgecomp cache dir, and every build and test reuses it. Starting the child (torch + transformers import)
takes a few seconds; exporting a 2-layer hidden-64 BERT about 2 s.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from toolchain.base.child import ChildError, ChildFailed, ChildSession
from toolchain.base.errors import ConversionError
from toolchain.base.progress import Progress, SilentProgress
from toolchain.base.venvs import Venv, VenvSpec, cache_dir, ensure_venv

TORCH_VERSION = "2.13.0"
# the `onnx-fixtures` extra's pins (pyproject.toml), plus safetensors, and the toolchain's onnx and numpy
HF_EXPORT_REQUIREMENTS = (
    f"torch=={TORCH_VERSION}",
    "transformers==5.23.0",
    "tokenizers==0.23.3",
    "safetensors==0.8.0",
    "sentencepiece==0.2.0",  # XLM-R-family folders without tokenizer.json (0.2.1+ needs protobuf 5)
    "onnx==1.19.1",  # torch.onnx.export serialises through it
    "numpy==1.26.4",
)
CHILD_SCRIPT = Path(__file__).with_name("hf_export_child.py")
HEADS = ("classifier", "encoder")
ADAPT_TIMEOUT_S = 4 * 3600.0  # a lower-case fine-tune of a real-size encoder on CPU takes long
POOLINGS = ("mean", "cls", "max")


def hf_export_spec() -> VenvSpec:
    return VenvSpec(f"hf-export-torch-{TORCH_VERSION}", HF_EXPORT_REQUIREMENTS)


def hf_env_ready() -> bool:
    spec = hf_export_spec()
    return (cache_dir() / "envs" / f"{spec.name}-{spec.key}" / "edgecomp-env.json").is_file()


def ensure_hf_env(progress: Progress | None = None) -> Venv:
    """The cached PyTorch venv; the first call installs it (about 1.2 GB, about a minute)."""
    progress = progress or SilentProgress()
    if hf_env_ready():
        return ensure_venv(hf_export_spec())
    with progress.task(
        f"installing torch=={TORCH_VERSION} + transformers into its own environment (once)", 1
    ):
        return ensure_venv(hf_export_spec())


@dataclass(frozen=True)
class ExportRequest:
    """What to export: the folder, its head, the sentence-transformers pooling, the inputs and output."""

    folder: Path
    head: str  # classifier | encoder
    pooling: str | None  # encoder: mean | cls | max
    normalize: bool
    inputs: tuple[str, ...]
    output: str
    seq_len: int
    weights: str  # safetensors | pickle (only with --trust-model-code; the caller checks)


@dataclass(frozen=True)
class LowercaseAdapt:
    """The lower-case fine-tune run before the export (converters/hf_export_child.py `_adapt`)."""

    arrays: Path  # .npz: train_cased/<input>, train_lower/<input>, optional eval_cased/, eval_lower/
    out: Path  # .npz written: the logits before/after on the eval rows
    epochs: int = 3
    lr: float = 5e-4
    temperature: float = 2.0
    seed: int = 0

    def args(self) -> dict[str, Any]:
        return {**{k: v for k, v in self.__dict__.items()}, "arrays": str(self.arrays), "out": str(self.out)}


class TorchExporter:
    """One child in the PyTorch env: `export` once, then `run` on queries for the parity check."""

    def __init__(self, env: Venv, timeout_s: float = 600.0) -> None:
        self.env, self.timeout_s = env, timeout_s
        environ = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        environ.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
        self._session = ChildSession(
            [str(env.python), str(CHILD_SCRIPT)], environ, hello_timeout=timeout_s, name="PyTorch exporter"
        )
        self.versions: dict[str, str] = {}

    def __enter__(self) -> TorchExporter:
        hello = self._call_guard(self._session.start)
        self.versions = {k: str(hello.get(k, "")) for k in ("torch", "transformers")}
        return self

    def __exit__(self, *exc: object) -> None:
        self._session.close()

    def _call_guard(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except ChildFailed as err:
            raise ConversionError(
                f"exporting the folder to ONNX failed: {err.detail[:300]}",
                hint="the folder must load with transformers' own classes (config.json + weights)",
            ) from None
        except ChildError as err:
            raise ConversionError(err.message, hint=f"check the environment {self.env.path}") from None

    def export(
        self, req: ExportRequest, out: Path | None, adapt: LowercaseAdapt | None = None
    ) -> dict[str, Any]:
        """Write the ONNX file to `out` (None: only load the model for `run`), after the lower-case
        fine-tune when `adapt` is given; returns the child's facts."""
        args = {
            "folder": str(req.folder),
            "head": req.head,
            "pooling": req.pooling,
            "normalize": req.normalize,
            "inputs": list(req.inputs),
            "output": req.output,
            "seq_len": req.seq_len,
            "weights": req.weights,
        }
        if adapt is not None:
            args["adapt"] = adapt.args()
        timeout = self.timeout_s if adapt is None else max(self.timeout_s, ADAPT_TIMEOUT_S)
        if out is None:
            return self._call_guard(self._session.call, "load", args, timeout, "loading the model")
        args["out"] = str(out)
        return self._call_guard(self._session.call, "export", args, timeout, "exporting to ONNX")

    def run(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        """The wrapped PyTorch module's output on `arrays` (inputs by name)."""
        with tempfile.TemporaryDirectory(prefix="edgecomp-torch-") as tmp:
            src, dst = Path(tmp) / "in.npz", Path(tmp) / "out.npz"
            np.savez(src, **{k: np.asarray(v, dtype=np.int64) for k, v in arrays.items()})
            args = {"arrays": str(src), "out": str(dst)}
            self._call_guard(self._session.call, "run", args, self.timeout_s, "running PyTorch")
            with np.load(dst) as data:
                return np.asarray(data["y"], dtype=np.float32)
