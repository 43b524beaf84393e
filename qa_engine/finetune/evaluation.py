"""Dev-set scoring: model logits -> the project's decoder -> the official SQuAD metrics.

The same ``decode_question`` the runtime uses turns each question's windows into an
answer, so the F1 measured here is the F1 the exported model will give.

SQuAD 2.0: every question is decoded to its best non-null span, and the no-answer score
``null_score - best_span_score`` goes to the official threshold search (``best_f1``). The
reported ``exact``/``f1`` use that tuned threshold, which is stored with the model.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from qa_engine.data import QAExample
from qa_engine.decoding import WindowLogits, decode_question
from qa_engine.metrics import squad_metrics

# Questions with no valid span at all have null_minus_best = +inf; JSON wants a number.
_FINITE_LIMIT = 1e6


@dataclass
class DevPredictions:
    """Decoded dev predictions.

    Attributes:
        answers: Question id to the best non-null answer text.
        null_minus_best: Question id to ``null_score - best_span_score``.
    """

    answers: dict[str, str]
    null_minus_best: dict[str, float]


def decode_features(
    examples: Sequence[QAExample],
    features: Any,
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    *,
    max_answer_length: int = 30,
    n_best: int = 20,
) -> DevPredictions:
    """Decode every question from the logits of its windows.

    Args:
        examples: The dev questions.
        features: Their windows (from ``prepare_validation_features``), in logits order.
        start_logits: ``(windows, padded_seq)`` start logits (padding is cut per window).
        end_logits: ``(windows, padded_seq)`` end logits.
        max_answer_length: Longest answer in tokens.
        n_best: Start/end candidates per window.

    Returns:
        Answers and no-answer scores per question id.
    """
    if len(features) != start_logits.shape[0]:
        raise ValueError(f"{len(features)} windows but {start_logits.shape[0]} logit rows")
    windows_of: dict[str, list[WindowLogits]] = defaultdict(list)
    for i, (qid, offsets, mask) in enumerate(
        zip(
            features["example_id"],
            features["offset_mapping"],
            features["context_mask"],
            strict=True,
        )
    ):
        n = len(mask)  # the window's real length; logits beyond it are batch padding
        windows_of[qid].append(
            WindowLogits(
                start_logits=start_logits[i, :n],
                end_logits=end_logits[i, :n],
                offsets=np.asarray(offsets, dtype=np.int64).reshape(n, 2),
                context_mask=np.asarray(mask, dtype=bool),
            )
        )
    answers: dict[str, str] = {}
    null_minus_best: dict[str, float] = {}
    for ex in examples:
        windows = windows_of.get(ex.id)
        if not windows:
            continue
        decoded = decode_question(
            windows, ex.context, n_best=n_best, max_answer_length=max_answer_length
        )
        answers[ex.id] = decoded.answers[0].text
        null_minus_best[ex.id] = float(
            np.clip(decoded.null_minus_best, -_FINITE_LIMIT, _FINITE_LIMIT)
        )
    return DevPredictions(answers, null_minus_best)


def score_predictions(
    predictions: DevPredictions, examples: Sequence[QAExample], version_2: bool
) -> dict[str, float]:
    """Official metrics; for SQuAD 2.0 at the best-F1 null threshold.

    Returns:
        v1.1: ``exact_match``, ``f1``. v2.0: ``exact_match`` and ``f1`` at the tuned
        threshold, ``null_threshold``, ``HasAns_*``/``NoAns_*``, and ``f1_thresh0`` (F1 with
        the threshold at 0, no tuning). All scores are percentages.
    """
    if not version_2:
        out = squad_metrics(predictions.answers, examples, version_2=False)
        return {"exact_match": float(out["exact_match"]), "f1": float(out["f1"])}
    probs = predictions.null_minus_best
    tuned = squad_metrics(predictions.answers, examples, True, no_answer_probs=probs)
    threshold = float(tuned["best_f1_thresh"])
    at_zero = _v2_at(predictions, examples, 0.0)
    out = _v2_at(predictions, examples, threshold)
    metrics = {"exact_match": out["exact"], "f1": out["f1"], "null_threshold": threshold}
    metrics["f1_thresh0"] = at_zero["f1"]
    for key, value in out.items():
        if key.startswith(("HasAns_", "NoAns_")) and not key.endswith("_total"):
            metrics[key] = value
    return {k: float(v) for k, v in metrics.items() if math.isfinite(float(v))}


def _v2_at(predictions: DevPredictions, examples: Sequence[QAExample], threshold: float) -> dict:
    """v2 metrics when "no answer" is predicted where null_minus_best > threshold."""
    answers = {
        qid: "" if predictions.null_minus_best[qid] > threshold else text
        for qid, text in predictions.answers.items()
    }
    return squad_metrics(answers, examples, version_2=True)
