"""The export stage end to end: checkpoint -> verified ONNX variants -> one export dir.

Steps: load the checkpoint and its tokenizer; export fp32 ONNX; optimise (O1-O4) and
count the fusions; build the requested variants; verify every one against PyTorch
(the fp32 graph must match within ``atol``; lossy ones on as many questions as their F1
evidence needs, :mod:`~qa_engine.export.verifier`); refuse a chosen variant whose
evidence is over ``--max-f1-drop`` unless ``force`` (the runtime would refuse it too);
write model.onnx, tokenizer.json, config.json and qa_manifest.json into a staging dir
and rename it into place.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from qa_engine.export import features, fusion, publish
from qa_engine.export.budget import check_budget, evidence_summary
from qa_engine.export.builders import BuildContext, build_variants
from qa_engine.export.onnx_export import (
    ATTN_IMPLEMENTATION,
    export_onnx,
    graph_opset,
    load_torch_model,
)
from qa_engine.export.options import DEFAULT_DOC_STRIDE, DEFAULT_MAX_SEQ_LENGTH, ExportOptions
from qa_engine.export.parity import DecodeSettings
from qa_engine.export.variants import Variant, select_fastest
from qa_engine.export.verifier import TorchReference, Verifier
from qa_engine.extras import require
from qa_engine.manifest import MODEL_NAME, TOKENIZER_NAME, ExportManifest
from qa_engine.selfcheck import (
    ReferenceWindow,
    SelfCheck,
    export_tolerance,
    measure,
    pick_reference,
)

QA_CONFIG = "qa_config.json"
Log = Callable[[str], None]


@dataclass
class ExportResult:
    """What an export produced.

    Attributes:
        out_dir: The export dir.
        manifest: Its manifest.
        chosen: The variant saved as model.onnx.
        table: One comparison row per variant built.
    """

    out_dir: Path
    manifest: ExportManifest
    chosen: Variant
    table: list[dict[str, Any]] = field(default_factory=list)


def read_qa_config(model: str) -> dict[str, Any]:
    """``qa_config.json`` of a fine-tuned dir (``qa-engine finetune`` output), or {}."""
    path = Path(model).expanduser() / QA_CONFIG
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return raw


def run_export(options: ExportOptions, log: Log = print) -> ExportResult:
    """Export ``options.model`` to ``options.out_dir`` (see module docstring).

    Raises:
        ValueError / FileExistsError: Unsafe destination or inconsistent settings.
        ParityError: An fp32 graph disagrees with PyTorch; nothing is written.
        OverBudgetError: The chosen variant's F1 drop is over ``max_f1_drop`` and
            ``force`` is off; nothing is written.
    """
    publish.check_destination(options.model, options.out_dir, force=options.force)
    for module in ("torch", "transformers", "optimum.onnxruntime", "onnx", "onnxruntime"):
        require(module, "export")
    if options.device == "cuda":
        available = require("onnxruntime").get_available_providers()
        if "CUDAExecutionProvider" not in available:
            raise ValueError(
                "--device cuda needs onnxruntime-gpu and a CUDA device; onnxruntime offers "
                f"{available}"
            )
    staging = publish.make_staging(options.out_dir)
    try:
        result = _build(options, staging, log)
        out = publish.publish(staging, options.out_dir)
    except BaseException:
        publish.discard(staging)
        raise
    result.out_dir = out
    result.chosen.path = out / MODEL_NAME
    return result


def max_question_len(max_seq_length: int) -> int:
    """Longest question (tokens) the runtime keeps: 64, or half a short window."""
    return min(64, max_seq_length // 2)


def _windows_settings(
    options: ExportOptions, qa_config: dict[str, Any], tokenizer: Any, positions: int
) -> tuple[int, int]:
    """max_seq_length and doc_stride: option, else qa_config.json, else the defaults."""
    max_seq_length = options.max_seq_length or qa_config.get("max_seq_length")
    max_seq_length = int(max_seq_length or DEFAULT_MAX_SEQ_LENGTH)
    doc_stride = options.doc_stride
    if doc_stride is None:
        doc_stride = int(qa_config.get("doc_stride", DEFAULT_DOC_STRIDE))
    limit = min(positions, int(tokenizer.model_max_length))
    if max_seq_length > limit:
        raise ValueError(
            f"max_seq_length {max_seq_length} exceeds the model's limit of {limit} tokens"
        )
    # A window holds [CLS] question [SEP] context [SEP]; the overlap must leave room for
    # new context even with the longest question.
    room = max_seq_length - max_question_len(max_seq_length) - 3
    if not 0 <= doc_stride < room:
        raise ValueError(
            f"doc_stride {doc_stride} must be in [0, {room}) with max_seq_length "
            f"{max_seq_length} (room left for context after the longest question)"
        )
    return max_seq_length, doc_stride


def _build(options: ExportOptions, staging: Path, log: Log) -> ExportResult:
    from qa_engine.finetune.tokenizer import load_tokenizer, vocab_is_cased

    work = staging / ".work"
    qa_config = read_qa_config(options.model)
    settings = DecodeSettings(
        max_answer_length=int(qa_config.get("max_answer_length") or 30),
        version_2=bool(qa_config.get("version_2", False)),
        null_threshold=float(qa_config.get("null_threshold") or 0.0),  # null for SQuAD 1.1
    )
    torch_device = "cuda" if options.device == "cuda" else "cpu"
    log(f"Loading {options.model} (PyTorch, eager attention)")
    net = load_torch_model(options.model, torch_device)
    positions = int(getattr(net.config, "max_position_embeddings", 512))
    tokenizer = load_tokenizer(options.model, model_max_positions=positions)
    max_seq_length, doc_stride = _windows_settings(options, qa_config, tokenizer, positions)
    tokenizer.save_pretrained(staging)
    net.config.save_pretrained(staging)
    if not (staging / TOKENIZER_NAME).is_file():
        raise ValueError(f"{options.model}: the tokenizer has no fast version (no tokenizer.json)")

    log("Exporting to ONNX (fp32, dynamic batch and sequence axes)")
    raw = export_onnx(net, work / "raw", opset=options.opset, device=torch_device)
    base_level = "O3" if options.optimize == "O4" else options.optimize
    if base_level == "none":
        base_path = raw
    else:
        log(f"Optimizing at {base_level} (ORTOptimizer)")
        base_path = fusion.optimize_graph(raw.parent, work / base_level, base_level)
    base = Variant(f"fp32-{base_level}", base_path, "fp32", base_level)
    problems = fusion.check_fusion(
        base_level,
        fusion.count_fused_ops(base_path),
        getattr(net.config, "num_hidden_layers", None),
    )
    for problem in problems:
        log(f"WARNING: {problem}")

    # The parity set: real SQuAD questions when a file is given, else generated pairs.
    if options.calibration_file is not None:
        examples, version_2, _ = features.load_examples(
            options.calibration_file, 0, options.parity_samples
        )
        settings.version_2 = settings.version_2 or version_2
        pairs = "squad"
    else:
        examples = features.generated_examples(tokenizer, options.parity_samples, seed=options.seed)
        pairs = "generated"
    windows = features.build_windows(tokenizer, examples, max_seq_length, doc_stride)
    reference = TorchReference(net, windows)
    verifier = Verifier(
        windows=windows,
        examples=examples,
        reference=reference,
        settings=settings,
        device=options.device,
        pairs=pairs,
        atol=options.atol,
        max_f1_drop=options.max_f1_drop,
        batch_size=options.batch_size,
        log=log,
    )
    log(
        f"Parity set: up to {len(examples)} {pairs} questions ({len(windows)} windows); "
        "PyTorch runs only as far as a variant's evidence needs"
    )
    log("Verifying variants against PyTorch")
    verifier.verify(base, log)

    ctx = BuildContext(
        options, base, raw.parent, work, tokenizer, verifier, max_seq_length, doc_stride, log
    )
    built, main = build_variants(ctx)
    reference.release()  # free the PyTorch weights
    if options.quantize == "auto":
        chosen, table = select_fastest([base, *built], options.max_f1_drop, options.batch_size)
        log(
            f"auto: chose {chosen.name} (fastest at batch {options.batch_size} whose F1 drop "
            f"is within {options.max_f1_drop}% at 95% confidence)"
        )
        for variant in built:
            if variant.drop is not None and variant.drop.decision == "undecided":
                log(f"  note: {variant.name} undecided: {variant.drop.describe()}")
        if verifier.missing_accuracy_evidence() is not None:
            log(
                "  note: without accuracy evidence no lossy variant can be shown within the "
                "budget, so auto keeps an fp32 graph (--quantize int8-dynamic chooses on logits)"
            )
    else:
        chosen = main or base
        table = [v.row() for v in (base, *built)]
        for row in table:
            row["selected"] = row["name"] == chosen.name
    check_budget(chosen, options, log)
    log(
        f"PyTorch reference: {len(reference.logits)} of {len(windows)} windows in "
        f"{reference.seconds:.1f} s"
    )

    shutil.move(str(chosen.path), staging / MODEL_NAME)
    chosen.path = staging / MODEL_NAME
    shutil.rmtree(work)
    manifest = ExportManifest(
        max_seq_length=max_seq_length,
        doc_stride=doc_stride,
        precision=chosen.precision,
        optimization=chosen.optimization,
        source_model=_source_name(options.model),
        max_question_len=max_question_len(max_seq_length),
        max_answer_length=settings.max_answer_length,
        version_2=settings.version_2,
        null_threshold=(
            chosen.null_threshold if chosen.null_threshold is not None else settings.null_threshold
        ),
        do_lower_case=_do_lower_case(tokenizer, vocab_is_cased, staging),
        opset=graph_opset(chosen.path),
        onnxruntime_version=require("onnxruntime").__version__,
        fused_ops=chosen.fused_ops,
        parity={
            **(chosen.parity.to_dict() if chosen.parity else {}),
            "atol_fp32": options.atol,
            "fp32_max_abs_logit_diff": base.parity.max_abs_logit_diff if base.parity else None,
            "latency_ms_b1": chosen.latency,
            "device": options.device,
        },
        extra={
            **_extra(options, qa_config, chosen, table, problems),
            "evidence": evidence_summary(verifier, options),
            "timings": {
                "reference_s": round(reference.seconds, 1),
                "reference_windows": len(reference.logits),
                "variants": {v.name: v.timings for v in (base, *built)},
            },
        },
        batch_invariant=fusion.batch_invariant(chosen.path),
        self_check=reference_check(verifier, chosen).save(staging),
    )
    log(
        f"Self-check reference: {manifest.self_check['windows']} windows, "
        f"{manifest.self_check['bytes'] / 1024:.1f} KB; batch-invariant: {manifest.batch_invariant}"
    )
    manifest.save(staging)
    return ExportResult(staging, manifest, chosen, table)


def reference_check(verifier: Verifier, chosen: Variant) -> SelfCheck:
    """The self-check an export carries: the parity windows with the clearest answers,
    PyTorch's logits on them, and the tolerance of the chosen variant's precision."""
    windows = verifier.windows
    type_ids = windows.inputs.get("token_type_ids")
    candidates = [
        ReferenceWindow(
            windows.inputs["input_ids"][i],
            type_ids[i] if type_ids is not None else np.zeros_like(windows.inputs["input_ids"][i]),
            windows.context_mask[i],
            np.asarray(start, dtype=np.float32),
            np.asarray(end, dtype=np.float32),
        )
        # Windows the chosen variant ran on (a prefix of the parity windows).
        for i, (start, end) in enumerate(verifier.reference.logits[: len(chosen.logits or [])])
    ]
    max_answer = verifier.settings.max_answer_length
    if chosen.logits is None:
        raise RuntimeError(f"{chosen.name} has not been verified")
    picked = pick_reference(candidates, windows.example_index, max_answer)
    index = {id(c): i for i, c in enumerate(candidates)}
    own = [chosen.logits[index[id(w)]] for w in picked]
    diff, agreement = measure(picked, own, max_answer)
    gate = chosen.settings.get("parity_gate", {}).get("atol", verifier.atol)
    tolerance = export_tolerance(chosen.precision, picked, diff, gate)
    export = {
        "max_abs_logit_diff": diff,
        "answer_agreement": agreement,
        "provider": (chosen.latency or {}).get("provider"),
        "f1_drop": chosen.drop.to_dict() if chosen.drop else None,
        "accuracy_evidence": verifier.missing_accuracy_evidence() or "paired F1 on real questions",
        "written_with_force": chosen.drop is not None and chosen.drop.decision == "over",
    }
    return SelfCheck(picked, tolerance, max_answer, export)


def _source_name(model: str) -> str:
    path = Path(model).expanduser()
    return str(path.resolve()) if path.exists() else model


def _do_lower_case(tokenizer: Any, vocab_is_cased: Callable[[Path], bool], staging: Path) -> bool:
    lower = getattr(tokenizer, "do_lower_case", None)
    if lower is not None:
        return bool(lower)
    vocab = staging / "vocab.txt"
    return not vocab_is_cased(vocab) if vocab.is_file() else False


def _extra(
    options: ExportOptions,
    qa_config: dict[str, Any],
    chosen: Variant,
    table: list[dict[str, Any]],
    problems: list[str],
) -> dict[str, Any]:
    transformers = require("transformers")
    torch = require("torch")
    optimum_version = _version("optimum")
    extra: dict[str, Any] = {
        "attn_implementation": ATTN_IMPLEMENTATION,
        "variant": chosen.name,
        "quantization": chosen.settings,
        "variants": table,
        "fusion_warnings": problems,
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "optimum": optimum_version,
            "optimum-onnx": _version("optimum-onnx"),
            "onnx": require("onnx").__version__,
        },
    }
    if options.quantize == "auto":
        extra["auto"] = {"max_f1_drop_pct": options.max_f1_drop, "selected": chosen.name}
    if qa_config:
        extra["qa_config"] = {k: v for k, v in qa_config.items() if k != "metrics"}
        if "base_model" in qa_config:
            extra["base_model"] = qa_config["base_model"]
    return extra


def _version(distribution: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None
