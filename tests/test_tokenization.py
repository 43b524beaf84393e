"""QATokenizer: windows identical to run_qa's, covering every context character."""

from __future__ import annotations

import itertools
import random
import time
import unicodedata
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qa_engine.tokenization import QATokenizer, is_extending

MAX_LEN, STRIDE = 48, 16
WORDS = "the city of a river was built in 1200 by king war museum capital great old".split()


@pytest.fixture(scope="module")
def tok(tiny_model_dir) -> QATokenizer:
    return QATokenizer.from_file(tiny_model_dir / "tokenizer.json", MAX_LEN, STRIDE)


@pytest.fixture(scope="module")
def hf_tok(tiny_model_dir):
    transformers = pytest.importorskip("transformers")
    return transformers.AutoTokenizer.from_pretrained(str(tiny_model_dir))


def random_text(rng: random.Random, n_words: int) -> str:
    out = []
    for _ in range(n_words):
        word = rng.choice(WORDS + ["zyx", "Quux", "naïve", "é"])
        out.append(word + rng.choice(["", "", "", ".", ",", "?"]))
    return " ".join(out)


def context_spans(window) -> list[tuple[int, int]]:
    return [tuple(map(int, o)) for o in window.offsets[window.context_mask]]


def test_windows_equal_run_qa_preprocessing(tok, hf_tok):
    """Token for token what run_qa's prepare_validation_features builds (fast tokenizer)."""
    rng = random.Random(0)
    for n_words in (1, 5, 30, 80, 200):
        question = "  " + random_text(rng, 6)  # run_qa left-strips questions
        context = random_text(rng, n_words)
        ours = tok.encode(question, context)
        theirs = hf_tok(
            question.lstrip(),
            context,
            truncation="only_second",
            max_length=MAX_LEN,
            stride=STRIDE,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
        )
        assert len(ours) == len(theirs["input_ids"])
        for i, window in enumerate(ours):
            assert window.input_ids.tolist() == theirs["input_ids"][i]
            assert window.type_ids.tolist() == theirs["token_type_ids"][i]
            assert len(window) <= MAX_LEN
            sequence_ids = theirs.sequence_ids(i)
            assert window.context_mask.tolist() == [s == 1 for s in sequence_ids]
            expected = [
                tuple(o)
                for o, s in zip(theirs["offset_mapping"][i], sequence_ids, strict=True)
                if s == 1
            ]
            assert context_spans(window) == expected


def assert_windows_cover_context(tok: QATokenizer, question: str, context: str) -> None:
    windows = tok.encode(question, context)
    assert windows
    # Every token of the whole context (tokenized alone, no truncation) is in some window.
    full = tok._single.encode(context, add_special_tokens=False)
    full_spans = {tuple(o) for o in full.offsets}
    seen = [span for w in windows for span in context_spans(w)]
    if context.isascii():  # no offset snapping: spans must match exactly
        assert full_spans == set(seen)
    else:
        assert len(seen) >= len(full_spans)
    covered = np.zeros(len(context) + 1, dtype=bool)
    for start, end in seen:
        assert 0 <= start <= end <= len(context)
        covered[start:end] = True
    for start, end in full.offsets:
        assert covered[start:end].all()
    # Consecutive windows overlap by exactly doc_stride context tokens.
    for left, right in itertools.pairwise(windows):
        assert context_spans(left)[-STRIDE:] == context_spans(right)[:STRIDE]


def test_windows_cover_every_context_character(tok):
    rng = random.Random(1)
    for n_words in (1, 3, 17, 64, 300):
        context = random_text(rng, n_words)
        assert_windows_cover_context(tok, random_text(rng, 4), context)
        # Every non-space character of this ASCII-ish text lies inside some token span.
        covered = np.zeros(len(context), dtype=bool)
        for window in tok.encode("who", context):
            for start, end in context_spans(window):
                covered[start:end] = True
        assert all(covered[i] or context[i].isspace() for i in range(len(context)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.sampled_from(list("abcz ,.?'\"é\u0301中文") + WORDS), min_size=1, max_size=150).map(
        " ".join
    ),
    st.text(min_size=1, max_size=40),
)
def test_window_coverage_property(tok, context, question):
    assert_windows_cover_context(tok, question, context)


