"""Which FULLY_CONNECTED kernel each int4 / int8 weight form runs, and how fast, on MiniLM's shapes.

A float .tflite with one MiniLM encoder layer's dense ops (32 tokens; 384 -> 384 x 4, 384 -> 1536 -> 384;
seeded random weights) is quantized by the LiteRT Quantizer child (converters/int4.py) with every dense
weight in one form: `int8` (weight-only, behind a DEQUANTIZE), `int8_hybrid` (the op's hybrid kernel, as
`-Q dynamic`), `int4` (per output channel, hybrid), `int4_block128` / `64` / `32` (blockwise, hybrid),
plus the TF converter's own dynamic-range build. All run interleaved in one ai_edge_litert child (1 thread,
XNNPACK as deployed); `--profile` also runs `edgecomp profile` on each for the kernel names XNNPACK
reports (e.g. `Fully Connected (NC, QD8, F32, QC4W)`).

    python benchmarks/diagnose_int4_kernels.py [--rounds 300] [--profile] [--tokens 32]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
HIDDEN, FFN = 384, 1536


def float_and_dynamic(tokens: int) -> tuple[bytes, bytes]:
    """One encoder layer's dense ops (no attention math): float and the TF converter's dynamic range."""
    import numpy as np  # reason: TF and numpy only for this diagnosis, not at import
    import tensorflow as tf  # reason: as above

    rng = np.random.default_rng(0)
    shapes = [(HIDDEN, HIDDEN)] * 4 + [(HIDDEN, FFN), (FFN, HIDDEN)]
    ws = [tf.constant(rng.normal(0, 0.05, s).astype(np.float32)) for s in shapes]

    @tf.function(input_signature=[tf.TensorSpec([1, tokens, HIDDEN], tf.float32)])
    def layer(x):
        x = tf.reshape(x, [tokens, HIDDEN])
        q, k, v = (tf.matmul(x, w) for w in ws[:3])
        o = tf.matmul(q + k + v, ws[3])
        h = tf.nn.relu(tf.matmul(o + x, ws[4]))
        return tf.matmul(h, ws[5]) + o

    def convert(dynamic: bool) -> bytes:
        c = tf.lite.TFLiteConverter.from_concrete_functions([layer.get_concrete_function()], layer)
        if dynamic:
            c.optimizations = [tf.lite.Optimize.DEFAULT]
        return c.convert()

    return convert(False), convert(True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    import numpy as np  # reason: after argparse (--help stays fast)

    from converters.int4 import Quantizer
    from devices.host_runtime import HostRuntime
    from devices.hostrun import HostRunner, time_rounds
    from toolchain.base.types import WeightWidth as W

    fp, dyn = float_and_dynamic(args.tokens)
    models = {"fp32": fp, "tf-dynamic": dyn}
    with Quantizer(fp) as q:
        for width in (W.INT8, W.INT8_HYBRID, W.INT4, W.INT4_BLOCK128, W.INT4_BLOCK64, W.INT4_BLOCK32):
            models[str(width)] = q.quantize({w: width for w in q.sites})
    x = {"x": np.random.default_rng(1).normal(0, 1, (8, args.tokens, HIDDEN)).astype(np.float32)}
    with HostRuntime() as host:
        runners = []
        for name, data in models.items():
            r = HostRunner(data, threads=1, name=name, host=host)
            feeds = {r.input_names[0]: x["x"][:, :, :]}
            r.scores(feeds)
            runners.append(r)
        us = time_rounds(runners, args.rounds, 5, rotate=True)
    med = np.median(us, 0)
    ref = med[list(models).index("tf-dynamic")]
    rows = {
        n: {"bytes": len(d), "us": round(float(m), 1), "vs_tf_dynamic": round(float(m / ref), 3)}
        for (n, d), m in zip(models.items(), med, strict=True)
    }
    if args.profile:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "250"}
        with tempfile.TemporaryDirectory() as tmp:
            for name, data in models.items():
                path = Path(tmp) / f"{name}.tflite"
                path.write_bytes(data)
                p = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "toolchain.cli.main",
                        "profile",
                        str(path),
                        "--processes",
                        "1",
                        "--runs",
                        "100",
                        "--warmup",
                        "20",
                        "--no-quant-error",
                        "--json",
                    ],
                    capture_output=True,
                    text=True,
                    env=env,
                )
                rows[name]["profile"] = p.stdout if p.returncode == 0 else p.stderr[-2000:]
    print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
