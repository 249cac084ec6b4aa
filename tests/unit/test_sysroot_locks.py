"""Issue 27: the ARM sysroots are installed from committed locks, like the x86 environments.

The wheels from `sysroot-<arch>-<runtime>-<version>-cp311.txt` with `pip --require-hashes`, the Debian
packages at the versions of `debian-bookworm-<arch>.txt` with each .deb checked against its sha256. The
refusals below are real: pip downloads one small wheel for aarch64 from the configured registry, and
mmdebstrap one small Debian package from the mirror.
"""

from __future__ import annotations

import hashlib

import pytest

from devices import sysroot
from devices.sysroot import ARCHES, SUITE, SysrootSpec, downloaded_debs, read_debian_lock
from toolchain.base.venvs import EnvSetupError
from toolchain.envlocks import Target, sysroot_specs, unmet

TQDM = "tqdm==4.70.1 --hash=sha256:c293e525e6fef9c20e8728fd4612df02a0aa31bb5fe91ecd93e123b1b7bffa73"


@pytest.mark.parametrize("spec", sysroot_specs(), ids=lambda s: s.lock_name)
def test_every_shipped_sysroot_has_locks_matching_its_pins(spec):
    wheels, debian = spec.wheel_lock, spec.debian_lock
    assert wheels is not None and debian is not None, "run `make locks`"
    machine = "armv7l" if spec.arch == "armv7" else spec.arch
    header, *rest = wheels.read_text().splitlines()
    assert header == f"# {spec.lock_name}: {' '.join(spec.requirements)} resolved for cp311-{machine}"
    pinned = [ln for ln in rest if not ln.startswith("#")]
    assert pinned and all("==" in ln and " --hash=sha256:" in ln for ln in pinned)
    assert {r.split("==")[0] for r in spec.requirements if "==" in r} <= {ln.split("==")[0] for ln in pinned}
    packages = " ".join(spec.info.packages)
    assert debian.read_text().startswith(f"# debian-{SUITE}-{spec.info.debian}: {packages} from ")
    pins = read_debian_lock(debian)
    assert set(spec.info.packages) <= set(pins)  # and their dependencies
    assert all(version and len(digest) == 64 for version, digest in pins.values())


def test_a_sysroot_is_keyed_on_its_locks(tmp_path, monkeypatch):
    spec = SysrootSpec("aarch64", "litert", "2.3.0")
    locked = spec.key
    monkeypatch.setattr(sysroot, "LOCKS_DIR", tmp_path)
    assert spec.wheel_lock is None and spec.debian_lock is None
    assert spec.key != locked  # without locks: the key sysroots had before locks
    (tmp_path / f"{spec.lock_name}-cp311.txt").write_text(f"# test\n{TQDM}\n")
    assert spec.key not in (locked, SysrootSpec("aarch64", "litert", "9.9.9").key)


def test_downloaded_debs_are_read_with_their_epochs_and_removed(tmp_path):
    debs = tmp_path / sysroot.DEBS
    debs.mkdir(parents=True)
    (debs / "zlib1g_1%3a1.2.13.dfsg-1_arm64.deb").write_bytes(b"zlib")
    (debs / "media-types_10.0.0_all.deb").write_bytes(b"types")
    (debs / "lock").write_text("")
    assert downloaded_debs(tmp_path) == {
        "zlib1g": ("1:1.2.13.dfsg-1", hashlib.sha256(b"zlib").hexdigest()),
        "media-types": ("10.0.0", hashlib.sha256(b"types").hexdigest()),
    }
    assert [p.name for p in debs.iterdir()] == ["lock"]


def test_a_dependency_whose_marker_holds_on_the_target_must_be_in_the_lock():
    def item(name, *requires):
        return {"metadata": {"name": name, "version": "1", "requires_dist": list(requires)}}

    install = [item("a", "b>=1", 'tomli; python_version < "3.11"', 'c; extra == "x"'), item("b")]
    assert unmet(install, Target("3.11", "x86_64", ())) == []
    assert unmet(install, Target("3.10", "x86_64", ())) == ['a needs tomli; python_version < "3.11"']


def test_an_arm_wheel_that_does_not_match_the_lock_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(sysroot, "LOCKS_DIR", tmp_path)
    spec = SysrootSpec("aarch64", "litert", "9.9.9")
    (tmp_path / f"{spec.lock_name}-cp311.txt").write_text(f"# test\n{TQDM[:-6]}000000\n")
    with pytest.raises(EnvSetupError) as err:
        sysroot._install_wheels(spec, tmp_path / "stage")
    assert err.value.exit_code == 4
    assert "tqdm==4.70.1: the registry's file does not match the lock's sha256" in err.value.message


@pytest.mark.qemu  # needs mmdebstrap (make system-deps) and the Debian mirror
def test_a_debian_package_that_is_not_the_locked_one_is_refused(tmp_path, monkeypatch):
    version = read_debian_lock(SysrootSpec("aarch64", "litert", "2.3.0").debian_lock)["media-types"][0]
    monkeypatch.setattr(sysroot, "LOCKS_DIR", tmp_path)
    spec = SysrootSpec("aarch64", "litert", "9.9.9")
    lock = tmp_path / f"debian-{SUITE}-{ARCHES['aarch64'].debian}.txt"
    lock.write_text(f"# test\nmedia-types={version} sha256={'0' * 64}\n")  # an arch-all package, no deps
    with pytest.raises(EnvSetupError) as err:
        sysroot._debootstrap(spec, tmp_path / "wrong-sha")
    assert f"Debian package media-types {version}" in err.value.message
    assert "is not the one debian-bookworm-arm64.txt pins" in err.value.message
