"""edgecomp toolchain: recipe -> compression steps -> TFLite -> evaluation report."""

import toolchain.base  # noqa: F401  (first: snapshots the startup environment for child processes)

__version__ = "0.9.0"  # = pyproject.toml [project] version (tests/unit/test_docs.py checks it)
