"""The host CPU line every speed figure carries (devices/cpuinfo.py): read on this host, and parsed from the
/proc/cpuinfo text of an x86 and an ARM machine."""

from __future__ import annotations

import platform
from pathlib import Path

from devices.cpuinfo import bench_header, host_cpu, parse_cpuinfo

X86 = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512_vnni amx_tile amx_int8

processor\t: 1
model name\t: something else
"""
ARM = """processor\t: 0
BogoMIPS\t: 50.00
Features\t: fp asimd evtstrm aes asimddp sha512 sve i8mm bf16
CPU implementer\t: 0x41
CPU part\t: 0xd0c
"""


def test_x86_flags_that_matter_are_named_in_order_and_the_first_block_wins() -> None:
    model, feats = parse_cpuinfo(X86, "x86_64")
    assert model == "AMD EPYC 7B13"
    assert feats == ["AVX2", "FMA", "AVX-512F", "AVX-512 VNNI", "AMX", "AMX-INT8"]


def test_arm_features_name_dotprod_and_i8mm_and_the_part_when_no_model_name() -> None:
    model, feats = parse_cpuinfo(ARM, "aarch64")
    assert model == "ARM part 0xd0c"
    assert feats == ["NEON", "dotprod", "i8mm", "SVE", "BF16"]


def test_this_host_is_read_from_its_own_cpuinfo() -> None:
    cpu = host_cpu()
    assert cpu.arch == platform.machine()
    proc = Path("/proc/cpuinfo")
    if proc.is_file():
        text = proc.read_text()
        assert cpu.source == "/proc/cpuinfo"
        assert cpu.model in text
        flags = next((ln.split(":", 1)[1].split() for ln in text.splitlines() if ln.startswith("flags")), [])
        assert ("AVX2" in cpu.features) == ("avx2" in flags)
        assert ("AVX-512 VNNI" in cpu.features) == ("avx512_vnni" in flags)
    assert cpu.summary in bench_header()
    assert cpu.to_json()["features"] == cpu.features
