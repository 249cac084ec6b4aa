"""Issue 27: the isolated environments are installed from committed hash locks (pip --require-hashes).

The committed locks must match the pins they were resolved from; an environment installed from a lock
records the lock's sha256 in its marker; a file whose hash does not match the lock is refused (exit 4).
The two installs below are real pip installs of one small wheel from the configured registry.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from toolchain.base import venvs
from toolchain.base.venvs import EnvSetupError, VenvSpec, ensure_venv, python_tag
from toolchain.envlocks import specs

TQDM = "tqdm==4.70.1 --hash=sha256:c293e525e6fef9c20e8728fd4612df02a0aa31bb5fe91ecd93e123b1b7bffa73"


@pytest.mark.parametrize("spec", specs(), ids=lambda s: s.name)
def test_every_environment_has_a_lock_matching_its_pins(spec):
    locks = sorted(venvs.LOCKS_DIR.glob(f"{spec.name}-cp*-*.txt"))
    assert locks, f"no lock for {spec.name}: run `make locks`"
    for lock in locks:  # one per Python version and machine; this machine's is the one spec.lock finds
        tag = lock.name[len(spec.name) + 1 : -len(".txt")]
        header, *rest = lock.read_text().splitlines()
        assert header == f"# {spec.name}: {' '.join(spec.requirements)} resolved for {tag}", lock.name
        pinned = [ln for ln in rest if not ln.startswith("#")]
        assert pinned and all(" --hash=sha256:" in ln and "==" in ln for ln in pinned)
        top = {r.split("==")[0] for r in spec.requirements if "==" in r}
        assert top <= {ln.split("==")[0] for ln in pinned}
    if python_tag() == "cp311-x86_64":  # the Python the committed locks were written for
        assert spec.lock is not None


def _lock(tmp_path, monkeypatch, line: str) -> VenvSpec:
    locks = tmp_path / "locks"
    locks.mkdir(exist_ok=True)
    monkeypatch.setattr(venvs, "LOCKS_DIR", locks)
    spec = VenvSpec("locktest-1", ("tqdm==4.70.1",))
    unlocked_key = spec.key
    (locks / f"locktest-1-{python_tag(spec._base_python())}.txt").write_text(f"# test\n{line}\n")
    assert spec.key != unlocked_key  # a lock (and any change to it) makes a new environment
    return spec


def test_an_environment_is_installed_from_its_lock_and_records_its_digest(tmp_path, monkeypatch):
    spec = _lock(tmp_path, monkeypatch, TQDM)
    env = ensure_venv(spec, tmp_path / "envs")
    marker = json.loads((env.path / venvs.MARKER).read_text())
    assert marker["lock"] == spec.lock.name
    assert env.lock_sha256 == marker["lock_sha256"] == hashlib.sha256(spec.lock.read_bytes()).hexdigest()


def test_a_file_that_does_not_match_the_lock_is_refused(tmp_path, monkeypatch):
    spec = _lock(tmp_path, monkeypatch, TQDM[: -len("f1fa73")] + "000000")
    with pytest.raises(EnvSetupError) as err:
        ensure_venv(spec, tmp_path / "envs")
    assert err.value.exit_code == 4
    assert "tqdm==4.70.1: the registry's file does not match the lock's sha256" in err.value.message
    assert not any((tmp_path / "envs").glob("locktest-1-*"))  # nothing half-installed looks ready
