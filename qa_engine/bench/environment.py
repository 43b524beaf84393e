"""What the numbers were measured on: CPU model and flags, cores, GPU, library versions."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from qa_engine.cpu import CPUINFO, cpu_flags, cpu_model

# CPU flags that decide which kernels ONNX Runtime and PyTorch can use.
INTERESTING_FLAGS = (
    "avx2",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
    "amx_fp16",
)
BF16_FLAGS = ("amx_bf16", "avx512_bf16")

# Distributions whose versions go into the results (missing ones are recorded as None).
LIBRARIES = (
    "qa-engine",
    "numpy",
    "tokenizers",
    "onnxruntime",
    "onnxruntime-gpu",
    "onnxruntime-openvino",
    "onnx",
    "torch",
    "transformers",
    "optimum",
    "optimum-onnx",
)


def cpu_info(cpuinfo: Path = CPUINFO) -> dict[str, Any]:
    """CPU model name and the flags that matter here (``platform`` off Linux)."""
    text = cpuinfo.read_text(errors="replace") if cpuinfo.is_file() else ""
    flags = cpu_flags(text)
    return {
        "model": cpu_model(text),
        "flags": [f for f in INTERESTING_FLAGS if f in flags],
        "has_bf16": any(f in flags for f in BF16_FLAGS),
    }


def cpu_has_bf16() -> bool:
    """True when the CPU has AMX-BF16 or AVX512-BF16 (bf16 autocast is worth trying)."""
    return bool(cpu_info()["has_bf16"])


def _physical_cores() -> int | None:
    try:
        import psutil
    except ImportError:
        return None
    return psutil.cpu_count(logical=False)


def _gpus() -> list[dict[str, str]]:
    """GPUs seen by nvidia-smi (name, memory, driver); empty without one."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(
            [
                "nvidia-smi",
                "--query-gpu=name,memory.total,driver_version",
                "--format=csv,noheader",
            ],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = []
    for line in out.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 3:
            gpus.append({"name": parts[0], "memory": parts[1], "driver": parts[2]})
    return gpus


def library_versions() -> dict[str, str | None]:
    """Installed versions of the libraries in :data:`LIBRARIES`."""
    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _ort_providers() -> list[str]:
    try:
        import onnxruntime
    except ImportError:
        return []
    return list(onnxruntime.get_available_providers())


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask; all logical cores elsewhere)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def collect_environment(threads: int | None = None) -> dict[str, Any]:
    """Everything about the machine and software that the results depend on.

    Args:
        threads: The ``--threads`` the runners were given (None: library defaults).
    """
    return {
        "cpu": cpu_info(),
        "logical_cores": os.cpu_count(),
        "usable_cores": usable_cores(),
        "physical_cores": _physical_cores(),
        "threads": threads,
        "gpus": _gpus(),
        "onnxruntime_providers": _ort_providers(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "libraries": library_versions(),
    }
