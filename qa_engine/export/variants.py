"""Model variants (fp32 / fp16 / int8) and the verifier that measures each against PyTorch."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from qa_engine.data import QAExample
from qa_engine.export.evidence import DropEstimate, f1_drop
from qa_engine.export.features import Windows
from qa_engine.export.fusion import batch_invariant, count_fused_ops
from qa_engine.export.parity import (
    DecodeSettings,
    Logits,
    ParityReport,
    batched_throughput,
    check_fp32,
    compare,
    decode_answers,
    fp32_gate,
    latency_ms,
    make_session,
    question_f1,
    session_logits,
    tune_null_threshold,
)
from qa_engine.metrics import f1_score
from qa_engine.selfcheck import ACCURACY_BUDGET


@dataclass
class Variant:
    """One candidate graph.

    Attributes:
        name: Short label, e.g. "fp32-O2", "int8-dynamic-per-channel".
        path: The .onnx file.
        precision: Manifest precision ("fp32", "fp16", "int8-dynamic", "int8-static").
        optimization: ORT optimisation level it was built from.
        settings: Quantization/conversion settings (recorded in the manifest).
        parity: Comparison with PyTorch, once verified.
        latency: Batch-1 latency summary (ms), once verified; ``latency["batched"]`` holds
            windows/s at the verifier's batch size (see :func:`speed_key`).
        fused_ops: Fused-operator counts of the graph.
        logits: Its start/end logits on the parity windows, once verified.
        drop: Its F1 drop with a bootstrap interval and decision, once verified.
        accuracy: The same judged against the runtime's accuracy budget
            (``selfcheck.ACCURACY_BUDGET``): the export's F1 evidence the self-check holds.
        null_threshold: SQuAD 2.0 threshold tuned for this variant on the parity
            questions (None: SQuAD 1.1, or no gold answers to tune on).
    """

    name: str
    path: Path
    precision: str
    optimization: str
    settings: dict[str, Any] = field(default_factory=dict)
    parity: ParityReport | None = None
    latency: dict[str, Any] | None = None
    fused_ops: dict[str, int] = field(default_factory=dict)
    logits: Logits | None = field(default=None, repr=False)
    drop: DropEstimate | None = None
    accuracy: DropEstimate | None = None
    null_threshold: float | None = None

    @property
    def size_mb(self) -> float:
        return self.path.stat().st_size / 2**20

    def accuracy_key(self) -> float:
        """What "accuracy" means for choosing between variants: gold F1, else F1 vs PyTorch."""
        if self.parity is None:
            raise RuntimeError(f"{self.name} has not been verified")
        return self.parity.f1 if self.parity.f1 is not None else self.parity.f1_vs_pytorch

    def row(self) -> dict[str, Any]:
        """A row of the comparison table."""
        p = self.parity
        return {
            "name": self.name,
            "precision": self.precision,
            "optimization": self.optimization,
            "size_mb": round(self.size_mb, 2),
            "latency_ms_p50": self.latency["p50"] if self.latency else None,
            "batched_windows_per_s": (self.latency or {}).get("batched", {}).get("windows_per_s"),
            "max_abs_logit_diff": p.max_abs_logit_diff if p else None,
            "answer_agreement": p.answer_agreement if p else None,
            "f1": p.f1 if p else None,
            "f1_vs_pytorch": p.f1_vs_pytorch if p else None,
            "f1_drop": self.drop.to_dict() if self.drop else None,
            "null_threshold": self.null_threshold,
        }


@dataclass
class Verifier:
    """Holds the PyTorch reference on a fixed set of windows and checks variants against it.

    Attributes:
        windows: The windows every variant runs on.
        examples: The questions behind them.
        reference: PyTorch start/end logits per window.
        reference_answers: PyTorch's decoded answers.
        settings: Decoding settings.
        device: "cpu" or "cuda" for the ONNX sessions.
        pairs: "squad" or "generated".
        atol: fp32 gate.
        max_f1_drop: The F1 budget (%) each variant's drop estimate is judged against.
        time_it: Measure batch-1 latency too.
        batch_size: Also measure windows/s in batches of this size (>1), the speed
            ``auto`` ranks by when the model will run batched.
    """

    windows: Windows
    examples: Sequence[QAExample]
    reference: Logits
    reference_answers: list[str]
    settings: DecodeSettings
    device: str
    pairs: str
    atol: float
    max_f1_drop: float = 1.0
    time_it: bool = True
    batch_size: int = 1

    def _paired_f1(self, answers: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Per-question F1 of PyTorch and of the variant: on gold answers, else the
        variant's answers scored against PyTorch's."""
        version_2 = self.settings.version_2
        reference = question_f1(self.reference_answers, self.examples, version_2)
        variant = question_f1(answers, self.examples, version_2)
        if reference is None or variant is None:
            reference = np.full(len(answers), 100.0)
            variant = 100.0 * np.asarray(
                [
                    1.0 if a == r else f1_score(a, r, version_2=version_2)
                    for a, r in zip(answers, self.reference_answers, strict=True)
                ]
            )
        return reference, variant

    def verify(self, variant: Variant, log: Callable[[str], None]) -> Variant:
        """Run ``variant`` on every window, compare with PyTorch, gate fp32, time it.

        Raises:
            ParityError: An fp32 variant is off by more than ``atol``.
        """
        # int8-openvino is timed where it is meant to run: on the OpenVINO provider when
        # this onnxruntime build has it (the CPU provider runs its QDQ graph too).
        session = make_session(
            variant.path, self.device, openvino=variant.precision == "int8-openvino"
        )
        logits = session_logits(session, self.windows)
        variant.logits = logits
        if self.settings.version_2:
            variant.null_threshold = tune_null_threshold(
                self.windows, logits, self.examples, self.settings
            )
        own = self.settings
        if variant.null_threshold is not None:  # each variant scored at its own threshold
            own = replace(self.settings, null_threshold=variant.null_threshold)
        answers = decode_answers(self.windows, logits, self.examples, own)
        variant.parity = compare(
            self.reference,
            self.reference_answers,
            logits,
            answers,
            self.examples,
            self.settings.version_2,
            self.pairs,
        )
        # The paired bootstrap against the selection budget and the runtime's one.
        reference_f1, variant_f1 = self._paired_f1(answers)
        variant.drop = f1_drop(reference_f1, variant_f1, self.max_f1_drop)
        variant.accuracy = f1_drop(reference_f1, variant_f1, ACCURACY_BUDGET)
        variant.fused_ops = count_fused_ops(variant.path)
        if variant.precision == "fp32":
            gate = fp32_gate(variant.fused_ops, self.atol)
            variant.settings["parity_gate"] = gate
            check_fp32(variant.name, variant.parity, gate["atol"], gate["min_agreement"])
        if self.time_it:
            variant.latency = {
                **latency_ms(session, self.windows),
                "provider": session.get_providers()[0],
            }
            if self.batch_size > 1:
                variant.latency["batched"] = batched_throughput(
                    session,
                    self.windows,
                    batch_size=self.batch_size,
                    batch_invariant=batch_invariant(variant.path),
                )
        p = variant.parity
        log(
            f"  {variant.name}: max|dlogit| {p.max_abs_logit_diff:.2e}, answers agree "
            f"{p.answer_agreement:.1%}, F1 vs PyTorch {p.f1_vs_pytorch:.1f}"
            + (f", F1 {p.f1:.2f} (PyTorch {p.f1_pytorch:.2f})" if p.f1 is not None else "")
            + (f", {variant.latency['p50']:.2f} ms/window" if variant.latency else "")
            + (
                f", {variant.latency['batched']['windows_per_s']:.1f} windows/s at batch "
                f"{self.batch_size}"
                if variant.latency and "batched" in variant.latency
                else ""
            )
            + (
                f", null threshold {variant.null_threshold:.3f}"
                if variant.null_threshold is not None
                else ""
            )
            + f", {variant.size_mb:.1f} MB"
        )
        if variant.precision != "fp32":
            log(f"    {variant.drop.describe()}")
        return variant


