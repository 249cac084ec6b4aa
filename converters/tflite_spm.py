"""Graph edits that make MediaPipe's SentencePiece ids the ids a Hugging Face SentencePiece model wants.

MediaPipe's BERT preprocessor with a SentencePiece tokenizer (calculators/tensor/
bert_preprocessor_calculator.cc, tasks/cc/text/tokenizers/sentencepiece_tokenizer.h) feeds
`PieceToId("[CLS]")`, the raw SentencePiece ids
of the ASCII-lower-cased text, `PieceToId("[SEP]")`, then 0s; mask 1/0; segment ids 0. An XLM-R-style
model wants <s> first, every piece at its Hugging Face id (raw id + 1 for XLM-R: fairseq's offset; <unk>
3), </s> last and <pad> (1) after. `remap_ids` puts that translation in front of the model, in builtin
int32 ops (no delegate needed, a few microseconds):

    mapped = GATHER(table, ids)                           raw SentencePiece id -> model id
    last   = mask - shift_left(mask)                      1 at the last real position ([SEP]'s)
    ids'   = mapped * mask * (1 - first) * (1 - last) + eos * last + pad * (1 - mask) + bos * first

where `first` is the constant one-hot of position 0 ([CLS]'s). Every reader of the ids input then reads
ids'. A two-input export (XLM-R's: input_ids, attention_mask) first gets MediaPipe's third input from
converters/tflite_inputs.py `add_segment_input`.
"""

from __future__ import annotations

import numpy as np

from toolchain.base.errors import InputFileError


def _schema():
    from ai_edge_litert import schema_py_generated as schema

    return schema


class _Graph:
    """Subgraph 0 of a model, with helpers to append int32 tensors, constants and builtin ops."""

    def __init__(self, data: bytes) -> None:
        self.s = _schema()
        if len(data) < 8 or data[4:8] != b"TFL3":
            raise InputFileError("not a TFLite model (no TFL3 identifier)", hint="re-convert it")
        self.model = self.s.ModelT.InitFromPackedBuf(bytearray(data), 0)
        self.sg = self.model.subgraphs[0]
        self.new_ops: list = []

    def index(self, name: str) -> int:
        for i in self.sg.inputs:
            t = self.sg.tensors[i]
            if (t.name.decode() if isinstance(t.name, bytes) else str(t.name)) == name:
                return int(i)
        raise InputFileError(f"the model has no input tensor {name!r}", hint="check the input names")

    def tensor(self, name: str, shape: list[int], value: np.ndarray | None = None) -> int:
        t = self.s.TensorT()
        t.name, t.type = name.encode(), self.s.TensorType.INT32
        t.shape = np.array(shape, dtype=np.int32)
        t.buffer = 0
        if value is not None:
            buf = self.s.BufferT()
            buf.data = np.frombuffer(np.ascontiguousarray(value, dtype="<i4").tobytes(), dtype=np.uint8)
            self.model.buffers.append(buf)
            t.buffer = len(self.model.buffers) - 1
        self.sg.tensors.append(t)
        return len(self.sg.tensors) - 1

    def opcode(self, builtin: int) -> int:
        for i, oc in enumerate(self.model.operatorCodes or []):
            if max(oc.builtinCode, oc.deprecatedBuiltinCode) == builtin and oc.version == 1:
                return i
        oc = self.s.OperatorCodeT()
        oc.builtinCode, oc.deprecatedBuiltinCode, oc.version = builtin, min(builtin, 127), 1
        self.model.operatorCodes = [*(self.model.operatorCodes or []), oc]
        return len(self.model.operatorCodes) - 1

    def op(
        self, kind: str, inputs: list[int], out: int, options: object = None, options_type: int = 0
    ) -> int:
        op = self.s.OperatorT()
        op.opcodeIndex = self.opcode(getattr(self.s.BuiltinOperator, kind))
        op.inputs, op.outputs = np.array(inputs, dtype=np.int32), np.array([out], dtype=np.int32)
        op.builtinOptionsType, op.builtinOptions = options_type, options
        self.new_ops.append(op)
        return out

    def binary(self, kind: str, a: int, b: int, name: str, shape: list[int]) -> int:
        options = getattr(self.s, f"{kind.title()}OptionsT")()
        return self.op(
            kind,
            [a, b],
            self.tensor(name, shape),
            options,
            getattr(self.s.BuiltinOptions, f"{kind.title()}Options"),
        )

    def pack(self, size_hint: int) -> bytes:
        import flatbuffers  # reason: the flatbuffers writer is only needed once an edit was made

        builder = flatbuffers.Builder(size_hint + 4096)
        builder.Finish(self.model.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())


