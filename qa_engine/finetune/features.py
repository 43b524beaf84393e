"""From SQuAD questions to model windows ("features"), as transformers' ``run_qa.py`` does.

A question with a long context becomes several overlapping windows of at most
``max_seq_length`` tokens, ``doc_stride`` tokens of overlap. Training windows are labelled
with the answer's start/end token, or with the [CLS] token when the answer is not fully
inside the window (and for unanswerable SQuAD 2.0 questions). Evaluation windows keep
their example id, character offsets and context mask for the decoder.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qa_engine.data import QAExample


def examples_to_dataset(examples: Sequence[QAExample]) -> Any:
    """A ``datasets.Dataset`` with columns id, question, context, answers."""
    import datasets

    features = datasets.Features(
        {
            "id": datasets.Value("string"),
            "question": datasets.Value("string"),
            "context": datasets.Value("string"),
            "answers": {
                "text": datasets.Sequence(datasets.Value("string")),
                "answer_start": datasets.Sequence(datasets.Value("int32")),
            },
        }
    )
    return datasets.Dataset.from_dict(
        {
            "id": [ex.id for ex in examples],
            "question": [ex.question for ex in examples],
            "context": [ex.context for ex in examples],
            "answers": [
                {"text": list(ex.answers["text"]), "answer_start": list(ex.answers["answer_start"])}
                for ex in examples
            ],
        },
        features=features,
    )


def _tokenize(tokenizer: Any, batch: dict[str, list], max_seq_length: int, doc_stride: int):
    pad_on_right = tokenizer.padding_side == "right"
    # Some questions start with lots of whitespace, which eats window space for nothing.
    questions = [q.lstrip() for q in batch["question"]]
    return tokenizer(
        questions if pad_on_right else batch["context"],
        batch["context"] if pad_on_right else questions,
        truncation="only_second" if pad_on_right else "only_first",
        max_length=max_seq_length,
        stride=doc_stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding=False,  # dynamic padding in the collator
    ), pad_on_right


def prepare_train_features(
    batch: dict[str, list], tokenizer: Any, max_seq_length: int, doc_stride: int
) -> dict[str, list]:
    """Tokenise a batch of questions into labelled windows (``Dataset.map(batched=True)``)."""
    tokenized, pad_on_right = _tokenize(tokenizer, batch, max_seq_length, doc_stride)
    sample_mapping = tokenized.pop("overflow_to_sample_mapping")
    offset_mapping = tokenized.pop("offset_mapping")
    context_index = 1 if pad_on_right else 0
    tokenized["start_positions"] = []
    tokenized["end_positions"] = []
    for i, offsets in enumerate(offset_mapping):
        input_ids = tokenized["input_ids"][i]
        cls_index = input_ids.index(tokenizer.cls_token_id)
        sequence_ids = tokenized.sequence_ids(i)
        answers = batch["answers"][sample_mapping[i]]
        if len(answers["answer_start"]) == 0:  # unanswerable: label the [CLS] token
            tokenized["start_positions"].append(cls_index)
            tokenized["end_positions"].append(cls_index)
            continue
        start_char = answers["answer_start"][0]
        end_char = start_char + len(answers["text"][0])
        token_start = 0
        while sequence_ids[token_start] != context_index:
            token_start += 1
        token_end = len(input_ids) - 1
        while sequence_ids[token_end] != context_index:
            token_end -= 1
        if not (offsets[token_start][0] <= start_char and offsets[token_end][1] >= end_char):
            # The answer is not fully inside this window.
            tokenized["start_positions"].append(cls_index)
            tokenized["end_positions"].append(cls_index)
            continue
        while token_start < len(offsets) and offsets[token_start][0] <= start_char:
            token_start += 1
        tokenized["start_positions"].append(token_start - 1)
        while offsets[token_end][1] >= end_char:
            token_end -= 1
        tokenized["end_positions"].append(token_end + 1)
    return tokenized


def prepare_validation_features(
    batch: dict[str, list], tokenizer: Any, max_seq_length: int, doc_stride: int
) -> dict[str, list]:
    """Tokenise a batch of questions into windows that remember where they came from.

    Adds ``example_id`` (the question id), ``offset_mapping`` and ``context_mask``
    (1 where the token is context) to each window.
    """
    tokenized, pad_on_right = _tokenize(tokenizer, batch, max_seq_length, doc_stride)
    sample_mapping = tokenized.pop("overflow_to_sample_mapping")
    context_index = 1 if pad_on_right else 0
    tokenized["example_id"] = []
    tokenized["context_mask"] = []
    for i in range(len(tokenized["input_ids"])):
        sequence_ids = tokenized.sequence_ids(i)
        tokenized["example_id"].append(batch["id"][sample_mapping[i]])
        tokenized["context_mask"].append([int(s == context_index) for s in sequence_ids])
    return tokenized


def map_features(
    dataset: Any, tokenizer: Any, max_seq_length: int, doc_stride: int, *, train: bool
) -> Any:
    """Run the train or validation preparation over a whole dataset (batched)."""
    function = prepare_train_features if train else prepare_validation_features
    return dataset.map(
        function,
        batched=True,
        remove_columns=dataset.column_names,
        fn_kwargs={
            "tokenizer": tokenizer,
            "max_seq_length": max_seq_length,
            "doc_stride": doc_stride,
        },
        desc="Train windows" if train else "Dev windows",
    )
