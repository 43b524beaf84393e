"""Which matrix units this CPU has, read from ``/proc/cpuinfo`` (no onnxruntime, no torch).

OpenVINO's CPU plugin runs bf16 on AMX (``amx_bf16``, Sapphire Rapids and later Xeons)
or on AVX512-BF16 dot products (``avx512_bf16``: Cooper Lake, AMD Zen 4), and int8 on
AMX (``amx_int8``) or VNNI (``avx512_vnni``). Without either bf16 flag a bf16 hint buys
nothing (OpenVINO emulates or ignores it), so ``device="auto"`` only prefers the
OpenVINO provider on CPUs that have one.
"""

from __future__ import annotations

from qa_engine.cpu import CPUINFO, cpu_flags

__all__ = ["CPUINFO", "cpu_flags", "has_amx", "has_bf16", "int8_unit", "describe"]
AMX_FLAGS = ("amx_bf16", "amx_int8")
BF16_FLAGS = ("amx_bf16", "avx512_bf16")
INT8_FLAGS = ("amx_int8", "avx512_vnni", "avx_vnni")


def _flags(flags: frozenset[str] | set[str] | None) -> frozenset[str]:
    if flags is None:
        return cpu_flags()
    return frozenset(flags)


def has_amx(flags: frozenset[str] | set[str] | None = None) -> bool:
    """Whether the CPU has AMX tiles for bf16 or int8 (Intel Sapphire Rapids and later)."""
    return any(f in _flags(flags) for f in AMX_FLAGS)


def has_bf16(flags: frozenset[str] | set[str] | None = None) -> bool:
    """Whether the CPU computes bf16 natively (AMX-BF16 or AVX512-BF16)."""
    return any(f in _flags(flags) for f in BF16_FLAGS)


def int8_unit(flags: frozenset[str] | set[str] | None = None) -> str | None:
    """The fastest int8 matrix unit: ``"amx"``, ``"avx512_vnni"``, ``"avx_vnni"`` or None."""
    found = _flags(flags)
    if "amx_int8" in found:
        return "amx"
    return next((f for f in INT8_FLAGS[1:] if f in found), None)


def describe(flags: frozenset[str] | set[str] | None = None) -> dict[str, object]:
    """A small summary for benchmark tables and manifests."""
    found = _flags(flags)
    return {
        "amx": has_amx(found),
        "bf16": any(f in found for f in BF16_FLAGS),
        "int8_unit": int8_unit(found),
        "flags": sorted(f for f in found if f in set(AMX_FLAGS + BF16_FLAGS + INT8_FLAGS)),
    }