def prefer_per_channel(per_tensor: Variant, per_channel: Variant) -> Variant:
    """Per-channel scales unless they cost accuracy (ties go to per-channel)."""
    if per_channel.accuracy_key() >= per_tensor.accuracy_key():
        return per_channel
    return per_tensor


def within_budget(variant: Variant) -> bool:
    """The evidence says the variant's F1 drop is within the budget (the interval's top)."""
    if variant.drop is None:
        raise RuntimeError(f"{variant.name} has not been verified")
    return variant.drop.decision == "within"


def select_int8(plain: Variant, mixed: Variant, max_f1_drop: float) -> Variant:
    """``--quantize int8-dynamic``: the faster of the two whose drop is shown to be within
    the F1 budget, else the more accurate."""
    within = [v for v in (plain, mixed) if within_budget(v)]
    if within:
        return min(within, key=lambda v: v.latency["p50"] if v.latency else float("inf"))
    return max((plain, mixed), key=lambda v: v.accuracy_key())


def relative_f1_drop(variant: Variant) -> float:
    """Relative F1 drop (%) vs PyTorch on gold answers (or vs PyTorch's own answers)."""
    if variant.drop is None:
        raise RuntimeError(f"{variant.name} has not been verified")
    return variant.drop.point


def speed_key(variant: Variant, batch_size: int = 1) -> float:
    """Lower is faster: batch-1 latency (ms), or minus windows/s at ``batch_size`` > 1 where
    measured (a variant that is not batch-invariant was timed one window per call there,
    as the runtime runs it, so batching credits only the variants that batch)."""
    if not variant.latency:
        return float("inf")
    batched = variant.latency.get("batched")
    if batch_size > 1 and batched and batched.get("batch_size") == batch_size:
        return -float(batched["windows_per_s"])
    return float(variant.latency["p50"])


