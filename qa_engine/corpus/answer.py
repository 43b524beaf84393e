"""Check raw corpus rows and answer the good ones with one engine; bad rows keep their error.

The one row path of ``qa-engine predict`` (local, streaming) and of the Ray Data actors of
``predict --ray``: both call :func:`answer_rows` on chunks of raw rows, so they give the
same result for the same row. Every row in gives exactly one result out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# Columns of every result row, in output order.
RESULT_FIELDS = ("id", "answer", "score", "start", "end", "error")
# Key a reader puts in a raw row it could not parse (the value is the message).
ROW_ERROR = "__error__"


@dataclass(frozen=True)
class AnswerOptions:
    """How rows are answered (the options of ``engine.predict`` a corpus run uses).

    Attributes:
        batch_size: Windows per onnxruntime call.
        max_answer_length: Longest answer in tokens (None: the manifest's).
        handle_impossible: Allow "no answer"; None follows the manifest's ``version_2``.
    """

    batch_size: int = 32
    max_answer_length: int | None = None
    handle_impossible: bool | None = None

    def __post_init__(self) -> None:
        for name in ("batch_size", "max_answer_length"):
            value = getattr(self, name)
            if value is None and name == "max_answer_length":
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, got {type(value).__name__}")
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")


def check_row(raw: Any) -> tuple[str | None, str, str, str | None]:
    """``(id, question, context, error)`` of one raw row; ``error`` is None when it is good.

    An integer id is taken as its decimal string (Parquet files often store ids as int64).
    The message names the field: ``"context: empty or whitespace only"``.
    """
    if not isinstance(raw, Mapping):
        return None, "", "", f"row: expected an object, got {type(raw).__name__}"
    qid = raw.get("id")
    if isinstance(qid, int) and not isinstance(qid, bool):
        qid = str(qid)
    elif qid is not None and not isinstance(qid, str):
        return None, "", "", f"id: expected a string or an integer, got {type(qid).__name__}"
    if ROW_ERROR in raw:
        return qid, "", "", str(raw[ROW_ERROR])
    if qid is None:
        return None, "", "", "id: missing"
    texts = []
    for field in ("question", "context"):
        value = raw.get(field)
        if value is None:
            return qid, "", "", f"{field}: missing"
        if not isinstance(value, str):
            return qid, "", "", f"{field}: expected a string, got {type(value).__name__}"
        if not value.strip():
            return qid, "", "", f"{field}: empty or whitespace only"
        texts.append(value)
    return qid, texts[0], texts[1], None


def answer_rows(engine, rows: Sequence[Any], options: AnswerOptions) -> list[dict[str, Any]]:
    """Answer a chunk of raw rows: one result dict (:data:`RESULT_FIELDS`) per row, in order.

    Good rows go through ``engine.predict`` together (so they are batched by length);
    should that call fail, each good row is retried alone, so one row the engine cannot
    answer costs only its own result.
    """
    checked = [check_row(raw) for raw in rows]
    results: list[dict[str, Any]] = [_error(qid, error) for qid, _, _, error in checked]
    good = [i for i, (_, _, _, error) in enumerate(checked) if error is None]
    if not good:
        return results
    predict = {
        "batch_size": options.batch_size,
        "max_answer_length": options.max_answer_length,
        "handle_impossible": options.handle_impossible,
    }
    try:
        answers = engine.predict(
            [checked[i][1] for i in good], [checked[i][2] for i in good], **predict
        )
    except Exception:  # noqa: BLE001 (any engine failure: isolate the row that caused it)
        answers = []
        for i in good:
            try:
                answers.append(engine.predict([checked[i][1]], [checked[i][2]], **predict)[0])
            except Exception as err:  # noqa: BLE001
                answers.append(f"{type(err).__name__}: {err}")
    for i, answer in zip(good, answers, strict=True):
        qid = checked[i][0]
        if isinstance(answer, str):
            results[i] = _error(qid, answer)
        else:
            results[i] = {
                "id": qid,
                "answer": answer.text,
                "score": float(answer.score),
                "start": int(answer.start),
                "end": int(answer.end),
                "error": None,
            }
    return results


def _error(qid: str | None, error: str | None) -> dict[str, Any]:
    return {"id": qid, "answer": None, "score": None, "start": None, "end": None, "error": error}
