"""TensorRT through onnxruntime's TensorRT provider: the options for ``device="tensorrt"``.

TensorRT builds an engine for the machine it runs on, measuring tactics per shape, which
takes minutes for a BERT-base; the engine and the timing cache are therefore kept in a
cache directory (by default ``trt-cache/`` inside the export directory), keyed by
TensorRT itself on the GPU, the TensorRT version and the model. Shapes come from the
length buckets: one optimization profile per width (rows 1 up to the batch budget), so
every batch the batching rule plans fits a profile and no engine is rebuilt while
serving. fp16 is on (TensorRT keeps layers that need fp32 in fp32).

Pure option building (no onnxruntime import): :mod:`qa_engine.session` resolves the
provider and checks it really runs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from qa_engine.batching import length_buckets, max_rows_for

TENSORRT = "TensorrtExecutionProvider"
CACHE_DIR_NAME = "trt-cache"
# What a missing provider or missing TensorRT libraries need (onnxruntime-gpu ships the
# provider but not TensorRT itself).
INSTALL_HINT = (
    'pip install "qa-engine[gpu]" tensorrt-cu12 (or tensorrt-cu13, matching the CUDA of '
    "your onnxruntime-gpu): onnxruntime-gpu has the TensorRT provider, the tensorrt "
    "packages hold the libnvinfer libraries it loads"
)


def profile_shapes(
    input_names: Sequence[str],
    max_seq_length: int,
    max_windows: int = 32,
    max_tokens: int | None = None,
    widths: Sequence[int] | None = None,
) -> dict[str, str]:
    """``trt_profile_min_shapes`` / ``opt`` / ``max``: one profile per length bucket.

    The profile of width ``w`` covers batches of 1 to ``max_rows_for(w)`` rows and
    ``previous width + 1`` to ``w`` tokens, tuned for the full batch at ``w``.
    """
    widths = tuple(widths or length_buckets(max_seq_length))
    shapes: dict[str, list[str]] = {"min": [], "opt": [], "max": []}
    low = 1
    for width in widths:
        rows = max_rows_for(width, max_windows, max_tokens)
        for name in input_names:
            shapes["min"].append(f"{name}:1x{low}")
            shapes["opt"].append(f"{name}:{rows}x{width}")
            shapes["max"].append(f"{name}:{rows}x{width}")
        low = width + 1
    return {f"trt_profile_{key}_shapes": ",".join(value) for key, value in shapes.items()}


def tensorrt_options(
    cache_dir: str | os.PathLike,
    input_names: Sequence[str],
    max_seq_length: int,
    *,
    device_id: int = 0,
    fp16: bool = True,
    max_windows: int = 32,
    max_tokens: int | None = None,
) -> dict[str, str]:
    """Provider options: fp16, engine and timing caches in ``cache_dir``, bucket profiles.

    Raises:
        ValueError: ``cache_dir`` exists and is not a directory.
    """
    cache = Path(cache_dir)
    if cache.exists() and not cache.is_dir():
        raise ValueError(f"{cache}: the TensorRT cache path is a file, not a directory")
    cache.mkdir(parents=True, exist_ok=True)
    return {
        "device_id": str(device_id),
        "trt_fp16_enable": "True" if fp16 else "False",
        "trt_engine_cache_enable": "True",
        "trt_engine_cache_path": str(cache),
        "trt_timing_cache_enable": "True",
        "trt_timing_cache_path": str(cache),
        **profile_shapes(input_names, max_seq_length, max_windows, max_tokens),
    }


def missing_message(device: str, available: Sequence[str]) -> str:
    """The error for a TensorRT request this onnxruntime build cannot serve."""
    return (
        f"device={device!r} needs {TENSORRT}, but this onnxruntime build offers only "
        f"{list(available)}; {INSTALL_HINT}"
    )


def fallback_message(providers: Sequence[str]) -> str:
    """The error when the provider exists but onnxruntime dropped it (libraries absent)."""
    return (
        f"{TENSORRT} was requested but the session runs on {list(providers)}: onnxruntime "
        "could not load TensorRT (libnvinfer missing, or a version this onnxruntime was "
        f"not built for); {INSTALL_HINT}"
    )
