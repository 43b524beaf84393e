"""int8 for OpenVINO: NNCF post-training quantization of the fp32 ONNX graph.

NNCF writes QuantizeLinear/DequantizeLinear pairs where OpenVINO's CPU plugin fuses them
into int8 kernels: every weight MatMul (``FullyConnected`` on ``brgemm_*_i8``, AMX
tiles on CPUs with ``amx_int8``, VNNI otherwise) *and* both attention MatMuls (the
fused attention ``Subgraph`` runs ``jit_*_i8``). onnxruntime's ``quantize_static`` QDQ
leaves the attention MatMuls in float, and its dynamic int8 ops (MatMulInteger,
QAttention) are not OpenVINO kernels at all, which is why they do not speed up there.

``model_type=TRANSFORMER`` keeps LayerNorm, Softmax, GELU and residual Adds in float
(bf16 under the bf16 hint) and applies SmoothQuant to the MatMuls whose activations
have outliers; the ``mixed`` preset gives symmetric weights and asymmetric activations
(the ones after GELU are all positive). The graph stays a plain ONNX model: onnxruntime's
CPU provider runs it too (slower), so parity and F1 can be checked anywhere.

Needs ``nncf`` and ``onnx`` (plus onnxruntime of any flavour for calibration); no torch.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qa_engine.extras import require

PRESETS = ("mixed", "performance")
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def nncf_int8(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    feeds: Sequence[Mapping[str, np.ndarray]],
    *,
    preset: str = "mixed",
    fast_bias_correction: bool = True,
    ignored_nodes: Sequence[str] = (),
) -> dict[str, Any]:
    """Quantize ``src`` to int8 QDQ with NNCF, calibrated on ``feeds``; write ``dst``.

    Args:
        src: fp32 ONNX graph, as exported (not optimised by onnxruntime: its fused
            contrib ops are neither quantizable by NNCF nor runnable by OpenVINO).
        dst: Output path (``model.onnx`` of the int8 export dir).
        feeds: Calibration inputs, one window each (batch 1, unpadded), real SQuAD
            windows. All of them are used (NNCF's ``subset_size``).
        preset: ``mixed`` (asymmetric activations, the accurate choice for GELU
            outputs) or ``performance`` (all symmetric).
        fast_bias_correction: NNCF's cheap bias correction (the slow one needs many
            more passes for little gain on BERT).
        ignored_nodes: ONNX node names to keep in float (e.g. the QA head, if F1 asks).

    Returns:
        The settings used, for the manifest's ``extra``, with QDQ node counts.

    Raises:
        ValueError: No feeds, or an unknown preset.
        FileNotFoundError: ``src`` is missing.
    """
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {PRESETS}, got {preset!r}")
    if not feeds:
        raise ValueError("NNCF quantization needs at least one calibration window")
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise FileNotFoundError(f"{src}: ONNX model not found")
    onnx = require("onnx", "export")
    nncf = require("nncf", "openvino-tools")

    model = onnx.load(str(src))
    declared = [i.name for i in model.graph.input]
    samples = [{name: np.asarray(feed[name]) for name in declared} for feed in feeds]
    quantized = nncf.quantize(
        model,
        nncf.Dataset(samples),
        preset=getattr(nncf.QuantizationPreset, preset.upper()),
        target_device=nncf.TargetDevice.CPU,
        subset_size=len(samples),
        fast_bias_correction=fast_bias_correction,
        model_type=nncf.ModelType.TRANSFORMER,
        ignored_scope=nncf.IgnoredScope(names=list(ignored_nodes)) if ignored_nodes else None,
    )
    dst.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(quantized, str(dst))
    ops = Counter(node.op_type for node in quantized.graph.node)
    return {
        "method": "nncf-ptq",
        "nncf_version": nncf.__version__,
        "preset": preset,
        "model_type": "transformer",
        "target_device": "CPU",
        "fast_bias_correction": fast_bias_correction,
        "calibration_windows": len(samples),
        "ignored_nodes": list(ignored_nodes),
        "quantize_linear": ops.get("QuantizeLinear", 0),
        "dequantize_linear": ops.get("DequantizeLinear", 0),
        "matmul": ops.get("MatMul", 0),
    }


def squad_feeds(
    tokenizer_json: str | os.PathLike,
    squad_file: str | os.PathLike,
    *,
    max_seq_length: int,
    doc_stride: int,
    count: int,
    start: int = 0,
) -> list[dict[str, np.ndarray]]:
    """Batch-1 calibration feeds from a SQuAD file, tokenised by the runtime tokenizer.

    The export stage has its own windows (built with the fine-tune tokenizer); this
    torch-free variant serves the probe script and the OpenVINO-only environment.

    Args:
        tokenizer_json: ``tokenizer.json`` of the export dir.
        squad_file: SQuAD v1.1/v2.0 JSON (``.gz`` allowed).
        max_seq_length: Window length.
        doc_stride: Window overlap.
        count: Windows wanted (the first window of each question).
        start: Index of the first question used.
    """
    from qa_engine.data import load_squad
    from qa_engine.tokenization import QATokenizer

    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    tokenizer = QATokenizer.from_file(tokenizer_json, max_seq_length, doc_stride)
    examples = load_squad(squad_file).examples[start : start + count]
    if not examples:
        raise ValueError(f"{squad_file}: no question at index {start} or later")
    windows = tokenizer.encode_batch([e.question for e in examples], [e.context for e in examples])
    feeds = []
    for first, *_ in windows:
        ids = first.input_ids[None]  # (1, seq)
        feeds.append(
            {
                "input_ids": ids,
                "attention_mask": np.ones_like(ids),
                "token_type_ids": first.type_ids[None],
            }
        )
    return feeds