def select_fastest(
    candidates: Sequence[Variant], max_f1_drop: float, batch_size: int = 1
) -> tuple[Variant, list[dict[str, Any]]]:
    """``--quantize auto``: the fastest variant (at ``batch_size``, see :func:`speed_key`)
    whose F1 drop is shown to be within the budget (the top of its bootstrap interval),
    and the full table.

    fp32 variants passed the parity gate, so they are always eligible: there is always
    an answer. A variant the sample cannot decide is not kept; its row says how many
    questions would decide.
    """
    rows = []
    eligible = []
    for variant in candidates:
        ok = variant.precision == "fp32" or within_budget(variant)
        if ok:
            eligible.append(variant)
        drop = variant.drop
        rows.append(
            {
                **variant.row(),
                "f1_drop_pct": round(drop.point, 3) if drop else None,
                "f1_drop_ci": [round(drop.low, 3), round(drop.high, 3)] if drop else None,
                "decision": "fp32 (parity-gated)" if variant.precision == "fp32" else drop.decision,
                "eligible": ok,
            }
        )
    if not eligible:
        raise RuntimeError("no eligible variant (the fp32 candidate is missing)")
    best = min(eligible, key=lambda v: speed_key(v, batch_size))
    for row in rows:
        row["selected"] = row["name"] == best.name
    return best, rows


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """A fixed-width text table of comparison rows."""
    columns = [
        ("name", "variant", "{}"),
        ("size_mb", "MB", "{:.1f}"),
        ("latency_ms_p50", "ms p50", "{:.2f}"),
        ("batched_windows_per_s", "win/s batched", "{:.1f}"),
        ("max_abs_logit_diff", "max|dlogit|", "{:.2e}"),
        ("answer_agreement", "agree", "{:.1%}"),
        ("f1", "F1", "{:.2f}"),
        ("f1_drop_pct", "F1 drop %", "{:.2f}"),
        ("f1_drop_ci", "95% CI", "{}"),
        ("decision", "evidence", "{}"),
        ("selected", "chosen", "{}"),  # bools print as "*" / ""
    ]
    columns = [c for c in columns if any(c[0] in r for r in rows)]
    cells = [[h for _, h, _ in columns]]
    for r in rows:
        cells.append([_cell(r.get(k), fmt) for k, _, fmt in columns])
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells
    )


def _cell(value: Any, fmt: str) -> str:
    if isinstance(value, bool):
        return "*" if value else ""
    return "-" if value is None else fmt.format(value)
