"""Input edits for MediaPipe's BERT path: int64 token inputs -> int32, and which input is which.

MediaPipe Tasks treats a text model as BERT when it has exactly three int32 inputs and BERT metadata
(tasks/cc/text/utils/text_model_utils.cc); a Hugging Face export has int64 input_ids / attention_mask /
token_type_ids. `int32_inputs` retypes such inputs in the flatbuffer (no TensorFlow):
- an input whose only consumers are CAST int64 -> int32 ops loses those casts (their consumers read the
  input itself), the graph then never sees an int64;
- otherwise one CAST int32 -> int64 is inserted before its first consumer, so every op still gets the
  int64 tensor it was converted with.
Token ids, masks and segment ids are far below 2**31, so both forms compute the same numbers: the outputs
are bit-identical before and after (tests/test_tflite_inputs.py runs both models on real tokenized queries).

Two-input exports (input_ids, attention_mask: DistilBERT, or a BERT/MiniLM exported without
token_type_ids) get a third input from `add_segment_input`, because MediaPipe's BERT path wants three
(text_model_utils.cc: three int32 inputs make a BERT model; bert_preprocessor_calculator.cc finds `ids`,
`mask`, `segment_ids` by metadata name and needs them at input indices {0, 1, 2}; text_preprocessing_graph.cc
wants every input 2-D, batch 1, one length, shape signatures all present or all absent). The added tensor
copies the ids input (type, shape, shape signature), is named `token_type_ids`, is appended to the inputs
and the serving signature, and no op reads it: the segment ids MediaPipe writes there (zeros) cannot change
an output (tests/e2e/test_package_two_input.py feeds it random values in LiteRT: identical outputs).
"""

from __future__ import annotations

import numpy as np

from converters.tflite_model import opcode_index, tensor_name
from toolchain.base.errors import InputFileError

# Hugging Face names first, then TF Hub / Model Maker names (MediaPipe's writer defaults).
ROLE_NAMES = {
    "ids": ("input_ids", "input_word_ids", "ids"),
    "mask": ("attention_mask", "input_mask", "mask"),
    "segment": ("token_type_ids", "input_type_ids", "segment_ids", "segment"),
}


def _schema():
    from ai_edge_litert import schema_py_generated as schema

    return schema


def _load(data: bytes):
    schema = _schema()
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise InputFileError("not a TFLite model (no TFL3 identifier)", hint="re-convert it")
    return schema, schema.ModelT.InitFromPackedBuf(bytearray(data), 0)


def _role(name: str) -> str | None:
    """ids / mask / segment from a tensor name such as `serving_default_input_ids:0`."""
    low = name.lower()
    for role in ("segment", "mask", "ids"):  # "input_ids" would also be found inside "token_type_ids"
        if any(key in low for key in ROLE_NAMES[role]):
            return role
    return None


def _roles(sg) -> tuple[list[str], dict[str, str]]:  # noqa: ANN001 - a schema SubGraphT
    """The input names of a subgraph and, by role, the first input of each role."""
    names = [tensor_name(sg.tensors[i]) for i in sg.inputs]
    found: dict[str, str] = {}
    for name in names:
        role = _role(name)
        if role is not None and role not in found:
            found[role] = name
    return names, found


def bert_input_names(data: bytes) -> tuple[str, str, str]:
    """The TFLite tensor names of the (ids, mask, segment ids) inputs; InputFileError when not BERT-shaped."""
    _, model = _load(data)
    names, found = _roles(model.subgraphs[0])
    if len(names) != 3 or len(found) != 3:
        raise InputFileError(
            f"MediaPipe's BERT tasks need inputs named like input_ids, attention_mask and (optionally) "
            f"token_type_ids; this model has {len(names)}: {', '.join(names)}",
            hint="export the model with input_ids and attention_mask (+ token_type_ids) inputs",
        )
    return found["ids"], found["mask"], found["segment"]


