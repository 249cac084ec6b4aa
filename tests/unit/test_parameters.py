"""One parameter count (converters/parameters.py): the same model gets the same number in every form."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from converters.parameters import count_parameters, tflite_parameters


def test_index_constants_are_not_parameters_but_int8_biases_are():
    t = lambda dtype, shape, quantized=False, constant=True, name="w": SimpleNamespace(  # noqa: E731
        name=name, dtype=dtype, shape=shape, is_constant=constant, scales=(0.1,) if quantized else ()
    )
    tensors = [
        t("INT8", (22, 128), quantized=True),  # weights
        t("INT32", (22,), quantized=True),  # an int8 model's bias
        t("FLOAT32", (64,)),  # a float bias
        t("INT32", (3,)),  # a reshape shape
        t("INT32", ()),  # an axis
        t("FLOAT32", (1, 16), constant=False),  # an activation
        t("FLOAT32", (22,), name="StatefulPartitionedCall:0/tie_break"),  # package's tie-break bias
    ]
    assert tflite_parameters(tensors) == 22 * 128 + 22 + 64


@pytest.mark.slow
def test_keras_model_its_tflite_and_its_training_wrappers_agree():
    import tensorflow_model_optimization as tfmot

    from converters.keras_tflite import keras_to_tflite
    from converters.tflite_model import parse_tflite
    from tests.fixtures.tiny import tiny_model
    from toolchain.base.tfenv import keras

    model = tiny_model(200, 4)
    rng = np.random.default_rng(0)  # an untrained model's biases are zero, and the converter drops those
    model.set_weights([rng.normal(size=w.shape).astype(np.float32) for w in model.get_weights()])
    n = model.count_params()
    assert count_parameters(model) == n
    fp32 = parse_tflite(keras_to_tflite(model, "float32"))
    assert count_parameters(fp32) == fp32.parameter_count == n
    assert sum(1 for x in fp32.tensors if x.is_constant and x.dtype == "INT32") > 0  # shapes were left out

    qk = tfmot.quantization.keras

    def annotate(layer):
        return qk.quantize_annotate_layer(layer) if layer.name in ("hidden", "intent") else layer

    qat = qk.quantize_apply(keras().models.clone_model(model, clone_function=annotate))
    pruned = tfmot.sparsity.keras.prune_low_magnitude(model)
    assert qat.count_params() > n and pruned.count_params() > n  # Keras counts the training state too
    assert count_parameters(qat) == count_parameters(pruned) == n
