"""What this CPU is, read from ``/proc/cpuinfo``: model name and feature flags.

One reader for the three places that need it: the OpenVINO precision rules, the int8
quantization preset and the benchmark environment record. Off Linux (no such file) the
flags are empty, so nothing is assumed.
"""

from __future__ import annotations

import platform
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")


def read_cpuinfo() -> str:
    """The contents of ``/proc/cpuinfo``, or ``""`` where there is none."""
    try:
        return CPUINFO.read_text(errors="replace")
    except OSError:
        return ""


def cpu_flags(cpuinfo: str | None = None) -> frozenset[str]:
    """The feature flags of the first CPU (``cpuinfo``: the file's text; None reads it)."""
    text = read_cpuinfo() if cpuinfo is None else cpuinfo
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def cpu_model(cpuinfo: str | None = None) -> str:
    """The CPU's model name (``platform``'s answer where ``/proc/cpuinfo`` has none)."""
    text = read_cpuinfo() if cpuinfo is None else cpuinfo
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and value.strip():
            return value.strip()
    return platform.processor() or platform.machine()
