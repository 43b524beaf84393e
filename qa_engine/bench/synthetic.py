"""A model and data that need no download, for speed measurements.

Speed does not depend on weight values, only on the architecture and the sequence
lengths, so the speed suite uses the SpanBERT-base architecture (BERT-base, cased
vocabulary of 28,996 WordPiece tokens) with random weights, a generated vocabulary,
and generated question/context pairs that tokenize to an exact number of tokens.
"""

from __future__ import annotations

import json
import os
import string
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from qa_engine.data import QAExample, save_squad_json
from qa_engine.extras import require

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
_CONSONANTS = "bcdfghjklmnprstvwz"
_VOWELS = "aeiou"


@dataclass(frozen=True)
class ArchConfig:
    """A BERT-family encoder shape.

    Attributes:
        vocab_size: WordPiece vocabulary size (SpanBERT cased: 28996).
        hidden_size: Width of every layer.
        num_hidden_layers: Transformer blocks.
        num_attention_heads: Heads per block.
        intermediate_size: Feed-forward width.
        max_position_embeddings: Longest sequence the model accepts.
    """

    vocab_size: int = 28996
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    max_position_embeddings: int = 512

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


SPANBERT_BASE = ArchConfig()
TINY = ArchConfig(
    vocab_size=600,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=37,
)


def generated_vocab(size: int, seed: int = 0) -> list[str]:
    """A cased WordPiece vocabulary of exactly ``size`` tokens.

    Specials, single characters (both cases, digits, punctuation) and their ``##``
    continuations, then pronounceable made-up words in lower and capitalised form.
    """
    chars = list(string.ascii_letters + string.digits) + list(".,;:!?'\"()-")
    vocab = SPECIALS + chars + ["##" + c for c in string.ascii_letters + string.digits]
    if size < len(vocab) + 10:
        raise ValueError(f"vocab size must be >= {len(vocab) + 10}, got {size}")
    seen = set(vocab)
    rng = np.random.default_rng(seed)
    while len(vocab) < size:
        syllables = int(rng.integers(2, 5))
        word = "".join(
            _CONSONANTS[int(rng.integers(len(_CONSONANTS)))] + _VOWELS[int(rng.integers(5))]
            for _ in range(syllables)
        )
        for form in (word, word.capitalize()):
            if form not in seen and len(vocab) < size:
                seen.add(form)
                vocab.append(form)
    return vocab


def write_random_model(
    directory: str | os.PathLike,
    arch: ArchConfig = SPANBERT_BASE,
    *,
    max_seq_length: int = 384,
    doc_stride: int = 128,
    seed: int = 0,
) -> Path:
    """Save a randomly initialised BertForQuestionAnswering with a cased tokenizer.

    The dir looks like ``qa-engine finetune`` output (``qa_config.json`` included), so
    the export stage and the benchmark read their window settings from it.
    """
    torch = require("torch")
    transformers = require("transformers")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    vocab_file = directory / "vocab.txt"
    vocab_file.write_text("\n".join(generated_vocab(arch.vocab_size, seed)) + "\n")
    config = transformers.BertConfig(**arch.to_dict())
    torch.manual_seed(seed)
    model = transformers.BertForQuestionAnswering(config)
    model.save_pretrained(directory, safe_serialization=True)
    tokenizer = transformers.BertTokenizerFast(
        vocab_file=str(vocab_file),
        do_lower_case=False,
        model_max_length=arch.max_position_embeddings,
    )
    tokenizer.save_pretrained(directory)
    qa_config = {
        "max_seq_length": max_seq_length,
        "doc_stride": doc_stride,
        "max_answer_length": 30,
        "version_2": False,
        "null_threshold": 0.0,
        "base_model": f"random BERT {arch.to_dict()}",
        "metrics": {},
    }
    (directory / "qa_config.json").write_text(json.dumps(qa_config, indent=2) + "\n")
    return directory


def synthetic_examples(
    tokenizer_file: str | os.PathLike,
    seq_length: int,
    count: int,
    *,
    question_words: int = 10,
    seed: int = 0,
) -> list[QAExample]:
    """Question/context pairs that tokenize to exactly ``seq_length`` tokens (one window).

    Words are drawn from the vocabulary's whole words, so each is one token; the context
    length is adjusted until ``[CLS] question [SEP] context [SEP]`` has the wanted length.
    Each question has a three-word gold answer taken from its context.
    """
    tokenizers = require("tokenizers")
    tokenizer = tokenizers.Tokenizer.from_file(str(tokenizer_file))
    words = sorted(w for w in tokenizer.get_vocab() if w.isalpha() and len(w) > 2)
    if len(words) < 10:
        raise ValueError(f"{tokenizer_file}: too few whole words to generate text")
    rng = np.random.default_rng(seed)
    examples = []
    for i in range(count):
        question = " ".join(rng.choice(words, question_words)) + "?"
        n_context = max(seq_length - question_words - 4, 4)
        pool = list(rng.choice(words, n_context + 64))
        for _ in range(8):  # converges in one or two steps: one word is one token
            context = " ".join(pool[:n_context]) + "."
            length = len(tokenizer.encode(question, context).ids)
            if length == seq_length:
                break
            n_context += seq_length - length
            if n_context < 4 or n_context > len(pool):
                raise ValueError(f"cannot build a {seq_length}-token pair")
        else:
            raise ValueError(f"cannot build a pair of exactly {seq_length} tokens")
        first = int(rng.integers(0, n_context - 3))
        start = len(" ".join(pool[:first])) + (1 if first else 0)
        answer = " ".join(pool[first : first + 3])
        if context[start : start + len(answer)] != answer:  # cannot happen: words joined by " "
            raise RuntimeError(f"answer offset {start} does not match in {context!r}")
        examples.append(
            QAExample(
                f"synthetic-{seq_length}-{i}",
                f"synthetic-{seq_length}",
                context,
                question,
                {"text": [answer], "answer_start": [start]},
            )
        )
    return examples


def write_calibration_file(
    tokenizer_file: str | os.PathLike, path: str | os.PathLike, seq_lengths: list[int], count: int
) -> Path:
    """A SQuAD JSON of synthetic pairs at several lengths (static int8 calibration)."""
    examples = []
    for length in seq_lengths:
        examples += synthetic_examples(tokenizer_file, length, count, seed=length)
    return save_squad_json(examples, path)
