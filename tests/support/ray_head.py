"""A real local Ray head for a test, owned by one child process: started by `ray.init` there, stopped by
`ray.shutdown` there, so only the processes of this head are ever stopped (`ray stop` would stop every Ray
on the machine). The temp dir is short: Ray's socket paths must fit in 107 characters."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator

HEAD = """
import sys, ray
ctx = ray.init(num_cpus=2, include_dashboard=False, _temp_dir=sys.argv[1],
               _node_ip_address="127.0.0.1", logging_level="ERROR")
print(ctx.address_info["gcs_address"], flush=True)
sys.stdin.readline()
ray.shutdown()
"""


@contextlib.contextmanager
def ray_head() -> Iterator[tuple[str, dict[str, str]]]:
    """Yield the head's GCS address (host:port) for `--ray-address` and the environment a client needs.

    Ray 2.60 turns token authentication on for a new local cluster and would write the token to
    ~/.ray/auth_token; the head gets its token from the environment instead, so nothing outside the temp
    dir is written, and a client connects with the same two variables."""
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    proc = subprocess.Popen(
        [sys.executable, "-c", HEAD, temp],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, **auth},
    )
    try:
        address = proc.stdout.readline().strip()
        assert address, "the Ray head did not start"
        yield address, auth
    finally:
        proc.stdin.write("\n")
        proc.stdin.close()
        proc.wait(timeout=120)
        shutil.rmtree(temp, ignore_errors=True)
