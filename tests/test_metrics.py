"""Official SQuAD metrics: hand-computed cases, v2 splits and thresholds, real dev data."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qa_engine.data import QAExample, gold_answers, load_squad
from qa_engine.metrics import (
    exact_match_score,
    f1_score,
    normalize_answer,
    squad_metrics,
    squad_v1_metrics,
    squad_v2_metrics,
)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
V1_DEV = SHARED_DATA / "squad-v1.1" / "dev-v1.1.json.gz"
V2_DEV = SHARED_DATA / "squad-v2.0" / "dev-v2.0.reconstructed.json.gz"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The  Big, Cat!", "big cat"),
        ("an apple a day", "apple day"),
        ("Theatre of the Absurd", "theatre of absurd"),  # articles only as whole words
        ("A.D. 1066", "ad 1066"),  # punctuation goes before articles are matched
        ("  \tDenver\nBroncos ", "denver broncos"),
        ("the", ""),
        ("", ""),
        ("Élan — déjà", "élan — déjà"),  # only ASCII punctuation is removed, like the script
    ],
)
def test_normalize_answer(text: str, expected: str) -> None:
    assert normalize_answer(text) == expected


def test_exact_match_ignores_case_punctuation_articles() -> None:
    assert exact_match_score("The Cat.", "cat")
    assert exact_match_score("an  apple", "Apple!")
    assert not exact_match_score("big cat", "cat")


@pytest.mark.parametrize(
    ("pred", "gold", "expected"),
    [
        ("the big cat", "a cat sat", 0.5),  # {big, cat} vs {cat, sat}: P = R = 1/2
        ("Denver Broncos", "Broncos", 2 / 3),  # P = 1/2, R = 1
        ("cat cat", "cat", 2 / 3),  # repeated tokens count once per match: P = 1/2, R = 1
        ("cat", "cat cat dog", 0.5),  # P = 1, R = 1/3
        ("The Cat!", "cat", 1.0),
        ("dog", "cat", 0.0),
    ],
)
def test_f1_hand_computed(pred: str, gold: str, expected: float) -> None:
    assert f1_score(pred, gold) == pytest.approx(expected)
    assert f1_score(pred, gold, version_2=True) == pytest.approx(expected)


def test_f1_empty_answers_v1_vs_v2() -> None:
    # v1.1: no shared token means 0, even for two empty answers; v2.0: agreement is 1
    assert f1_score("", "") == 0.0
    assert f1_score("the", "a") == 0.0
    assert f1_score("", "", version_2=True) == 1.0
    assert f1_score("the", "", version_2=True) == 1.0
    assert f1_score("", "cat", version_2=True) == 0.0
    assert f1_score("cat", "", version_2=True) == 0.0


_words = st.sampled_from(["the", "A", "cat", "Cat.", "dog", "sat", "big", "!", "", "dog,"])
_texts = st.lists(_words, max_size=5).map(" ".join)


@settings(max_examples=200, deadline=None)
@given(_texts, _texts)
def test_f1_properties(pred: str, gold: str) -> None:
    f1 = f1_score(pred, gold)
    assert 0.0 <= f1 <= 1.0
    assert f1 == pytest.approx(f1_score(gold, pred))  # symmetric
    if exact_match_score(pred, gold) and normalize_answer(gold):
        assert f1 == pytest.approx(1.0)
    assert normalize_answer(normalize_answer(pred)) == normalize_answer(pred)


def test_squad_v1_metrics_max_over_golds_and_missing() -> None:
    references = {"q1": ["a cat sat", "cat"], "q2": ["Paris"], "q3": ["x"]}
    predictions = {"q1": "the big cat", "q2": "paris!", "unknown": "ignored"}
    with pytest.warns(UserWarning, match=r"1 of 3 questions have no prediction.*q3"):
        result = squad_v1_metrics(predictions, references)
    # q1: EM 0, F1 max(1/2, 2/3); q2: EM 1, F1 1; q3 missing: 0
    assert result == {
        "exact_match": pytest.approx(100 / 3),
        "f1": pytest.approx(100 * (2 / 3 + 1) / 3),
        "total": 3,
    }


def test_squad_v1_metrics_rejects_bad_input() -> None:
    with pytest.raises(TypeError, match="q1"):
        squad_v1_metrics({"q1": None}, {"q1": ["x"]})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="no references"):
        squad_v1_metrics({}, {})


# a, b answerable; c, d unanswerable ([] and [""] both mean no answer)
V2_REFS = {"a": ["cat"], "b": ["dog sat"], "c": [], "d": [""]}
V2_PREDS = {"a": "cat", "b": "a dog", "c": "bird", "d": ""}
V2_PROBS = {"a": 0.1, "d": 0.3, "b": 0.6, "c": 0.8}


def test_squad_v2_metrics_has_ans_no_ans_split() -> None:
    result = squad_v2_metrics(V2_PREDS, V2_REFS)
    # EM: a 1, b 0, c 0, d 1.  F1: a 1, b 2/3 ({dog} vs {dog, sat}), c 0, d 1.
    assert list(result) == [
        "exact", "f1", "total",
        "HasAns_exact", "HasAns_f1", "HasAns_total",
        "NoAns_exact", "NoAns_f1", "NoAns_total",
    ]  # fmt: skip
    assert result["exact"] == pytest.approx(50.0)
    assert result["f1"] == pytest.approx(100 * (1 + 2 / 3 + 0 + 1) / 4)
    assert result["total"] == 4
    assert result["HasAns_exact"] == pytest.approx(50.0)
    assert result["HasAns_f1"] == pytest.approx(100 * (1 + 2 / 3) / 2)
    assert result["HasAns_total"] == 2
    assert result["NoAns_exact"] == pytest.approx(50.0)
    assert result["NoAns_f1"] == pytest.approx(50.0)
    assert result["NoAns_total"] == 2


def test_squad_v2_metrics_threshold_and_best_thresholds() -> None:
    result = squad_v2_metrics(V2_PREDS, V2_REFS, V2_PROBS, na_prob_thresh=0.5)
    # above 0.5: b (answerable: now 0) and c (unanswerable: now right) predict no answer
    assert result["exact"] == pytest.approx(75.0)
    assert result["f1"] == pytest.approx(75.0)
    assert result["HasAns_exact"] == pytest.approx(50.0)
    assert result["NoAns_exact"] == pytest.approx(100.0)
    # find_best_thresh: start at 2 (c, d right when answering nothing), then in
    # probability order a +1 -> 3 (best, 0.1), d +0, b +0 (EM) / +2/3 (F1), c -1
    assert result["best_exact"] == pytest.approx(75.0)
    assert result["best_exact_thresh"] == pytest.approx(0.1)
    assert result["best_f1"] == pytest.approx(100 * (3 + 2 / 3) / 4)
    assert result["best_f1_thresh"] == pytest.approx(0.6)
    assert list(result)[-4:] == ["best_exact", "best_exact_thresh", "best_f1", "best_f1_thresh"]


def test_squad_v2_metrics_omits_empty_groups() -> None:
    result = squad_v2_metrics({"a": "cat"}, {"a": ["cat"]})
    assert result == {
        "exact": 100.0, "f1": 100.0, "total": 1,
        "HasAns_exact": 100.0, "HasAns_f1": 100.0, "HasAns_total": 1,
    }  # fmt: skip
    only_no_answer = squad_v2_metrics({"c": ""}, {"c": []})
    assert not any(key.startswith("HasAns") for key in only_no_answer)
    assert only_no_answer["NoAns_total"] == 1


def test_squad_v2_metrics_gold_normalising_to_empty_means_no_answer_text() -> None:
    # as in evaluate-v2.0.py: the question has an answer ("The"), but golds that normalise
    # to nothing are replaced by "", so an empty prediction matches
    result = squad_v2_metrics({"q": ""}, {"q": ["The"]})
    assert result["HasAns_total"] == 1
    assert result["exact"] == 100.0


def test_squad_v2_metrics_missing_predictions_and_probs() -> None:
    with pytest.warns(UserWarning, match="no prediction"):
        result = squad_v2_metrics({"a": "cat"}, {"a": ["cat"], "c": []})
    assert result["total"] == 2
    assert result["NoAns_exact"] == 0.0  # a missing prediction is not a free "no answer"
    with pytest.raises(ValueError, match="no_answer_probs lacks 1 .*c"):
        squad_v2_metrics(V2_PREDS, V2_REFS, {"a": 0.1, "b": 0.2, "d": 0.3})


def _example(qid: str, texts: list[str], impossible: bool = False) -> QAExample:
    context = "the cat sat on the mat"
    starts = [context.index(t) for t in texts]
    answers = {"text": texts, "answer_start": starts}
    return QAExample(qid, "T", context, "what?", answers, impossible)


def test_squad_metrics_from_examples() -> None:
    examples = [_example("a", ["cat", "the cat"]), _example("b", [], impossible=True)]
    assert gold_answers(examples[1]) == [""]
    v1 = squad_metrics({"a": "Cat"}, examples[:1], version_2=False)
    assert v1 == {"exact_match": 100.0, "f1": 100.0, "total": 1}
    v2 = squad_metrics({"a": "mat", "b": ""}, examples, version_2=True)
    assert (v2["exact"], v2["HasAns_exact"], v2["NoAns_exact"]) == (50.0, 0.0, 100.0)
    with pytest.raises(ValueError, match="version_2=True"):
        squad_metrics({"a": "cat"}, examples[:1], version_2=False, no_answer_probs={"a": 0.0})


def test_squad_metrics_skips_answerable_question_without_gold() -> None:
    examples = [_example("a", ["cat"]), _example("emptied", [])]
    with pytest.warns(UserWarning, match="1 answerable question.*emptied"):
        result = squad_metrics({"a": "cat", "emptied": "x"}, examples, version_2=True)
    assert result["total"] == 1
    assert "NoAns_total" not in result  # not mistaken for an unanswerable question


@pytest.mark.data
@pytest.mark.skipif(not V1_DEV.exists(), reason=f"{V1_DEV} not found")
def test_real_v1_dev_first_gold_scores_100() -> None:
    data = load_squad(V1_DEV)
    assert len(data) == 10_570
    predictions = {ex.id: ex.answers["text"][0] for ex in data}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no missing predictions
        result = squad_metrics(predictions, data, version_2=False)
    assert result == {"exact_match": 100.0, "f1": 100.0, "total": 10_570}


@pytest.mark.data
@pytest.mark.skipif(not V2_DEV.exists(), reason=f"{V2_DEV} not found")
def test_real_v2_dev_first_gold_scores_100() -> None:
    data = load_squad(V2_DEV)
    predictions = {ex.id: gold_answers(ex)[0] for ex in data}
    result = squad_metrics(predictions, data, version_2=True)
    assert (result["total"], result["HasAns_total"], result["NoAns_total"]) == (
        11_873,
        5_928,
        5_945,
    )
    assert result["exact"] == result["f1"] == 100.0
