"""An ONNX BERT-family teacher's embeddings and encoder layers, read from its initializers, and a tiny-BERT
student started from them (`embedding_init: teacher` on a student with encoder layers).

What is read (torch.onnx exports of BERT, DistilBERT, MiniLM, RoBERTa-style encoders; the graph's node
names carry the torch module paths, e.g. `/encoder/transformer/layer.0/attention/q_lin/MatMul`):
- the word table: the 2-D initializer with a row per token of the tokenizer (`teacher_embedding`'s rule);
- the position table and the embedding LayerNorm: the initializers of the Gather / LayerNorm nodes beside
  the word table's Gather (the same module path up to `word_embeddings`);
- each encoder layer (`/layer.N/` in the node names): its six linear maps (a MatMul or Gemm with a 2-D
  initializer, and the Add of its 1-D bias), query/key/value by name (q_lin/query/q_proj, ...) else by
  order, then attention output, FFN in, FFN out in graph order, and its two LayerNorms (a
  LayerNormalization node, or a decomposed one: the Mul/Add initializers of a `LayerNorm`/`layer_norm`
  module); the heads from the Reshape of the query (its last constant is the head size).
A layer whose pieces or shapes do not fit that pattern is not read (`layers` stops before it), so a student
is never started from a misread tensor.

How the student starts (`init_student`): word and position tables copied at the teacher's width, else
projected on the word table's top principal directions (steps/student.py `teacher_table`); the embedding
LayerNorm copied at equal widths; student block i copied from teacher layer i while the width, heads and
FFN size equal the teacher's. Every tensor set from the teacher is listed (student weight, teacher
initializer, copied or projected) for the distill step's report.
Not started from the teacher: a BERT's token-type table (the student's segment embedding), and the
pooling and head (the student pools the real tokens' mean, as the issue's teachers do). A RoBERTa-style
teacher counts positions from its padding id + 1; its first seq_len position rows are copied all the same
(a start that training adjusts). The student's FFN is GELU, as BERT's and DistilBERT's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from toolchain.steps.student import teacher_table

Linear = tuple[np.ndarray, np.ndarray, str, str]  # kernel [in, out], bias [out], their initializer names
Norm = tuple[np.ndarray, np.ndarray, str, str]  # gamma, beta, their initializer names
_LAYER = re.compile(r"/layer\.(\d+)/")
_QKV = (("q_lin", "query", "q_proj"), ("k_lin", "key", "k_proj"), ("v_lin", "value", "v_proj"))


@dataclass
class TeacherLayer:
    linears: list[Linear]  # q, k, v, attention output, FFN in, FFN out
    norms: list[Norm]  # after attention, after the FFN
    heads: int

    @property
    def ffn(self) -> int:
        return int(self.linears[4][0].shape[1])


@dataclass
class TeacherEncoder:
    word: tuple[np.ndarray, str]
    position: tuple[np.ndarray, str] | None = None
    norm: Norm | None = None
    layers: list[TeacherLayer] = field(default_factory=list)

    @property
    def hidden(self) -> int:
        return int(self.word[0].shape[1])


def word_table(graph: Any, vocab_size: int) -> Any:
    """The initializer of the input-token table: 2-D with a row per token (a table padded past the
    vocab, to a multiple of 8 say, counts), a name with `word_embeddings` and an exact row count first."""
    rows = range(vocab_size, vocab_size + 129)
    tables = [t for t in graph.initializer if len(t.dims) == 2 and t.dims[0] in rows]
    tables.sort(key=lambda t: ("word_embeddings" not in t.name, t.dims[0] != vocab_size, t.name))
    return tables[0] if tables else None


def read_encoder(onnx_file: Path, vocab_size: int) -> TeacherEncoder | None:
    """The teacher's embeddings and the encoder layers that fit the pattern (None: no word table)."""
    import onnx  # reason: onnx is the ONNX extra's; only a teacher-initialised student reads it
    from onnx import numpy_helper  # reason: as above

    graph = onnx.load(str(onnx_file)).graph  # external data included
    table = word_table(graph, vocab_size)
    if table is None:
        return None
    inits = {t.name: t for t in graph.initializer}
    consts = {o: n for n in graph.node if n.op_type == "Constant" for o in n.output}

    def arr(name: str) -> np.ndarray:
        return numpy_helper.to_array(inits[name]).astype(np.float32)

    word = arr(table.name)[:vocab_size]
    enc = TeacherEncoder((word, table.name))
    hidden = word.shape[1]
    modules: dict[str, list[Any]] = {}
    for n in graph.node:
        modules.setdefault(n.name.rsplit("/", 1)[0], []).append(n)
    gather = next((n for n in graph.node if n.op_type == "Gather" and table.name in n.input), None)
    if gather is not None and "/" in gather.name:
        prefix = gather.name.rsplit("/", 2)[0] + "/"  # /encoder/embeddings/
        for mod, nodes in modules.items():
            if not mod.startswith(prefix) or mod.count("/") != prefix.count("/"):
                continue
            if "position" in mod and enc.position is None:
                got = [i for n in nodes if n.op_type == "Gather" for i in n.input if _is(inits, i, 2)]
                if got and inits[got[0]].dims[1] == hidden:
                    enc.position = (arr(got[0]), got[0])
            elif enc.norm is None:
                enc.norm = _norm(nodes, inits, arr, hidden)
    by_layer: dict[int, list[str]] = {}
    for mod in modules:
        m = _LAYER.search(mod + "/")
        if m:
            by_layer.setdefault(int(m.group(1)), []).append(mod)
    for i in range(len(by_layer)):
        layer = _layer([(m, modules[m]) for m in by_layer.get(i, [])], inits, consts, arr, hidden)
        if layer is None:
            break
        enc.layers.append(layer)
    return enc


