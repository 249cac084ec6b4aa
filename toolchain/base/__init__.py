"""The bottom layer: errors, atomic writes, progress, quiet native output, the TF env, isolated envs, and the
child-process protocol (child.py on the host, wire/edgecomp_wire.py inside every child).

Imports nothing of edgecomp's outside this package; converters/, devices/ and the pipeline build on it.
"""

import os as _os

# The environment edgecomp was started with, before any library was imported. In-process libraries change
# os.environ as they load (OpenCV's wheel, pulled in with the converters, prepends its own lib64 folder to
# LD_LIBRARY_PATH); a child process in another environment must not inherit that (a LiteRT child crashed
# with SIGSEGV loading the toolchain venv's libraries). toolchain/base/child.py restores these from here.
STARTUP_ENV: dict[str, str] = dict(_os.environ)
