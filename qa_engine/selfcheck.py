"""Self-check: an export proves its answers on the provider and precision it runs with.

``qa-engine export`` stores a few real windows with PyTorch's start/end logits in
``self_check.json`` beside the model, and the tolerance that fits the variant's
precision in the manifest (``self_check``). ``QAEngine`` runs those windows on the
provider and precision it resolved and compares: the largest logit difference, and the
share of windows whose best span (through the one decoder) is PyTorch's. A path that
fails is refused (:class:`SelfCheckError`), and ``device="auto"`` moves on to its next
candidate. This is what catches a provider or precision that quietly wrecks a graph:
measured on an AMX Xeon, the OpenVINO provider's bf16 hint took an unfused fp32 MiniLM
from F1 58 to 8 while the same graph is right under f32.

Numpy only: the caller passes a function that runs windows (no onnxruntime here).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from qa_engine.decoding import WindowLogits, decode_question
from qa_engine.tokenization import Window

SELF_CHECK_NAME = "self_check.json"
FORMAT = 1
# Reference windows an export stores: enough for agreement to mean something, few and
# short enough to keep the file small and the check cheap next to loading the model
# (measured: 12 windows of up to 256 tokens took 1.3 s against a 0.5 s load on 2 cores).
REFERENCE_WINDOWS = 8
SHORT_WINDOW = 128  # tokens: windows up to this long are preferred

# Tolerances. fp32 graphs get their export parity gate (1e-3 exact, 0.05 with FastGelu)
# widened a little for another provider's kernels; every window must keep its answer.
FP32_PROVIDER_SLACK = 4.0
# Lossy variants (int8, fp16) and reduced-precision inference (bf16): the logit bound is
# a multiple of what the variant itself measured at export, never below a floor scaled
# to the reference logits; most windows must keep their answer. The reference windows
# are the parity windows with the clearest best span, so a sound variant keeps them all,
# and a broken path (random answers) keeps almost none.
LOSSY_DIFF_FACTOR = 3.0
LOSSY_FLOOR_OF_RANGE = 0.1  # floor: this share of the reference logits' spread
LOSSY_MIN_AGREEMENT = 0.75
# A variant whose export measured its F1 drop over the export's budget (--max-f1-drop, the
# whole interval above it) is refused at load, unless the export was written with
# --force: few reference windows cannot see a few points of F1, the export's paired
# evidence on its parity questions can. Without that evidence the logits decide alone.
Runner = Callable[[Sequence[Window]], list[tuple[np.ndarray, np.ndarray]]]


class SelfCheckError(RuntimeError):
    """The model's own reference answers do not come out on this provider and precision."""


@dataclass(frozen=True)
class Tolerance:
    """What a run must meet to pass.

    Attributes:
        max_abs_logit_diff: Bound on max |logit - PyTorch's| over real tokens.
        min_answer_agreement: Share of reference windows whose best span must be PyTorch's.
        kind: How the bound was set (for humans).
    """

    max_abs_logit_diff: float
    min_answer_agreement: float
    kind: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Tolerance:
        return cls(
            float(raw["max_abs_logit_diff"]),
            float(raw["min_answer_agreement"]),
            str(raw.get("kind", "")),
        )

    def loosened_for(self, reduced: Tolerance) -> Tolerance:
        """The looser of this and ``reduced`` (for inference below the graph's precision)."""
        return Tolerance(
            max(self.max_abs_logit_diff, reduced.max_abs_logit_diff),
            min(self.min_answer_agreement, reduced.min_answer_agreement),
            f"{self.kind}; loosened for {reduced.kind}",
        )


