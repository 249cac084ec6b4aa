"""ONNX (e.g. PyTorch-exported) -> float SavedModel with onnx2tf -> TFLite with edgecomp's own quantization.

onnx2tf's own int8 path assumes float image inputs and rejects token ids, so it is used only for the float
SavedModel; quantization goes through converters/keras_tflite.py with real queries. Before onnx2tf the model
is simplified with onnxsim at fixed input shapes: from dynamic-shape transformer ONNX, onnx2tf can fail
(constant Expand) or silently mis-lay-out a head-merge Reshape. onnx2tf runs in a child process so that its
printing, logging and global TF settings never leak into edgecomp (converters/onnx2tf_child.py, over the one
child protocol of toolchain/base/child.py). Every result is checked against onnxruntime by the caller
(toolchain/sources/onnx.py).
"""

from __future__ import annotations

import os
import re
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from converters import onnx2tf_cache
from converters.onnx_external import check_external_data
from toolchain.base.child import ChildError, ChildFailed, ChildSession, ChildTimeout
from toolchain.base.errors import ConversionError, DataError, InputFileError

MIN_OPSET, MAX_OPSET = 10, 21
MAX_INPUT_DIM, MAX_INPUT_ELEMENTS = 1 << 16, 1 << 24  # bounds on a fixed input shape (64 MiB of float32)
# Erf (exact GELU in PyTorch BERTs) becomes FlexErf otherwise: a Select-TF op phones cannot run.
PSEUDO_OPS = ("erf",)
# text inputs (and the aliases other exporters use) whose axis 1 is the sequence: fixed by data.seq_len
TEXT_INPUTS = (
    "input_ids",
    "attention_mask",
    "token_type_ids",
    "input_word_ids",
    "input_mask",
    "input_type_ids",
)
# onnxruntime's own integer quantization (quantize_dynamic / quantize_static in QOperator form, the Hub's
# onnx/model_quantized.onnx): integer matmuls that onnx2tf turns into int TF ops with no TFLite builtin
# (BatchMatMulV2 on int8 needs Flex). QuantizeLinear/DequantizeLinear pairs (QDQ) are not in this list.
ORT_QUANTIZED_OPS = frozenset(
    {"DynamicQuantizeLinear", "MatMulInteger", "ConvInteger", "DynamicQuantizeMatMul", "MatMulIntegerToFloat"}
    | {"QAttention", "QGemm", "QEmbedLayerNormalization", "DynamicQuantizeLSTM"}
)
_ONNX_TO_NP = {1: "float32", 6: "int32", 7: "int64", 9: "bool", 10: "float16", 11: "float64"}


@dataclass(frozen=True)
class OnnxInput:
    name: str
    dtype: str  # numpy dtype name
    dims: tuple[int | str, ...]  # ints, or the symbolic name of a dynamic axis


@dataclass(frozen=True)
class OnnxInfo:
    path: Path
    opset: int
    inputs: tuple[OnnxInput, ...]
    outputs: tuple[str, ...]
    ops: dict[str, int]


def _onnx2tf_ops() -> set[str]:
    """The ONNX ops onnx2tf has a converter for (one module each), without importing it (it imports TF)."""
    import importlib.util

    spec = importlib.util.find_spec("onnx2tf")
    if spec is None or not spec.submodule_search_locations:
        raise ConversionError(
            "onnx2tf is not installed", hint="make install (it is pinned in pyproject.toml)"
        )
    ops_dir = Path(next(iter(spec.submodule_search_locations))) / "ops"
    return {p.stem for p in ops_dir.glob("*.py") if not p.stem.startswith("_")}


