"""How sure is a variant's F1 drop? A paired bootstrap over the parity questions.

``--quantize auto`` and ``--quantize int8-dynamic`` keep a variant only when the evidence
says its F1 drop is within ``--max-f1-drop``. A point estimate cannot: measured on a
MiniLM SQuAD fine-tune, 200 parity questions showed int8-dynamic-mixed losing 1.47% F1
where the full dev (10,570 questions) shows 0.23%. Both models answer the same questions,
so the drop is estimated from per-question F1 pairs, resampling questions with
replacement; the interval decides, and when it straddles the budget the sample cannot
decide and the estimate says roughly how many questions would.

The export looks at the evidence as it grows (:func:`sequential_f1_drop`): at 32, 64,
128, ... questions and at the cap, stopping as soon as an interval decides. Peeking at a
95% interval after every block would inflate the error rate, so the looks split the
error budget (Bonferroni, which holds whatever the dependence between looks): half of
``1 - confidence`` goes to the last look, the other half is shared by the earlier ones.
With a cap of 1,000 that is six looks: five at 99.5%, the last at 97.5%, and the chance
that any look decides wrongly stays at most 5%.

That bound is only as good as each look's interval, and a percentile bootstrap cannot see
changes a small sample has not shown: at 32 questions with no changed answer its interval
is [0, 0], an early ``within`` resting on a handful of unchanged answers. So a lossy
variant's looks resample two pseudo-questions besides the real ones (``pseudo_pairs``):
one answer lost outright (100 -> 0 F1) and one gained (0 -> 100), the bootstrap's
"plus two" (as Agresti-Coull adds two successes and two failures to a proportion). The
point estimate is the real questions'; the interval then stays wide until enough real
questions show that changes are rare: with no changed answer at all, a 1% budget on a
~64-F1 model is decided only at ~1,000 questions (at 512 the early look's 99.5% interval
still reaches ~1.3%).

F1 is accuracy evidence only on real questions a model can answer: generated pairs have
no gold answers, and a model with no skill on the questions (random weights: F1 ~0 for
PyTorch and variant alike) makes any drop noise (:func:`missing_accuracy_evidence`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

RESAMPLES = 5000  # enough for the 0.25% tails of an early look's 99.5% interval
CONFIDENCE = 0.95
FIRST_LOOK = 32  # questions at the first look; each next look doubles them
# PyTorch's own F1 below this on the questions means the model cannot answer them: an F1
# drop against it is noise, not evidence.
MIN_REFERENCE_F1 = 10.0
# Paired per-question F1 of the reference and the variant on the first n questions.
PairedScores = Callable[[int], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class DropEstimate:
    """Relative F1 drop (% of the reference's F1) with its bootstrap interval.

    Attributes:
        point: The drop on the parity questions (negative: the variant scored higher).
        low / high: The ``confidence`` interval.
        confidence: E.g. 0.95.
        questions: Questions the estimate rests on.
        budget: The ``--max-f1-drop`` it was judged against.
        decision: ``within`` (high <= budget), ``over`` (low > budget) or ``undecided``.
        questions_needed: For ``undecided``: about how many questions would decide
            (the interval narrows as 1/sqrt(n)); None when it is decided, or when the
            point sits on the budget itself.
        looks: Question counts at which the evidence was looked at (sequential test).
        cap: Questions available: where the test stops when no look decides.
    """

    point: float
    low: float
    high: float
    confidence: float
    questions: int
    budget: float
    decision: str
    questions_needed: int | None
    looks: tuple[int, ...] = ()
    cap: int | None = None

    def to_dict(self) -> dict[str, Any]:
        raw = asdict(self)
        raw["looks"] = list(self.looks)
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in raw.items()}

    def describe(self) -> str:
        text = (
            f"F1 drop {self.point:+.2f}% [{self.low:+.2f}, {self.high:+.2f}] "
            f"({self.confidence * 100:g}%, {self.questions} questions): {self.decision}"
        )
        if self.decision == "undecided":
            more = f"~{self.questions_needed:,}" if self.questions_needed else "many more"
            text += f" against {self.budget:g}%; {more} questions would decide"
        else:
            text += f" against {self.budget:g}%"
        if self.cap is not None and len(self.looks) > 1:
            text += f" (looks at {', '.join(map(str, self.looks))} of {self.cap})"
        elif self.cap is not None and self.questions < self.cap:
            text += f" (decided at the first look; {self.cap} available)"
        return text


def relative_drop(reference: np.ndarray, variant: np.ndarray) -> float:
    """100 x (mean(reference) - mean(variant)) / mean(reference)."""
    base = float(np.mean(reference))
    if base <= 0:
        return 0.0 if float(np.mean(variant)) >= base else math.inf
    return 100.0 * (base - float(np.mean(variant))) / base


def f1_drop(
    reference: np.ndarray,
    variant: np.ndarray,
    budget: float,
    *,
    resamples: int = RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 0,
    pseudo_pairs: bool = False,
) -> DropEstimate:
    """Estimate the relative F1 drop of ``variant`` from paired per-question F1 scores.

    Args:
        reference: Per-question F1 of the reference (PyTorch fp32), ``(questions,)``.
        variant: Per-question F1 of the variant on the same questions.
        budget: Largest acceptable drop (%).
        pseudo_pairs: Resample one lost and one gained answer besides the real questions
            (see the module docstring): for a lossy variant, whose unseen changes a
            small sample cannot show. The point estimate is the real questions' alone.
    """
    reference = np.asarray(reference, dtype=np.float64)
    variant = np.asarray(variant, dtype=np.float64)
    if reference.shape != variant.shape or reference.ndim != 1 or reference.size == 0:
        raise ValueError(f"need paired 1-D scores, got {reference.shape} and {variant.shape}")
    n = reference.size
    point = relative_drop(reference, variant)
    if pseudo_pairs:
        reference = np.concatenate([reference, [100.0, 0.0]])
        variant = np.concatenate([variant, [0.0, 100.0]])
    rng = np.random.default_rng(seed)
    size = reference.size
    picks = rng.integers(0, size, size=(resamples, size))  # (resamples, questions)
    ref_means = reference[picks].mean(axis=1)
    var_means = variant[picks].mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        drops = np.where(ref_means > 0, 100.0 * (ref_means - var_means) / ref_means, 0.0)
    tail = (1.0 - confidence) / 2.0
    low, high = (float(x) for x in np.quantile(drops, [tail, 1.0 - tail]))
    low, high = min(low, point), max(high, point)
    if high <= budget:
        decision, needed = "within", None
    elif low > budget:
        decision, needed = "over", None
    else:
        decision = "undecided"
        half = (high - low) / 2.0
        gap = abs(budget - point)
        needed = math.ceil(n * (half / gap) ** 2) if gap > 0 else None
    return DropEstimate(point, low, high, confidence, n, budget, decision, needed)


def look_schedule(cap: int, first: int = FIRST_LOOK) -> list[int]:
    """Question counts to look at: ``first``, doubling, then ``cap`` (a last doubling that
    would land within 1.5x of the cap is skipped)."""
    if cap < 1 or first < 1:
        raise ValueError(f"cap and first must be >= 1, got {cap} and {first}")
    looks = []
    n = first
    while n * 3 // 2 <= cap:
        looks.append(n)
        n *= 2
    looks.append(cap)
    return looks


def look_alphas(looks: int, alpha: float) -> list[float]:
    """Error budget of each look (weighted Bonferroni): half of ``alpha`` for the last,
    the other half shared by the earlier ones. They sum to ``alpha``."""
    if looks < 1:
        raise ValueError(f"looks must be >= 1, got {looks}")
    if looks == 1:
        return [alpha]
    return [alpha / 2 / (looks - 1)] * (looks - 1) + [alpha / 2]


def sequential_f1_drop(
    paired: PairedScores,
    budget: float,
    cap: int,
    *,
    confidence: float = CONFIDENCE,
    first: int = FIRST_LOOK,
    on_look: Callable[[DropEstimate], None] | None = None,
    pseudo_pairs: bool = True,
) -> DropEstimate:
    """The F1 drop, looked at on growing prefixes of the questions until it is decided.

    At each look of :func:`look_schedule` the paired bootstrap interval is taken at the
    look's share of the error budget (:func:`look_alphas`); the test stops at the first
    ``within`` or ``over``, else at the cap as ``undecided``.

    Args:
        paired: Per-question F1 of reference and variant on the first n questions
            (computing them lazily is the point: a decided variant runs no further).
        budget: Largest acceptable drop (%).
        cap: Questions available.
        on_look: Called with the estimate of every look.
        pseudo_pairs: See :func:`f1_drop` (on by default: the looks judge lossy variants).
    """
    looks = look_schedule(cap, first)
    alphas = look_alphas(len(looks), 1.0 - confidence)
    estimate: DropEstimate | None = None
    for i, (n, alpha) in enumerate(zip(looks, alphas, strict=True)):
        reference, variant = paired(n)
        estimate = f1_drop(
            reference, variant, budget, confidence=1.0 - alpha, pseudo_pairs=pseudo_pairs
        )
        estimate = replace(estimate, looks=tuple(looks[: i + 1]), cap=cap)
        if on_look is not None:
            on_look(estimate)
        if estimate.decision != "undecided":
            break
    assert estimate is not None  # looks is never empty
    return estimate


def missing_accuracy_evidence(reference: np.ndarray | None) -> str | None:
    """Why F1 is no accuracy evidence on these questions, or None when it is.

    Args:
        reference: PyTorch's per-question F1 on gold answers; None for generated pairs.
    """
    if reference is None:
        return (
            "generated question/context pairs have no gold answers, so they measure logit "
            "parity and answer agreement, never F1"
        )
    f1 = float(np.mean(reference))
    if f1 < MIN_REFERENCE_F1:
        return (
            f"PyTorch's own F1 on the first {reference.size} questions is {f1:.1f} (below "
            f"{MIN_REFERENCE_F1:g}): the model cannot answer them (random weights?), so an "
            "F1 drop would be noise"
        )
    return None
