"""Shared fine-tuning helpers for the Keras compression steps."""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

import numpy as np

from toolchain.base.progress import Progress
from toolchain.base.tfenv import keras
from toolchain.sources.keras_inputs import Rows, rows

# Called after each distillation epoch with (epoch from 1, what the val score is, the score); it may raise
# to stop a hopeless student. Set by distill-auto's trial process (toolchain/search/auto_trial.py) around
# its build, a context variable so that convert's signatures stay as they are; unset, nothing is called.
EPOCH_HOOK: ContextVar[Callable[[int, str, float], None] | None] = ContextVar("epoch_hook", default=None)


def outputs_probabilities(model: Any) -> bool:
    """True when the model ends in a softmax (so losses must not apply one again)."""
    last = model.layers[-1]
    act = getattr(last, "activation", None)
    name = getattr(act, "__name__", "") if act is not None else ""
    return name == "softmax" or last.__class__.__name__ == "Softmax"


def compile_for_finetune(model: Any, learning_rate: float, probabilities: bool) -> None:
    k = keras()
    model.compile(
        optimizer=k.optimizers.Adam(learning_rate=learning_rate),
        loss=k.losses.SparseCategoricalCrossentropy(from_logits=not probabilities),
        metrics=["accuracy"],
    )


def progress_callback(progress_advance) -> Any:
    """A Keras callback that advances a progress bar once per batch."""
    k = keras()

    class _Tick(k.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            progress_advance(1)

    return _Tick()


def fit(
    model: Any,
    x: Rows,
    y: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    callbacks: list,
    progress: Progress,
    description: str,
    validation: tuple[Rows, np.ndarray] | None = None,
) -> dict:
    """Fit with a progress bar over all batches; returns the final epoch's metrics.

    `x` is an id array or, for a multi-input model, a dict of arrays by input name.
    """
    steps = int(np.ceil(rows(x) / batch_size)) * epochs
    with progress.task(description, steps) as advance:
        hist = model.fit(
            x,
            y,
            epochs=epochs,
            batch_size=batch_size,
            shuffle=True,
            verbose=0,
            validation_data=validation,
            callbacks=[*callbacks, progress_callback(advance)],
        )
    return {k: float(v[-1]) for k, v in hist.history.items()}