def remap_ids(data: bytes, ids: str, mask: str, table: np.ndarray, bos: int, eos: int, pad: int) -> bytes:
    """The model with the id translation of the module doc in front of input `ids` (`mask`: the mask input).

    `table[raw id]` is the model's id of each SentencePiece piece; the input shapes must be static [1, L]."""
    g = _Graph(data)
    ids_i, mask_i = g.index(ids), g.index(mask)
    shape = [int(x) for x in g.sg.tensors[ids_i].shape]
    if len(shape) != 2 or shape[0] != 1 or shape[1] < 2:
        raise InputFileError(f"input {ids} has shape {shape}; the id remap needs a static [1, L]")
    n = shape[1]
    first = np.zeros((1, n), np.int32)
    first[0, 0] = 1
    s = g.s
    table_t = g.tensor("spm_remap/table", [len(table)], np.asarray(table, np.int32))
    gather = s.GatherOptionsT()
    gather.axis = 0
    mapped = g.op(
        "GATHER",
        [table_t, ids_i],
        g.tensor("spm_remap/mapped", shape),
        gather,
        s.BuiltinOptions.GatherOptions,
    )
    concat = s.ConcatenationOptionsT()
    concat.axis = 1
    zero_col = g.tensor("spm_remap/zero", [1, 1], np.zeros((1, 1), np.int32))
    ext = g.op(
        "CONCATENATION",
        [mask_i, zero_col],
        g.tensor("spm_remap/mask_ext", [1, n + 1]),
        concat,
        s.BuiltinOptions.ConcatenationOptions,
    )
    begin = g.tensor("spm_remap/begin", [2], np.array([0, 1], np.int32))
    size = g.tensor("spm_remap/size", [2], np.array([1, n], np.int32))
    nxt = g.op(
        "SLICE",
        [ext, begin, size],
        g.tensor("spm_remap/mask_next", shape),
        s.SliceOptionsT(),
        s.BuiltinOptions.SliceOptions,
    )
    last = g.binary("SUB", mask_i, nxt, "spm_remap/last", shape)
    ones = g.tensor("spm_remap/ones", shape, np.ones((1, n), np.int32))
    not_last = g.binary("SUB", ones, last, "spm_remap/not_last", shape)
    keep = g.binary("MUL", mask_i, not_last, "spm_remap/keep", shape)
    keep = g.binary(
        "MUL", keep, g.tensor("spm_remap/not_first", shape, 1 - first), "spm_remap/regular", shape
    )
    out = g.binary("MUL", mapped, keep, "spm_remap/pieces", shape)
    eos_t = g.binary(
        "MUL", last, g.tensor("spm_remap/eos", shape, np.full((1, n), eos, np.int32)), "spm_remap/e", shape
    )
    out = g.binary("ADD", out, eos_t, "spm_remap/with_eos", shape)
    pad_t = g.binary(
        "MUL", mask_i, g.tensor("spm_remap/pad", shape, np.full((1, n), pad, np.int32)), "spm_remap/p", shape
    )
    out = g.binary("SUB", out, pad_t, "spm_remap/minus_pad", shape)
    const = g.tensor("spm_remap/pad_bos", shape, pad + bos * first)
    out = g.binary("ADD", out, const, "spm_remap/ids", shape)
    for op in g.sg.operators:  # every reader of the raw ids now reads the model's ids
        if op.inputs is not None:
            op.inputs = np.where(op.inputs == ids_i, out, op.inputs).astype(np.int32)
    g.sg.operators = [*g.new_ops, *g.sg.operators]
    return g.pack(len(data) + 8 * len(table))


def remap_reference(
    raw: np.ndarray, mask: np.ndarray, table: np.ndarray, bos: int, eos: int, pad: int
) -> np.ndarray:
    """What `remap_ids` computes, in numpy (rows of raw ids and masks -> the model's ids)."""
    mask = mask.astype(np.int64)
    first = np.zeros_like(mask)
    first[:, 0] = 1
    nxt = np.concatenate([mask[:, 1:], np.zeros_like(mask[:, :1])], axis=1)
    last = mask - nxt
    mapped = np.asarray(table)[raw]
    return (mapped * mask * (1 - first) * (1 - last) + eos * last + pad * (1 - mask) + bos * first).astype(
        np.int32
    )
