"""The example's intent model family: `edgecomp train` and examples/shopping_intent/train_teacher.py.

Embedding -> Conv1D(relu) -> global max-pool -> Dropout -> Dense(relu) -> Dense(softmax). The Keras model
is named after the project: TFLite tensor names are `<model name>/<layer>/<op>` (e.g.
`travel_intent/conv/Relu`), so a model named after the example would carry the example's name into every
tensor of a user's model, into profiles and into Model Explorer. Layer names say the role (embedding, conv,
pool, dropout, hidden, intent); the compression steps and presets refer to no layer by name.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from toolchain.base.progress import Progress, SilentProgress
from toolchain.base.tfenv import keras
from toolchain.steps.training import progress_callback

MIN_DELTA = 1e-3  # a val loss must drop by this much to count as better (1e-4 steps near 0 go on for ever)


@dataclass(frozen=True)
class IntentModelSpec:
    """Sizes of the model; the defaults are the shipped example teacher's."""

    seq_len: int = 32
    embed_dim: int = 64
    filters: int = 128
    kernel_size: int = 3
    hidden: int = 128
    dropout: float = 0.3


def keras_name(name: str) -> str:
    """A project name as a Keras model name (TF name scopes: letters, digits, '_', '.', '-')."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "_", name).lstrip("-.")
    return cleaned or "model"


def build_intent_model(vocab_size: int, n_labels: int, name: str, spec: IntentModelSpec | None = None) -> Any:
    """The Keras model, named `name` (see the module docstring)."""

    s = spec or IntentModelSpec()
    k = keras()
    inp, x = query_tower(vocab_size, s)
    out = k.layers.Dense(n_labels, activation="softmax", name="intent")(x)
    return k.Model(inp, out, name=keras_name(name))


def query_tower(vocab_size: int, spec: IntentModelSpec) -> tuple[Any, Any]:
    """(input_ids, hidden vector): the query encoder shared by the intent and the retrieval models."""

    s, k = spec, keras()
    inp = k.Input((s.seq_len,), dtype="int32", name="input_ids")
    x = k.layers.Embedding(vocab_size, s.embed_dim, name="embedding")(inp)
    x = k.layers.Conv1D(s.filters, s.kernel_size, padding="same", activation="relu", name="conv")(x)
    x = k.layers.GlobalMaxPooling1D(name="pool")(x)
    x = k.layers.Dropout(s.dropout, name="dropout")(x)
    x = k.layers.Dense(s.hidden, activation="relu", name="hidden")(x)
    return inp, x


@dataclass(frozen=True)
class FitResult:
    epochs_run: int
    best_epoch: int  # 1-based; the weights kept
    val_accuracy: list[float]  # per epoch
    val_loss: list[float]


def fit_intent_model(
    model: Any,
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    *,
    epochs: int,
    batch_size: int = 64,
    learning_rate: float = 2e-3,
    patience: int | None = None,
    progress: Progress | None = None,
    description: str = "train",
    from_logits: bool = False,
) -> FitResult:
    """Adam + sparse cross-entropy, a progress bar over all batches; with `patience`, stop when the val loss
    has not improved for that many epochs and keep the best epoch's weights (val accuracy saturates on a
    small val split: 100% from epoch 3 says nothing about epoch 8, the loss still does). `from_logits`: the
    model outputs raw scores (the retrieval model), not a softmax."""

    k = keras()
    model.compile(
        optimizer=k.optimizers.Adam(learning_rate),
        loss=k.losses.SparseCategoricalCrossentropy(from_logits=True)
        if from_logits
        else "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    best = _BestEpoch(k, patience)
    steps = int(np.ceil(len(train[0]) / batch_size)) * epochs
    with (progress or SilentProgress()).task(description, steps) as advance:
        hist = model.fit(
            train[0],
            train[1],
            epochs=epochs,
            batch_size=batch_size,
            validation_data=val,
            verbose=0,
            callbacks=[best.callback, progress_callback(advance)],
        )
    accs = [round(float(a), 4) for a in hist.history.get("val_accuracy", [])]
    losses = [round(float(a), 4) for a in hist.history.get("val_loss", [])]
    if patience is None or best.weights is None:
        return FitResult(len(accs), len(accs), accs, losses)
    model.set_weights(best.weights)
    return FitResult(len(accs), best.epoch, accs, losses)


class _BestEpoch:
    """Remembers the weights of the best val-loss epoch (lower by MIN_DELTA); with `patience`, stops the
    fit after that many epochs without a better one. Keras' EarlyStopping restores the best weights only
    when it stops early, not when the last epoch is reached, so it is not used."""

    def __init__(self, k: Any, patience: int | None) -> None:
        self.best, self.epoch, self.weights = math.inf, 0, None
        owner = self

        class _Callback(k.callbacks.Callback):
            def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
                loss = float((logs or {}).get("val_loss", math.inf))
                if loss < owner.best - MIN_DELTA:
                    owner.best, owner.epoch, owner.weights = loss, epoch + 1, self.model.get_weights()
                elif patience is not None and epoch + 1 - owner.epoch >= patience:
                    self.model.stop_training = True

        self.callback = _Callback()
