"""Why a 4-bit embedding table costs agreement: a build's float model with its largest table stored in several
4-bit forms (quantized and dequantized in float; every other weight stays float), each form's SNR and top-1
agreement with the float model on the val and test splits, in ai_edge_litert (one runtime child). The
measurements behind docs/guides/int4.md ("Where it does not pay"); not part of `make bench`.

    python benchmarks/diagnose_int4_table.py BUILD_DIR    # a build with float.tflite, e.g. --preset trim-int4
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def symmetric(
    t: np.ndarray, bits: int, axis: int = 1, low: int | None = None, clip: float = 1.0
) -> np.ndarray:
    qmax = 2 ** (bits - 1) - 1
    amax = np.abs(t).max(axis=axis, keepdims=True) * clip
    s = np.where(amax > 0, amax / qmax, 1.0)
    return np.clip(np.rint(t / s), -qmax if low is None else low, qmax) * s


def least_squares(t: np.ndarray) -> np.ndarray:
    """Per row, -8..7, the clipping (50-100% of the largest value) with the least squared error."""
    best, err = None, None
    for c in np.linspace(0.5, 1.0, 26):
        q = symmetric(t, 4, low=-8, clip=c)
        e = ((q - t) ** 2).sum(1, keepdims=True)
        best, err = (q, e) if best is None else (np.where(e < err, q, best), np.minimum(e, err))
    return best


def asymmetric(t: np.ndarray) -> np.ndarray:
    lo, hi = t.min(1, keepdims=True), t.max(1, keepdims=True)
    s = np.where(hi > lo, (hi - lo) / 15, 1.0)
    z = np.rint(-lo / s)
    return (np.clip(np.rint(t / s) + z, 0, 15) - z) * s


def prefix8(t: np.ndarray, rows: int = 300) -> np.ndarray:
    q = symmetric(t, 4)
    q[:rows] = symmetric(t, 8)[:rows]
    return q


FORMS = {
    "8 bits per row": lambda t: symmetric(t, 8),
    "4 bits per row, symmetric, to the largest value (int4)": lambda t: symmetric(t, 4),
    "4 bits per row, symmetric, least squared error, -8..7": least_squares,
    "4 bits per row, asymmetric (min..max)": asymmetric,
    "4 bits per column (int4_columns)": lambda t: symmetric(t, 4, axis=0),
    "4 bits per row, the first 300 rows in 8": prefix8,
}


def with_table(data: bytes, name: str, values: np.ndarray | None = None) -> tuple[bytes, np.ndarray]:
    """(the model with table `name` replaced by `values`, the table's float values)."""
    from converters.tflite_int4 import load_model, save_model
    from converters.tflite_model import tensor_name

    model = load_model(data)
    for t in model.subgraphs[0].tensors:
        if tensor_name(t) == name:
            buf = model.buffers[t.buffer]
            table = np.frombuffer(bytes(np.asarray(buf.data, np.uint8)), np.float32).reshape(tuple(t.shape))
            if values is not None:
                buf.data = np.frombuffer(values.astype(np.float32).tobytes(), np.uint8)
            return save_model(model, len(data)), table
    raise SystemExit(f"no tensor {name}")


def main() -> int:
    from converters.int4 import weight_sites
    from devices.host_runtime import HostRuntime
    from devices.hostrun import HostRunner
    from toolchain.build import load_build

    build = load_build(Path(sys.argv[1]), allow_rejected=True)
    data = (build.dir / "float.tflite").read_bytes()
    table = max((s for s in weight_sites(data) if s.table), key=lambda s: s.params)
    _, values = with_table(data, table.weight)
    splits = {split: build.eval_set(split).feeds for split in ("val", "test")}
    print(f"table {table.weight} {values.shape[0]:,} x {values.shape[1]}; agreement with the float model\n")
    print("| table in | SNR | agreement, val | agreement, test |\n|---|---:|---:|---:|")
    with HostRuntime() as host:
        with HostRunner(data, threads=1, name="float", host=host) as r:
            ref = {split: r.scores(feeds) for split, feeds in splits.items()}
        for form, quantize in FORMS.items():
            q = quantize(values.astype(np.float64))
            snr = 10 * np.log10((values**2).sum() / ((q - values) ** 2).sum())
            model, _ = with_table(data, table.weight, q)
            with HostRunner(model, threads=1, name=form, host=host) as r:
                agree = {s: np.mean(r.scores(f).argmax(1) == ref[s].argmax(1)) for s, f in splits.items()}
            print(f"| {form} | {snr:.1f} dB | {agree['val']:.2%} | {agree['test']:.2%} |")
    top2 = np.sort(ref["val"], 1)[:, -2:]
    margin = top2[:, 1] - top2[:, 0]
    p5, p10 = np.percentile(margin, [5, 10])
    print(f"\nval top-2 margins: 5% below {p5:.3f}, 10% below {p10:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
