"""Rewrite a functional Keras model's layer graph through its config: split a layer in two, resize one.

Rebuilding from the config keeps the model flat and made of stock layers, so later steps (tfmot pruning and
quantization) and the TFLite converter see ordinary Dense/Embedding layers, not custom or nested ones.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np

from toolchain.base.tfenv import keras


@dataclass
class LayerPlan:
    """What to put in place of one layer: `first` feeds `second`, which keeps the original name."""

    first: dict[str, Any] | None  # {"class_name": ..., "config": {...}} or None (no split)
    second: dict[str, Any]
    first_weights: list[np.ndarray] | None
    second_weights: list[np.ndarray]


def _functional(model: Any) -> Any:
    if model.__class__.__name__ == "Sequential":
        return keras().Model(model.inputs, model.outputs, name=model.name)
    return model


def _layer_entry(spec: dict[str, Any], name: str, inbound: list) -> dict[str, Any]:
    config = {**spec["config"], "name": name}
    return {
        "module": "keras.layers",
        "class_name": spec["class_name"],
        "config": config,
        "registered_name": None,
        "name": name,
        "inbound_nodes": inbound,
    }


def rewrite(model: Any, plans: dict[str, LayerPlan]) -> Any:
    """A new model with each planned layer replaced (or split in two); other layers keep their weights."""
    k = keras()
    model = _functional(model)
    config = copy.deepcopy(model.get_config())
    layers = []
    for entry in config["layers"]:
        name = entry["name"]
        plan = plans.get(name)
        if plan is None:
            layers.append(entry)
            continue
        inbound = entry["inbound_nodes"]
        for key in ("build_config",):
            entry.pop(key, None)
        if plan.first is not None:
            first = f"{name}_lr"
            layers.append(_layer_entry(plan.first, first, inbound))
            inbound = [[[first, i, 0, {}]] for i in range(len(inbound))]
        layers.append(_layer_entry(plan.second, name, inbound))
    config["layers"] = layers
    new = k.Model.from_config(config)
    for layer in new.layers:
        base = layer.name.removesuffix("_lr")
        plan = plans.get(base)
        if plan is None:
            if layer.weights:
                layer.set_weights(model.get_layer(layer.name).get_weights())
        elif layer.name.endswith("_lr") and plan.first is not None:
            layer.set_weights(plan.first_weights)
        else:
            layer.set_weights(plan.second_weights)
    return new


def layer_spec(layer: Any, **changes: Any) -> dict[str, Any]:
    """A layer's class + config with some values changed (the name is set by `rewrite`)."""
    config = {**layer.get_config(), **changes}
    return {"class_name": layer.__class__.__name__, "config": config}


def dense_spec(units: int, use_bias: bool, activation: Any = "linear", dtype: str = "float32") -> dict:
    return {
        "class_name": "Dense",
        "config": {"units": units, "use_bias": use_bias, "activation": activation, "dtype": dtype},
    }
