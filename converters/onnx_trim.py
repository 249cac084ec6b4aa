"""An ONNX model with a trimmed word-embedding table: kept rows only, optionally an id remap in front.

The table is the initializer that a Gather indexes with the token ids (followed from the ids input through
Cast/Unsqueeze/Reshape/Squeeze/Identity, as `onnx_tflite.embedding_rows` follows it). Its rows are
replaced by `table[kept]`, in the order of `kept`: new id i reads old row kept[i]. Two ways to feed it:

- the tokenizer was rewritten (WordPiece: vocab.txt / tokenizer.json with the kept pieces renumbered), so
  the ids the model gets are already the new ones: only the initializer changes;
- the tokenizer cannot change (SentencePiece: MediaPipe runs the .model as it is), so `remap` (old id ->
  new row, a dropped piece -> the unknown piece's row) goes into the graph as an int32 initializer and a
  Gather in front of every embedding Gather: `Gather(table', Gather(remap, ids))`. The ids input keeps
  its range; 4 bytes per old piece instead of `hidden` floats.
- the tokenizer was renumbered with every piece kept, the kept ones first (WordPiece `dropped:
  unk-renumber`: every text splits as before, a dropped piece's id is >= the kept count K), so `clamp_row`
  (the unknown piece's old row) is appended as row K and the ids are clamped to K in front of every
  embedding Gather: `Gather(table' + [unk row], Min(Cast(ids, int32), K))`. One row and two ops instead
  of the 4-byte-per-piece remap.

A table read by anything else (a tied output projection, a second Gather on other ids) is refused: its
rows would be needed beyond the ids the queries use. The result is one self-contained .onnx file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from converters.onnx_external import check_external_data
from toolchain.base.errors import InputFileError

_PASS_THROUGH = ("Cast", "Unsqueeze", "Reshape", "Squeeze", "Identity")
REMAP_NAME = "vocab_trim/remap"
CLAMP_NAME = "vocab_trim/kept_count"


@dataclass(frozen=True)
class TrimmedTable:
    """What was cut: the initializer's name, its rows before and after, and the row width."""

    name: str
    rows_before: int
    rows_after: int
    width: int


def _embedding_gathers(graph: object, ids_input: str, tables: dict) -> list:
    reach, found = {ids_input}, []
    for node in graph.node:  # type: ignore[attr-defined]
        if node.op_type in _PASS_THROUGH and node.input and node.input[0] in reach:
            reach.update(node.output)
        elif node.op_type == "Gather" and node.input[1:2] and node.input[1] in reach:
            found += [node] if node.input[0] in tables else []
    return found


def word_table_rows(path: Path, ids_input: str) -> tuple[str, int, int]:
    """(initializer name, rows, width) of the word-embedding table the ids index, without loading weights."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    tables = {i.name: tuple(i.dims) for i in model.graph.initializer}
    gathers = _embedding_gathers(model.graph, ids_input, tables)
    names = sorted({g.input[0] for g in gathers})
    if len(names) != 1:
        raise InputFileError(
            f"{path.name}: expected one embedding table indexed by {ids_input}, found {len(names)}"
            + (f" ({', '.join(names)})" if names else ""),
            hint="vocab_trim needs a model whose token ids feed one Gather on an embedding initializer",
        )
    dims = tables[names[0]]
    return names[0], int(dims[0]), int(np.prod(dims[1:]))


def trim_embedding(
    src: Path,
    dst: Path,
    ids_input: str,
    kept: np.ndarray,
    remap: np.ndarray | None = None,
    clamp_row: int | None = None,
) -> TrimmedTable:
    """Write `src` with its word-embedding rows cut to `kept` to `dst`: with the id `remap` in front, or
    (`clamp_row`, an old row) that row appended and the ids clamped to it (the module doc)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from onnx.external_data_helper import load_external_data_for_model

    model = onnx.load(str(src), load_external_data=False)
    check_external_data(src, model)
    load_external_data_for_model(model, str(Path(src).parent))
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    gathers = _embedding_gathers(graph, ids_input, inits)
    name, rows, _ = word_table_rows(src, ids_input)
    readers = [n for n in graph.node if name in n.input]
    if any(n not in gathers or n.input[0] != name for n in readers):
        others = sorted({n.op_type for n in readers if n not in gathers})
        raise InputFileError(
            f"{src.name}: the embedding table {name} is also read by {', '.join(others) or 'another input'} "
            "(tied weights): its rows cannot be cut to the queries' pieces",
            hint="drop the vocab_trim step for this model",
        )
    table = numpy_helper.to_array(inits[name])
    kept = np.asarray(kept, dtype=np.int64)
    if kept.min() < 0 or kept.max() >= rows:
        raise InputFileError(f"{src.name}: kept ids reach past the {rows}-row table {name}")
    if remap is not None and clamp_row is not None:
        raise ValueError("an id remap or a clamp, not both")
    rows_kept = kept if clamp_row is None else np.append(kept, np.int64(clamp_row))
    if clamp_row is not None and not 0 <= clamp_row < rows:
        raise InputFileError(f"{src.name}: the clamp row {clamp_row} is past the {rows}-row table {name}")
    inits[name].CopyFrom(numpy_helper.from_array(np.ascontiguousarray(table[rows_kept]), name))
    for inp in graph.input:  # an old-style export lists initializers as inputs too
        if inp.name == name and inp.type.tensor_type.shape.dim:
            inp.type.tensor_type.shape.dim[0].dim_value = len(rows_kept)
    if clamp_row is not None:
        graph.initializer.append(numpy_helper.from_array(np.array(len(kept), np.int32), CLAMP_NAME))
        for i, gather in enumerate(gathers):
            as32, out = f"{CLAMP_NAME}/ids32_{i}", f"{CLAMP_NAME}/ids_{i}"
            cast = helper.make_node(
                "Cast", [gather.input[1]], [as32], to=TensorProto.INT32, name=f"{as32}_cast"
            )
            low = helper.make_node("Min", [as32, CLAMP_NAME], [out], name=f"{CLAMP_NAME}_{i}")
            gather.input[1] = out
            at = list(graph.node).index(gather)
            graph.node.insert(at, low)
            graph.node.insert(at, cast)
    if remap is not None:
        if len(remap) != rows:
            raise InputFileError(f"{src.name}: the id remap has {len(remap)} entries for {rows} rows")
        graph.initializer.append(numpy_helper.from_array(np.asarray(remap, np.int32), REMAP_NAME))
        for i, gather in enumerate(gathers):
            out = f"{REMAP_NAME}/ids_{i}"
            node = helper.make_node("Gather", [REMAP_NAME, gather.input[1]], [out], name=f"{REMAP_NAME}_{i}")
            gather.input[1] = out
            graph.node.insert(list(graph.node).index(gather), node)
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return TrimmedTable(name, rows, len(rows_kept), int(np.prod(table.shape[1:])))
