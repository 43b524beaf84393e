"""The official SQuAD metrics, reimplemented without dependencies.

This follows ``evaluate-v1.1.py`` and ``evaluate-v2.0.py`` from the SQuAD website line by
line (normalisation, token F1, max over gold answers, the v2 no-answer threshold search),
so numbers are comparable with published results. Deliberate differences, all for inputs
the official scripts crash on or mis-score:

- a missing prediction scores 0 (v1 does this; v2 silently shrinks the total) and is
  reported in a warning; predictions for unknown ids are ignored;
- a question with no gold answer at all in v1 scores 0 (the v1 script crashes);
- ``no_answer_probs`` must cover every predicted question (``ValueError`` otherwise);
- in the v2 best-threshold search, missing predictions count as wrong at every threshold.
"""

from __future__ import annotations

import re
import string
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from qa_engine.data import QAExample, gold_answers

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = frozenset(string.punctuation)
_WARN_IDS = 5  # how many question ids a warning names


def normalize_answer(text: str) -> str:
    """Lower-case, remove punctuation, articles (a/an/the) and extra whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match_score(prediction: str, ground_truth: str) -> bool:
    """Whether the normalised prediction equals the normalised gold answer."""
    return normalize_answer(prediction) == normalize_answer(ground_truth)


def f1_score(prediction: str, ground_truth: str, *, version_2: bool = False) -> float:
    """Token-level F1 between a prediction and one gold answer.

    Args:
        prediction: Predicted answer text.
        ground_truth: Gold answer text.
        version_2: Use ``evaluate-v2.0.py``'s rule that when either side normalises to
            no tokens the score is 1.0 if both do and 0.0 otherwise. v1.1 scores 0.0
            whenever no token is shared, including two empty answers.

    Returns:
        F1 in [0, 1].
    """
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(ground_truth).split()
    if version_2 and (not pred_tokens or not gold_tokens):
        return float(pred_tokens == gold_tokens)
    num_same = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(pred_tokens)
    recall = num_same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def _check_inputs(predictions: Mapping[str, str], references: Mapping[str, Any]) -> list[str]:
    """Type-check predictions and return the reference ids lacking one (with a warning)."""
    if not references:
        raise ValueError("no references to score")
    for qid, pred in predictions.items():
        if not isinstance(pred, str):
            raise TypeError(f"prediction for {qid!r} must be a str, got {type(pred).__name__}")
    missing = [qid for qid in references if qid not in predictions]
    if missing:
        shown = ", ".join(missing[:_WARN_IDS]) + (", ..." if len(missing) > _WARN_IDS else "")
        warnings.warn(
            f"{len(missing)} of {len(references)} questions have no prediction and score 0 "
            f"({shown})",
            stacklevel=3,
        )
    return missing


def squad_v1_metrics(
    predictions: Mapping[str, str], references: Mapping[str, list[str]]
) -> dict[str, float | int]:
    """SQuAD v1.1 exact match and F1, as ``evaluate-v1.1.py`` computes them.

    Args:
        predictions: Question id to predicted answer text.
        references: Question id to its gold answer texts.

    Returns:
        ``{"exact_match", "f1"}`` as percentages (0-100), max over gold answers and
        averaged over all references, and ``"total"``, the number of references.
    """
    _check_inputs(predictions, references)
    exact = f1 = 0.0
    for qid, golds in references.items():
        if qid not in predictions:
            continue
        pred = predictions[qid]
        exact += max((float(exact_match_score(pred, g)) for g in golds), default=0.0)
        f1 += max((f1_score(pred, g) for g in golds), default=0.0)
    total = len(references)
    return {"exact_match": 100.0 * exact / total, "f1": 100.0 * f1 / total, "total": total}


def _average(
    exact: Mapping[str, float], f1: Mapping[str, float], qids: list[str]
) -> tuple[float, float, int]:
    """``make_eval_dict``: exact and F1 percentages over ``qids``, and their count."""
    return (
        100.0 * sum(exact[q] for q in qids) / len(qids),
        100.0 * sum(f1[q] for q in qids) / len(qids),
        len(qids),
    )


def _best_threshold(
    predictions: Mapping[str, str],
    scores: Mapping[str, float],
    na_probs: Mapping[str, float],
    has_answer: Mapping[str, bool],
) -> tuple[float, float]:
    """``find_best_thresh``: the no-answer threshold that maximises the total score.

    Start from "answer nothing" (every unanswerable question right), then lower the bar
    one question at a time, in order of no-answer probability, keeping the best total.
    """
    answered = {q for q in has_answer if q in predictions}
    score = best = float(sum(1 for q in answered if not has_answer[q]))
    best_thresh = 0.0
    # iterate na_probs itself: its order breaks ties, and ties can move the best score
    for qid in sorted(na_probs, key=lambda q: na_probs[q]):
        if qid not in answered:
            continue
        if has_answer[qid]:
            score += scores[qid]
        elif predictions[qid]:  # the raw string, not normalised, as the official script
            score -= 1
        if score > best:
            best, best_thresh = score, float(na_probs[qid])
    return 100.0 * best / len(has_answer), best_thresh


def squad_v2_metrics(
    predictions: Mapping[str, str],
    references: Mapping[str, list[str]],
    no_answer_probs: Mapping[str, float] | None = None,
    na_prob_thresh: float = 1.0,
) -> dict[str, float | int]:
    """SQuAD v2.0 metrics, with the keys and logic of ``evaluate-v2.0.py``.

    Args:
        predictions: Question id to predicted answer text ("" predicts no answer).
        references: Question id to its gold answer texts; ``[]`` or ``[""]`` for an
            unanswerable question.
        no_answer_probs: Question id to the model's no-answer probability. When given,
            a prediction whose probability exceeds ``na_prob_thresh`` counts as "no
            answer", and the best thresholds are searched.
        na_prob_thresh: Threshold for ``no_answer_probs``.

    Returns:
        ``exact``, ``f1``, ``total``; ``HasAns_*`` and ``NoAns_*`` (each ``exact``,
        ``f1``, ``total``) when such questions exist; with ``no_answer_probs`` also
        ``best_exact``, ``best_exact_thresh``, ``best_f1``, ``best_f1_thresh``.
        Scores are percentages (0-100).
    """
    missing = set(_check_inputs(predictions, references))
    if no_answer_probs is not None:
        lacking = [q for q in references if q in predictions and q not in no_answer_probs]
        if lacking:
            raise ValueError(
                f"no_answer_probs lacks {len(lacking)} predicted question(s): "
                + ", ".join(lacking[:_WARN_IDS])
            )
    # has-answer is decided by the raw texts, golds by normalised ones, as in the script
    has_answer = {q: any(a != "" for a in golds) for q, golds in references.items()}
    exact_raw: dict[str, float] = {}
    f1_raw: dict[str, float] = {}
    for qid, golds in references.items():
        golds = [a for a in golds if normalize_answer(a)] or [""]
        if qid in missing:
            exact_raw[qid] = f1_raw[qid] = 0.0
            continue
        pred = predictions[qid]
        exact_raw[qid] = max(float(exact_match_score(pred, g)) for g in golds)
        f1_raw[qid] = max(f1_score(pred, g, version_2=True) for g in golds)

    # the script's default when no probabilities are given: 0.0 for every prediction
    probs = no_answer_probs if no_answer_probs is not None else dict.fromkeys(predictions, 0.0)

    def thresholded(scores: dict[str, float]) -> dict[str, float]:
        return {
            q: float(not has_answer[q]) if q not in missing and probs[q] > na_prob_thresh else s
            for q, s in scores.items()
        }

    exact, f1 = thresholded(exact_raw), thresholded(f1_raw)
    out: dict[str, float | int] = {}
    out["exact"], out["f1"], out["total"] = _average(exact, f1, list(references))
    for prefix, wanted in (("HasAns", True), ("NoAns", False)):
        qids = [q for q in references if has_answer[q] is wanted]
        if qids:  # the script omits an empty group
            values = _average(exact, f1, qids)
            out.update(
                zip((f"{prefix}_exact", f"{prefix}_f1", f"{prefix}_total"), values, strict=True)
            )
    if no_answer_probs is not None:
        out["best_exact"], out["best_exact_thresh"] = _best_threshold(
            predictions, exact_raw, no_answer_probs, has_answer
        )
        out["best_f1"], out["best_f1_thresh"] = _best_threshold(
            predictions, f1_raw, no_answer_probs, has_answer
        )
    return out


def squad_metrics(
    predictions: Mapping[str, str],
    examples: Iterable[QAExample],
    version_2: bool,
    no_answer_probs: Mapping[str, float] | None = None,
) -> dict[str, float | int]:
    """Score predictions against loaded examples with the v1.1 or v2.0 metric.

    Answerable questions left with no gold answer (all offsets were bad, see
    :mod:`qa_engine.data`) cannot be scored: they are left out, with a warning, rather
    than being mistaken for unanswerable ones.

    Args:
        predictions: Question id to predicted answer text.
        examples: The questions, e.g. a :class:`~qa_engine.data.SquadData`.
        version_2: Use :func:`squad_v2_metrics` instead of :func:`squad_v1_metrics`.
        no_answer_probs: Passed to :func:`squad_v2_metrics` (v2 only).

    Returns:
        The metric dict of the chosen version.
    """
    references: dict[str, list[str]] = {}
    unscorable: list[str] = []
    for ex in examples:
        golds = gold_answers(ex)
        if golds:
            references[ex.id] = golds
        else:
            unscorable.append(ex.id)
    if unscorable:
        warnings.warn(
            f"{len(unscorable)} answerable question(s) have no valid gold answer and are "
            f"not scored ({', '.join(unscorable[:_WARN_IDS])})",
            stacklevel=2,
        )
    if version_2:
        return squad_v2_metrics(predictions, references, no_answer_probs)
    if no_answer_probs is not None:
        raise ValueError("no_answer_probs is only used with version_2=True")
    return squad_v1_metrics(predictions, references)
