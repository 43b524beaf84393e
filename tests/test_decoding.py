"""The span decoder: unit cases and a property test against run_qa's post-processing."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qa_engine.decoding import Answer, WindowLogits, decode_question

MASK = -1e4  # "very low", the value transformers' QA pipeline uses for masked tokens


# --------------------------------------------------------------------------- helpers
def make_windows(
    rng: np.random.Generator,
    n_context_tokens: int,
    question_len: int,
    window_context: int,
    stride: int,
    scale: float = 1.0,
) -> tuple[str, list[WindowLogits], list[list[tuple[int, int] | None]]]:
    """A synthetic context of 2-char tokens cut into run_qa-style overlapping windows.

    Returns the context, our WindowLogits and run_qa's offset_mapping per window (None for
    question and special tokens, as run_qa's prepare_validation_features sets them).
    """
    context = " ".join(f"{i % 100:02d}" for i in range(n_context_tokens))
    token_offsets = [(3 * i, 3 * i + 2) for i in range(n_context_tokens)]
    starts = list(range(0, max(1, n_context_tokens - stride), window_context - stride))
    windows, offset_maps = [], []
    for first in starts:
        part = token_offsets[first : first + window_context]
        # [CLS] question [SEP] context-part [SEP]
        offset_map: list[tuple[int, int] | None] = [None] * (question_len + 2) + list(part)
        offset_map.append(None)
        seq = len(offset_map)
        mask = np.array([o is not None for o in offset_map])
        offsets = np.array([o if o is not None else (0, 0) for o in offset_map], dtype=np.int64)
        start = rng.normal(scale=scale, size=seq).astype(np.float32)
        end = rng.normal(scale=scale, size=seq).astype(np.float32)
        windows.append(WindowLogits(start, end, offsets, mask))
        offset_maps.append(offset_map)
        if first + window_context >= n_context_tokens:
            break
    return context, windows, offset_maps


def run_qa_postprocess(
    context: str,
    features: list[tuple[np.ndarray, np.ndarray, list]],
    *,
    version_2_with_negative: bool = False,
    n_best_size: int = 20,
    max_answer_length: int = 30,
    null_score_diff_threshold: float = 0.0,
) -> tuple[str, float]:
    """A line-by-line port of transformers' examples/pytorch/question-answering/utils_qa.py
    ``postprocess_qa_predictions`` for one example (its features in order).

    Returns the predicted text and, for the top prediction, its probability.
    """
    min_null_prediction = None
    prelim_predictions = []
    for start_logits, end_logits, offset_mapping in features:
        feature_null_score = start_logits[0] + end_logits[0]
        if min_null_prediction is None or min_null_prediction["score"] > feature_null_score:
            min_null_prediction = {
                "offsets": (0, 0),
                "score": feature_null_score,
                "start_logit": start_logits[0],
                "end_logit": end_logits[0],
            }
        start_indexes = np.argsort(start_logits)[-1 : -n_best_size - 1 : -1].tolist()
        end_indexes = np.argsort(end_logits)[-1 : -n_best_size - 1 : -1].tolist()
        for start_index in start_indexes:
            for end_index in end_indexes:
                if (
                    start_index >= len(offset_mapping)
                    or end_index >= len(offset_mapping)
                    or offset_mapping[start_index] is None
                    or offset_mapping[end_index] is None
                ):
                    continue
                if end_index < start_index or end_index - start_index + 1 > max_answer_length:
                    continue
                prelim_predictions.append(
                    {
                        "offsets": (offset_mapping[start_index][0], offset_mapping[end_index][1]),
                        "score": start_logits[start_index] + end_logits[end_index],
                        "start_logit": start_logits[start_index],
                        "end_logit": end_logits[end_index],
                    }
                )
    if version_2_with_negative:
        prelim_predictions.append(min_null_prediction)
        null_score = min_null_prediction["score"]
    predictions = sorted(prelim_predictions, key=lambda x: x["score"], reverse=True)[:n_best_size]
    if version_2_with_negative and not any(p["offsets"] == (0, 0) for p in predictions):
        predictions.append(min_null_prediction)
    for pred in predictions:
        offsets = pred.pop("offsets")
        pred["text"] = context[offsets[0] : offsets[1]]
    if len(predictions) == 0 or (len(predictions) == 1 and predictions[0]["text"] == ""):
        predictions.insert(0, {"text": "empty", "start_logit": 0.0, "end_logit": 0.0, "score": 0.0})
    scores = np.array([pred.pop("score") for pred in predictions])
    exp_scores = np.exp(scores - np.max(scores))
    probs = exp_scores / exp_scores.sum()
    if not version_2_with_negative:
        return predictions[0]["text"], float(probs[0])
    i = 0
    while predictions[i]["text"] == "":
        i += 1
    best_non_null_pred = predictions[i]
    score_diff = null_score - best_non_null_pred["start_logit"] - best_non_null_pred["end_logit"]
    if score_diff > null_score_diff_threshold:
        return "", float("nan")
    return best_non_null_pred["text"], float("nan")


def masked(window: WindowLogits, keep_cls: bool = False) -> WindowLogits:
    keep = window.context_mask.copy()
    keep[0] |= keep_cls
    return WindowLogits(
        np.where(keep, window.start_logits, MASK).astype(np.float32),
        np.where(keep, window.end_logits, MASK).astype(np.float32),
        window.offsets,
        window.context_mask,
    )


def as_features(windows, offset_maps):
    return [(w.start_logits, w.end_logits, om) for w, om in zip(windows, offset_maps, strict=True)]


# ------------------------------------------------------------ property vs run_qa
geometry = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 2**32 - 1),
        "n_context_tokens": st.integers(1, 120),
        "question_len": st.integers(1, 12),
        "window_context": st.integers(8, 40),
        "stride_fraction": st.floats(0.0, 0.9),
        "n_best": st.integers(1, 25),
        "max_answer_length": st.integers(1, 40),
        "scale": st.sampled_from([0.05, 1.0, 8.0]),
    }
)


def build(params):
    rng = np.random.default_rng(params["seed"])
    stride = int(params["stride_fraction"] * (params["window_context"] - 1))
    return make_windows(
        rng,
        params["n_context_tokens"],
        params["question_len"],
        params["window_context"],
        stride,
        params["scale"],
    )


@settings(max_examples=150, deadline=None)
@given(geometry)
def test_same_span_as_run_qa_when_non_context_logits_are_masked(params):
    """For identical logits, our decoder and run_qa pick the same span (SQuAD 1.1).

    Why the masking: our decoder takes the top-n start/end candidates over *context*
    tokens only, while run_qa takes the top-n over *all* tokens and then drops question
    and special tokens. When a question token ranks in the top-n, run_qa considers fewer
    context candidates (and, if all top-n are question tokens, answers "empty"). Pushing
    non-context logits very low makes both candidate sets identical, so any difference
    left would be a real decoding bug (span validity, max length, cross-window ranking,
    offsets). Logits come from a seeded RNG: continuous values, so no ties to break.
    """
    context, windows, offset_maps = build(params)
    windows = [masked(w) for w in windows]
    n_best, max_len = params["n_best"], params["max_answer_length"]
    expected_text, expected_prob = run_qa_postprocess(
        context, as_features(windows, offset_maps), n_best_size=n_best, max_answer_length=max_len
    )
    decoded = decode_question(windows, context, n_best=n_best, max_answer_length=max_len)
    best = decoded.answers[0]
    if expected_text == "empty":  # run_qa's placeholder when no span is valid; ours is ""
        expected_text = ""
    assert best.text == expected_text
    # run_qa adds and normalises in float32, we in float64: equal to float32 rounding.
    assert best.score == pytest.approx(expected_prob, rel=1e-4, abs=1e-9)
    assert context[best.start : best.end] == best.text


@settings(max_examples=150, deadline=None)
@given(geometry, st.sampled_from([-1.0, 1.0]), st.floats(0.01, 3.0))
def test_same_null_decision_as_run_qa_squad_v2(params, sign, shift):
    """SQuAD 2.0: same answer, "" included, as run_qa with the same threshold.

    [CLS] keeps a real logit (the null score needs it) but below every context logit, so
    it never takes one of run_qa's top-n slots (see the test above for why that matters);
    the threshold is drawn around null - best so both outcomes are exercised (never on
    it: run_qa compares in float32, we in float64).
    """
    context, windows, offset_maps = build(params)
    windows = [masked(w) for w in windows]
    low = min(float(w.start_logits[w.context_mask].min()) for w in windows)
    low = min(low, min(float(w.end_logits[w.context_mask].min()) for w in windows))
    rng = np.random.default_rng(params["seed"] + 1)
    windows = [
        WindowLogits(
            np.concatenate([[low - 1 - rng.random()], w.start_logits[1:]]).astype(np.float32),
            np.concatenate([[low - 1 - rng.random()], w.end_logits[1:]]).astype(np.float32),
            w.offsets,
            w.context_mask,
        )
        for w in windows
    ]
    n_best, max_len = params["n_best"], params["max_answer_length"]
    probe = decode_question(
        windows, context, n_best=n_best, max_answer_length=max_len, null_threshold=0.0
    )
    threshold = probe.null_minus_best + sign * shift
    expected_text, _ = run_qa_postprocess(
        context,
        as_features(windows, offset_maps),
        version_2_with_negative=True,
        n_best_size=n_best,
        max_answer_length=max_len,
        null_score_diff_threshold=threshold,
    )
    decoded = decode_question(
        windows, context, n_best=n_best, max_answer_length=max_len, null_threshold=threshold
    )
    if expected_text == "empty":  # run_qa's placeholder when no span is valid
        expected_text = ""
    assert decoded.answers[0].text == expected_text


def test_unmasked_question_logits_are_a_deliberate_difference():
    """run_qa can answer "empty" when question tokens hold the top-n; we still answer."""
    context = "aa bb cc"
    offsets = np.array([(0, 0), (0, 0), (0, 0), (0, 2), (3, 5), (6, 8), (0, 0)])
    mask = np.array([False, False, False, True, True, True, False])
    start = np.array([0, 9, 9, 1, 2, 0, 0], dtype=np.float32)
    end = np.array([0, 9, 9, 0, 3, 1, 0], dtype=np.float32)
    offset_map = [None, None, None, (0, 2), (3, 5), (6, 8), None]
    run_qa_text, _ = run_qa_postprocess(context, [(start, end, offset_map)], n_best_size=2)
    assert run_qa_text == "empty"  # its top-2 starts and ends are the two question tokens
    ours = decode_question([WindowLogits(start, end, offsets, mask)], context, n_best=2)
    assert ours.answers[0].text == "bb"


# -------------------------------------------------------------------- unit cases
def window(start, end, offsets, mask) -> WindowLogits:
    return WindowLogits(
        np.asarray(start, dtype=np.float32),
        np.asarray(end, dtype=np.float32),
        np.asarray(offsets, dtype=np.int64),
        np.asarray(mask, dtype=bool),
    )


CONTEXT = "aa bb cc dd"
OFFSETS = [(0, 0), (0, 0), (0, 0), (0, 2), (3, 5), (6, 8), (9, 11), (0, 0)]
MASK_ = [False, False, False, True, True, True, True, False]


def test_end_before_start_and_max_length_are_never_chosen():
    # The best start (dd) comes after the best end (aa): dd..aa (18) is invalid, so
    # aa..aa (1 + 9) beats dd..dd (9 + 0).
    w = window([0, 0, 0, 1, 0, 0, 9, 0], [0, 0, 0, 9, 0, 2, 0, 0], OFFSETS, MASK_)
    best = decode_question([w], CONTEXT).answers[0]
    assert best.text == "aa"
    limited = decode_question([w], CONTEXT, max_answer_length=1).answers[0]
    assert limited.end - limited.start <= 2  # a single token


def test_best_span_across_windows_and_offsets_index_the_context():
    w1 = window([5, 0, 0, 1, 0, 0, 0, 0], [5, 0, 0, 1, 0, 0, 0, 0], OFFSETS, MASK_)
    w2 = window([0, 0, 0, 0, 0, 4, 0, 0], [0, 0, 0, 0, 0, 0, 3, 0], OFFSETS, MASK_)
    decoded = decode_question([w1, w2], CONTEXT, top_k=2)
    assert [a.text for a in decoded.answers] == ["cc dd", "cc"]  # 4 + 3, then 4 + 0
    assert decoded.answers[0].logit == pytest.approx(7.0)
    assert decoded.answers[0].score > decoded.answers[1].score
    for a in decoded.answers:
        assert CONTEXT[a.start : a.end] == a.text


def test_top_k_answers_are_distinct_spans():
    # Two windows containing the same span: it must appear once.
    w = window([0, 0, 0, 3, 1, 0, 0, 0], [0, 0, 0, 3, 1, 0, 0, 0], OFFSETS, MASK_)
    answers = decode_question([w, w], CONTEXT, top_k=5).answers
    spans = [(a.start, a.end) for a in answers]
    assert len(spans) == len(set(spans)) == 5


def test_null_threshold():
    w = window([6, 0, 0, 1, 0, 0, 0, 0], [6, 0, 0, 1, 0, 0, 0, 0], OFFSETS, MASK_)
    decoded = decode_question([w], CONTEXT, null_threshold=0.0)
    assert decoded.null_score == 12.0 and decoded.best_span_score == 2.0
    assert decoded.null_minus_best == pytest.approx(10.0)
    assert decoded.answers[0] == Answer("", decoded.answers[0].score, 0, 0, 12.0)
    assert decode_question([w], CONTEXT, null_threshold=10.5).answers[0].text == "aa"
    assert decode_question([w], CONTEXT).answers[0].text == "aa"  # SQuAD 1.1 mode


def test_null_score_is_the_minimum_over_windows():
    w1 = window([6, 0, 0, 1, 0, 0, 0, 0], [6, 0, 0, 1, 0, 0, 0, 0], OFFSETS, MASK_)
    w2 = window([-1, 0, 0, 1, 0, 0, 0, 0], [0, 0, 0, 1, 0, 0, 0, 0], OFFSETS, MASK_)
    assert decode_question([w1, w2], CONTEXT, null_threshold=0.0).null_score == -1.0


def test_window_without_context_tokens_gives_an_empty_answer():
    w = window([1, 2, 3], [1, 2, 3], [(0, 0)] * 3, [False] * 3)
    answer = decode_question([w], "xyz").answers[0]
    assert (answer.text, answer.start, answer.end) == ("", 0, 0)
    with pytest.raises(ValueError):
        decode_question([], "xyz")
