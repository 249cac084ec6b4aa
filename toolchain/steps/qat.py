"""Quantization-aware training with tfmot: fake-quant the layers tfmot can annotate, fine-tune, export int8.

Layers tfmot has no 8-bit config for (Embedding, Conv1D, LayerNormalization, MultiHeadAttention, ...) stay
float during QAT and are listed in the report; the int8 converter still quantizes them from the calibration
queries, as in post-training quantization. On a pruned model the pruning-preserving scheme (PQAT) keeps the
zeros of the annotated layers; the zeros of layers left float are kept by re-applying their masks after every
batch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from toolchain.base.errors import StepError
from toolchain.base.tfenv import keras
from toolchain.recipe.steps import QATStep
from toolchain.steps.base import StepContext, StepResult
from toolchain.steps.training import compile_for_finetune, fit, outputs_probabilities

SPARSE_AUTO = 0.3  # weights at least this sparse switch on PQAT when preserve_sparsity is unset
WEIGHT_NAMES = ("kernel", "embeddings")


def _inner(layer: Any) -> Any:
    return getattr(layer, "layer", layer)  # unwrap QuantizeWrapper / QuantizeAnnotate


def sparse_weights(model: Any) -> dict[str, tuple[Any, int]]:
    """{layer name: (main weight variable, size)} for kernels and embedding tables."""
    out = {}
    for layer in model.layers:
        inner = _inner(layer)
        for w in layer.weights:
            short = w.name.split("/")[-1].split(":")[0]
            if short in WEIGHT_NAMES and len(w.shape) >= 2:
                out[inner.name] = (w, int(np.prod(w.shape)))
    return out


def sparsity_by_layer(model: Any) -> dict[str, float]:
    return {name: round(float(np.mean(w.numpy() == 0)), 4) for name, (w, _) in sparse_weights(model).items()}


def overall_sparsity(model: Any) -> float:
    weights = sparse_weights(model)
    total = sum(n for _, n in weights.values())
    zeros = sum(int(np.sum(w.numpy() == 0)) for w, _ in weights.values())
    return round(zeros / max(total, 1), 4)


def split_supported(model: Any) -> tuple[list[str], list[str]]:
    """(layers tfmot's 8-bit registry annotates, layers with weights or math it leaves float)."""
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_registry as reg,
    )

    registry = reg.Default8BitQuantizeRegistry()
    annotated, floating = [], []
    for layer in model.layers:
        if layer.__class__.__name__ == "InputLayer":
            continue
        if registry.supports(layer) and _float_inputs(layer):
            annotated.append(layer.name)
        elif registry.supports(layer):
            continue  # e.g. a Reshape of an int attention mask: nothing to fake-quantize, no math
        else:
            floating.append(layer.name)
    return annotated, floating


def _float_inputs(layer: Any) -> bool:
    """True when every input of the layer is a float tensor (tfmot's QuantizeLayer fails on int ones)."""
    tensors = layer.input if isinstance(layer.input, list | tuple) else [layer.input]
    return all(getattr(t, "dtype", None) is None or t.dtype.is_floating for t in tensors)


def _mask_keeper(model: Any, names: list[str]) -> Any:
    """A callback that re-zeroes the pruned weights of layers QAT leaves float (PQAT covers the others)."""
    k = keras()
    weights = sparse_weights(model)
    masks = [(weights[n][0], weights[n][0].numpy() != 0) for n in names if n in weights]
    masks = [(w, m) for w, m in masks if not m.all()]

    class KeepMasks(k.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            for w, m in masks:
                w.assign(w.numpy() * m)

    return KeepMasks(), [n for n in names if n in weights and not weights[n][0].numpy().all()]


def quantize(model: Any, annotated: list[str], pqat: bool) -> Any:
    import tensorflow_model_optimization as tfmot

    qk = tfmot.quantization.keras

    def annotate(layer: Any) -> Any:
        return qk.quantize_annotate_layer(layer) if layer.name in annotated else layer

    base = keras().models.clone_model(model, clone_function=annotate)
    base.set_weights(model.get_weights())
    try:
        if pqat:
            scheme = tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme()
            return qk.quantize_apply(base, scheme)
        return qk.quantize_apply(base)
    except Exception as err:  # tfmot raises ValueError/RuntimeError with long texts
        first = str(err).splitlines()[0][:200] if str(err) else err.__class__.__name__
        raise StepError(
            f"qat: tfmot could not quantize the model: {first}", hint="EDGECOMP_DEBUG=1 shows the traceback"
        ) from None


def run(cfg: QATStep, model: Any, ctx: StepContext) -> StepResult:
    """Wrap, fine-tune with fake quantization, return the QAT model (the converter makes it int8)."""
    annotated, floating = split_supported(model)
    if not any(name in sparse_weights(model) for name in annotated):
        raise StepError(
            "qat: no layer with weights that tfmot can quantize-annotate (Dense, Conv2D, ...)",
            hint="use post-training int8 (no qat step) for this model",
        )
    before = sparsity_by_layer(model)
    sparse_before = overall_sparsity(model)
    pqat = cfg.preserve_sparsity if cfg.preserve_sparsity is not None else sparse_before >= SPARSE_AUTO
    qmodel = quantize(model, annotated, pqat)
    callbacks, masked = [], []
    if pqat:
        keeper, masked = _mask_keeper(qmodel, floating)
        callbacks.append(keeper)
    x, y = ctx.train_arrays()
    compile_for_finetune(qmodel, cfg.learning_rate, outputs_probabilities(model))
    metrics = fit(
        qmodel,
        x,
        y,
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        callbacks=callbacks,
        progress=ctx.progress,
        description="qat" + (" (sparsity-preserving)" if pqat else ""),
        validation=ctx.val_arrays(),
    )
    after = sparsity_by_layer(qmodel)
    float_weights = floating  # every layer tfmot's 8-bit registry has no config for
    report = {
        "scheme": "Default8BitPrunePreserveQuantizeScheme (PQAT)" if pqat else "Default8BitQuantizeScheme",
        "annotated_layers": annotated,
        "float_during_qat": floating,
        "float_note": (
            f"tfmot has no 8-bit QAT config for {', '.join(float_weights)}; they trained in float and the "
            "int8 converter quantizes them from calibration data (post-training)"
            if float_weights
            else ""
        ),
        "sparsity_before": sparse_before,
        "sparsity_after": overall_sparsity(qmodel),
        "layer_sparsity": {n: {"before": before[n], "after": after.get(n)} for n in before},
        "masks_kept_by_callback": masked,
        "train_metrics": {k: round(v, 4) for k, v in metrics.items()},
    }
    warnings = []
    if float_weights:
        warnings.append(f"qat: {', '.join(float_weights)} left float during QAT (no tfmot 8-bit config)")
    if not pqat and sparse_before >= 0.05:
        warnings.append(f"qat: the model was {sparse_before:.0%} sparse and plain QAT does not keep zeros")
    return StepResult(model=qmodel, report=report, warnings=warnings)