def _is(inits: dict, name: str, rank: int) -> bool:
    return name in inits and len(inits[name].dims) == rank


def _norm(nodes: list[Any], inits: dict, arr: Any, hidden: int) -> Norm | None:
    """A LayerNormalization node's scale/bias, or a decomposed LayerNorm's (ReduceMean, then Mul/Add)."""
    for n in nodes:
        if (
            n.op_type == "LayerNormalization"
            and len(n.input) >= 3
            and all(_is(inits, i, 1) for i in n.input[1:3])
        ):
            return arr(n.input[1]), arr(n.input[2]), n.input[1], n.input[2]
    if any(n.op_type == "ReduceMean" for n in nodes):
        mul = [i for n in nodes if n.op_type == "Mul" for i in n.input if _is(inits, i, 1)]
        add = [i for n in nodes if n.op_type == "Add" for i in n.input if _is(inits, i, 1)]
        if mul and add and inits[mul[-1]].dims[0] == hidden == inits[add[-1]].dims[0]:
            return arr(mul[-1]), arr(add[-1]), mul[-1], add[-1]
    return None


def _linear(nodes: list[Any], inits: dict, arr: Any) -> Linear | None:
    kernel = bias = None
    for n in nodes:
        if n.op_type == "MatMul" and kernel is None:
            w = [i for i in n.input if _is(inits, i, 2)]
            kernel = (arr(w[0]), w[0]) if w else None
        elif n.op_type == "Gemm" and kernel is None and _is(inits, n.input[1], 2):
            trans = any(a.name == "transB" and a.i for a in n.attribute)
            w = arr(n.input[1])
            kernel = (w.T if trans else w, n.input[1])
            if len(n.input) > 2 and _is(inits, n.input[2], 1):
                bias = (arr(n.input[2]), n.input[2])
        elif n.op_type == "Add" and bias is None:
            b = [i for i in n.input if _is(inits, i, 1)]
            bias = (arr(b[0]), b[0]) if b else None
    if kernel is None or bias is None or kernel[0].shape[1] != bias[0].shape[0]:
        return None
    return kernel[0], bias[0], kernel[1], bias[1]


def _head_size(out: str, all_nodes: list[Any], inits: dict, consts: dict) -> int | None:
    """The last entry of the shape the query's output is reshaped to (a constant, or a Concat's last)."""
    from onnx import numpy_helper  # reason: the ONNX extra; see read_encoder

    def value(name: str) -> np.ndarray | None:
        if name in inits:
            return numpy_helper.to_array(inits[name])
        if name in consts:
            return numpy_helper.to_array(consts[name].attribute[0].t)
        return None

    producers = {o: n for n in all_nodes for o in n.output}
    for n in all_nodes:
        if n.op_type == "Reshape" and n.input[0] == out:
            shape = value(n.input[1])
            if shape is None and n.input[1] in producers and producers[n.input[1]].op_type == "Concat":
                shape = value(producers[n.input[1]].input[-1])
            if shape is not None and np.asarray(shape).size and int(np.asarray(shape).ravel()[-1]) > 0:
                return int(np.asarray(shape).ravel()[-1])
    return None


