"""Graph optimisation with optimum's ORTOptimizer presets, and proof that fusion happened.

O1 is ORT's basic graph rewrites; O2 adds the transformer fusions (Attention,
SkipLayerNormalization, EmbedLayerNormalization, BiasGelu); O3 also approximates GELU
(FastGelu); O4 is O3 in fp16 for CUDA. A level that silently fuses nothing is the
classic failure (an exported graph the fusion patterns do not match), so the result is
counted and the counts are recorded in the manifest.
"""

from __future__ import annotations

import collections
import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

from qa_engine.extras import require

# Operators that only exist in a graph ORT's transformer optimiser has fused.
FUSED_OP_TYPES = (
    "Attention",
    "MultiHeadAttention",
    "QAttention",
    "SkipLayerNormalization",
    "EmbedLayerNormalization",
    "QEmbedLayerNormalization",
    "BiasGelu",
    "FastGelu",
    "Gelu",
    "BiasAdd",
)
# Always reported, zero included, so that "no attention fusion" is visible at a glance.
KEY_FUSED_OPS = ("Attention", "SkipLayerNormalization", "EmbedLayerNormalization")
# A level that fuses transformer blocks must produce these.
EXPECTED_AT = {"O2": ("Attention", "SkipLayerNormalization")}
EXPECTED_AT["O3"] = EXPECTED_AT["O4"] = EXPECTED_AT["O2"]


@contextlib.contextmanager
def quiet_logs(level: int = logging.ERROR) -> Iterator[None]:
    """Silence the root/optimum/onnxruntime loggers (quantizers log every skipped tensor)."""
    names = ("", "optimum", "onnxruntime", "transformers")
    loggers = [logging.getLogger(name) for name in names]
    saved = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(level)
    try:
        yield
    finally:
        for lg, old in zip(loggers, saved, strict=True):
            lg.setLevel(old)


def optimize_graph(model_dir: Path, out_dir: Path, level: str, *, for_gpu: bool = False) -> Path:
    """Run the ORTOptimizer preset ``level`` (O1-O4) on ``model_dir/model.onnx``.

    EmbedLayerNormalization fusion is turned on (optimum's presets leave it off): it folds
    the three embedding lookups, their sum and the LayerNorm into one kernel, and the
    parity check against PyTorch (on right-padded batches) verifies the result.

    Args:
        model_dir: Dir holding ``model.onnx`` and ``config.json`` (an optimum export).
        out_dir: Where to write the optimised graph.
        level: "O1", "O2", "O3" or "O4".
        for_gpu: Optimise for CUDA (O4 always is).

    Returns:
        Path of the optimised ``.onnx`` file.
    """
    ort = require("optimum.onnxruntime", "export")
    if level not in ("O1", "O2", "O3", "O4"):
        raise ValueError(f"level must be one of ('O1', 'O2', 'O3', 'O4'), got {level!r}")
    config = ort.AutoOptimizationConfig.with_optimization_level(
        level, for_gpu=for_gpu or level == "O4", disable_embed_layer_norm_fusion=False
    )
    # CRITICAL: on a CPU-only machine O4 logs an *error* that there is no GPU to optimise
    # on; the offline fusion and fp16 conversion still happen, and are verified after.
    with quiet_logs(logging.CRITICAL):
        optimizer = ort.ORTOptimizer.from_pretrained(model_dir, file_names=["model.onnx"])
        optimizer.optimize(config, out_dir, file_suffix="optimized")
    path = out_dir / "model_optimized.onnx"
    if not path.is_file():
        raise RuntimeError(f"ORTOptimizer did not write {path}")
    return path


def op_counts(path: Path) -> collections.Counter[str]:
    """Count the nodes of each operator type in an ONNX file."""
    onnx = require("onnx")
    graph = onnx.load(str(path), load_external_data=False).graph
    return collections.Counter(node.op_type for node in graph.node)


def count_fused_ops(path: Path) -> dict[str, int]:
    """Fused-operator counts of an ONNX file: the key ones always, others when present."""
    counts = op_counts(path)
    fused = {name: counts.get(name, 0) for name in KEY_FUSED_OPS}
    fused.update({name: counts[name] for name in FUSED_OP_TYPES if counts.get(name)})
    return dict(sorted(fused.items()))


# Operators that take activation scales over the whole input tensor (dynamic int8): a
# window's result then depends on what else is in its batch, padding included.
BATCH_DEPENDENT_OPS = ("DynamicQuantizeLinear", "DynamicQuantizeMatMul")


def batch_invariant(path: Path) -> bool:
    """Whether no operator of the graph mixes statistics across the rows of a batch."""
    counts = op_counts(path)
    return not any(counts.get(op) for op in BATCH_DEPENDENT_OPS)


def check_fusion(level: str, fused: dict[str, int], num_layers: int | None) -> list[str]:
    """Warnings for a level whose expected fusions are missing or partial.

    Args:
        level: The optimisation level that produced ``fused``.
        fused: Output of :func:`count_fused_ops` (an int8 QAttention counts as Attention).
        num_layers: Encoder layers; each should have one attention and two skip-LayerNorms.

    Returns:
        Human-readable problems, empty when fusion is complete.
    """
    problems = []
    expected_per_layer = {"Attention": 1, "SkipLayerNormalization": 2}
    for name in EXPECTED_AT.get(level, ()):
        found = fused.get(name, 0) + (fused.get("QAttention", 0) if name == "Attention" else 0)
        want = expected_per_layer[name] * num_layers if num_layers else 1
        if found < want:
            problems.append(
                f"{level}: {found} {name} node(s), expected {want}; the exported graph "
                "defeated part of ORT's fusion (inference will be slower than it should be)"
            )
    return problems
