"""The Hugging Face Inference API contract for question answering, and its validation.

``{"inputs": {"question": str, "context": str} | [...], "parameters": {...}}`` in,
``{"answer", "score", "start", "end"}`` out (a list when ``top_k`` > 1; a list of those
when ``inputs`` is a list). Bodies are parsed here rather than by FastAPI so that every
bad body (broken UTF-8, deep nesting, NaN, huge numbers) is a 422 naming the field,
never a 400 or a 500.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from qa_engine.serve.batcher import RequestOptions


class ApiError(Exception):
    """An error answer: HTTP status, a message naming the field, optional details."""

    def __init__(
        self,
        status: int,
        message: str,
        detail: list | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        kind = {401: "unauthorized", 413: "payload_too_large", 422: "validation"}
        kind |= {429: "overloaded", 503: "unavailable", 504: "timeout"}
        out: dict[str, Any] = {"error": self.message, "error_type": kind.get(self.status, "error")}
        if self.detail:
            out["detail"] = self.detail
        return out | self.extra


class QAInput(BaseModel):
    """One question and the context to answer it from."""

    model_config = ConfigDict(extra="forbid", strict=True)
    question: str
    context: str

    @field_validator("question", "context")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty or whitespace only")
        return value


class QAParameters(BaseModel):
    """The pipeline's parameters. Window geometry is fixed by the export: the
    ``doc_stride``, ``max_seq_len`` and ``max_question_len`` that clients may send are
    accepted when they equal the export's."""

    model_config = ConfigDict(extra="forbid", strict=True)
    top_k: int | None = Field(None, ge=1, description="Answers per question.")
    max_answer_len: int | None = Field(None, ge=1, le=100_000, description="In tokens.")
    handle_impossible_answer: bool | None = Field(
        None, description='Allow "" (no answer); default: the model\'s SQuAD version.'
    )
    align_to_words: bool | None = Field(None, description="Accepted; spans follow tokens.")
    doc_stride: int | None = None
    max_seq_len: int | None = None
    max_question_len: int | None = None


class QARequest(BaseModel):
    """The request body (for the OpenAPI docs; parsing goes through :func:`parse_request`)."""

    inputs: QAInput | list[QAInput]
    parameters: QAParameters | None = None


class QAAnswer(BaseModel):
    """One answer: ``context[start:end] == answer``."""

    answer: str
    score: float
    start: int
    end: int


@dataclass(frozen=True)
class ParsedRequest:
    questions: list[str]
    contexts: list[str]
    options: RequestOptions
    batched: bool  # inputs was a list: answer with a list


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def _errors(err: ValidationError, prefix: tuple) -> list[dict[str, Any]]:
    return [
        {"loc": [*prefix, *e["loc"]], "msg": e["msg"], "type": e["type"]}
        for e in err.errors(include_url=False, include_context=False, include_input=False)
    ]


def _fail(detail: list[dict[str, Any]]) -> ApiError:
    first = detail[0]
    where = ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in first["loc"])
    return ApiError(422, f"{where.replace('.[', '[')}: {first['msg']}", detail)


def parse_request(
    body: bytes, *, max_client_batch_size: int, max_top_k: int, geometry: dict[str, int]
) -> ParsedRequest:
    """Validate a raw body.

    Args:
        geometry: The export's ``doc_stride``, ``max_seq_len`` and ``max_question_len``.

    Raises:
        ApiError: 422 for anything malformed, 413 for a client batch over the limit.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ApiError(422, f"body: not valid UTF-8 ({err.reason} at byte {err.start})") from None
    try:
        raw = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise ApiError(422, "body: JSON nested too deeply") from None
    except ValueError as err:  # JSONDecodeError, NaN, integers over the digit limit
        raise ApiError(422, f"body: not valid JSON ({str(err)[:200]})") from None
    if not isinstance(raw, dict):
        raise ApiError(422, f"body: expected a JSON object, got {type(raw).__name__}")
    unknown = sorted(set(raw) - {"inputs", "parameters"})
    if unknown:
        raise ApiError(422, f"{str(unknown[0])[:100]}: unknown field (expected inputs, parameters)")
    if "inputs" not in raw:
        raise ApiError(422, "inputs: field required")
    inputs, batched = raw["inputs"], isinstance(raw["inputs"], list)
    items = inputs if batched else [inputs]
    if batched and not items:
        raise ApiError(422, "inputs: must not be an empty list")
    if len(items) > max_client_batch_size:
        raise ApiError(
            413, f"inputs: {len(items)} items, over --max-client-batch-size {max_client_batch_size}"
        )
    parsed: list[QAInput] = []
    for i, item in enumerate(items):
        try:
            parsed.append(QAInput.model_validate(item))
        except ValidationError as err:
            raise _fail(_errors(err, ("inputs", i) if batched else ("inputs",))) from None
    parameters = raw.get("parameters")
    try:
        params = QAParameters.model_validate({} if parameters is None else parameters)
    except ValidationError as err:
        raise _fail(_errors(err, ("parameters",))) from None
    if params.top_k is not None and params.top_k > max_top_k:
        raise ApiError(422, f"parameters.top_k: must be <= {max_top_k}, got {params.top_k}")
    for name, fixed in geometry.items():
        value = getattr(params, name)
        if value is not None and value != fixed:
            raise ApiError(422, f"parameters.{name}: fixed by the export at {fixed}, got {value}")
    options = RequestOptions(
        top_k=params.top_k or 1,
        max_answer_length=params.max_answer_len,
        handle_impossible=params.handle_impossible_answer,
    )
    return ParsedRequest(
        [p.question for p in parsed], [p.context for p in parsed], options, batched
    )


def render_answers(decoded: list, top_k: int, batched: bool) -> Any:
    """Answers in the Inference API shape."""

    def one(d) -> Any:
        answers = [
            {"answer": a.text, "score": a.score, "start": a.start, "end": a.end} for a in d.answers
        ]
        return answers[0] if top_k == 1 else answers

    results = [one(d) for d in decoded]
    return results if batched else results[0]
