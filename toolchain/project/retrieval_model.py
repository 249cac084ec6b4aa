"""The retrieval example's model family: a query tower and an item table, dot product in the graph.

input_ids -> the intent model's query tower (toolchain/project/intent_model.py `query_tower`: embedding, conv,
max-pool, hidden) -> Dense(dim) `query_embedding` -> Dense(items) `items`: the item table is that last
layer's kernel (dim x items, one column per product id of labels.txt) and its bias is a learnt per-item
prior (popularity); the output is the scores of every item, raw logits, no softmax. Why logits: a softmax
over thousands of items puts almost all of them near 0, where int8 or float rounding makes ties and
reorders the tail of the top 10; the dot products keep their spread. The consumer takes the top k: the
toolchain with a stable sort (toolchain/evaluation/retrieval.py), the app with MediaPipe's TextClassifier
(max_results 10) over labels = product ids, so packaging is the classifier path.

Size: the item table is `dim x items` weights, 128 x 3,000 = 384k of the example's 504k; it is what
int8 (per-row scales on the FULLY_CONNECTED weights), a low-rank step on `items` and item_prune shrink.
The width is 128 rather than 64 because each int8 row also carries a 4-byte scale and an 8-byte zero point
in the flatbuffer: at 64 that overhead held the whole model at 3.41x of fp32.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from toolchain.base.tfenv import keras
from toolchain.project.intent_model import IntentModelSpec, keras_name, query_tower

ITEM_LAYER = "items"
QUERY_LAYER = "query_embedding"


@dataclass(frozen=True)
class RetrievalModelSpec:
    tower: IntentModelSpec = IntentModelSpec(embed_dim=64, filters=128, hidden=128, dropout=0.2)
    dim: int = 128  # query / item embedding size


def build_retrieval_model(
    vocab_size: int, n_items: int, name: str, spec: RetrievalModelSpec | None = None
) -> Any:

    s, k = spec or RetrievalModelSpec(), keras()
    inp, x = query_tower(vocab_size, s.tower)
    q = k.layers.Dense(s.dim, name=QUERY_LAYER)(x)
    out = k.layers.Dense(n_items, name=ITEM_LAYER)(q)  # scores = q . item + prior, one per product id
    return k.Model(inp, out, name=keras_name(name))


def size_shares(model: Any) -> dict[str, Any]:
    """Parameters of the item table (kernel + prior) vs the query tower, and the table's share."""
    table = [layer for layer in model.layers if layer.name in (ITEM_LAYER, f"{ITEM_LAYER}_lr")]  # lowrank
    items = int(sum(w.size for layer in table for w in layer.get_weights()))
    total = int(model.count_params())
    return {"item_table": items, "query_tower": total - items, "item_table_share": round(items / total, 4)}
