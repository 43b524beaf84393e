"""PyTorch checkpoint -> plain fp32 ONNX graph, through optimum's exporter.

We load the model ourselves, with eager attention, and hand it to optimum's
``onnx_export_from_model`` (the function ``main_export`` ends in). ``main_export`` has no
way to choose the attention implementation (its ``model_kwargs`` go to ``forward``), and
an SDPA export is a single opaque pattern that ORT's attention fusion does not always
recognise; the eager graph (MatMul, Softmax, MatMul) is the one ORT's BERT fusions are
written for. With torch 2.13 / transformers 4.57 both fuse, but eager is the
version-proof choice and yields the smaller graph.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from qa_engine.extras import require

TASK = "question-answering"
ATTN_IMPLEMENTATION = "eager"


def load_torch_model(model: str, device: str = "cpu") -> Any:
    """Load ``AutoModelForQuestionAnswering`` in eval mode with eager attention, fp32."""
    transformers = require("transformers")
    auto = transformers.AutoModelForQuestionAnswering
    try:
        net = auto.from_pretrained(model, attn_implementation=ATTN_IMPLEMENTATION)
    except (ValueError, TypeError):
        # An architecture without a selectable attention implementation.
        net = auto.from_pretrained(model)
    net.float().eval()
    return net.to(device)


def export_onnx(net: Any, out_dir: Path, *, opset: int | None = None, device: str = "cpu") -> Path:
    """Export a loaded QA model to ``out_dir/model.onnx`` with dynamic batch and sequence axes.

    Args:
        net: A ``*ForQuestionAnswering`` model from :func:`load_torch_model`.
        out_dir: Directory to write ``model.onnx`` and ``config.json`` into.
        opset: ONNX opset, or None for optimum's default for the architecture.
        device: Device to trace on.

    Returns:
        Path of ``model.onnx``.
    """
    exporters = require("optimum.exporters.onnx", "export")
    out_dir.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # Tracer warnings about Python control flow on shapes are expected for BERT.
        warnings.simplefilter("ignore")
        exporters.onnx_export_from_model(
            model=net,
            output=str(out_dir),
            task=TASK,
            opset=opset,
            device=device,
            no_post_process=True,
            # Our own parity check (PyTorch vs every variant, on real windows) replaces
            # optimum's validation on random inputs.
            do_validation=False,
        )
    path = out_dir / "model.onnx"
    if not path.is_file():
        raise RuntimeError(f"optimum did not write {path}")
    check_dynamic_axes(path)
    return path


def check_dynamic_axes(path: Path) -> None:
    """Raise ``RuntimeError`` unless every input and output has symbolic batch/sequence dims."""
    onnx = require("onnx")
    graph = onnx.load(str(path), load_external_data=False).graph
    for value in list(graph.input) + list(graph.output):
        dims = value.type.tensor_type.shape.dim
        static = [i for i, d in enumerate(dims[:2]) if not d.dim_param]
        if len(dims) < 2 or static:
            raise RuntimeError(
                f"{path}: {value.name} has fixed batch/sequence dimensions; the runtime "
                "needs dynamic axes"
            )


def graph_opset(path: Path) -> int | None:
    """The default-domain opset of an ONNX file."""
    onnx = require("onnx")
    model = onnx.load(str(path), load_external_data=False)
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    return None