@dataclass(frozen=True)
class ReferenceWindow:
    """One stored window: model inputs, where its context lies, PyTorch's logits."""

    input_ids: np.ndarray  # (seq,)
    type_ids: np.ndarray  # (seq,)
    context_mask: np.ndarray  # (seq,) bool
    start_logits: np.ndarray  # (seq,) float32
    end_logits: np.ndarray  # (seq,) float32

    def as_window(self) -> Window:
        n = len(self.input_ids)
        offsets = np.stack([np.arange(n), np.arange(n) + 1], axis=1)  # token i -> chars [i, i+1)
        return Window(self.input_ids, self.type_ids, offsets, self.context_mask)

    def to_dict(self) -> dict[str, Any]:
        context = np.flatnonzero(self.context_mask)
        return {
            "input_ids": self.input_ids.tolist(),
            "type_ids": self.type_ids.tolist(),
            "context": [int(context[0]), int(context[-1]) + 1] if context.size else [0, 0],
            "start_logits": [round(float(x), 5) for x in self.start_logits],
            "end_logits": [round(float(x), 5) for x in self.end_logits],
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ReferenceWindow:
        ids = np.asarray(raw["input_ids"], dtype=np.int64)
        mask = np.zeros(len(ids), dtype=bool)
        lo, hi = raw["context"]
        mask[lo:hi] = True
        return cls(
            ids,
            np.asarray(raw["type_ids"], dtype=np.int64),
            mask,
            np.asarray(raw["start_logits"], dtype=np.float32),
            np.asarray(raw["end_logits"], dtype=np.float32),
        )


def best_span(
    start: np.ndarray, end: np.ndarray, window: Window, max_answer_length: int
) -> tuple[tuple[int, int], float]:
    """The decoder's best token span of one window, and its lead over the runner-up."""
    decoded = decode_question(
        [WindowLogits(start, end, window.offsets, window.context_mask)],
        " " * len(window),
        top_k=2,
        max_answer_length=max_answer_length,
    )
    first = decoded.answers[0]
    margin = first.logit - decoded.answers[1].logit if len(decoded.answers) > 1 else np.inf
    return (first.start, first.end), float(margin)


def measure(
    reference: Sequence[ReferenceWindow],
    outputs: Sequence[tuple[np.ndarray, np.ndarray]],
    max_answer_length: int,
) -> tuple[float, float]:
    """Max |logit difference| and answer agreement of ``outputs`` against ``reference``."""
    worst = 0.0
    same = 0
    for ref, (start, end) in zip(reference, outputs, strict=True):
        diff = max(
            float(np.max(np.abs(start - ref.start_logits))),
            float(np.max(np.abs(end - ref.end_logits))),
        )
        worst = max(worst, diff) if np.isfinite(diff) else float("inf")
        window = ref.as_window()
        want, _ = best_span(ref.start_logits, ref.end_logits, window, max_answer_length)
        got, _ = best_span(start, end, window, max_answer_length)
        same += want == got
    return worst, same / max(1, len(reference))


@dataclass
class SelfCheck:
    """The reference an export carries (``self_check.json`` plus the manifest's summary)."""

    windows: list[ReferenceWindow]
    tolerance: Tolerance
    max_answer_length: int = 30
    export: dict[str, Any] = field(default_factory=dict)  # what the variant measured there

    def save(self, directory: Path) -> dict[str, Any]:
        """Write ``self_check.json``; return the manifest's ``self_check`` summary."""
        body = {"format": FORMAT, "windows": [w.to_dict() for w in self.windows]}
        text = json.dumps(body, separators=(",", ":"))
        (Path(directory) / SELF_CHECK_NAME).write_text(text + "\n")
        return {
            "format": FORMAT,
            "file": SELF_CHECK_NAME,
            "windows": len(self.windows),
            "reference": "PyTorch fp32",
            "max_answer_length": self.max_answer_length,
            "tolerance": self.tolerance.to_dict(),
            "export": self.export,
            "bytes": len(text) + 1,
        }

    @classmethod
    def load(cls, directory: Path, summary: dict[str, Any]) -> SelfCheck:
        """Read the check of an export dir from its manifest summary.

        Raises:
            FileNotFoundError / ValueError: The file is missing or corrupt (named).
        """
        path = Path(directory) / str(summary.get("file", SELF_CHECK_NAME))
        if not path.is_file():
            raise FileNotFoundError(f"{path}: the manifest lists a self-check file that is missing")
        try:
            body = json.loads(path.read_text())
            windows = [ReferenceWindow.from_dict(w) for w in body["windows"]]
            tolerance = Tolerance.from_dict(summary["tolerance"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{path}: not a valid self-check file ({err})") from err
        return cls(
            windows, tolerance, int(summary.get("max_answer_length", 30)), summary.get("export", {})
        )


@dataclass
class Verdict:
    """What the self-check found for one provider and precision.

    Attributes:
        status: ``passed``, ``failed``, ``skipped`` (``verify=False``) or ``unverified``
            (an export without reference windows).
        device: The device string the engine was built with (e.g. ``openvino:f32``).
        providers: onnxruntime providers of the session.
        precision: What computes: the graph's precision, or the inference hint below it.
        max_abs_logit_diff / answer_agreement: Measured against PyTorch.
        tolerance: What had to be met.
        windows: Reference windows run.
        seconds: Time the check took.
        tried: Earlier candidates that failed (``device="auto"`` or plain ``openvino``).
        export_f1_drop: The F1 drop the export measured for this variant, judged against
            the export's ``--max-f1-drop``; ``decision == "over"`` fails the check unless
            the export was written with ``--force``. None: no accuracy evidence (the
            logits decide alone), or an export written before it was recorded.
        forced_over_budget: Passed although over budget, because the export was
            written with ``--force`` (the engine warns).
    """

    status: str
    device: str
    providers: list[str]
    precision: str
    max_abs_logit_diff: float | None = None
    answer_agreement: float | None = None
    tolerance: dict[str, Any] | None = None
    windows: int = 0
    seconds: float = 0.0
    tried: list[dict[str, Any]] = field(default_factory=list)
    export_f1_drop: dict[str, Any] | None = None
    forced_over_budget: bool = False

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        """One line for logs and CLI output."""
        if self.max_abs_logit_diff is None:
            return f"self-check {self.status} on {self.device} ({self.precision})"
        tol = self.tolerance or {}
        return (
            f"self-check {self.status} on {self.device} ({self.precision}, {self.providers[0]}): "
            f"max|dlogit| {self.max_abs_logit_diff:.3g} "
            f"(bound {tol.get('max_abs_logit_diff', 0):.3g}), "
            f"answers agree {self.answer_agreement:.0%} (floor "
            f"{tol.get('min_answer_agreement', 0):.0%}) on {self.windows} windows, "
            f"{self.seconds * 1000:.0f} ms"
            + (
                f"; export measured F1 drop {self.export_f1_drop['point']:+.2f}% "
                f"[{self.export_f1_drop['low']:+.2f}, {self.export_f1_drop['high']:+.2f}] "
                f"({self.export_f1_drop['decision']} {self.export_f1_drop.get('budget', 1):g}%"
                + (", written with --force" if self.forced_over_budget else "")
                + ")"
                if self.export_f1_drop
                else ""
            )
        )


def run_check(
    check: SelfCheck,
    run: Runner,
    *,
    device: str,
    providers: list[str],
    precision: str,
    reduced: Tolerance | None = None,
) -> Verdict:
    """Run the reference windows with ``run`` and judge them.

    Args:
        check: The export's reference.
        run: Runs windows the way the engine does (its batching included).
        device / providers / precision: Recorded in the verdict.
        reduced: Tolerance of inference below the graph's precision (bf16 hint), if any.
    """
    tolerance = check.tolerance if reduced is None else check.tolerance.loosened_for(reduced)
    began = time.perf_counter()
    outputs = run([w.as_window() for w in check.windows])
    diff, agreement = measure(check.windows, outputs, check.max_answer_length)
    passed = diff <= tolerance.max_abs_logit_diff and agreement >= tolerance.min_answer_agreement
    accuracy = check.export.get("f1_drop") or None
    over = accuracy is not None and accuracy.get("decision") == "over"
    forced = over and bool(check.export.get("written_with_force"))
    if over and not forced:
        passed = False
    return Verdict(
        status="passed" if passed else "failed",
        export_f1_drop=accuracy,
        forced_over_budget=forced,
        device=device,
        providers=providers,
        precision=precision,
        max_abs_logit_diff=diff,
        answer_agreement=agreement,
        tolerance=tolerance.to_dict(),
        windows=len(check.windows),
        seconds=time.perf_counter() - began,
    )


def reference_spread(windows: Sequence[ReferenceWindow]) -> float:
    """Spread of the reference logits on context tokens (robust: 95th - 5th percentile)."""
    values = np.concatenate(
        [
            np.concatenate([w.start_logits[w.context_mask], w.end_logits[w.context_mask]])
            for w in windows
        ]
    )
    if values.size == 0:
        return 1.0
    return float(np.percentile(values, 95) - np.percentile(values, 5))


def reduced_precision_tolerance(windows: Sequence[ReferenceWindow], kind: str) -> Tolerance:
    """The bound for inference below the graph's precision (e.g. OpenVINO's bf16 hint)."""
    return Tolerance(LOSSY_FLOOR_OF_RANGE * reference_spread(windows), LOSSY_MIN_AGREEMENT, kind)


def export_tolerance(
    precision: str,
    windows: Sequence[ReferenceWindow],
    measured_diff: float,
    fp32_atol: float,
) -> Tolerance:
    """The tolerance an export records for its variant.

    Args:
        precision: The variant's manifest precision.
        windows: The reference windows.
        measured_diff: max |dlogit| of the variant on them at export.
        fp32_atol: The fp32 parity gate that applied to this graph.
    """
    if precision == "fp32":
        return Tolerance(
            fp32_atol * FP32_PROVIDER_SLACK, 1.0, f"fp32: {FP32_PROVIDER_SLACK:g}x the export gate"
        )
    floor = LOSSY_FLOOR_OF_RANGE * reference_spread(windows)
    return Tolerance(
        max(LOSSY_DIFF_FACTOR * measured_diff, floor),
        LOSSY_MIN_AGREEMENT,
        f"{precision}: max({LOSSY_DIFF_FACTOR:g}x export's {measured_diff:.3g}, "
        f"{LOSSY_FLOOR_OF_RANGE:g}x logit spread)",
    )


def pick_reference(
    candidates: Sequence[ReferenceWindow],
    question_of: Sequence[int],
    max_answer_length: int,
    count: int = REFERENCE_WINDOWS,
) -> list[ReferenceWindow]:
    """The ``count`` windows whose best span leads its runner-up the most, one per question
    first: a sound variant keeps their answers, so a lost one means a broken path."""
    short = [i for i, ref in enumerate(candidates) if len(ref.input_ids) <= SHORT_WINDOW]
    if len(short) < count:  # else the shortest windows there are
        short = sorted(range(len(candidates)), key=lambda i: len(candidates[i].input_ids))
        short = short[: max(count, len(short) // 4)]
    scored = []
    for i in short:
        ref = candidates[i]
        if not ref.context_mask.any():
            continue
        _, margin = best_span(ref.start_logits, ref.end_logits, ref.as_window(), max_answer_length)
        scored.append((margin, i))
    scored.sort(key=lambda t: (-t[0], t[1]))
    picked: list[int] = []
    seen: set[int] = set()
    for _, i in scored:  # distinct questions first
        if question_of[i] not in seen:
            picked.append(i)
            seen.add(question_of[i])
        if len(picked) == count:
            break
    for _, i in scored:  # then fill up
        if len(picked) >= count:
            break
        if i not in picked:
            picked.append(i)
    return [candidates[i] for i in sorted(picked)]
