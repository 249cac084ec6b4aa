"""Write the hash locks of edgecomp's isolated environments: `python -m toolchain.envlocks` (`make locks`).

For each environment (the device runtimes of toolchain/base/venvs.py, MediaPipe of converters/metadata.py,
the LiteRT Quantizer of converters/int4.py)
pip resolves the top-level pins in a throwaway venv of this Python, without installing anything
(`pip install --dry-run --ignore-installed --report`), and the lock lists every package it would install
with the sha256 of the exact file (`name==version --hash=sha256:...`). toolchain/base/venvs.py installs
from it with `--require-hashes --no-deps`. A lock is for one Python version and machine (wheels differ);
run this once per supported Python to add theirs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from converters.int4 import quantizer_spec
from converters.metadata import mediapipe_spec
from toolchain.base.errors import EdgecompError
from toolchain.base.venvs import LOCKS_DIR, RUNTIME_REQUIREMENTS, VenvSpec, python_tag, runtime_venv_spec

RUNTIME_VERSIONS = {"litert": ("2.3.0",), "tflite-runtime": ("2.14.0",)}  # the shipped profiles' runtimes


def specs() -> list[VenvSpec]:
    runtimes = [runtime_venv_spec(r, v) for r in RUNTIME_REQUIREMENTS for v in RUNTIME_VERSIONS.get(r, ())]
    return [*runtimes, mediapipe_spec(), quantizer_spec()]


def resolve(spec: VenvSpec, python: str) -> str:
    """The lock text of `spec`: pip's resolution of its pins, one hashed line per package."""
    with tempfile.TemporaryDirectory(prefix="edgecomp-lock-") as tmp:
        subprocess.run([python, "-m", "venv", f"{tmp}/v"], check=True)
        report = Path(tmp) / "report.json"
        pip = [f"{tmp}/v/bin/python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        cmd = [*pip, "--dry-run", "--ignore-installed", "--report", str(report), *spec.requirements]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise EdgecompError(f"resolving {spec.name} failed: {tail}", hint="check the package registry")
        install = json.loads(report.read_text())["install"]
    lines = [f"# {spec.name}: {' '.join(spec.requirements)} resolved for {python_tag(python)}"]
    lines.append("# written by `python -m toolchain.envlocks`; installed with pip --require-hashes --no-deps")
    for item in sorted(install, key=lambda i: i["metadata"]["name"].lower()):
        digest = item["download_info"].get("archive_info", {}).get("hashes", {}).get("sha256")
        name, version = item["metadata"]["name"], item["metadata"]["version"]
        if not digest:
            raise EdgecompError(f"{name} {version}: the registry gave no sha256", hint="use an index")
        lines.append(f"{name}=={version} --hash=sha256:{digest}")
    return "\n".join(lines) + "\n"


def main() -> None:
    python = getattr(sys, "_base_executable", sys.executable)
    LOCKS_DIR.mkdir(exist_ok=True)
    for spec in specs():
        path = LOCKS_DIR / f"{spec.name}-{python_tag(python)}.txt"
        path.write_text(resolve(spec, python))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