def _layer(
    mods: list[tuple[str, list[Any]]], inits: dict, consts: dict, arr: Any, hidden: int
) -> TeacherLayer | None:
    linears: list[tuple[str, Linear, str]] = []  # (module, linear, output of its bias Add)
    norms: list[Norm] = []
    for mod, nodes in mods:
        lin = _linear(nodes, inits, arr)
        if lin is not None:
            out = next((n.output[0] for n in nodes if n.op_type in ("Add", "Gemm")), "")
            linears.append((mod, lin, out))
            continue
        norm = _norm(nodes, inits, arr, hidden)
        if norm is not None:
            norms.append(norm)
    if len(linears) != 6 or len(norms) != 2:
        return None
    qkv = []
    for names in _QKV:
        hit = [x for x in linears if any(x[0].endswith(f"/{n}") for n in names)]
        qkv.append(hit[0] if len(hit) == 1 else None)
    if None in qkv:
        qkv = linears[:3]
    rest = [x for x in linears if x not in qkv]
    ordered = [*qkv, *rest]
    shapes = [x[1][0].shape for x in ordered]
    ffn = shapes[4][1]
    if shapes != [(hidden, hidden)] * 4 + [(hidden, ffn), (ffn, hidden)]:
        return None
    size = _head_size(ordered[0][2], [n for _, nodes in mods for n in nodes], inits, consts)
    if not size or hidden % size:
        return None
    return TeacherLayer([x[1] for x in ordered], norms, hidden // size)


def init_student(model: Any, enc: TeacherEncoder, spec: Any, seed: int) -> list[dict[str, str]]:
    """Set the tiny-BERT student's tensors that the teacher can start (see the module doc); the list of
    what was set: {student: layer.weight, teacher: initializer, how: copied | projected}."""
    width, hidden = spec.embed_dim, enc.hidden
    how = "copied" if width == hidden else "projected"
    done: list[dict[str, str]] = []

    def put(layer: str, values: list[np.ndarray], parts: list[str], names: list[str], way: str) -> None:
        target = model.get_layer(layer)
        target.set_weights(
            [v.reshape(w.shape).astype(np.float32) for v, w in zip(values, target.get_weights(), strict=True)]
        )
        done.extend(
            {"student": f"{layer}.{p}", "teacher": n, "how": way} for p, n in zip(parts, names, strict=True)
        )

    put("embedding", [teacher_table(enc.word[0], width, seed)], ["embeddings"], [enc.word[1]], how)
    if not spec.encoder_blocks:  # teacher-cnn: the token table only
        return done
    seq_len = int(model.get_layer("position_embedding").input_dim)
    if enc.position is not None and enc.position[0].shape[0] >= seq_len:
        put("position_embedding", [_project(enc.position[0][:seq_len], enc.word[0], width, seed)],
            ["embeddings"], [enc.position[1]], how)  # fmt: skip
    if enc.norm is not None and width == hidden:
        put("embedding_norm", [enc.norm[0], enc.norm[1]], ["gamma", "beta"], list(enc.norm[2:]), "copied")
    for i, (heads, ffn) in enumerate(spec.encoder_blocks):
        if i >= len(enc.layers) or (width, heads, ffn) != (hidden, enc.layers[i].heads, enc.layers[i].ffn):
            break  # the first k blocks only: a block after one started at random gets other inputs
        t = enc.layers[i]
        name = "encoder" if i == 0 else f"encoder_{i + 1}"
        (q, k, v, o, f1, f2), (n1, n2) = t.linears, t.norms
        size = width // heads
        att = [q[0].reshape(width, heads, size), q[1].reshape(heads, size), k[0].reshape(width, heads, size),
               k[1].reshape(heads, size), v[0].reshape(width, heads, size), v[1].reshape(heads, size),
               o[0].reshape(heads, size, width), o[1]]  # fmt: skip
        parts = [
            f"{p}.{w}" for p in ("query", "key", "value", "attention_output") for w in ("kernel", "bias")
        ]
        put(f"{name}_attention", att, parts, [n for lin in (q, k, v, o) for n in lin[2:]], "copied")
        put(f"{name}_attention_norm", list(n1[:2]), ["gamma", "beta"], list(n1[2:]), "copied")
        put(f"{name}_ffn_in", list(f1[:2]), ["kernel", "bias"], list(f1[2:]), "copied")
        put(f"{name}_ffn_out", list(f2[:2]), ["kernel", "bias"], list(f2[2:]), "copied")
        put(f"{name}_ffn_norm", list(n2[:2]), ["gamma", "beta"], list(n2[2:]), "copied")
    return done


def _project(table: np.ndarray, word: np.ndarray, width: int, seed: int) -> np.ndarray:
    """Another [rows, hidden] table of the teacher at the student's width as `teacher_table` maps the word
    table: itself, on the word table's top principal directions (same scale), or padded with noise."""
    rows, hidden = table.shape
    if width == hidden:
        return table.astype(np.float32)
    if width > hidden:
        rest = np.random.default_rng(seed + 1).normal(0.0, 0.02, (rows, width - hidden))
        return np.concatenate([table, rest], 1).astype(np.float32)
    centred = word - word.mean(0, keepdims=True)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    scale = word.std() / max(float((centred @ vt[:width].T).std()), 1e-8)
    return (table @ vt[:width].T * scale).astype(np.float32)
