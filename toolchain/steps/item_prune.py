"""item_prune: drop rarely clicked items from a retrieval model's item table (the last Dense layer).

An item that no train query clicked has a table column learnt from nothing (only pushed down by the softmax
of other queries): it is almost never retrieved, yet costs a full row in the shipped model. The step keeps
the items with at least `min_clicks` train queries, slices the kernel's columns and the prior, and returns
the kept ids as the build's labels (in the same order). No training: the kept weights are unchanged, so
the kept items score exactly as before. The evaluation maps the scores back to the source's item list (a
dropped item can never be retrieved), so recall@k and the overlap stay comparable with the source
(toolchain/sources/keras.py); a test query whose product was dropped counts as a miss.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from toolchain.base.errors import StepError
from toolchain.base.tfenv import keras
from toolchain.recipe.steps import ItemPruneStep
from toolchain.steps.base import StepContext, StepResult

MIN_ITEMS = 10  # a top-10 list needs ten items


def run(cfg: ItemPruneStep, model: Any, ctx: StepContext) -> StepResult:

    _, y = ctx.train_arrays()
    head = model.layers[-1]
    n = len(ctx.labels)
    if head.__class__.__name__ != "Dense" or int(head.units) != n:
        raise StepError(
            f"item_prune: the last layer {head.name!r} is not the item table (a Dense layer with one output "
            f"per item of labels.txt, {n})",
            hint="item_prune is for retrieval models whose last layer scores every item",
        )
    clicks = np.bincount(np.asarray(y, dtype=np.int64), minlength=n)
    keep = np.flatnonzero(clicks >= cfg.min_clicks)
    if len(keep) < MIN_ITEMS:
        raise StepError(
            f"item_prune: only {len(keep)} of {n} items have {cfg.min_clicks}+ train clicks",
            hint="lower min_clicks (a top-10 list needs at least 10 items)",
        )
    k = keras()
    weights = head.get_weights()
    layer = k.layers.Dense(
        len(keep), activation=head.activation, use_bias=head.use_bias, name=head.name, dtype=head.dtype
    )
    out = layer(head.input)
    layer.set_weights([weights[0][:, keep], *([weights[1][keep]] if head.use_bias else [])])
    pruned = k.Model(model.inputs, out, name=model.name)
    before, after = int(sum(w.size for w in weights)), int(sum(w.size for w in layer.get_weights()))
    report = {
        "min_clicks": cfg.min_clicks,
        "items_before": n,
        "items_after": int(len(keep)),
        "dropped": int(n - len(keep)),
        "train_queries_of_dropped_items": int(np.sum(clicks[clicks < cfg.min_clicks])),
        "table_parameters_before": before,
        "table_parameters_after": after,
    }
    return StepResult(pruned, report, labels=[ctx.labels[i] for i in keep])
