"""package's TextEmbedder gate: one output step for an int8-throughout graph, cosine for float ops.

Measured on the sentence-transformers folder's mixed build (benchmarks/acceptance_hub.py): MediaPipe's
vectors 6 int8 output steps (0.019) from the toolchain's on the same ids, min cosine 0.99945; a mixed graph's
float ops round differently in each runtime's kernels, as a float output does, and the build was refused."""

from types import SimpleNamespace

import pytest

from toolchain.base.errors import GateFailed
from toolchain.base.types import QuantMode
from toolchain.package import gates
from toolchain.package.parity import VectorParity

SIX_STEPS = VectorParity(
    feed="lowercased", queries=748, identical=0, max_abs_diff=0.019, min_cosine=0.99945, worst_query="q"
)


def _build(mode: QuantMode) -> SimpleNamespace:
    return SimpleNamespace(report=SimpleNamespace(quantization=SimpleNamespace(mode=mode)))


def test_a_mixed_graph_is_judged_by_cosine(monkeypatch):
    monkeypatch.setattr(gates, "output_step", lambda build: 0.0032)
    gates.vector_gate(SIX_STEPS, _build(QuantMode.MIXED))  # passes: cosine 0.99945 >= 0.999
    low = SIX_STEPS.model_copy(update={"min_cosine": 0.99})
    with pytest.raises(GateFailed, match="min cosine 0.99"):
        gates.vector_gate(low, _build(QuantMode.MIXED))


def test_an_int8_graph_still_needs_one_output_step(monkeypatch):
    monkeypatch.setattr(gates, "output_step", lambda build: 0.0032)
    with pytest.raises(GateFailed, match="one output step is 0.0032"):
        gates.vector_gate(SIX_STEPS, _build(QuantMode.INT8))