def inspect_onnx(path: Path) -> OnnxInfo:
    """Load, check and describe an ONNX model; refuse what cannot convert, naming the op and node."""
    import onnx

    if not path.is_file():
        raise InputFileError(f"model not found: {path}", hint="check the path to the .onnx file")

    try:
        model = onnx.load(str(path), load_external_data=False)
        check_external_data(path, model)  # before anything follows a `location` out of the folder
        onnx.checker.check_model(str(path))  # by path: works with external data and large models
    except InputFileError:
        raise
    except Exception as err:
        first = str(err).strip().splitlines()[0][:200] if str(err).strip() else err.__class__.__name__
        raise InputFileError(f"{path} is not a valid ONNX model: {first}", hint="re-export it") from None
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < MIN_OPSET or opset > MAX_OPSET:
        raise ConversionError(
            f"{path.name} uses ONNX opset {opset}; edgecomp converts opsets {MIN_OPSET}-{MAX_OPSET}",
            hint="re-export with opset_version=17 or convert it with onnx.version_converter",
        )
    initializers = {i.name for i in model.graph.initializer}
    inputs = []
    for inp in model.graph.input:
        if inp.name in initializers:
            continue
        ttype = inp.type.tensor_type
        if ttype.elem_type == 8:
            raise ConversionError(
                f"input '{inp.name}' is a string tensor: TFLite text models take token ids",
                hint="tokenize outside the model (edgecomp's tokenizer) and export with int64 input_ids",
            )
        dims = tuple(
            d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in ttype.shape.dim
        )
        inputs.append(OnnxInput(inp.name, _ONNX_TO_NP.get(ttype.elem_type, str(ttype.elem_type)), dims))
    refuse_ort_quantized(path, [n.op_type for n in model.graph.node])
    supported = _onnx2tf_ops()
    for node in model.graph.node:
        if node.domain not in ("", "ai.onnx") or node.op_type not in supported:
            where = f" (domain {node.domain})" if node.domain not in ("", "ai.onnx") else ""
            raise ConversionError(
                f"ONNX op {node.op_type}{where} in node '{node.name or node.output[0]}' cannot be converted",
                hint="replace it before export (onnx2tf has no converter for it)",
            )
    ops = dict(sorted(Counter(n.op_type for n in model.graph.node).items()))
    return OnnxInfo(path, opset, tuple(inputs), tuple(o.name for o in model.graph.output), ops)


def refuse_ort_quantized(path: Path, op_types: list[str]) -> None:
    """A model onnxruntime already quantized is refused before onnx2tf runs (it would fail minutes later
    on a Flex op), naming the float export beside it as the fix."""
    found = sorted({op for op in op_types if op in ORT_QUANTIZED_OPS or op.startswith("QLinear")})
    if not found:
        return
    where = f"{path.parent.name}/{path.name}" if path.parent.name == "onnx" else path.name
    float_file = path.parent / "model.onnx"
    if float_file.is_file() and float_file != path:
        rel = f"onnx/{float_file.name}" if path.parent.name == "onnx" else float_file.name
        fix = f"convert the float {rel} (--onnx-file {rel}" + (
            ", the default for a Hub folder)" if path.parent.name == "onnx" else ")"
        )
    else:
        fix = "convert the model's float ONNX export (--onnx-file picks it in a folder)"
    raise ConversionError(
        f"{where} is already quantized by onnxruntime ({', '.join(found)}): its integer ops have no TFLite "
        "builtin kernels (they would need Select-TF/Flex, which phones and the LiteRT pip runtime lack)",
        hint=f"{fix} and let edgecomp quantize it (--quantize dynamic, mixed or int8)",
    )


