"""Intel/AMD CPU fast path: onnxruntime's OpenVINO provider and NNCF int8.

- :mod:`~qa_engine.openvino.cpu`: CPU matrix units (AMX, AVX512-BF16, VNNI) from
  ``/proc/cpuinfo``.
- :mod:`~qa_engine.openvino.options`: provider options (``load_config`` JSON, cache dir),
  the ``device="auto"`` rule and the fallback checks ``qa_engine.session`` applies.
- :mod:`~qa_engine.openvino.quantize`: NNCF int8 of an fp32 ONNX graph (needs ``nncf``).
- :mod:`~qa_engine.openvino.kernels`: which kernels OpenVINO runs (needs ``openvino``).

Importing this package imports neither onnxruntime, openvino nor torch, nor the bench:
the plain-OpenVINO bench peer lives in :mod:`qa_engine.bench.openvino_peer` (bench reaches
the runtime and its peers, never the reverse).
"""

from qa_engine.openvino.cpu import cpu_flags, has_amx, has_bf16, int8_unit
from qa_engine.openvino.options import (
    PROVIDER,
    OpenVINOOptions,
    assignment_problem,
    default_cache_dir,
    prefers_openvino,
    summarize_assignment,
)

__all__ = [
    "PROVIDER",
    "OpenVINOOptions",
    "assignment_problem",
    "cpu_flags",
    "default_cache_dir",
    "has_amx",
    "has_bf16",
    "int8_unit",
    "prefers_openvino",
    "summarize_assignment",
]