def test_long_question_is_cut_with_a_warning(tok):
    # 48-token windows with a 16-token stride leave room for 48 - 3 - 16 - 1 = 28.
    assert tok.max_question_len == 28
    question = " ".join(["who"] * 40)
    with pytest.warns(UserWarning, match="cut to 28 tokens"):
        windows = tok.encode(question, random_text(random.Random(2), 100))
    for window in windows:
        assert int((window.type_ids == 0).sum()) - 2 == 28  # question + [CLS] + [SEP]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tok.encode(" ".join(["who"] * 28), "the city")  # exactly at the limit: no warning


def test_max_question_len_from_the_manifest(tiny_model_dir):
    tok = QATokenizer.from_file(tiny_model_dir / "tokenizer.json", 384, 128, max_question_len=5)
    with pytest.warns(UserWarning, match="cut to 5 tokens"):
        assert (
            tok.prepare_question("who was the first king of the city") == "who was the first king"
        )


def test_question_is_left_stripped(tok):
    plain = tok.encode("who built it", "the city was built by the king")
    padded = tok.encode(" \t\n who built it", "the city was built by the king")
    assert [w.input_ids.tolist() for w in plain] == [w.input_ids.tolist() for w in padded]


def test_100k_character_context(tok):
    context = random_text(random.Random(3), 20_000)[:100_000]
    assert len(context) >= 99_000
    start = time.perf_counter()
    windows = tok.encode("who built the city", context)
    elapsed = time.perf_counter() - start
    assert len(windows) > 100
    assert elapsed < 30  # typically well under a second
    last = context_spans(windows[-1])[-1]
    assert last[1] == len(context.rstrip())


def test_offsets_never_split_a_character(tok):
    # A bare combining mark after punctuation, a decomposed é (strip_accents drops the
    # mark), a ZWJ emoji family with a skin tone, Hebrew, CJK, NUL, a lone surrogate.
    context = (
        "cafe\u0301 !\u0301 x \U0001f468\U0001f3fd\u200d\U0001f469 "
        "\u05e9\u05dc\u05d5\u05dd \u4e2d\u6587\u0301 a\x00b \ud800 end"
    )
    windows = tok.encode("what", context)
    for window in windows:
        for start, end in context_spans(window):
            assert 0 <= start <= end <= len(context)
            assert start == 0 or not is_extending(context[start])
            assert end == len(context) or not is_extending(context[end])
            assert context[end - 1 : end] != "\u200d"
    spans = [span for w in windows for span in context_spans(w)]
    assert (3, 5) in spans  # decomposed é: the acute stays with its e
    assert (6, 8) in spans  # a bare mark after "!" joins the "!" token
    assert (22, 24) in spans  # and one after a CJK character
    assert (11, 15) in spans  # the whole emoji sequence


def test_is_extending():
    assert is_extending("\u0301") and is_extending("\u200d") and is_extending("\U0001f3fd")
    assert not is_extending("a") and not is_extending("中") and not is_extending(" ")
    assert unicodedata.category("\u0301") == "Mn"


def test_bad_files_and_settings(tmp_path, tiny_model_dir):
    with pytest.raises(FileNotFoundError, match="tokenizer.json"):
        QATokenizer.from_file(tmp_path / "tokenizer.json", MAX_LEN, STRIDE)
    bad = tmp_path / "tokenizer.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="tokenizer.json"):
        QATokenizer.from_file(bad, MAX_LEN, STRIDE)
    with pytest.raises(ValueError, match="no room"):
        QATokenizer.from_file(tiny_model_dir / "tokenizer.json", 20, 16)
