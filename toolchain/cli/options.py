"""Options several commands share, with one meaning and one help text each.

`--device NAME` picks a device profile (`edgecomp devices list`: the shipped ones, $EDGECOMP_PROFILES, or
validate's --profiles-dir): its runtime and version, threads, XNNPACK setting and budgets. Where it runs is
the same rule in every command: correctness is checked in the device's own CPU (validate, and search's
check of its Pareto front: emulated with QEMU when the device is not x86_64); time is measured on this
machine's CPU with the device's runtime and threads (profile, search's latency), because emulated time is
10-400x off and not proportional.
"""

from __future__ import annotations

PROFILES_DIR_HELP = "Extra directory of profile YAMLs (also: $EDGECOMP_PROFILES)."
DEVICE_HELP = (
    "Device profile (edgecomp devices list): its runtime, threads and budgets; parity runs in its "
    "(emulated) CPU, timing on this machine's CPU."
)


def complete_device(incomplete: str) -> list[str]:
    """Shell completion of --device: the profile names (shipped and $EDGECOMP_PROFILES)."""
    from devices.profiles.schema import load_profiles  # at completion time only: --help stays instant

    try:
        names = list(load_profiles())
    except Exception:  # a broken profile must not break the user's shell: no suggestions then
        return []
    return [n for n in names if n.startswith(incomplete)]
