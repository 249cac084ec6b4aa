"""Device profiles: data files (devices/profiles/*.yaml) validated by a frozen, versioned schema.

A profile says how a device runs a model: CPU architecture and model, runtime and its exact version,
threads, XNNPACK on/off, which ops it accepts, and the budgets a model must fit. Users add their own
profiles in a directory named by $EDGECOMP_PROFILES (os.pathsep-separated) or `--profiles-dir`; a user
profile with a shipped profile's name replaces it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from toolchain.base.errors import EdgecompError

SCHEMA_VERSION = 1
SHIPPED_DIR = Path(__file__).parent  # the YAML files beside this schema
PROFILES_ENV = "EDGECOMP_PROFILES"

Arch = Literal["x86_64", "aarch64", "armv7"]
Runtime = Literal["litert", "tflite-runtime"]


class ProfileError(EdgecompError):
    """A device profile is missing or invalid."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Budgets(_Frozen):
    """Limits a model must fit on the device; None means unchecked."""

    model_size_kb: float | None = Field(None, gt=0, description="Size of model.tflite.")
    peak_memory_mb: float | None = Field(
        None, gt=0, description="Peak RSS increase over a bare runtime import (load + allocate + invoke)."
    )
    latency_ms: float | None = Field(
        None, gt=0, description="Median latency per query; measured on the host, so x86_64 profiles only."
    )


class OpPolicy(_Frozen):
    """Which ops the device accepts (e.g. an int8-only accelerator)."""

    allowed: tuple[str, ...] | None = Field(None, description="Builtin op names; None = any builtin.")
    int8_only: bool = Field(False, description="Refuse any op with a float32/float16 input or output.")
    custom_ops: bool = Field(False, description="Accept custom ops.")


class DeviceProfile(_Frozen):
    schema_version: Literal[1] = SCHEMA_VERSION
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    description: str
    arch: Arch
    cpu: str = Field(description="CPU model: QEMU -cpu name for ARM (cortex-a76, ...), 'host' for x86_64.")
    runtime: Runtime
    runtime_version: str = Field(pattern=r"^\d+\.\d+\.\d+$")
    threads: int = Field(1, ge=1, le=16)
    xnnpack: bool = True
    ops: OpPolicy = OpPolicy()
    budgets: Budgets = Budgets()
    timeout_s: float = Field(300.0, gt=0, description="Per-request timeout of the runtime worker.")
    memory_limit_mb: float = Field(4096.0, gt=0, description="The worker is killed above this RSS.")

    @field_validator("cpu")
    @classmethod
    def _no_max_cpu(cls, v: str) -> str:
        if v.split(",")[0] == "max" and "sme=off" not in v:
            raise ValueError("cpu 'max' gives wrong int8 results under QEMU 7.2: pin a real CPU model")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> DeviceProfile:
        if self.arch == "x86_64" and self.cpu != "host":
            raise ValueError("x86_64 profiles run on the host CPU: set cpu: host")
        if self.budgets.latency_ms is not None and self.arch != "x86_64":
            raise ValueError("latency budgets need host timing: only x86_64 profiles may set latency_ms")
        if self.arch == "armv7" and self.runtime != "tflite-runtime":
            raise ValueError("only tflite-runtime has armv7 wheels")
        return self

    @property
    def emulated(self) -> bool:
        return self.arch != "x86_64"

    @property
    def runtime_label(self) -> str:
        return f"{self.runtime} {self.runtime_version}"


def profile_dirs(extra: Iterable[Path] = ()) -> list[Path]:
    """Shipped profiles first, then $EDGECOMP_PROFILES, then explicit dirs (later ones win)."""
    dirs = [SHIPPED_DIR]
    dirs += [Path(p) for p in os.environ.get(PROFILES_ENV, "").split(os.pathsep) if p]
    dirs += [Path(p) for p in extra]
    return dirs


def load_profile_file(path: Path) -> DeviceProfile:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        raise ProfileError(f"cannot read profile {path}: {err.strerror}", hint="check the file") from None
    except UnicodeDecodeError:
        raise ProfileError(f"profile {path} is not UTF-8 text", hint="re-save it as UTF-8") from None
    except (yaml.YAMLError, RecursionError) as err:  # one line: the problem and where, not the parser's dump
        mark = getattr(err, "problem_mark", None)
        problem = getattr(err, "problem", None) or err.__class__.__name__
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ProfileError(
            f"profile {path} is not valid YAML{at}: {problem}",
            hint="fix the YAML; devices/profiles/x86-host.yaml is an example",
        ) from None
    if not isinstance(data, dict):
        raise ProfileError(f"profile {path} is not a mapping", hint="see devices/profiles/x86-host.yaml")
    if data.get("schema_version", SCHEMA_VERSION) != SCHEMA_VERSION:
        raise ProfileError(
            f"profile {path} has schema_version {data.get('schema_version')}, this edgecomp reads "
            f"{SCHEMA_VERSION}",
            hint="update the profile or edgecomp",
        )
    try:
        return DeviceProfile(**data)
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(x) for x in first["loc"]) or "profile"
        raise ProfileError(
            f"profile {path}: {loc}: {first['msg']}",
            hint=f"valid keys: {', '.join(DeviceProfile.model_fields)}",
        ) from None


def load_profiles(extra_dirs: Iterable[Path] = ()) -> dict[str, DeviceProfile]:
    """All profiles by name; a later directory overrides an earlier one with the same name."""
    found: dict[str, DeviceProfile] = {}
    for d in profile_dirs(extra_dirs):
        if not d.is_dir():
            if d != SHIPPED_DIR:
                raise ProfileError(f"profiles directory not found: {d}", hint=f"check ${PROFILES_ENV}")
            continue
        for path in sorted(d.glob("*.yaml")) + sorted(d.glob("*.yml")):
            prof = load_profile_file(path)
            if prof.name != path.stem:
                raise ProfileError(
                    f"profile {path} is named {prof.name!r}", hint=f"name it {path.stem!r} or rename the file"
                )
            found[prof.name] = prof
    return found


def get_profile(name: str, extra_dirs: Iterable[Path] = ()) -> DeviceProfile:
    profiles = load_profiles(extra_dirs)
    if name not in profiles:
        raise ProfileError(f"unknown device {name!r}", hint=f"one of: {', '.join(sorted(profiles))}")
    return profiles[name]


def select_profiles(names: Iterable[str], extra_dirs: Iterable[Path] = ()) -> list[DeviceProfile]:
    """Profiles for `names`; 'all' expands to every known profile (sorted)."""
    profiles = load_profiles(extra_dirs)
    out: list[DeviceProfile] = []
    for name in names:
        if name == "all":
            out += [p for _, p in sorted(profiles.items()) if p not in out]
        elif name not in profiles:
            raise ProfileError(f"unknown device {name!r}", hint=f"one of: all, {', '.join(sorted(profiles))}")
        elif profiles[name] not in out:
            out.append(profiles[name])
    return out
