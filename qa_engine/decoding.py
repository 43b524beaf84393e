"""Span decoding: from start/end logits over sliding windows to answers (pure numpy).

One decoder serves the runtime, the fine-tune evaluation and the benchmark, so the
three can never disagree on how a span is chosen. It follows the logic of
transformers' ``run_qa.py`` ``postprocess_qa_predictions`` with one deliberate
difference: the top-n start/end candidates are taken over *context* tokens only
(run_qa takes them over all tokens and then drops question tokens, so a window whose
top-n are question tokens yields no candidate at all).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# A very negative value for masked logits; finite so that sums never produce NaN.
_MASKED = -1e9


@dataclass(frozen=True)
class Answer:
    """One answer span.

    Attributes:
        text: The answer, always ``context[start:end]`` ("" for "no answer").
        score: Probability of this span, softmax-normalised over the kept candidates.
        start: Character offset of the answer's first character in the context.
        end: Character offset one past the answer's last character.
        logit: Raw span score, start logit + end logit (null score for "no answer").
    """

    text: str
    score: float
    start: int
    end: int
    logit: float = 0.0


@dataclass(frozen=True)
class WindowLogits:
    """Model outputs and token geometry of one window (one feature) of a question.

    Attributes:
        start_logits: ``(seq,)`` start logits.
        end_logits: ``(seq,)`` end logits.
        offsets: ``(seq, 2)`` character offsets of each token into the context.
        context_mask: ``(seq,)`` True where the token belongs to the context.
    """

    start_logits: np.ndarray
    end_logits: np.ndarray
    offsets: np.ndarray
    context_mask: np.ndarray


@dataclass(frozen=True)
class DecodedQuestion:
    """Result of decoding all windows of one question.

    Attributes:
        answers: Best answers, best first (at most ``top_k``).
        best_span_score: start + end logit of the best non-null span (-inf if none).
        null_score: min over windows of start[CLS] + end[CLS].
    """

    answers: list[Answer]
    best_span_score: float
    null_score: float

    @property
    def null_minus_best(self) -> float:
        """SQuAD 2.0 no-answer score: answer "" when this exceeds the threshold."""
        return self.null_score - self.best_span_score


def _window_candidates(
    window: WindowLogits, n_best: int, max_answer_length: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Valid (score, char_start, char_end, start_logit+end order) candidates of one window."""
    mask = np.asarray(window.context_mask, dtype=bool)  # (seq,)
    n_context = int(mask.sum())
    if n_context == 0:
        empty = np.empty(0)
        return empty, empty.astype(np.int64), empty.astype(np.int64), empty
    start = np.where(mask, window.start_logits, _MASKED).astype(np.float64)  # (seq,)
    end = np.where(mask, window.end_logits, _MASKED).astype(np.float64)  # (seq,)
    k = min(n_best, n_context)
    # Descending order, stable on ties like run_qa's argsort()[::-1] is not; ties on
    # float logits are measure-zero in practice.
    start_idx = np.argsort(start, kind="stable")[::-1][:k]  # (k,)
    end_idx = np.argsort(end, kind="stable")[::-1][:k]  # (k,)
    s = start_idx[:, None]  # (k, 1)
    e = end_idx[None, :]  # (1, k)
    valid = (e >= s) & (e - s + 1 <= max_answer_length)  # (k, k)
    scores = start[s] + end[e]  # (k, k)
    si, ei = np.nonzero(valid)  # candidate pairs, row-major: start rank, then end rank
    offsets = np.asarray(window.offsets)
    char_start = offsets[start_idx[si], 0].astype(np.int64)
    char_end = offsets[end_idx[ei], 1].astype(np.int64)
    return scores[si, ei], char_start, char_end, si * k + ei


def decode_question(
    windows: Sequence[WindowLogits],
    context: str,
    *,
    top_k: int = 1,
    n_best: int = 20,
    max_answer_length: int = 30,
    null_threshold: float | None = None,
) -> DecodedQuestion:
    """Pick the best answer spans of one question across all of its windows.

    Args:
        windows: One entry per window of the question, in window order.
        context: The context the offsets index into.
        top_k: Number of answers to return (distinct character spans).
        n_best: Start and end candidates considered per window (run_qa's n_best_size).
        max_answer_length: Longest answer in tokens.
        null_threshold: SQuAD 2.0 mode when set: the first answer is "" (no answer)
            when ``null_score - best_span_score > null_threshold``. ``None``: SQuAD 1.1,
            always answer.

    Returns:
        The decoded question; ``answers`` is never empty.
    """
    if not windows:
        raise ValueError("decode_question needs at least one window")
    null_score = min(float(w.start_logits[0]) + float(w.end_logits[0]) for w in windows)
    all_scores, all_starts, all_ends = [], [], []
    for window in windows:
        scores, starts, ends, _ = _window_candidates(window, n_best, max_answer_length)
        all_scores.append(scores)
        all_starts.append(starts)
        all_ends.append(ends)
    scores = np.concatenate(all_scores)
    starts = np.concatenate(all_starts)
    ends = np.concatenate(all_ends)
    # Keep the n_best overall, best first (stable: earlier window wins a tie, as in run_qa).
    order = np.argsort(-scores, kind="stable")[:n_best]
    scores, starts, ends = scores[order], starts[order], ends[order]
    best_span_score = float(scores[0]) if scores.size else float("-inf")

    # Probabilities over the kept candidates (plus the null answer in SQuAD 2.0 mode).
    logits = list(scores.tolist())
    if null_threshold is not None:
        logits.append(null_score)
    if logits:
        z = np.asarray(logits, dtype=np.float64)
        probs = np.exp(z - z.max())
        probs /= probs.sum()
    else:
        probs = np.asarray([])

    answers: list[Answer] = []
    seen: set[tuple[int, int]] = set()
    for i in range(scores.size):
        span = (int(starts[i]), int(ends[i]))
        if span in seen:  # the same characters found again in an overlapping window
            continue
        seen.add(span)
        answers.append(
            Answer(context[span[0] : span[1]], float(probs[i]), span[0], span[1], float(scores[i]))
        )
        if len(answers) == top_k:
            break
    if null_threshold is not None:
        null_answer = Answer("", float(probs[-1]), 0, 0, null_score)
        if not answers or null_score - best_span_score > null_threshold:
            answers = [null_answer, *answers][:top_k]
    elif not answers:
        # No valid span at all (e.g. every window's context is empty): answer nothing.
        answers = [Answer("", 1.0, 0, 0, null_score)]
    return DecodedQuestion(answers, best_span_score, null_score)