def add_segment_input(data: bytes, name: str = "token_type_ids") -> tuple[bytes, str | None]:
    """A two-input (ids, mask) model + an unused third input `name` like the ids (see the module doc).

    Returns the new bytes and the added tensor's name; any other model comes back unchanged with None.
    """
    schema, model = _load(data)
    sg = model.subgraphs[0]
    names, found = _roles(sg)
    if len(names) != 2 or set(found) != {"ids", "mask"}:
        return data, None
    ids = sg.tensors[sg.inputs[names.index(found["ids"])]]
    segment = schema.TensorT()
    segment.shape = None if ids.shape is None else np.array(ids.shape, dtype=np.int32)
    segment.shapeSignature = None if ids.shapeSignature is None else np.array(ids.shapeSignature)
    segment.type, segment.name, segment.buffer = ids.type, name.encode(), 0
    sg.tensors.append(segment)
    idx = len(sg.tensors) - 1
    sg.inputs = np.array([*sg.inputs, idx], dtype=np.int32)
    for sig in model.signatureDefs or []:
        if sig.subgraphIndex == 0:
            entry = schema.TensorMapT()
            entry.name, entry.tensorIndex = name.encode(), idx
            sig.inputs = [*(sig.inputs or []), entry]
    return _pack(model, len(data)), name


def _pack(model, size: int) -> bytes:  # noqa: ANN001 - a schema ModelT
    import flatbuffers

    builder = flatbuffers.Builder(size + 4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _is_cast_to_int32(schema, model, sg, op) -> bool:
    code = model.operatorCodes[op.opcodeIndex]
    if max(code.builtinCode, code.deprecatedBuiltinCode) != schema.BuiltinOperator.CAST:
        return False
    return sg.tensors[op.outputs[0]].type == schema.TensorType.INT32


def _consumers(sg, idx: int) -> list[int]:
    return [k for k, op in enumerate(sg.operators) if op.inputs is not None and idx in list(op.inputs)]


def int32_inputs(data: bytes) -> tuple[bytes, list[str]]:
    """Retype every INT64 input of subgraph 0 to INT32 (see the module doc); returns bytes + changed names.

    A model without int64 inputs is returned unchanged (same bytes).
    """
    schema, model = _load(data)
    sg = model.subgraphs[0]
    changed: list[str] = []
    for idx in list(sg.inputs):
        tensor = sg.tensors[idx]
        if tensor.type != schema.TensorType.INT64:
            continue
        tensor.type = schema.TensorType.INT32
        changed.append(tensor_name(tensor))
        users = _consumers(sg, idx)
        if users and all(_is_cast_to_int32(schema, model, sg, sg.operators[k]) for k in users):
            for k in users:  # drop the casts: their readers read the (now int32) input directly
                out = sg.operators[k].outputs[0]
                for op in sg.operators:
                    if op.inputs is not None:
                        op.inputs = np.where(op.inputs == out, idx, op.inputs).astype(np.int32)
                sg.outputs = np.where(np.asarray(sg.outputs) == out, idx, sg.outputs).astype(np.int32)
            sg.operators = [op for k, op in enumerate(sg.operators) if k not in set(users)]
            continue
        wide = schema.TensorT()
        wide.shape = None if tensor.shape is None else np.array(tensor.shape, dtype=np.int32)
        wide.shapeSignature = None if tensor.shapeSignature is None else np.array(tensor.shapeSignature)
        wide.type = schema.TensorType.INT64
        wide.name = f"{tensor_name(tensor)}/int64".encode()
        wide.buffer = 0
        sg.tensors.append(wide)
        wide_idx = len(sg.tensors) - 1
        for op in sg.operators:
            if op.inputs is not None:
                op.inputs = np.where(op.inputs == idx, wide_idx, op.inputs).astype(np.int32)
        cast = schema.OperatorT()
        cast.opcodeIndex = opcode_index(model, schema.BuiltinOperator.CAST, 1)
        cast.inputs = np.array([idx], dtype=np.int32)
        cast.outputs = np.array([wide_idx], dtype=np.int32)
        cast.builtinOptionsType = schema.BuiltinOptions.CastOptions
        cast.builtinOptions = schema.CastOptionsT()
        cast.builtinOptions.inDataType = schema.TensorType.INT32
        cast.builtinOptions.outDataType = schema.TensorType.INT64
        sg.operators = [cast, *sg.operators]  # executed first: every consumer runs after it
    if not changed:
        return data, []
    return _pack(model, len(data)), changed
