"""Tokenizer loading, with the SpanBERT pitfalls fixed.

The official SpanBERT checkpoints ship ``vocab.txt`` and ``config.json`` but no tokenizer
config. ``AutoTokenizer`` then falls back to BERT defaults: it lower-cases a *cased*
vocabulary (every capitalised word becomes [UNK]-prone sub-pieces) and leaves
``model_max_length`` unbounded, so nothing stops windows longer than the 512 position
embeddings. We detect that layout and build the tokenizer explicitly.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

TOKENIZER_CONFIG_FILES = ("tokenizer_config.json", "tokenizer.json")
SPANBERT_MAX_LENGTH = 512


def vocab_is_cased(vocab_file: Path) -> bool:
    """Whether a WordPiece vocabulary has upper-case tokens (i.e. expects cased input)."""
    with open(vocab_file, encoding="utf-8") as f:
        for line in f:
            token = line.strip()
            if token.startswith(("[", "<")) and token.endswith(("]", ">")):
                continue  # special tokens such as [CLS], [unused0], <s>
            if token != token.lower():
                return True
    return False


def needs_spanbert_fix(directory: Path) -> bool:
    """A local dir with ``vocab.txt`` but no ``tokenizer_config.json`` or ``tokenizer.json``."""
    return (
        directory.is_dir()
        and (directory / "vocab.txt").is_file()
        and not any((directory / name).is_file() for name in TOKENIZER_CONFIG_FILES)
    )


def load_tokenizer(source: str, *, model_max_positions: int | None = None) -> Any:
    """Load a fast tokenizer for ``source`` (a local dir or hub id).

    Args:
        source: Tokenizer (or model) directory or hub id.
        model_max_positions: The model's ``max_position_embeddings``; bounds an
            unbounded ``model_max_length``.

    Returns:
        A ``transformers.PreTrainedTokenizerFast`` (question answering needs offsets).

    Raises:
        ValueError: The tokenizer has no fast (Rust) implementation.
    """
    import transformers

    directory = Path(source).expanduser()
    if needs_spanbert_fix(directory):
        cased = vocab_is_cased(directory / "vocab.txt")
        max_length = min(SPANBERT_MAX_LENGTH, model_max_positions or SPANBERT_MAX_LENGTH)
        tokenizer = transformers.BertTokenizerFast(
            vocab_file=str(directory / "vocab.txt"),
            do_lower_case=not cased,
            model_max_length=max_length,
        )
        logger.warning(
            "%s has vocab.txt but no tokenizer config (SpanBERT-style release): using "
            "BertTokenizerFast(do_lower_case=%s, model_max_length=%d) because the vocabulary "
            "is %s",
            source,
            not cased,
            max_length,
            "cased" if cased else "uncased",
        )
        return tokenizer
    tokenizer = transformers.AutoTokenizer.from_pretrained(source, use_fast=True)
    if not tokenizer.is_fast:
        raise ValueError(
            f"{source}: no fast tokenizer available; question answering needs offset mappings"
        )
    if model_max_positions is not None and tokenizer.model_max_length > model_max_positions:
        logger.warning(
            "%s: tokenizer model_max_length %s is unbounded or exceeds the model's %d "
            "positions; using %d",
            source,
            tokenizer.model_max_length,
            model_max_positions,
            model_max_positions,
        )
        tokenizer.model_max_length = model_max_positions
    return tokenizer
