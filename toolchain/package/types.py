"""What `edgecomp package` takes and returns; shared by packager.py (checks) and bundle.py (work).

Kept apart so that the two modules import it instead of each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from converters.metadata import MEDIAPIPE_VERSION
from toolchain.base.types import PackageFormat
from toolchain.package.manifest_model import Manifest

FORMATS = PackageFormat.values()


@dataclass(frozen=True)
class PackageOptions:
    """Flags; None means: take it from the build recipe's `package` section."""

    format: str | None = None
    name: str | None = None
    version: str | None = None
    description: str | None = None
    author: str | None = None
    license: str | None = None
    min_confidence_accuracy: float | None = None
    max_tokenizer_mismatch: float | None = None  # share of queries; None: the recipe's (default: no gate)
    out_dir: Path = Path("dist")
    allow_failed_validation: bool = False
    timeout_s: float = 300.0
    mediapipe: str = MEDIAPIPE_VERSION  # the app's MediaPipe, which parity runs in (MEDIAPIPE_RUNTIMES)


@dataclass(frozen=True)
class PackageValues:
    """What a package is made with: the flags resolved against the build's recipe (packager.py)."""

    format: PackageFormat
    name: str
    version: str
    description: str
    author: str | None  # None: left out of the metadata (edgecomp never fills one in)
    license: str | None
    min_confidence_accuracy: float
    max_tokenizer_mismatch: float | None  # None: no gate
    max_tokenizer_accuracy_drop: float | None = None  # sentencepiece, points; None: package/spm.py's default
    min_tokenizer_cosine: float | None = None  # sentencepiece embedders, mean; None: package/spm.py's default


@dataclass(frozen=True)
class PackageSplits:
    """The recipe's splits package uses: parity on test (else val, else `queries`), the fallback threshold
    on val (else the parity split)."""

    val: Path | None
    test: Path | None
    queries: Path | None = None  # an embedder without test/val: its calibration (else train) queries


@dataclass
class PackageResult:
    bundle_dir: Path
    zip_path: Path
    manifest: Manifest
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # not a problem, something to know (e.g. unset metadata)
    seconds: float = 0.0
