"""One-line notices for things a user should know before they happen (a first-time download), as a sink.

The library never prints: it calls `announce(line)`, which goes to the sink the caller installed with
`notice_sink(fn)` (the CLI: one `note:` line on stderr) and nowhere by default (library use, tests).

`first_use_notice` is the line for provisioning an isolated environment. Its size is the installed size
measured on this project's machine (`du -sm` of the cache entry, 2026-12-03), not a download estimate from the
network, so the notice never needs a connection and is the same every time:
  litert 2.3.0 venv 191 MB, tflite-runtime 2.14.0 venv 111 MB, mediapipe 0.10.21 venv 990 MB,
  aarch64 sysroot + litert 2.3.0 wheels 210 MB, + tflite-runtime 2.14.0 wheels 145 MB,
  armv7 sysroot + tflite-runtime 2.14.0 wheels 83 MB; hf-export (torch 2.13.0 CPU + transformers 5.23.0)
  venv 1278 MB (2026-12-06); mediapipe 1.2.3 venv 654 MB (2026-12-07).
An environment not in the table is announced without a size.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

Sink = Callable[[str], None]

# (environment name, e.g. "litert-2.3.0" or "sysroot-aarch64-litert-2.3.0") -> installed MB, measured
KNOWN_SIZES_MB: dict[str, int] = {
    "litert-2.3.0": 191,
    "tflite-runtime-2.14.0": 111,
    "mediapipe-0.10.21": 990,
    "mediapipe-1.2.3": 654,
    "sysroot-aarch64-litert-2.3.0": 210,
    "sysroot-aarch64-tflite-runtime-2.14.0": 145,
    "sysroot-armv7-tflite-runtime-2.14.0": 83,
    "hf-export-torch-2.13.0": 1278,
}

_sinks: list[Sink] = []


def announce(line: str) -> None:
    """Send one line to the innermost installed sink (none installed: dropped)."""
    if _sinks:
        _sinks[-1](line)


@contextlib.contextmanager
def notice_sink(sink: Sink) -> Iterator[None]:
    """Route `announce` to `sink` inside the block."""
    _sinks.append(sink)
    try:
        yield
    finally:
        _sinks.remove(sink)


def size_text(megabytes: int | None) -> str:
    if megabytes is None:
        return "size not measured"
    return f"~{megabytes / 1000:.1f} GB" if megabytes >= 1000 else f"~{round(megabytes, -1)} MB"


def first_use_notice(what: str, requirements: tuple[str, ...], target: Path, size_key: str) -> str:
    """The line printed before an environment is downloaded and installed for the first time, e.g.
    `first use of litert-2.3.0: installing ai-edge-litert==2.3.0 (~190 MB) into ~/.cache/edgecomp/envs/...`
    """
    home = Path.home()
    shown = f"~/{target.relative_to(home)}" if target.is_relative_to(home) else str(target)
    reqs = ", ".join(r for r in requirements if not r.startswith("numpy")) or ", ".join(requirements)
    return (
        f"first use of {what}: installing {reqs} ({size_text(KNOWN_SIZES_MB.get(size_key))}) into {shown}, "
        "once; later runs reuse it"
    )
