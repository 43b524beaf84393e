"""Every variant against the PyTorch model: logits, decoded answers, F1 and latency.

The answers go through :func:`qa_engine.decoding.decode_question`, the decoder the
runtime uses, so "agreement" means the user would see the same answer.
"""

from __future__ import annotations

import inspect
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qa_engine.data import QAExample
from qa_engine.decoding import WindowLogits, decode_question
from qa_engine.export.features import Windows
from qa_engine.extras import require
from qa_engine.metrics import f1_score, normalize_answer, squad_metrics

BATCH_SIZE = 8
OPENVINO = "OpenVINOExecutionProvider"
# (start_logits, end_logits) of each window, unpadded: ((seq,), (seq,)).
Logits = list[tuple[np.ndarray, np.ndarray]]
Progress = Callable[[int], object]


class ParityError(RuntimeError):
    """An fp32 variant disagrees with PyTorch beyond the tolerance: the export is broken."""


@dataclass
class DecodeSettings:
    """How answers are decoded (from qa_config.json or defaults)."""

    max_answer_length: int = 30
    version_2: bool = False
    null_threshold: float = 0.0


@dataclass
class ParityReport:
    """One variant compared with PyTorch.

    Attributes:
        max_abs_logit_diff: Max |ONNX - PyTorch| over all start/end logits of real tokens.
        mean_abs_logit_diff: Mean of the same.
        answer_agreement: Fraction of questions whose decoded answer text is identical.
        f1_vs_pytorch: Token F1 (0-100) of the variant's answers against PyTorch's.
        f1: F1 (0-100) against the gold answers (None without a SQuAD file).
        f1_pytorch: PyTorch's F1 against the same gold answers (None without).
        f1_delta: ``f1 - f1_pytorch`` with gold, else None (generated pairs measure
            logits and agreement, never F1).
        questions: Questions compared.
        windows: Windows (features) compared.
        pairs: "squad" (real questions) or "generated".
    """

    max_abs_logit_diff: float
    mean_abs_logit_diff: float
    answer_agreement: float
    f1_vs_pytorch: float
    f1: float | None
    f1_pytorch: float | None
    f1_delta: float | None
    questions: int
    windows: int
    pairs: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def make_session(path: Path, device: str, *, openvino: bool = False) -> Any:
    """An onnxruntime session on ``device``; CUDA silently falling back to CPU is an error.

    ``openvino=True`` uses the OpenVINO provider (default options: bf16 on CPUs with
    native bf16) when this onnxruntime build has it, else the CPU provider.
    """
    ort = require("onnxruntime", "cpu")
    # The runtime's provider resolution and session creation (CUDA library preload
    # included), so the export is verified on exactly what QAEngine will run.
    from qa_engine.session import create_session, resolve_providers

    if openvino and OPENVINO in ort.get_available_providers():
        target = "openvino"
    else:
        target = "cuda" if device == "cuda" else "cpu"
    try:
        resolved = resolve_providers(target)
    except ValueError as err:
        raise ValueError(f"--device {device}: {err}") from err
    session = create_session(path, resolved, quiet=True)
    if device == "cuda" and "CUDAExecutionProvider" not in session.get_providers():
        raise RuntimeError(f"{path}: CUDA was requested but the session runs on CPU only")
    if target == "openvino" and OPENVINO not in session.get_providers():
        raise RuntimeError(f"{path}: OpenVINO was requested but the session runs on CPU only")
    return session


def length_batches(windows: Windows, indices: Sequence[int], batch_size: int) -> list[list[int]]:
    """``indices`` in batches of similar length (sorted by tokens), so padding is small."""
    ordered = sorted(indices, key=windows.length)
    return [ordered[lo : lo + batch_size] for lo in range(0, len(ordered), batch_size)]


def session_logits(
    session: Any,
    windows: Windows,
    indices: Sequence[int] | None = None,
    *,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
) -> Logits:
    """Start/end logits of windows ``indices`` (default: all) from an ONNX session.

    Args:
        batch_size: Windows per call (right-padded); 1 for a graph that is not
            batch-invariant (dynamic int8), so it is measured the way the runtime runs it.
        progress: Called with the number of windows each batch finished.
    """
    names = [i.name for i in session.get_inputs()]
    outputs = [o.name for o in session.get_outputs()]
    order = [outputs.index("start_logits"), outputs.index("end_logits")]
    indices = range(len(windows)) if indices is None else indices
    found: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for batch in length_batches(windows, indices, batch_size):
        out = session.run(None, windows.batch(batch, names))
        start, end = (np.asarray(out[k], dtype=np.float32) for k in order)  # (batch, seq)
        for row, i in enumerate(batch):
            n = windows.length(i)
            found[i] = (start[row, :n], end[row, :n])
        if progress is not None:
            progress(len(batch))
    return [found[i] for i in indices]


