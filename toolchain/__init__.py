"""edgecomp toolchain: recipe -> compression steps -> TFLite -> evaluation report."""

__version__ = "0.1.0"