def fixed_shapes(info: OnnxInfo, given: dict[str, list[int]], seq_len: int | None) -> dict[str, list[int]]:
    """Every input's shape with dynamic axes fixed: from --input-shape, else batch 1 and data.seq_len."""
    unknown = sorted(set(given) - {i.name for i in info.inputs})
    if unknown:
        raise DataError(
            f"--input-shape names unknown inputs {unknown}",
            hint=f"inputs: {', '.join(i.name for i in info.inputs)}",
        )
    shapes = {}
    for inp in info.inputs:
        if inp.name in given:
            shape = list(given[inp.name])
            if len(shape) != len(inp.dims) or any(
                isinstance(d, int) and d > 0 and d != s for d, s in zip(inp.dims, shape, strict=False)
            ):
                raise DataError(
                    f"--input-shape {inp.name}={'x'.join(map(str, shape))} does not fit {inp.dims}",
                    hint="give one size per axis; fixed axes must keep their size",
                )
        else:
            shape = []
            for axis, d in enumerate(inp.dims):
                if isinstance(d, int) and d > 0:
                    shape.append(d)
                elif axis == 0:
                    shape.append(1)
                elif axis == 1 and seq_len is not None and inp.name in TEXT_INPUTS:
                    shape.append(seq_len)
                else:
                    raise DataError(
                        f"input '{inp.name}' has dynamic shape {list(inp.dims)} that stays dynamic",
                        hint=(
                            "fix it with --seq-len 32"
                            if inp.name in TEXT_INPUTS
                            else f"fix it with --input-shape {inp.name}=1x32 (or source.input_shapes)"
                        ),
                    )
        if (
            any(d < 1 or d > MAX_INPUT_DIM for d in shape)
            or int(np.prod(shape, dtype=object)) > MAX_INPUT_ELEMENTS
        ):
            raise DataError(  # before onnxsim, onnxruntime or numpy allocate it (a 2**40 axis: 2 TiB)
                f"input '{inp.name}' would have shape {shape}: too large for a query model",
                hint=f"each axis at most {MAX_INPUT_DIM}, {MAX_INPUT_ELEMENTS} elements (--input-shape)",
            )
        shapes[inp.name] = shape
    return shapes


def simplify(path: Path, shapes: dict[str, list[int]], out: Path) -> Path:
    """onnxsim at fixed shapes (folds the shape arithmetic that onnx2tf mis-converts)."""
    import onnx
    from onnxsim import simplify as onnxsim

    try:
        model, ok = onnxsim(onnx.load(str(path)), overwrite_input_shapes=shapes)
    except Exception as err:
        raise ConversionError(
            f"onnxsim failed on {path.name}: {str(err).splitlines()[0][:200]}",
            hint="check the input shapes (--input-shape)",
        ) from None
    if not ok:
        raise ConversionError(
            f"onnxsim could not validate the simplified {path.name}", hint="EDGECOMP_DEBUG=1"
        )
    onnx.save(model, str(out))
    return out


CHILD_SCRIPT = Path(__file__).with_name("onnx2tf_child.py")


def onnx_to_saved_model(
    onnx_path: Path,
    out_dir: Path,
    input_names: list[str],
    pseudo_ops: tuple[str, ...] = PSEUDO_OPS,
    timeout_s: float = 1800,
) -> Path:
    """Run onnx2tf in a child process (or take its earlier SavedModel of the same graph from the cache,
    converters/onnx2tf_cache.py); return the float SavedModel directory."""
    options = {"pseudo": list(pseudo_ops), "inputs": list(input_names)}
    convert = lambda: _run_onnx2tf(onnx_path, out_dir, options, timeout_s)  # noqa: E731
    return onnx2tf_cache.saved_model(onnx_path, out_dir, options, convert)[0]


