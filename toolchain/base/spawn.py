"""Starting child processes: what must hold around the fork (toolchain/base/child.py)."""

from __future__ import annotations

import contextlib
import resource
import threading
from collections.abc import Iterator

_SPAWN_LOCK = threading.Lock()


@contextlib.contextmanager
def no_core_for_children() -> Iterator[None]:
    """A child started inside writes no core file when it (or QEMU in it) crashes.

    The soft RLIMIT_CORE is lowered to 0 around the spawn and put back after, and the child inherits it. It
    is not a `preexec_fn`: with one, Popen runs Python's at-fork hooks in this process (logging's
    `_releaseLock` among them), and a SIGTERM landing inside a hook became "Exception ignored ... Traceback"
    on stderr, with the Interrupted swallowed and logging's lock possibly left held. Without a preexec_fn
    no Python code runs between the fork and the exec. The lock keeps two threads from saving each
    other's 0 as the value to put back.
    """
    with _SPAWN_LOCK:
        soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
        resource.setrlimit(resource.RLIMIT_CORE, (0, hard))
        try:
            yield
        finally:
            resource.setrlimit(resource.RLIMIT_CORE, (soft, hard))
