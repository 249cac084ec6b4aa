"""Silence what native libraries (TF converter, LiteRT, absl) write straight to fd 1/2.

Python exceptions still carry the errors; EDGECOMP_DEBUG=1 keeps all native output.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def native_output_silenced(stdout: bool = True, stderr: bool = True) -> Iterator[None]:
    if os.environ.get("EDGECOMP_DEBUG") == "1":
        yield
        return
    fds = [fd for fd, on in ((1, stdout), (2, stderr)) if on]
    sys.stdout.flush()
    sys.stderr.flush()
    devnull = os.open(os.devnull, os.O_WRONLY)
    saved = {fd: os.dup(fd) for fd in fds}
    try:
        for fd in fds:
            os.dup2(devnull, fd)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)
        os.close(devnull)