def _run_onnx2tf(onnx_path: Path, out_dir: Path, options: dict, timeout_s: float) -> Path:
    args = {"onnx": str(onnx_path), "out": str(out_dir), **options}
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    failed = ""
    try:
        with ChildSession([sys.executable, str(CHILD_SCRIPT)], env, name="onnx2tf") as child:
            child.call("convert", args, timeout_s, f"converting {onnx_path.name}")
    except ChildError as err:
        if isinstance(err, ChildTimeout):
            raise ConversionError(
                f"onnx2tf did not finish within {timeout_s:.0f} s", hint="EDGECOMP_DEBUG=1"
            ) from None
        lines = re.sub(r"\x1b\[[0-9;]*m", "", err.stderr).strip().splitlines()  # onnx2tf colours ERROR:
        last = next((ln for ln in reversed(lines) if "error" in ln.lower()), "")
        failed = last or (err.detail if isinstance(err, ChildFailed) else err.message)
    if failed or not (out_dir / "saved_model.pb").is_file():
        raise ConversionError(
            f"onnx2tf failed on {onnx_path.name}: {failed.strip()[:240]}",
            hint="EDGECOMP_DEBUG=1 keeps the work dir; see which node failed",
        )
    return out_dir


def explain_conversion_error(err: ConversionError) -> ConversionError:
    """Name the TF op that has no TFLite builtin (it would need Select-TF / Flex)."""
    match = re.search(r'fused\["(\w+):', err.message)
    if match:
        return ConversionError(
            f"op {match.group(1)} has no TFLite builtin kernel: it would need Select-TF (Flex), which the "
            "LiteRT pip runtime and phones cannot load",
            hint="replace the op before export (e.g. exact GELU/Erf -> tanh GELU), or pick another opset",
        )
    return err


def refuse_flex(custom_ops: list[str]) -> None:
    flex = [op for op in custom_ops if op.startswith("Flex")]
    if flex:
        raise ConversionError(
            f"the converted model needs Select-TF ops {flex}: phones cannot load it",
            hint="replace those ops in the source model",
        )


def embedding_rows(path: Path, input_name: str) -> int | None:
    """Rows of the embedding table that `input_name` indexes (the vocab size the graph can take), or None.

    Follows the ids through Cast/Unsqueeze/Reshape/Squeeze/Identity to a Gather on an initializer; with
    several tables (word + position) the smallest bound wins, so random ids stay in range for all.
    """
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    tables = {i.name: tuple(i.dims) for i in model.graph.initializer}
    reach, rows = {input_name}, []
    for node in model.graph.node:
        if node.op_type in ("Cast", "Unsqueeze", "Reshape", "Squeeze", "Identity") and node.input[0] in reach:
            reach.update(node.output)
        elif node.op_type == "Gather" and len(node.input) > 1 and node.input[1] in reach:
            dims = tables.get(node.input[0])
            if dims:
                rows.append(int(dims[0]))
    return min(rows) if rows else None


class OnnxReference:
    """The source model in onnxruntime (CPU), one query at a time."""

    def __init__(self, path: Path, inputs: tuple[OnnxInput, ...]) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.inputs = inputs

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """First output per row, fed by ONNX input name (arrays of shape (rows, ...) in the input's dtype)."""
        missing = [i.name for i in self.inputs if i.name not in feeds]
        if missing:
            raise DataError(f"no data for ONNX input(s) {', '.join(missing)}", hint=f"got {', '.join(feeds)}")
        n = len(feeds[self.inputs[0].name])
        rows = [
            self.session.run(None, {i.name: feeds[i.name][r : r + 1] for i in self.inputs})[0].reshape(-1)
            for r in range(n)
        ]
        return np.stack(rows).astype(np.float32)

    def run_batched(
        self, feeds: dict[str, np.ndarray], batch: int = 256, advance: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """Like `run`, `batch` rows per session call where the batch axis is dynamic (else one at a time):
        identical logits on the BERT fixture, about twice as fast (distillation teachers score thousands)."""
        if any(isinstance(i.dims[0], int) if i.dims else True for i in self.inputs):
            batch = 1
        n = len(feeds[self.inputs[0].name]) if self.inputs else 0
        parts = []
        for r in range(0, n, batch):
            out = self.session.run(None, {i.name: feeds[i.name][r : r + batch] for i in self.inputs})[0]
            parts.append(out.reshape(len(out), -1).astype(np.float32))
            if advance is not None:
                advance(len(out))
        return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)
