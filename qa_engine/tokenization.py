"""Question + context tokenization into overlapping windows, straight from ``tokenizer.json``.

This reproduces what transformers' fast tokenizers do for ``run_qa.py`` (and the QA
pipeline): ``truncation="only_second"``, ``max_length``, ``stride=doc_stride``,
``return_overflowing_tokens=True``. Under the hood that is exactly
``Tokenizer.enable_truncation(max_length, stride, "only_second")`` and
``[encoding] + encoding.overflowing``, so our windows equal run_qa's, token for token.

Two additions keep arbitrary input safe:

- Questions longer than the window can hold are cut (with a warning). The tokenizers
  library panics when the context part left over is not longer than the stride, so the
  limit is ``min(max_question_len, max_seq_length - specials - doc_stride - 1)``.
- Offsets are widened so that no answer edge falls inside a user-perceived character:
  a combining mark, a joiner-linked emoji or a skin-tone modifier stays with its base
  character (BERT normalisers strip accents, which can leave a bare mark outside every
  token).
"""

from __future__ import annotations

import os
import re
import unicodedata
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

_ZWJ = "\u200d"
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# Code points that never start a user-perceived character, beyond the M* categories.
_EXTEND_EXTRA = frozenset(
    [_ZWJ, "\u200c", "\uff9e", "\uff9f", "\u0e33", "\u0eb3"]  # ZWJ, ZWNJ, kana marks, Thai/Lao AM
    + [chr(c) for c in range(0x1F3FB, 0x1F400)]  # emoji skin-tone modifiers
    + [chr(c) for c in range(0xE0020, 0xE0080)]  # emoji tag sequences (subdivision flags)
    + [chr(c) for c in range(0x1160, 0x1200)]  # Hangul conjoining vowels and finals
    + [chr(c) for c in range(0xD7B0, 0xD800)]
)


def is_extending(char: str) -> bool:
    """Whether ``char`` continues the user-perceived character before it."""
    return char in _EXTEND_EXTRA or unicodedata.category(char) in ("Mn", "Mc", "Me")


def snap_start(text: str, start: int) -> int:
    """Move ``start`` back until it is not inside a user-perceived character."""
    while 0 < start < len(text) and (is_extending(text[start]) or text[start - 1] == _ZWJ):
        start -= 1
    return start


def snap_end(text: str, end: int) -> int:
    """Move ``end`` forward until it is not inside a user-perceived character."""
    while 0 < end < len(text) and (is_extending(text[end]) or text[end - 1] == _ZWJ):
        end += 1
    return end


@dataclass(frozen=True)
class Window:
    """One window (feature) of a question: the model inputs and the token geometry.

    Attributes:
        input_ids: ``(seq,)`` token ids, ``[CLS] question [SEP] context-part [SEP]``.
        type_ids: ``(seq,)`` segment ids (0 for the question, 1 for the context).
        offsets: ``(seq, 2)`` character offsets into the context; ``(0, 0)`` for question
            and special tokens.
        context_mask: ``(seq,)`` True where the token belongs to the context.
    """

    input_ids: np.ndarray
    type_ids: np.ndarray
    offsets: np.ndarray
    context_mask: np.ndarray

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])


