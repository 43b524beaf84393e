"""Question/context pairs and their model windows, for parity, calibration and timing.

Real pairs come from a SQuAD file (``--calibration-file``); without one, pairs are
generated from the tokenizer's own vocabulary (nonsense text, but parity is about
PyTorch and ONNX agreeing on the same input, not about the answer being right). The
windowing is the fine-tune evaluation's (``prepare_validation_features``), so the
export is verified on exactly the windows the model will see.
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qa_engine.data import QAExample, load_squad

_WORD = re.compile(r"^[A-Za-z]+$")


@dataclass
class Windows:
    """Tokenised windows of a list of questions (each window unpadded).

    Attributes:
        inputs: Model input name -> one ``(seq,)`` int64 array per window.
        example_index: For each window, the index of its question.
        offsets: For each window, ``(seq, 2)`` character offsets into the context.
        context_mask: For each window, ``(seq,)`` True on context tokens.
        pad_token_id: Token used to pad batches.
    """

    inputs: dict[str, list[np.ndarray]]
    example_index: list[int]
    offsets: list[np.ndarray]
    context_mask: list[np.ndarray]
    pad_token_id: int

    def __len__(self) -> int:
        return len(self.example_index)

    def length(self, i: int) -> int:
        """Tokens in window ``i``."""
        return len(self.offsets[i])

    def windows_of(self, questions: int) -> int:
        """How many windows the first ``questions`` questions have (windows are in
        question order)."""
        return bisect.bisect_left(self.example_index, questions)

    def head(self, questions: int) -> Windows:
        """The windows of the first ``questions`` questions (a view: arrays are shared)."""
        n = self.windows_of(questions)
        return Windows(
            inputs={name: rows[:n] for name, rows in self.inputs.items()},
            example_index=self.example_index[:n],
            offsets=self.offsets[:n],
            context_mask=self.context_mask[:n],
            pad_token_id=self.pad_token_id,
        )

    def batch(self, indices: Sequence[int], input_names: Sequence[str]) -> dict[str, np.ndarray]:
        """Right-padded ``(batch, seq)`` feeds of the windows ``indices``.

        Only inputs the model declares are fed (a RoBERTa-style graph has no
        ``token_type_ids``).
        """
        longest = max(self.length(i) for i in indices)
        feeds = {}
        for name in input_names:
            if name not in self.inputs:
                raise ValueError(
                    f"the model wants input {name!r}; windows have {list(self.inputs)}"
                )
            pad = self.pad_token_id if name == "input_ids" else 0
            out = np.full((len(indices), longest), pad, dtype=np.int64)  # (batch, seq)
            for row, i in enumerate(indices):
                out[row, : self.length(i)] = self.inputs[name][i]
            feeds[name] = out
        return feeds


def load_examples(path: Path, start: int, count: int) -> tuple[list[QAExample], bool, int]:
    """Questions ``start:start+count`` of a SQuAD file (wrapping around a short file).

    Returns:
        The questions, whether the file is SQuAD 2.0, and how many usable questions it has.
    """
    stat = Path(path).stat()  # part of the cache key: a rewritten file is read again
    examples, version_2 = _usable_examples(Path(path), stat.st_mtime_ns, stat.st_size)
    if not examples:
        raise ValueError(f"{path}: no question with a usable gold answer")
    picked = [examples[(start + i) % len(examples)] for i in range(min(count, len(examples)))]
    return picked, version_2, len(examples)


@functools.lru_cache(maxsize=2)
def _usable_examples(path: Path, mtime_ns: int, size: int) -> tuple[tuple[QAExample, ...], bool]:
    """The questions of a SQuAD file that have a gold answer (or are impossible), read once
    per export (parity and calibration both draw on it; SQuAD train takes seconds)."""
    data = load_squad(path)
    usable = tuple(ex for ex in data.examples if ex.is_impossible or ex.answers["text"])
    return usable, data.version_2


def generated_examples(tokenizer: Any, count: int, *, seed: int = 0) -> list[QAExample]:
    """Random question/context pairs made of whole words from the tokenizer's vocabulary.

    Context lengths vary from a few words to several windows, so multi-window
    decoding is exercised too.
    """
    words = sorted(w for w in tokenizer.get_vocab() if _WORD.match(w))
    if len(words) < 10:
        raise ValueError("the tokenizer vocabulary has too few whole words to generate text")
    rng = np.random.default_rng(seed)
    examples = []
    for i in range(count):
        n_context = int(rng.choice([12, 40, 120, 400])) + int(rng.integers(0, 10))
        n_question = int(rng.integers(4, 10))
        context = " ".join(rng.choice(words, n_context)) + "."
        question = " ".join(rng.choice(words, n_question)) + "?"
        answers: dict[str, list] = {"text": [], "answer_start": []}
        examples.append(QAExample(f"generated-{i}", "", context, question, answers))
    return examples


def build_windows(
    tokenizer: Any, examples: Sequence[QAExample], max_seq_length: int, doc_stride: int
) -> Windows:
    """Tokenise questions into overlapping windows, as fine-tune evaluation does."""
    from qa_engine.finetune.features import prepare_validation_features

    batch = {
        "id": [str(i) for i in range(len(examples))],
        "question": [ex.question for ex in examples],
        "context": [ex.context for ex in examples],
    }
    tokenized = prepare_validation_features(batch, tokenizer, max_seq_length, doc_stride)
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in tokenized]
    inputs = {n: [np.asarray(row, dtype=np.int64) for row in tokenized[n]] for n in names}
    return Windows(
        inputs=inputs,
        example_index=[int(i) for i in tokenized["example_id"]],
        offsets=[np.asarray(o, dtype=np.int64).reshape(-1, 2) for o in tokenized["offset_mapping"]],
        context_mask=[np.asarray(m, dtype=bool) for m in tokenized["context_mask"]],
        pad_token_id=int(tokenizer.pad_token_id or 0),
    )


def calibration_feeds(
    windows: Windows, input_names: Sequence[str], limit: int
) -> list[dict[str, np.ndarray]]:
    """Batch-1 unpadded feeds of at most ``limit`` windows for static calibration: the
    first window of each question first (diverse text), then the others in order.

    Calibration runs every feed through the graph with all activations exposed, which
    costs about 1 (ORT MinMax) to 2 (NNCF) CPU-seconds per full SpanBERT-base window
    (measured on 2 EPYC cores), so the export calibrates on one window per calibration
    question rather than all of them (~2.8 each for SQuAD at 384 tokens).
    """
    first = [
        i
        for i in range(len(windows))
        if i == 0 or windows.example_index[i - 1] != windows.example_index[i]
    ]
    taken = set(first)
    rest = [i for i in range(len(windows)) if i not in taken]
    picked = (first + rest)[:limit]
    return [windows.batch([i], input_names) for i in picked]
