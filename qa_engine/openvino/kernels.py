"""Which kernels OpenVINO really runs: a census of the compiled (execution) graph.

After compilation each node of ``compiled.get_runtime_model()`` carries
``layerType`` (``FullyConnected``, ``Subgraph`` for fused attention, ``MVN`` ...),
``primitiveType`` (the kernel: ``brgemm_avx512_amx_i8``, ``jit_avx512_bf16``,
``brgemm_avx512_i8`` ...) and ``runtimePrecision``. Counting the matrix-product layers by
kernel data type answers "is int8 really int8, does it use AMX?"; with ``PERF_COUNT``
the per-layer times say where the milliseconds go.

onnxruntime's OpenVINO provider compiles the same ONNX graph with the same CPU plugin,
so this census (taken with the ``openvino`` package) describes what the provider runs
when both get the same properties; the provider bundles its own OpenVINO build, so
minor versions can differ.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from qa_engine.extras import require

# Layers that do the matrix products (the ones int8/bf16/AMX is about).
MATMUL_LAYERS = (
    "FullyConnected",
    "FullyConnectedQuantizedLegacy",
    "FullyConnectedQuantized",
    "MatMul",
    "ScaledDotProductAttention",
    "ScaledDotProductAttentionWithKVCache",
    "MHA",
    "Convolution",
)
DTYPES = ("i8", "u8", "bf16", "f16", "f32", "i32")


def kernel_dtype(primitive_type: str) -> str:
    """Data type of a kernel name: ``brgemm_avx512_amx_i8`` -> ``i8``; ``?`` if none."""
    tail = primitive_type.lower().rsplit("_", 1)[-1]
    return "int8" if tail in ("i8", "u8") else (tail if tail in DTYPES else "?")


@dataclass
class KernelCensus:
    """Layer and kernel counts of one compiled model.

    Attributes:
        layers: ``"layerType/primitiveType"`` -> count, every layer of the execution graph.
        matmul_dtypes: Kernel data type (``int8``, ``bf16``, ``f32``) -> count, over the
            matrix-product layers only.
        amx_layers: Matrix-product layers whose kernel uses AMX tiles.
        ms_by_kernel: ``"layerType/primitiveType"`` -> ms in the last profiled run
            (wall time: inflated when other processes share the cores).
        properties: The compile properties, as OpenVINO reports them afterwards.
    """

    layers: dict[str, int]
    matmul_dtypes: dict[str, int]
    amx_layers: int
    ms_by_kernel: dict[str, float] = field(default_factory=dict)
    properties: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "matmul_dtypes": self.matmul_dtypes,
            "amx_layers": self.amx_layers,
            "layers": self.layers,
            "ms_by_kernel": {k: round(v, 2) for k, v in self.ms_by_kernel.items()},
            "properties": self.properties,
        }


def _rt(node: Any, key: str) -> str:
    info = node.get_rt_info()
    return str(info[key].astype(str)) if key in info else "?"


def _is_matmul(layer: str, original_names: str) -> bool:
    if layer in MATMUL_LAYERS:
        return True
    # A fused Subgraph is a matrix product when it swallowed a MatMul (attention's
    # Q.K^T and P.V); the other Subgraphs are element-wise chains (GELU, scaling).
    return layer == "Subgraph" and any(
        name.rsplit("/", 1)[-1].startswith("MatMul") for name in original_names.split(",")
    )


def census_of(compiled: Any) -> KernelCensus:
    """Census of an ``openvino.CompiledModel`` that has run at least once.

    Kernels of dynamic-shape models are picked at the first inference; before it the
    execution graph reports ``undef_*`` primitives.
    """
    layers: Counter[str] = Counter()
    dtypes: Counter[str] = Counter()
    amx = 0
    for node in compiled.get_runtime_model().get_ordered_ops():
        layer, kernel = _rt(node, "layerType"), _rt(node, "primitiveType")
        layers[f"{layer}/{kernel}"] += 1
        if _is_matmul(layer, _rt(node, "originalLayersNames")):
            dtypes[kernel_dtype(kernel)] += 1
            amx += "amx" in kernel.lower()
    properties = {}
    for key in ("INFERENCE_PRECISION_HINT", "PERFORMANCE_HINT", "INFERENCE_NUM_THREADS"):
        try:
            properties[key] = str(compiled.get_property(key))
        except RuntimeError:  # a property this plugin version does not report
            continue
    return KernelCensus(dict(layers), dict(dtypes), amx, properties=properties)


def dummy_feeds(compiled: Any, seq_len: int = 384) -> dict[str, np.ndarray]:
    """A ``(1, seq_len)`` batch for every declared input (ones; zeros for segment ids)."""
    feeds = {}
    for port in compiled.inputs:
        name = port.get_any_name()
        fill = 0 if name == "token_type_ids" else 1
        feeds[name] = np.full((1, seq_len), fill, dtype=np.int64)
    return feeds


def kernel_census(
    model_path: str | os.PathLike,
    properties: Mapping[str, str],
    *,
    feeds: Mapping[str, np.ndarray] | None = None,
    runs: int = 3,
) -> KernelCensus:
    """Compile ``model_path`` on the OpenVINO CPU plugin, run it, count what it ran.

    Args:
        model_path: ONNX (or OpenVINO IR) model.
        properties: CPU plugin properties, e.g. ``OpenVINOOptions.core_properties()``.
        feeds: One input batch; a ``(1, 384)`` dummy batch when None.
        runs: Runs (the first ones warm up); the last one's per-kernel times are kept.
    """
    ov = require("openvino", "openvino-tools")
    config = {**properties, "PERF_COUNT": "YES"}
    compiled = ov.Core().compile_model(str(model_path), "CPU", config)
    request = compiled.create_infer_request()
    batch = dict(feeds) if feeds is not None else dummy_feeds(compiled)
    inputs = {port.get_any_name(): batch[port.get_any_name()] for port in compiled.inputs}
    for _ in range(max(1, runs)):
        request.infer(inputs)
    census = census_of(compiled)
    times: Counter[str] = Counter()
    for info in request.profiling_info:
        times[f"{info.node_type}/{info.exec_type}"] += info.real_time.total_seconds() * 1e3
    census.ms_by_kernel = dict(times.most_common())
    return census
