"""Model variants (fp32 / fp16 / int8), the rules that choose between them, their table.

The verifier that measures each against PyTorch is :mod:`qa_engine.export.verifier`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qa_engine.export.evidence import DropEstimate
from qa_engine.export.parity import Logits, ParityReport


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
        drop: Its F1 drop with a bootstrap interval and a decision against
            ``--max-f1-drop``, once verified; None without accuracy evidence (generated
            pairs, or a model that cannot answer the questions). The self-check carries it
            and the runtime refuses an ``over`` variant.
        null_threshold: SQuAD 2.0 threshold tuned for this variant on the parity
            questions (None: SQuAD 1.1, or no gold answers to tune on).
        timings: Seconds spent verifying it, and extending the PyTorch reference for it.
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
    null_threshold: float | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def size_mb(self) -> float:
        return self.path.stat().st_size / 2**20

    def accuracy_key(self) -> tuple[float, float]:
        """What "more accurate" means between variants (larger is better): with accuracy
        evidence, the decision (within > undecided > over), then the smaller F1 drop;
        without, the logits closer to PyTorch's (smaller mean |dlogit|)."""
        if self.parity is None:
            raise RuntimeError(f"{self.name} has not been verified")
        if self.drop is None:
            return (0.0, -self.parity.mean_abs_logit_diff)
        rank = {"within": 2.0, "undecided": 1.0, "over": 0.0}[self.drop.decision]
        return (rank, -self.drop.point)

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
            "f1_drop_pct": round(self.drop.point, 3) if self.drop else None,
            "f1_drop_ci": [round(self.drop.low, 3), round(self.drop.high, 3)]
            if self.drop
            else None,
            "decision": _decision(self),
            "questions": p.questions if p else None,
            "null_threshold": self.null_threshold,
            **self.timings,
        }


def prefer_per_channel(per_tensor: Variant, per_channel: Variant) -> Variant:
    """Per-channel scales unless they cost accuracy (ties go to per-channel)."""
    if per_channel.accuracy_key() >= per_tensor.accuracy_key():
        return per_channel
    return per_tensor


def within_budget(variant: Variant) -> bool:
    """The evidence says the variant's F1 drop is within the budget (the interval's top);
    False without accuracy evidence."""
    if variant.parity is None:
        raise RuntimeError(f"{variant.name} has not been verified")
    return variant.drop is not None and variant.drop.decision == "within"


def select_int8(plain: Variant, mixed: Variant, max_f1_drop: float) -> Variant:
    """``--quantize int8-dynamic``: the faster of the two whose drop is shown to be within
    the F1 budget, else the more accurate (without accuracy evidence: the more faithful
    to PyTorch's logits)."""
    within = [v for v in (plain, mixed) if within_budget(v)]
    if within:
        return min(within, key=lambda v: v.latency["p50"] if v.latency else float("inf"))
    return max((plain, mixed), key=lambda v: v.accuracy_key())


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
    questions would decide. Without accuracy evidence no lossy variant is shown within
    the budget, so an fp32 graph is kept.
    """
    rows = []
    eligible = []
    for variant in candidates:
        ok = variant.precision == "fp32" or within_budget(variant)
        if ok:
            eligible.append(variant)
        rows.append({**variant.row(), "eligible": ok})
    if not eligible:
        raise RuntimeError("no eligible variant (the fp32 candidate is missing)")
    best = min(eligible, key=lambda v: speed_key(v, batch_size))
    for row in rows:
        row["selected"] = row["name"] == best.name
    return best, rows


def _decision(variant: Variant) -> str:
    if variant.precision == "fp32":
        return "fp32 (parity-gated)"
    return variant.drop.decision if variant.drop else "no accuracy evidence"


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
        ("f1_drop_ci", "interval", "{}"),
        ("questions", "questions", "{}"),
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
