"""Student architectures for distillation, and getting logits out of models that end in a softmax."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from converters.keras_tflite import load_keras_model
from toolchain.base.errors import StepError
from toolchain.base.tfenv import keras, tf
from toolchain.recipe.students import StudentSpec, parse_student_layer


def build_student(
    spec: StudentSpec,
    vocab_size: int,
    seq_len: int,
    n_labels: int,
    name: str = "student",
    input_names: tuple[str, ...] = ("input_ids",),
) -> Any:
    """Embedding(vocab, embed_dim) -> the recipe's layers -> Dense(labels, softmax), teacher-style names.

    `name` is the Keras model's and so the prefix of every TFLite tensor name (`name/conv1d/Relu`): the
    distill step passes the teacher's, so a shipped student carries the user's model name.
    `input_names`: a student on a BERT tokenizer also takes `attention_mask` (zeroes the padding's
    embeddings) and `token_type_ids` (a segment embedding), as MediaPipe's BERT metadata feeds all three.
    With `encoder` layers the student is a tiny BERT: position embeddings and a LayerNorm after the token
    embeddings, BERT blocks, the mean pooling over the real tokens (attention_mask).
    """
    k = keras()
    inputs = [k.Input((seq_len,), dtype="int32", name=n) for n in input_names]
    by_name = dict(zip(input_names, inputs, strict=True))
    x = k.layers.Embedding(vocab_size, spec.embed_dim, name="embedding")(by_name["input_ids"])
    if "token_type_ids" in by_name:
        x = x + k.layers.Embedding(2, spec.embed_dim, name="segment_embedding")(by_name["token_type_ids"])
    keep = None
    if "attention_mask" in by_name:  # a fixed 0/1 lookup: padding positions contribute nothing
        keep = k.layers.Embedding(
            2, 1, embeddings_initializer=k.initializers.Constant([[0.0], [1.0]]), trainable=False, name="mask"
        )(by_name["attention_mask"])
        if not spec.encoder_blocks:  # an encoder masks the padding in attention and in its pooling
            x = x * keep
    if spec.encoder_blocks:
        x = _bert_embeddings(x, by_name, spec.embed_dim, seq_len)
    counts: dict[str, int] = {}
    for text in spec.layers:
        kind, args = parse_student_layer(text)
        counts[kind] = counts.get(kind, 0) + 1
        layer = kind if counts[kind] == 1 else f"{kind}_{counts[kind]}"
        if kind == "conv1d":
            size = int(args[1]) if len(args) > 1 else 3
            x = k.layers.Conv1D(int(args[0]), size, padding="same", activation="relu", name=layer)(x)
        elif kind == "bigru":
            gru = k.layers.GRU(int(args[0]), return_sequences=True, unroll=True, name=f"{layer}_gru")
            x = k.layers.Bidirectional(gru, name=layer)(x)
        elif kind == "encoder":
            x = _encoder_block(x, by_name.get("attention_mask"), int(args[0]), int(args[1]), layer)
        elif kind == "dense":
            x = k.layers.Dense(int(args[0]), activation="relu", name=layer)(x)
        elif kind == "dropout":
            x = k.layers.Dropout(args[0], name=layer)(x)
        elif kind == "max_pool":
            x = k.layers.GlobalMaxPooling1D(name="pool")(x)
        elif spec.encoder_blocks and keep is not None:  # masked mean over the real tokens (BERT pooling)
            t = tf()
            x = t.math.reduce_sum(x * keep, axis=1) / t.maximum(t.math.reduce_sum(keep, axis=1), 1.0)
        else:
            x = k.layers.GlobalAveragePooling1D(name="pool")(x)
    out = k.layers.Dense(n_labels, activation="softmax", name="intent")(x)
    return k.Model(inputs if len(inputs) > 1 else inputs[0], out, name=name)


def _bert_embeddings(x: Any, by_name: dict[str, Any], width: int, seq_len: int) -> Any:
    """Token (+ segment) embeddings + position embeddings, then a LayerNorm (names: position_embedding,
    embedding_norm); positions 0..seq_len-1 as a cumulative sum of ones (a stock-layer functional model)."""
    k, t = keras(), tf()
    positions = t.math.cumsum(t.ones_like(by_name["input_ids"]), axis=1) - 1
    x = x + k.layers.Embedding(seq_len, width, name="position_embedding")(positions)
    return k.layers.LayerNormalization(epsilon=1e-12, name="embedding_norm")(x)


def _encoder_block(x: Any, mask: Any, heads: int, ffn: int, name: str) -> Any:
    """A post-LayerNorm BERT block: self-attention (masked by attention_mask) + residual + LayerNorm,
    GELU feed-forward + residual + LayerNorm (names: NAME_attention, NAME_attention_norm, NAME_ffn_in,
    NAME_ffn_out, NAME_ffn_norm)."""
    k = keras()
    width = int(x.shape[-1])
    seq_len = int(x.shape[1])
    att_mask = None if mask is None else k.layers.Reshape((1, seq_len), name=f"{name}_mask")(mask)
    att = k.layers.MultiHeadAttention(heads, width // heads, name=f"{name}_attention")(
        x, x, attention_mask=att_mask
    )
    x = k.layers.LayerNormalization(epsilon=1e-12, name=f"{name}_attention_norm")(x + att)
    # EinsumDense, not Dense: a Dense on [batch, tokens, width] is a tensordot with a reshape computed at
    # run time, which int8 calibration breaks (RESHAPE: 1024 != 32 elements); einsum reshapes are static
    dense = k.layers.EinsumDense
    h = dense("btd,df->btf", (seq_len, ffn), bias_axes="f", activation="gelu", name=f"{name}_ffn_in")(x)
    h = dense("btf,fd->btd", (seq_len, width), bias_axes="d", name=f"{name}_ffn_out")(h)
    return k.layers.LayerNormalization(epsilon=1e-12, name=f"{name}_ffn_norm")(x + h)


def teacher_table(table: np.ndarray, width: int, seed: int) -> np.ndarray:
    """The teacher's embedding table [vocab, hidden] as a student's [vocab, width]: itself when the widths
    match; narrower: its projection on the top `width` principal directions, scaled to the table's spread;
    wider: the table in the first `hidden` columns, small seeded noise in the rest."""
    vocab, hidden = table.shape
    if width == hidden:
        return table.astype(np.float32)
    if width > hidden:
        rest = np.random.default_rng(seed).normal(0.0, 0.02, (vocab, width - hidden))
        return np.concatenate([table, rest], 1).astype(np.float32)
    centred = table - table.mean(0, keepdims=True)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    out = centred @ vt[:width].T
    return (out * (table.std() / max(float(out.std()), 1e-8))).astype(np.float32)


def load_student(path: Path, seq_len: int, n_labels: int, trust_model_code: bool = False) -> Any:
    """A student model file: must take the same token ids and give one score per label.

    Loaded under the same trust rule as the source (converters/keras_tflite.py `load_keras_model`).
    """

    model = load_keras_model(path, trust_model_code)
    shape = tuple(model.inputs[0].shape)
    if len(shape) != 2 or shape[1] not in (None, seq_len):
        raise StepError(
            f"distill: student {path} takes input {shape}, the teacher takes (None, {seq_len})",
            hint="build the student for the same token ids (seq_len) as the teacher",
        )
    if int(model.outputs[0].shape[-1]) != n_labels:
        raise StepError(
            f"distill: student {path} has {model.outputs[0].shape[-1]} outputs, expected {n_labels} labels",
            hint="the student's last layer must score every label",
        )
    return model


def _softmax_head(model: Any) -> tuple[str, Any]:
    """How the model produces probabilities: ('dense', layer), ('layer', layer) or ('none', None)."""
    layers = getattr(model, "layers", None)
    if not layers:
        return "none", None
    last = layers[-1]
    act = getattr(getattr(last, "activation", None), "__name__", "")
    if last.__class__.__name__ == "Dense" and act == "softmax":
        return "dense", last
    if last.__class__.__name__ == "Softmax" or (last.__class__.__name__ == "Activation" and act == "softmax"):
        return "layer", last
    return "none", None


def logits_model(model: Any, hidden: list[str] | None = None) -> tuple[Any, Any]:
    """A model giving [pre-softmax features, *hidden states] and a function features -> logits.

    Shares weights with `model`, so training it trains `model`.
    """
    k = keras()
    head, last = _softmax_head(model)
    if head == "none":
        raise StepError(
            "distill: the student must end in a softmax (Dense with softmax or a Softmax layer)",
            hint="add activation='softmax' to the student's last layer",
        )
    extra = [model.get_layer(n).output for n in hidden or []]
    core = k.Model(model.inputs, [last.input, *extra])
    if head == "dense":
        return core, lambda f: tf().matmul(f, last.kernel) + (last.bias if last.use_bias else 0.0)
    return core, lambda f: f


def predict_logits(model: Any, x: np.ndarray, hidden: list[str] | None = None) -> list[np.ndarray]:
    """[logits, *hidden states] of any model on x, batched; probabilities are turned into log-probs."""
    head, last = _softmax_head(model)
    if head == "none":
        if hasattr(model, "predict"):
            out = np.asarray(model.predict(x, batch_size=512, verbose=0), dtype=np.float32)
        else:  # a SavedModel signature / callable
            out = np.concatenate([np.asarray(model(x[i : i + 512])) for i in range(0, len(x), 512)])
        probs = bool(np.all(out >= 0) and np.allclose(out.sum(-1), 1.0, atol=1e-3))
        logits = np.log(np.clip(out, 1e-12, 1.0)) if probs else out
        if hidden:
            raise StepError("distill: hidden-state matching needs a Keras teacher", hint="drop match_layers")
        return [logits.astype(np.float32)]
    core, to_logits = logits_model(model, hidden)
    outs = core.predict(x, batch_size=512, verbose=0)
    outs = outs if isinstance(outs, list) else [outs]
    logits = np.asarray(to_logits(tf().constant(outs[0])), dtype=np.float32)
    return [logits, *[np.asarray(h, dtype=np.float32) for h in outs[1:]]]


def check_layer(model: Any, name: str, role: str) -> Any:
    names = [layer.name for layer in getattr(model, "layers", [])]
    if name not in names:
        raise StepError(f"distill: {role} has no layer {name!r}", hint=f"{role} layers: {', '.join(names)}")
    return model.get_layer(name)
