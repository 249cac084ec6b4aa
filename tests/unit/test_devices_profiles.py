"""Device profiles: shipped YAMLs, the frozen schema, user profile dirs, `edgecomp devices list/show`."""

from __future__ import annotations

import json

import pytest
import yaml
from pydantic import ValidationError
from typer.testing import CliRunner

from devices.profiles.schema import (
    SHIPPED_DIR,
    ProfileError,
    get_profile,
    load_profile_file,
    load_profiles,
    select_profiles,
)
from toolchain.cli.main import app

SHIPPED = {
    "android-arm64-litert",
    "android-arm64-lowend",
    "edge-arm64-tflite214",
    "armv7-legacy",
    "int8-accelerator",
    "x86-host",
}


def _write(dir_, name, **fields):
    base = get_profile("x86-host").model_dump(mode="json")
    base.update(name=name, **fields)
    path = dir_ / f"{name}.yaml"
    path.write_text(yaml.safe_dump(base))
    return path


def test_shipped_profiles_load_and_match_the_issue():
    profiles = load_profiles()
    assert set(profiles) >= SHIPPED
    a76 = profiles["android-arm64-litert"]
    assert (a76.arch, a76.cpu, a76.runtime, a76.runtime_version) == (
        "aarch64",
        "cortex-a76",
        "litert",
        "2.3.0",
    )
    low = profiles["android-arm64-lowend"]
    assert (low.cpu, low.threads) == ("cortex-a53", 1)
    assert low.budgets.peak_memory_mb < a76.budgets.peak_memory_mb
    assert profiles["edge-arm64-tflite214"].runtime_label == "tflite-runtime 2.14.0"
    assert profiles["armv7-legacy"].arch == "armv7"
    assert profiles["int8-accelerator"].ops.int8_only
    # latency budgets only where latency is measured: on the host
    assert all(p.budgets.latency_ms is None for p in profiles.values() if p.emulated)
    assert profiles["x86-host"].budgets.latency_ms == 5  # the shipped x86-host.yaml budget


def test_profiles_are_frozen():
    prof = get_profile("x86-host")
    with pytest.raises(ValidationError):
        prof.threads = 8


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"threads": 0}, "threads"),
        ({"runtme": "litert"}, "runtme"),
        ({"arch": "aarch64", "cpu": "max"}, "pin a real CPU model"),
        ({"arch": "aarch64", "cpu": "cortex-a53"}, "only x86_64 profiles may set latency_ms"),
        ({"arch": "armv7", "cpu": "cortex-a7", "budgets": {}}, "only tflite-runtime has armv7 wheels"),
        ({"schema_version": 2}, "schema_version 2"),
    ],
)
def test_invalid_profiles_name_the_problem(tmp_path, fields, message):
    path = _write(tmp_path, "bad", **fields)
    with pytest.raises(ProfileError, match=message):
        load_profile_file(path)


def test_user_profiles_from_env_and_flag(tmp_path, monkeypatch):
    env_dir, flag_dir = tmp_path / "env", tmp_path / "flag"
    env_dir.mkdir()
    flag_dir.mkdir()
    _write(env_dir, "my-box", threads=2)
    _write(flag_dir, "my-box", threads=3)  # a later dir overrides
    _write(flag_dir, "x86-host", threads=4)  # and may replace a shipped profile
    monkeypatch.setenv("EDGECOMP_PROFILES", str(env_dir))
    assert get_profile("my-box").threads == 2
    profiles = load_profiles([flag_dir])
    assert profiles["my-box"].threads == 3
    assert profiles["x86-host"].threads == 4
    names = [p.name for p in select_profiles(["all"], [flag_dir])]
    assert names == sorted(names) and "my-box" in names


def test_file_name_must_match_profile_name(tmp_path):
    path = _write(tmp_path, "one")
    path.rename(tmp_path / "two.yaml")
    with pytest.raises(ProfileError, match="named 'one'"):
        load_profiles([tmp_path])


def test_unknown_device_lists_choices():
    with pytest.raises(ProfileError, match="one of: all, android-arm64-litert"):
        select_profiles(["nope"])


def test_cli_list_and_show(tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["devices", "list", "--json"])
    assert res.exit_code == 0, res.output
    assert {p["name"] for p in json.loads(res.stdout)} >= SHIPPED
    _write(tmp_path, "my-box", threads=2)
    res = runner.invoke(app, ["devices", "show", "my-box", "--profiles-dir", str(tmp_path), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["threads"] == 2
    res = runner.invoke(app, ["devices", "show", "nope"])
    assert res.exit_code == 2
    assert "unknown device 'nope'" in res.output


def test_shipped_dir_is_package_data():
    assert (SHIPPED_DIR / "x86-host.yaml").is_file()
