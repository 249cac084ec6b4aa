"""Which builtin op versions a runtime supports, measured by probing the runtime itself.

A probe is a .tflite with one operator code (op, version) and an empty subgraph: the interpreter resolves
every operator code when it is built, so the probe loads exactly when the runtime's op resolver has a
kernel for that op version, and otherwise fails with the runtime's own message ("Didn't find op for
builtin opcode 'FULLY_CONNECTED' version '12'"). Answers are cached per runtime (kind, version, arch)
under the edgecomp cache, so the table grows with the models validated and is never guessed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from converters.tflite_model import TFLiteModel
from toolchain.base.atomic import write_text
from toolchain.base.venvs import cache_dir

PROBE_DIR = "opsupport"


class Prober(Protocol):
    def probe(self, models: list[Path]) -> list[str | None]: ...


@dataclass(frozen=True)
class OpVersionIssue:
    op: str
    version: int
    max_supported: int | None  # highest version of the op the runtime has; None: the op is unknown
    message: str  # the runtime's own error

    def describe(self, runtime: str) -> str:
        has = f"it has up to v{self.max_supported}" if self.max_supported else "it has no such op"
        return f"{self.op} v{self.version} is not supported by {runtime} ({has})"


def _op_code(name: str) -> int:
    from ai_edge_litert import schema_py_generated as schema

    return int(getattr(schema.BuiltinOperator, name))


def probe_model(op: str, version: int) -> bytes:
    """A minimal model whose only content is the operator code (op, version)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    code = schema.OperatorCodeT()
    code.builtinCode = _op_code(op)
    code.deprecatedBuiltinCode = min(code.builtinCode, 127)  # 127 = PLACEHOLDER_FOR_GREATER_OP_CODES
    code.version = version
    sg = schema.SubGraphT()
    sg.tensors, sg.inputs, sg.outputs, sg.operators, sg.name = [], [], [], [], "probe"
    model = schema.ModelT()
    model.version, model.operatorCodes, model.subgraphs = 3, [code], [sg]
    model.buffers, model.description = [schema.BufferT()], f"edgecomp probe {op} v{version}"
    builder = flatbuffers.Builder(256)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


class OpSupportTable:
    """Cached probe answers for one runtime: {"OP:version": null | "error message"}."""

    def __init__(self, runtime_key: str, root: Path | None = None) -> None:
        self.path = (root or cache_dir() / PROBE_DIR) / f"{runtime_key}.json"
        try:
            self.known: dict[str, str | None] = json.loads(self.path.read_text())
        except (OSError, json.JSONDecodeError):
            self.known = {}

    def ensure(self, pairs: list[tuple[str, int]], prober: Prober, workdir: Path) -> None:
        todo = sorted({p for p in pairs if f"{p[0]}:{p[1]}" not in self.known})
        if not todo:
            return
        paths = []
        for op, version in todo:
            path = workdir / f"probe-{op}-v{version}.tflite"
            path.write_bytes(probe_model(op, version))
            paths.append(path)
        for (op, version), err in zip(todo, prober.probe(paths), strict=True):
            self.known[f"{op}:{version}"] = err
        write_text(self.path, json.dumps(dict(sorted(self.known.items())), indent=1) + "\n")

    def error(self, op: str, version: int) -> str | None:
        return self.known.get(f"{op}:{version}")


def check_op_versions(
    model: TFLiteModel, prober: Prober, runtime_key: str, workdir: Path
) -> list[OpVersionIssue]:
    """Every (builtin op, version) the model uses that the runtime lacks, first op first."""
    used: list[tuple[str, int]] = []
    for op in model.ops:
        if not op.custom and (op.op, op.version) not in used and not op.op.startswith("OP_"):
            used.append((op.op, op.version))
    table = OpSupportTable(runtime_key)
    table.ensure(used, prober, workdir)
    issues = []
    for op, version in used:
        err = table.error(op, version)
        if err is None:
            continue
        lower = [(op, v) for v in range(1, version)]
        table.ensure(lower, prober, workdir)
        ok = [v for _, v in lower if table.error(op, v) is None]
        issues.append(OpVersionIssue(op, version, max(ok) if ok else None, err))
    return issues


def min_runtime_version(data: bytes) -> str | None:
    """The converter's `min_runtime_version` metadata (the oldest TF Lite runtime it claims), if any."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(data, 0)
    for i in range(model.MetadataLength()):
        meta = model.Metadata(i)
        if meta.Name() == b"min_runtime_version":
            buf = model.Buffers(meta.Buffer())
            raw = bytes(buf.DataAsNumpy().tobytes()) if buf.DataLength() else b""
            return raw.split(b"\0", 1)[0].decode("ascii", "replace") or None
    return None
