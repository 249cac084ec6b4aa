"""edgecomp toolchain: recipe -> compression steps -> TFLite -> evaluation report."""

import toolchain.base  # noqa: F401  (first: snapshots the startup environment for child processes)

__version__ = "0.1.0"