def torch_logits(
    net: Any,
    windows: Windows,
    indices: Sequence[int] | None = None,
    *,
    progress: Progress | None = None,
) -> Logits:
    """Start/end logits of windows ``indices`` (default: all) from the PyTorch model,
    in length-sorted batches of ``BATCH_SIZE``."""
    torch = require("torch")
    accepted = [n for n in windows.inputs if n in inspect.signature(net.forward).parameters]
    device = next(net.parameters()).device
    indices = range(len(windows)) if indices is None else indices
    found: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    with torch.inference_mode():
        for batch in length_batches(windows, indices, BATCH_SIZE):
            feeds = windows.batch(batch, accepted)
            out = net(**{k: torch.from_numpy(v).to(device) for k, v in feeds.items()})
            start = out.start_logits.float().cpu().numpy()  # (batch, seq)
            end = out.end_logits.float().cpu().numpy()
            for row, i in enumerate(batch):
                n = windows.length(i)
                found[i] = (start[row, :n], end[row, :n])
            if progress is not None:
                progress(len(batch))
    return [found[i] for i in indices]


def window_bar(total: int, description: str) -> Any:
    """A tqdm bar (windows, with rate and ETA) on stderr; silent when stderr is not a TTY."""
    from tqdm import tqdm

    return tqdm(total=total, desc=description, unit="window", leave=False, disable=None)


def decode_answers(
    windows: Windows, logits: Logits, examples: Sequence[QAExample], settings: DecodeSettings
) -> list[str]:
    """The best answer text of each question, through the runtime's decoder."""
    per_question = windows_per_question(windows, logits, len(examples))
    threshold = settings.null_threshold if settings.version_2 else None
    answers = []
    for question_windows, example in zip(per_question, examples, strict=True):
        decoded = decode_question(
            question_windows,
            example.context,
            max_answer_length=settings.max_answer_length,
            null_threshold=threshold,
        )
        answers.append(decoded.answers[0].text)
    return answers


def windows_per_question(
    windows: Windows, logits: Logits, questions: int
) -> list[list[WindowLogits]]:
    """Each question's windows with their logits, in window order (for the decoder)."""
    per_question: list[list[WindowLogits]] = [[] for _ in range(questions)]
    for i, (start, end) in enumerate(logits):
        per_question[windows.example_index[i]].append(
            WindowLogits(start, end, windows.offsets[i], windows.context_mask[i])
        )
    return per_question


def tune_null_threshold(
    windows: Windows, logits: Logits, examples: Sequence[QAExample], settings: DecodeSettings
) -> float | None:
    """The SQuAD 2.0 null threshold that maximises F1 of these logits on these questions.

    A quantized variant's best threshold differs from the fp32 one (measured on a MiniLM
    SQuAD 2.0 fine-tune: int8 lost 0.66 F1 at the fp32 threshold, 0.11 at its own), so
    each variant gets its own. None when the questions have no gold answers.
    """
    if not any(ex.answers["text"] or ex.is_impossible for ex in examples):
        return None
    per_question = windows_per_question(windows, logits, len(examples))
    answers, null_minus_best = {}, {}
    for question_windows, example in zip(per_question, examples, strict=True):
        decoded = decode_question(
            question_windows, example.context, max_answer_length=settings.max_answer_length
        )
        answers[example.id] = decoded.answers[0].text
        null_minus_best[example.id] = decoded.null_minus_best
    tuned = squad_metrics(answers, examples, True, no_answer_probs=null_minus_best)
    return float(tuned["best_f1_thresh"])


def question_f1(
    answers: Sequence[str], examples: Sequence[QAExample], version_2: bool
) -> np.ndarray | None:
    """Official per-question F1 (0-100) against the gold answers; None without gold."""
    if not any(ex.answers["text"] or ex.is_impossible for ex in examples):
        return None
    scores = []
    for answer, example in zip(answers, examples, strict=True):
        golds = [g for g in example.answers["text"] if normalize_answer(g)] or [""]
        if not version_2:
            golds = example.answers["text"] or [""]
        scores.append(max(f1_score(answer, g, version_2=version_2) for g in golds))
    return 100.0 * np.asarray(scores, dtype=np.float64)


def gold_f1(answers: Sequence[str], examples: Sequence[QAExample], version_2: bool) -> float | None:
    """Official SQuAD F1 (0-100), or None for generated pairs (no gold)."""
    if not any(ex.answers["text"] or ex.is_impossible for ex in examples):
        return None
    predictions = {ex.id: a for ex, a in zip(examples, answers, strict=True)}
    return float(squad_metrics(predictions, examples, version_2)["f1"])


