"""4-bit weights where they pay: int4 / int8 per weight of a float .tflite.

Dense weights (FULLY_CONNECTED, CONV_2D, DEPTHWISE_CONV_2D, BATCH_MATMUL with a constant right operand)
are quantized by the LiteRT Quantizer (`ai-edge-quantizer==0.10.0`, symmetric per output channel), which
hard-pins ai-edge-litert 2.3.0 and so runs in its own environment provisioned from a committed hash lock
(toolchain/base/locks/ai-edge-quantizer-0.10.0-<python>.txt, 341 MB installed), as a child
(converters/quantizer_child.py). int8 dense weights are weight-only (a DEQUANTIZE that XNNPACK folds
into float weights once); int4 dense weights (FULLY_CONNECTED, CONV_2D) are dynamic, the op's hybrid
kernel takes them itself, because XNNPACK does not fold an int4 DEQUANTIZE: weight-only int4 dense
weights made the example's teacher 2.7x slower than fp32 (55.8 vs 20.7 µs, interleaved, ai_edge_litert
2.1), hybrid int4 ran at 19.6 (FC) and 22.4 µs (CONV). Embedding tables (GATHER / EMBEDDING_LOOKUP params)
are stored per row (or per column) by converters/tflite_int4.py, behind a DEQUANTIZE that runs once (no
measurable cost). Every int4 DEQUANTIZE is written at version 6, so a runtime without int4 kernels is
named by the op-version probe rather than failing later.

A plan says, per weight tensor, int8 or int4 (tables also int4_columns: one scale per column, fewer bytes
of scales than one per row; FULLY_CONNECTED weights also int4_block32: AEQ's BLOCKWISE_32, one float16
scale per 32 input values of each output channel, which the hybrid kernel (XNNPACK's blockwise int4 path)
runs); a weight the plan leaves out stays float.

Rounding: to nearest (the LiteRT Quantizer's), or, given the input Hessians of the FULLY_CONNECTED layers
(`hessians`, devices/fc_inputs.py), GPTQ for every 4-bit FULLY_CONNECTED weight (converters/int4_rounding.py):
same scales, same bytes count, only the 4-bit values change.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from converters.int4_rounding import apply_gptq, float_weights
from converters.tflite_int4 import TABLE_OPS, fix_zero_block_scales, quantize_tables, set_int4_versions
from converters.tflite_model import parse_tflite
from toolchain.base.child import ChildError, ChildSession
from toolchain.base.errors import EdgecompError
from toolchain.base.progress import Progress, SilentProgress
from toolchain.base.types import WeightWidth
from toolchain.base.venvs import Venv, VenvSpec, ensure_venv

QUANTIZER_VERSION = "0.10.0"
CHILD_SCRIPT = Path(__file__).with_name("quantizer_child.py")
BITS = {
    WeightWidth.INT8: 8,
    WeightWidth.INT8_HYBRID: 8,
    WeightWidth.INT4: 4,
    WeightWidth.INT4_COLUMNS: 4,
    WeightWidth.INT4_BLOCK32: 4,
    WeightWidth.INT4_BLOCK64: 4,
    WeightWidth.INT4_BLOCK128: 4,
}
INT4 = WeightWidth.INT4
HYBRID = frozenset(set(BITS) - {WeightWidth.INT8, WeightWidth.INT4_COLUMNS})  # the op's kernel
# takes them (int8_hybrid: as `-Q dynamic` does, dynamic int8's speed; int8: behind a DEQUANTIZE, float math)
BLOCKS = {  # width -> input values per scale (AEQ's BLOCKWISE_<n>)
    WeightWidth.INT4_BLOCK128: 128,
    WeightWidth.INT4_BLOCK64: 64,
    WeightWidth.INT4_BLOCK32: 32,
}
ALL_BLOCKS = tuple(BLOCKS.values())
DEFAULT_BLOCKS = (32,)  # the block sizes `blockwise` tries unless quantization.int4.blocks says others
DENSE_INT4_OPS = ("FULLY_CONNECTED", "CONV_2D")  # AEQ's dynamic_wi4_afp32 policy
BLOCKWISE_OPS = ("FULLY_CONNECTED",)  # AEQ's dynamic_wi4_afp32_blockwise policy (its other op is a table)
DENSE_OPS = {"FULLY_CONNECTED": 1, "CONV_2D": 1, "DEPTHWISE_CONV_2D": 1, "BATCH_MATMUL": 1}  # op -> weight


class QuantizerError(EdgecompError):
    """The LiteRT Quantizer could not quantize the model."""

    exit_code = 3


def quantizer_spec() -> VenvSpec:
    return VenvSpec(
        f"ai-edge-quantizer-{QUANTIZER_VERSION}", (f"ai-edge-quantizer=={QUANTIZER_VERSION}", "numpy<2")
    )


def ensure_quantizer(progress: Progress | None = None) -> Venv:
    """The cached LiteRT Quantizer environment; the first call installs it from the lock (~340 MB)."""
    progress = progress or SilentProgress()
    with progress.task(f"LiteRT Quantizer {QUANTIZER_VERSION} environment", 1) as advance:
        env = ensure_venv(quantizer_spec())
        advance(1)
    return env


@dataclass(frozen=True)
class WeightSite:
    """One constant float weight that can go to 4 or 8 bits."""

    weight: str  # the weight tensor's name: the plan's key
    op: str  # FULLY_CONNECTED, CONV_2D, GATHER, ...
    op_index: int
    scope: str  # the op's output names + ";" (how the LiteRT Quantizer addresses an op)
    params: int
    table: bool  # an embedding table (per row) rather than a dense weight (per output channel)
    inner: int = 0  # a dense weight's input size (last dimension): blockwise needs whole blocks

    @property
    def int4(self) -> bool:
        """Whether it can go to 4 bits: every table; dense weights of the ops with hybrid int4 kernels."""
        return self.table or self.op in DENSE_INT4_OPS

    def takes(self, width: WeightWidth) -> bool:
        """Whether a plan may give it `width` (int8_hybrid: the dense ops with hybrid kernels)."""
        if width == WeightWidth.INT8_HYBRID:
            return not self.table and self.op in DENSE_INT4_OPS
        return width in (WeightWidth.INT8, WeightWidth.INT4_COLUMNS) or width in self.widths(True, ALL_BLOCKS)

    def widths(
        self, blockwise: bool = True, blocks: Sequence[int] = DEFAULT_BLOCKS
    ) -> tuple[WeightWidth, ...]:
        """The 4-bit widths it can take: per row for a table; per output channel for a dense weight, and
        (`blockwise`) blockwise for a FULLY_CONNECTED weight whose input size is a multiple of the block
        (each of `blocks`, largest first)."""
        if self.table:
            return (INT4,)
        if self.op not in DENSE_INT4_OPS:
            return ()
        able = blockwise and self.op in BLOCKWISE_OPS
        sized = tuple(w for w, n in BLOCKS.items() if able and n in blocks and self.inner % n == 0)
        return (INT4, *sized)


def weight_sites(data: bytes) -> list[WeightSite]:
    """Every constant float32 weight of a dense op or an embedding table, in op order (a weight shared by
    two ops is listed once)."""
    info = parse_tflite(data)
    sites, seen = [], set()
    for op in info.ops:
        slot = TABLE_OPS.get(op.op, DENSE_OPS.get(op.op))
        if slot is None or len(op.inputs) <= slot or op.inputs[slot] < 0:
            continue
        t = info.tensors[op.inputs[slot]]
        if not t.is_constant or t.dtype != "FLOAT32" or t.name in seen:
            continue
        seen.add(t.name)
        scope = "".join(f"{info.tensors[o].name};" for o in op.outputs if o >= 0)
        params = 1
        for d in t.shape:
            params *= int(d)
        inner = int(t.shape[-1]) if t.shape else 0
        sites.append(WeightSite(t.name, op.op, op.index, scope, params, op.op in TABLE_OPS, inner))
    return sites


class Quantizer:
    """One LiteRT Quantizer child for many plans (a search quantizes the same model many times)."""

    def __init__(
        self,
        float_tflite: bytes,
        env: Venv | None = None,
        timeout_s: float = 600.0,
        hessians: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        """`hessians` (weight name -> input X^T X / rows): GPTQ rounding for those FULLY_CONNECTED weights
        when the plan puts them in 4 bits; without, every weight is rounded to nearest."""
        self.float_tflite, self.timeout_s = float_tflite, timeout_s
        self.sites = {s.weight: s for s in weight_sites(float_tflite)}
        self._floats: dict[str, np.ndarray] = {}
        self._rounded: dict[tuple[str, int], np.ndarray] = {}  # GPTQ's values by (weight, block)
        self.set_hessians(hessians)
        self.env = env or ensure_quantizer()
        environ = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        environ.update(TF_CPP_MIN_LOG_LEVEL="3", GLOG_minloglevel="2")
        self._session = ChildSession(
            [str(self.env.python), str(CHILD_SCRIPT)], environ, name="LiteRT Quantizer"
        )
        self._tmp = tempfile.TemporaryDirectory(prefix="edgecomp-int4-")
        self.version = ""

    def set_hessians(self, hessians: Mapping[str, np.ndarray] | None) -> None:
        """Round the named FULLY_CONNECTED weights by GPTQ from now on (None or {}: to nearest); one child
        can quantize plans both ways."""
        self.hessians = dict(hessians or {})
        self._rounded.clear()
        missing = set(self.hessians) - set(self._floats)
        if missing:
            self._floats.update(float_weights(self.float_tflite, missing))

    def __enter__(self) -> Quantizer:
        try:
            hello = self._session.start()
        except ChildError as err:
            raise QuantizerError(err.message, hint=f"check the environment: {self.env.path}") from None
        self.version = str(hello.get("quantizer", ""))
        return self

    def __exit__(self, *exc: object) -> None:
        self._session.close()
        self._tmp.cleanup()

    def quantize(self, plan: Mapping[str, WeightWidth]) -> bytes:
        """The float model with each planned weight at its width; the rest stays float."""
        unknown = sorted(set(plan) - set(self.sites))
        if unknown:
            raise QuantizerError(f"no quantizable weight named {unknown[0]}", hint="re-plan on this model")
        columns = frozenset(w for w, width in plan.items() if width == WeightWidth.INT4_COLUMNS)
        no4 = sorted(w for w, v in plan.items() if v in HYBRID and not self.sites[w].takes(v))
        if no4:
            raise QuantizerError(
                f"{no4[0]} ({self.sites[no4[0]].op}) has no {plan[no4[0]]} kernel here",
                hint="use int8 for it",
            )
        dense_columns = sorted(w for w in columns if not self.sites[w].table)
        if dense_columns:
            raise QuantizerError(
                f"{dense_columns[0]} is a dense weight: int4_columns is for embedding tables",
                hint="use int4 (per output channel) for it",
            )
        dense = [self.sites[w] for w in plan if not self.sites[w].table]
        data = self.float_tflite
        if dense:
            work = Path(self._tmp.name)
            src, out = work / "in.tflite", work / "out.tflite"
            src.write_bytes(data)
            ops = [
                {
                    "scope": s.scope,
                    "op": s.op,
                    "bits": BITS[plan[s.weight]],
                    "dynamic": plan[s.weight] in HYBRID,
                    "block": BLOCKS.get(plan[s.weight], 0),
                }
                for s in dense
            ]
            try:
                self._session.call(
                    "weights",
                    {"model_in": str(src), "model_out": str(out), "ops": ops},
                    self.timeout_s,
                    f"quantization of {len(ops)} weights",
                )
            except ChildError as err:
                raise QuantizerError(err.message, hint="the LiteRT Quantizer refused this model") from None
            data = out.read_bytes()
            if any(plan[s.weight] in BLOCKS for s in dense):
                data = fix_zero_block_scales(data)
            gptq = {s.weight: self.hessians[s.weight] for s in dense if s.weight in self.hessians}
            four = {w: h for w, h in gptq.items() if plan[w] in HYBRID and BITS[plan[w]] == 4}
            if four:
                data, _ = apply_gptq(data, self._floats, four, self._rounded)
        tables = {w: BITS[width] for w, width in plan.items() if self.sites[w].table}
        return set_int4_versions(quantize_tables(data, tables, columns))