class QATokenizer:
    """Turns (question, context) pairs into overlapping windows of at most ``max_seq_length``.

    Safe to share between threads: the truncation settings are fixed at construction and
    encoding never changes the tokenizer.

    Args:
        tokenizer: A ``tokenizers.Tokenizer`` for a BERT-style pair template.
        max_seq_length: Tokens per window, special tokens included.
        doc_stride: Overlapping tokens between consecutive windows of a context.
        max_question_len: Questions longer than this many tokens are cut, with a warning.
    """

    def __init__(
        self,
        tokenizer: Tokenizer,
        max_seq_length: int,
        doc_stride: int,
        max_question_len: int = 64,
    ) -> None:
        if max_question_len < 1:
            raise ValueError(f"max_question_len must be >= 1, got {max_question_len}")
        specials = tokenizer.num_special_tokens_to_add(is_pair=True)
        # The context part of a window must stay longer than the stride (see module doc).
        room = max_seq_length - specials - doc_stride - 1
        if room < 1:
            raise ValueError(
                f"max_seq_length={max_seq_length} leaves no room for a question with "
                f"doc_stride={doc_stride} and {specials} special tokens"
            )
        self.max_seq_length = max_seq_length
        self.doc_stride = doc_stride
        self.max_question_len = min(max_question_len, room)
        # Two copies: one truncating pairs into windows, one measuring questions alone
        # (a single sequence cannot be truncated with the "only_second" strategy).
        self._pairs = Tokenizer.from_str(tokenizer.to_str())
        self._pairs.no_padding()
        self._pairs.enable_truncation(max_seq_length, stride=doc_stride, strategy="only_second")
        self._single = Tokenizer.from_str(tokenizer.to_str())
        self._single.no_padding()
        self._single.no_truncation()
        self.pad_id = _pad_id(tokenizer)

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike,
        max_seq_length: int,
        doc_stride: int,
        max_question_len: int = 64,
    ) -> QATokenizer:
        """Load ``tokenizer.json``.

        Raises:
            FileNotFoundError: The file does not exist.
            ValueError: The file is not a valid ``tokenizers`` JSON file.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: tokenizer file not found")
        try:
            tokenizer = Tokenizer.from_file(str(path))
        except Exception as err:  # tokenizers raises a bare Exception on bad JSON
            raise ValueError(f"{path}: not a valid tokenizer.json ({err})") from err
        return cls(tokenizer, max_seq_length, doc_stride, max_question_len)

    def prepare_question(self, question: str) -> str:
        """The question as it is encoded: left-stripped (as run_qa does), cut if too long."""
        return self._fit_questions([question])[0]

    def encode(self, question: str, context: str) -> list[Window]:
        """Windows of one (question, context) pair, in context order."""
        return self.encode_batch([question], [context])[0]

    def encode_batch(self, questions: Sequence[str], contexts: Sequence[str]) -> list[list[Window]]:
        """Windows of many pairs (tokenized in parallel by the tokenizers library).

        Args:
            questions: Question strings.
            contexts: Context strings, one per question.

        Returns:
            For each pair, its windows in context order (at least one).
        """
        fitted = self._fit_questions(questions)
        clean = [_LONE_SURROGATE.sub("\ufffd", c) for c in contexts]  # same length, valid UTF-8
        encodings = self._pairs.encode_batch(list(zip(fitted, clean, strict=True)))
        out = []
        for first, context in zip(encodings, contexts, strict=True):
            # Snapping is needed only if some code point can continue a character.
            snap = not context.isascii() and any(is_extending(ch) for ch in set(context))
            out.append([self._window(enc, context, snap) for enc in (first, *first.overflowing)])
        return out

    def count_context_tokens(self, context: str, stop_after: int | None = None) -> int:
        """Tokens of ``context`` alone (no special tokens): what its windows hold, overlap aside.

        Args:
            context: The context text.
            stop_after: Stop as soon as the count is known to pass this, with a lower
                bound: first by its whitespace-separated words (each is at least one
                token, bar a word made only of characters the normaliser drops; split no
                further than ``stop_after + 1``, so this returns ``stop_after + 1``), else
                by tokenizing a prefix cut at whitespace, never the whole text.

        Returns:
            The count (exact unless it is over ``stop_after``).
        """
        if stop_after is not None:
            words = len(context.split(maxsplit=stop_after))  # at most stop_after + 1
            if words > stop_after:
                return words
        clean = _LONE_SURROGATE.sub("\ufffd", context)
        size = len(clean) if stop_after is None else _CHARS_PER_TOKEN_GUESS * (stop_after + 1)
        while True:
            cut = _whitespace_before(clean, size)
            # encode_batch releases the GIL: the event loop keeps serving meanwhile.
            encoding = self._single.encode_batch([clean[:cut]], add_special_tokens=False)[0]
            count = len(encoding.ids)
            if cut >= len(clean) or (stop_after is not None and count > stop_after):
                return count
            size = 2 * cut

    def _fit_questions(self, questions: Sequence[str]) -> list[str]:
        # run_qa strips leading whitespace: some tokenizers would spend tokens on it.
        fitted = [_LONE_SURROGATE.sub("\ufffd", q.lstrip()) for q in questions]
        limit = self.max_question_len
        cut = 0
        for i, enc in enumerate(self._single.encode_batch(fitted, add_special_tokens=False)):
            question, n_tokens, offsets = fitted[i], len(enc.ids), enc.offsets
            if n_tokens <= limit:
                continue
            cut += 1
            # Cut the text after the limit-th token and re-check: re-tokenizing a prefix
            # can (rarely) give a different count, e.g. an over-long word that was [UNK].
            while n_tokens > limit:
                end = offsets[limit - 1][1] if offsets[limit - 1][1] < len(question) else 0
                question = question[: end or len(question) // 2]
                enc = self._single.encode(question, add_special_tokens=False)
                n_tokens, offsets = len(enc.ids), enc.offsets
            fitted[i] = question
        if cut:
            warnings.warn(
                f"{cut} question(s) longer than {limit} tokens were cut to {limit} tokens",
                stacklevel=4,
            )
        return fitted

    def _window(self, enc, context: str, snap: bool) -> Window:
        ids = np.asarray(enc.ids, dtype=np.int64)  # (seq,)
        type_ids = np.asarray(enc.type_ids, dtype=np.int64)  # (seq,)
        # The context is one contiguous run of sequence id 1 (list.index runs in C).
        sequence_ids = enc.sequence_ids
        context_mask = np.zeros(len(ids), dtype=bool)  # (seq,)
        if 1 in sequence_ids:
            first = sequence_ids.index(1)
            last = len(sequence_ids) - sequence_ids[::-1].index(1)
            context_mask[first:last] = True
        offsets = np.asarray(enc.offsets, dtype=np.int64).reshape(-1, 2)  # (seq, 2)
        offsets[~context_mask] = 0
        if snap:
            for i in np.flatnonzero(context_mask):
                offsets[i, 0] = snap_start(context, int(offsets[i, 0]))
                offsets[i, 1] = snap_end(context, int(offsets[i, 1]))
        return Window(ids, type_ids, offsets, context_mask)


# Characters per token to try first when counting a prefix (English runs 4 to 5 per
# WordPiece token, so the first prefix usually settles it; a wrong guess only doubles).
_CHARS_PER_TOKEN_GUESS = 6
_WHITESPACE = re.compile(r"\s")


def _whitespace_before(text: str, size: int) -> int:
    """Where to cut ``text`` near ``size`` so that no word is split (pre-tokenizers split
    at whitespace, so a prefix cut there tokenizes to a prefix of the whole's tokens).
    The whole length when ``size`` reaches it or no whitespace comes before it."""
    if size >= len(text):
        return len(text)
    for cut in range(size, max(0, size - 1000), -1):  # words are short; give up after 1,000
        if _WHITESPACE.match(text, cut):
            return cut
    return len(text)


def _pad_id(tokenizer: Tokenizer) -> int:
    """The id of the padding token (its value never matters: padding is masked out)."""
    padding = tokenizer.padding
    if padding and padding.get("pad_id") is not None:
        return int(padding["pad_id"])
    for token in ("[PAD]", "<pad>", "<PAD>"):
        token_id = tokenizer.token_to_id(token)
        if token_id is not None:
            return token_id
    return 0