def compare(
    reference: Logits,
    reference_answers: Sequence[str],
    variant: Logits,
    variant_answers: Sequence[str],
    examples: Sequence[QAExample],
    version_2: bool,
    pairs: str,
) -> ParityReport:
    """Compare one variant's logits and answers with PyTorch's."""
    diffs = np.concatenate(
        [
            np.abs(v - r).ravel()
            for ref, var in zip(reference, variant, strict=True)
            for r, v in zip(ref, var, strict=True)
        ]
    )
    same = [a == b for a, b in zip(reference_answers, variant_answers, strict=True)]
    f1_ref = [
        1.0 if v == r else f1_score(v, r, version_2=version_2)
        for r, v in zip(reference_answers, variant_answers, strict=True)
    ]
    f1 = gold_f1(variant_answers, examples, version_2)
    f1_pytorch = gold_f1(reference_answers, examples, version_2)
    f1_vs_pytorch = 100.0 * float(np.mean(f1_ref))
    delta = f1 - f1_pytorch if f1 is not None and f1_pytorch is not None else None
    return ParityReport(
        max_abs_logit_diff=float(diffs.max()),
        mean_abs_logit_diff=float(diffs.mean()),
        answer_agreement=float(np.mean(same)),
        f1_vs_pytorch=f1_vs_pytorch,
        f1=f1,
        f1_pytorch=f1_pytorch,
        f1_delta=None if delta is None else float(delta),
        questions=len(examples),
        windows=len(reference),
        pairs=pairs,
    )


# ORT's O3/O4 replace exact GELU by its tanh approximation (FastGelu). On a trained
# model that moves logits by ~1e-2 (measured 0.0116 on MiniLM fine-tuned on SQuAD), so
# such graphs cannot meet the exact 1e-3 gate; they get a looser bound on the logits
# plus an answer-agreement floor, and the manifest says which gate applied.
APPROXIMATE_ATOL = 0.05
APPROXIMATE_MIN_AGREEMENT = 0.95


def fp32_gate(fused_ops: dict[str, int], atol: float) -> dict[str, Any]:
    """The parity gate an fp32 graph must pass: exact, or approximate when it has FastGelu."""
    if fused_ops.get("FastGelu", 0) > 0:
        return {
            "kind": "approximate (FastGelu: tanh GELU)",
            "atol": max(atol, APPROXIMATE_ATOL),
            "min_agreement": APPROXIMATE_MIN_AGREEMENT,
        }
    return {"kind": "exact", "atol": atol, "min_agreement": 0.0}


def check_fp32(name: str, report: ParityReport, atol: float, min_agreement: float = 0.0) -> None:
    """The fp32 gate: raise :class:`ParityError` if logits differ by more than ``atol``
    (or answers agree on fewer than ``min_agreement`` of the questions)."""
    if not report.max_abs_logit_diff <= atol or report.answer_agreement < min_agreement:
        raise ParityError(  # `not <=` also catches NaN
            f"parity check failed for {name}: max |ONNX - PyTorch| logit difference is "
            f"{report.max_abs_logit_diff:.3g} (tolerance {atol:g}); answer agreement "
            f"{report.answer_agreement:.1%} on {report.questions} questions"
            + (f" (needs {min_agreement:.0%})" if min_agreement else "")
            + ". The fp32 graph does not compute what the checkpoint computes; nothing was "
            "written."
        )


def latency_ms(session: Any, windows: Windows, *, limit: int = 12, warmup: int = 3) -> dict:
    """Batch-1 latency (ms) over real windows: warm up, then time each window twice.

    12 windows (24 timed runs) rank variants as well as more would; each run of a
    full-length SpanBERT-base window costs ~0.3 s on 2 cores, so every window counts.
    """
    names = [i.name for i in session.get_inputs()]
    feeds = [windows.batch([i], names) for i in range(min(limit, len(windows)))]
    for feed in feeds[:warmup]:
        session.run(None, feed)
    times = []
    for _ in range(2):
        for feed in feeds:
            t0 = time.perf_counter()
            session.run(None, feed)
            times.append((time.perf_counter() - t0) * 1000.0)
    return {
        "p50": round(statistics.median(times), 3),
        "mean": round(statistics.fmean(times), 3),
        "windows": len(feeds),
        "mean_tokens": round(float(np.mean([windows.length(i) for i in range(len(feeds))])), 1),
    }


def batched_throughput(
    session: Any,
    windows: Windows,
    *,
    batch_size: int,
    batch_invariant: bool,
    limit: int = 32,
    rounds: int = 2,
) -> dict:
    """Windows/s over real windows run ``batch_size`` at a time, longest first (as the
    runtime batches them); one window per call for a graph that is not batch-invariant,
    which is how the runtime runs it. Best of ``rounds`` passes after one warm-up call.

    ``limit`` 32 (one batch at the default batch size): 64 took a SpanBERT-base fp32
    variant's timing to ~60 s of its ~100 s verification on 2 cores."""
    names = [i.name for i in session.get_inputs()]
    count = min(limit, len(windows))
    order = sorted(range(count), key=windows.length, reverse=True)
    per_call = batch_size if batch_invariant else 1
    feeds = [windows.batch(order[i : i + per_call], names) for i in range(0, count, per_call)]
    session.run(None, feeds[0])
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for feed in feeds:
            session.run(None, feed)
        best = min(best, time.perf_counter() - t0)
    return {
        "batch_size": batch_size,
        "windows_per_call": per_call,
        "windows": count,
        "windows_per_s": round(count / best, 2),
    }
