"""ONNX external data stays inside the model's folder: checked before onnx, onnxruntime or onnx2tf read it.

An ONNX tensor may keep its bytes in another file (`data_location: EXTERNAL`, key `location`). Every reader
(onnx.load, onnxruntime, onnx2tf) joins that location to the model's folder and follows symlinks, so a
model could pull in `../../home/user/.ssh/id_rsa`, or `w.bin -> /etc/shadow`, and the bytes ended up as
weights in model.tflite (issue 12). Here every location of every tensor (initializers, sparse
initializers, node attributes, subgraphs) is resolved with symlinks followed and must land on a regular
file inside the model's real folder, with its offset and length inside that file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from toolchain.base.errors import InputFileError

_EXTERNAL = 1  # onnx.TensorProto.EXTERNAL


def _tensors(graph: Any) -> Iterator[Any]:
    """Every TensorProto in a graph and its subgraphs (If/Loop/Scan bodies)."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("g"):
                yield from _tensors(attr.g)
            for sub in attr.graphs:
                yield from _tensors(sub)


def check_external_data(path: Path, model: Any) -> None:
    """Refuse external data outside the model's folder (`..`, absolute paths, symlink escapes)."""
    folder = Path(os.path.realpath(Path(os.path.abspath(path)).parent))
    for tensor in _tensors(model.graph):
        if tensor.data_location != _EXTERNAL:
            continue
        info = {e.key: e.value for e in tensor.external_data}
        location = info.get("location", "")
        refuse = _refusal(path, tensor.name, location)
        if not location or os.path.isabs(location) or ".." in Path(location).parts or "\0" in location:
            raise refuse
        target = Path(os.path.realpath(folder / location))
        if not target.is_relative_to(folder) or not target.is_file():
            raise refuse
        try:
            offset, length = int(info.get("offset", 0)), int(info.get("length", -1))
        except ValueError:
            raise refuse from None
        size = target.stat().st_size
        if offset < 0 or offset > size or (length >= 0 and offset + length > size):
            raise InputFileError(
                f"{path}: external data of tensor {tensor.name!r} ({location}) asks for bytes past its end",
                hint="re-export the model with its external data file",
            )


def _refusal(path: Path, tensor: str, location: str) -> InputFileError:
    return InputFileError(
        f"{path}: tensor {tensor!r} keeps its data in {location!r}, which is not a file inside the model's "
        "folder (absolute, '..' or a symlink leading out); edgecomp reads nothing outside it",
        hint="put the external data file next to the .onnx (a real file, not a link) and re-export",
    )
