"""The one place TensorFlow is imported: Keras 2 (tf_keras) for tfmot, quiet logs, determinism."""

from __future__ import annotations

import os
import sys
from types import ModuleType

from toolchain.base.errors import EdgecompError
from toolchain.base.quiet import native_output_silenced


def tf() -> ModuleType:
    """Import TensorFlow with legacy Keras (tfmot needs Keras 2); refuse if it came in without it."""
    if "tensorflow" in sys.modules and os.environ.get("TF_USE_LEGACY_KERAS") != "1":
        raise EdgecompError(
            "TensorFlow was imported before edgecomp could select Keras 2",
            hint="set TF_USE_LEGACY_KERAS=1 before importing tensorflow",
        )
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with native_output_silenced(stdout=False):  # CUDA/cuDNN registration chatter on every import
        import tensorflow

    tensorflow.get_logger().setLevel("ERROR")
    try:
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    except ImportError:  # pragma: no cover - absl ships with tensorflow
        pass
    return tensorflow


def keras() -> ModuleType:
    tf()
    import tf_keras

    return tf_keras


def seed_everything(seed: int) -> None:
    """Same seed, same weights, same bytes: seeds Python, NumPy and TF and asks TF for deterministic ops."""
    tensorflow = tf()
    keras().utils.set_random_seed(seed)
    tensorflow.config.experimental.enable_op_determinism()
