"""Building the requested variants from the verified fp32 graph.

Each builder writes one graph into the work dir and returns it verified against
PyTorch. int8 is built both per-tensor and per-channel: per-channel is kept unless it
costs accuracy on the parity set (``--quantize auto`` keeps both in its table).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qa_engine.export import features, fusion, quantize
from qa_engine.export.options import ExportOptions
from qa_engine.export.variants import Variant, prefer_per_channel, select_int8
from qa_engine.export.verifier import Verifier
from qa_engine.extras import require


@dataclass
class BuildContext:
    """What every builder needs.

    Attributes:
        options: The export options.
        base: The verified fp32 variant (at the requested level; O3 when O4 was asked).
        raw_dir: Dir of the unoptimised export (model.onnx + config.json).
        work: Scratch dir for the variants.
        tokenizer: The fast tokenizer (for calibration windows).
        verifier: PyTorch reference and checks.
        max_seq_length: Window length.
        doc_stride: Window overlap.
        log: Progress output.
    """

    options: ExportOptions
    base: Variant
    raw_dir: Path
    work: Path
    tokenizer: Any
    verifier: Verifier
    max_seq_length: int
    doc_stride: int
    log: Callable[[str], None]


def graph_inputs(path: Path) -> list[str]:
    """Names of the inputs an ONNX graph declares (initializers excluded)."""
    onnx = require("onnx")
    graph = onnx.load(str(path), load_external_data=False).graph
    initializers = {i.name for i in graph.initializer}
    return [i.name for i in graph.input if i.name not in initializers]


def build_fp16(ctx: BuildContext) -> Variant:
    """O4 (ORTOptimizer's fp16 preset) when asked for, else fp16 conversion of the base."""
    if ctx.options.optimize == "O4":
        if ctx.options.device != "cuda":
            ctx.log("Optimizing at O4 (fp16 for CUDA; verified here on CPU, where it is slow)")
        else:
            ctx.log("Optimizing at O4 (fp16, CUDA)")
        path = fusion.optimize_graph(ctx.raw_dir, ctx.work / "O4", "O4", for_gpu=True)
        settings = {"method": "ORTOptimizer O4", "keep_io_types": True}
        return Variant("fp16-O4", path, "fp16", "O4", settings)
    ctx.log(f"Converting {ctx.base.name} to fp16")
    path = ctx.work / f"fp16-{ctx.base.optimization}.onnx"
    settings = quantize.to_fp16(ctx.base.path, path)
    return Variant(f"fp16-{ctx.base.optimization}", path, "fp16", ctx.base.optimization, settings)


def build_int8_dynamic(ctx: BuildContext, *, per_channel: bool) -> Variant:
    """Dynamic int8 with the preset fitting this CPU."""
    preset = quantize.cpu_preset()
    name = f"int8-dynamic-{'per-channel' if per_channel else 'per-tensor'}"
    ctx.log(f"Quantizing {name} (preset {preset})")
    path = ctx.work / f"{name}.onnx"
    settings = quantize.dynamic_int8(ctx.base.path, path, per_channel=per_channel, preset=preset)
    return Variant(name, path, "int8-dynamic", ctx.base.optimization, settings)


def build_int8_mixed(ctx: BuildContext) -> Variant:
    """Dynamic int8 with block-wise int8 FFN outputs: the accuracy-aware int8 candidate."""
    preset = quantize.cpu_preset()
    name = "int8-dynamic-mixed"
    ctx.log(f"Quantizing {name} (preset {preset}; FFN outputs block-wise int8)")
    path = ctx.work / f"{name}.onnx"
    settings = quantize.mixed_int8(ctx.base.path, path, preset=preset)
    return Variant(name, path, "int8-dynamic", ctx.base.optimization, settings)


def calibration_feeds(ctx: BuildContext) -> list[dict]:
    """Batch-1 windows of the calibration questions (those after the parity questions)."""
    options = ctx.options
    if options.calibration_file is None:
        raise ValueError("static int8 needs --calibration-file")
    examples, _, total = features.load_examples(
        options.calibration_file, options.parity_samples, options.calibration_samples
    )
    if options.parity_samples + options.calibration_samples > total:
        ctx.log(
            f"note: {options.calibration_file} has {total} usable questions; calibration "
            "questions overlap the parity questions"
        )
    windows = features.build_windows(ctx.tokenizer, examples, ctx.max_seq_length, ctx.doc_stride)
    limit = options.calibration_samples  # one window per calibration question
    return features.calibration_feeds(windows, graph_inputs(ctx.base.path), limit)


def build_int8_static(ctx: BuildContext, feeds: list[dict], *, per_channel: bool) -> Variant:
    """QDQ static int8 calibrated on real SQuAD windows."""
    name = f"int8-static-{'per-channel' if per_channel else 'per-tensor'}"
    ctx.log(f"Quantizing {name} (calibrating on {len(feeds)} windows)")
    path = ctx.work / f"{name}.onnx"
    settings = quantize.static_int8(ctx.base.path, path, feeds, per_channel=per_channel)
    return Variant(name, path, "int8-static", ctx.base.optimization, settings)


def build_int8_openvino(ctx: BuildContext, feeds: list[dict]) -> Variant:
    """NNCF int8 of the *unoptimised* graph, for OpenVINO's int8 kernels (attention too).

    ORT-fused graphs hold contrib operators that NNCF cannot quantize and OpenVINO cannot
    run, so this variant starts from the raw export whatever ``--optimize`` says.
    """
    from qa_engine.openvino.quantize import nncf_int8

    ctx.log(f"Quantizing int8-openvino (NNCF, calibrating on {len(feeds)} windows)")
    path = ctx.work / "int8-openvino.onnx"
    settings = nncf_int8(ctx.raw_dir / "model.onnx", path, feeds)
    return Variant("int8-openvino", path, "int8-openvino", "none", settings)


def build_int8_nncf(ctx: BuildContext, feeds: list[dict]) -> Variant:
    """NNCF static int8 of the *unoptimised* graph with uint8 activations: batch-invariant,
    and int8 on onnxruntime's CPU provider as well as on OpenVINO."""
    from qa_engine.export.nncf_cpu import nncf_int8_cpu

    ctx.log(f"Quantizing int8-nncf (NNCF, uint8 activations, calibrating on {len(feeds)} windows)")
    path = ctx.work / "int8-nncf.onnx"
    settings = nncf_int8_cpu(ctx.raw_dir / "model.onnx", path, feeds)
    return Variant("int8-nncf", path, "int8-static", "none", settings)


def build_variants(ctx: BuildContext) -> tuple[list[Variant], Variant | None]:
    """Build and verify the variants beyond the fp32 base.

    Returns:
        Every variant built (for the comparison table) and the one the requested mode
        keeps (None: the fp32 base; with ``auto`` the caller chooses among all).
    """
    mode, device = ctx.options.quantize, ctx.options.device
    verify = ctx.verifier.verify
    built: list[Variant] = []
    main: Variant | None = None
    has_nncf = importlib.util.find_spec("nncf") is not None
    if mode == "fp16" or (mode == "auto" and device == "cuda") or ctx.options.optimize == "O4":
        main = verify(build_fp16(ctx), ctx.log)
        built.append(main)
    elif mode == "auto":
        # Measured (SpanBERT-base, 2 EPYC cores): fp16 359.8 ms/window against fp32's
        # 359.7 on the CPU provider, which runs fp16 graphs no faster: never the fastest.
        ctx.log("auto on CPU: no fp16 candidate (a CUDA candidate; --quantize fp16 builds it)")
    if device == "cuda" and mode == "auto":
        # ORT's CUDA provider has no fast kernels for these graphs; they would run on CPU.
        ctx.log("auto on CUDA: comparing fp32 and fp16 only (no int8 on ORT's CUDA provider)")
        return built, None
    if mode in ("int8-dynamic", "auto"):
        pair = [verify(build_int8_dynamic(ctx, per_channel=pc), ctx.log) for pc in (False, True)]
        mixed = verify(build_int8_mixed(ctx), ctx.log)
        built.extend([*pair, mixed])
        # The fastest within --max-f1-drop; when none is, the most accurate.
        main = select_int8(prefer_per_channel(*pair), mixed, ctx.options.max_f1_drop)
    if mode == "auto" and has_nncf:
        # int8-nncf is the static int8 that supersedes these on onnxruntime's CPU provider
        # (uint8 activations, every MatMul fused): measured 6.8 windows/s at batch 32
        # against 4.7-4.8 for both, with fewer changed answers (SpanBERT-base, 2 EPYC cores).
        ctx.log(
            "auto: int8-static candidates left out for int8-nncf "
            "(--quantize int8-static builds them)"
        )
    elif mode in ("int8-static", "auto"):
        feeds = calibration_feeds(ctx)
        pair = [
            verify(build_int8_static(ctx, feeds, per_channel=pc), ctx.log) for pc in (False, True)
        ]
        built.extend(pair)
        main = prefer_per_channel(*pair)
    if mode == "auto" and not has_nncf:
        ctx.log(
            "auto: no int8-nncf or int8-openvino candidate "
            '(pip install "qa-engine[openvino-tools]")'
        )
        return built, None
    if mode in ("int8-nncf", "auto"):
        main = verify(build_int8_nncf(ctx, calibration_feeds(ctx)), ctx.log)
        built.append(main)
    if mode in ("int8-openvino", "auto"):
        main = verify(build_int8_openvino(ctx, calibration_feeds(ctx)), ctx.log)
        built.append(main)
    return built, (None if mode == "auto" else main)
