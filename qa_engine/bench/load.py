"""Load benchmark of an HTTP endpoint that speaks the Inference API QA contract.

``N`` concurrent clients (asyncio + httpx, one keep-alive connection each) send real
SQuAD questions, one per request, in a closed loop until ``requests`` were sent. Per
level: throughput (answered / wall time), latency percentiles of answered requests,
status counts, and *lost* = sent - answered - rejected, where answered is a 2xx and
rejected an explicit 429 or 503; a transport error, a 5xx other than 503 or any other
status is lost. Answers are scored with the official SQuAD metric, so a fast wrong
endpoint does not look good.

Mixed workload (``long_fraction``): that fraction of the requests asks about a long
document (:func:`long_pair`); one more client sends them one after another from the
start, and the ordinary clients start ``long_lead_s`` later, so the long ones are already
queued. The level's figures are then the ordinary requests' alone, and ``long`` holds the
long requests' statuses, latencies and answers.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from qa_engine.extras import require

REJECTED = (429, 503)


@dataclass(frozen=True)
class Outcome:
    """One request: its question index, status (an int, or the transport error's name),
    seconds from send to answer, and the answer text of a 2xx."""

    index: int
    status: int | str
    seconds: float
    answer: str | None
    result: Any = None  # the whole 2xx body, kept for long-document requests only


def _headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def long_pair(question: str, contexts: Sequence[str], chars: int) -> tuple[str, str]:
    """A long-document request: distinct ``contexts`` joined (blank lines between), repeated
    as needed and cut at a word to at most ``chars`` characters, and ``question``."""
    unique = list(dict.fromkeys(contexts))
    if not unique or chars < 1:
        raise ValueError("long_pair needs at least one context and chars >= 1")
    parts, size, i = [], 0, 0
    while size < chars:
        parts.append(unique[i % len(unique)])
        size += len(parts[-1]) + 2
        i += 1
    text = "\n\n".join(parts)
    if len(text) > chars:
        cut = text.rfind(" ", 0, chars)
        text = text[: cut if cut > 0 else chars]
    return question, text


def _body(question: str, context: str) -> bytes:
    return json.dumps({"inputs": {"question": question, "context": context}}).encode()


async def _send(
    client, url: str, index: int, question: str, context: str, keep: bool = False
) -> Outcome:
    # Encoded before the clock starts: a megabyte of JSON is the client's time, not the
    # server's.
    body = _body(question, context)
    started = time.perf_counter()
    try:
        response = await client.post(
            url, content=body, headers={"content-type": "application/json"}
        )
    except Exception as err:  # httpx.TransportError and friends: the request is lost
        return Outcome(index, type(err).__name__, time.perf_counter() - started, None)
    seconds = time.perf_counter() - started
    answer = body = None
    if 200 <= response.status_code < 300:
        try:
            body = response.json()
            answer = body["answer"]
        except (ValueError, KeyError, TypeError):
            return Outcome(index, "bad-body", seconds, None)
    elif keep:
        try:
            body = response.json()
        except ValueError:
            body = None
    return Outcome(index, response.status_code, seconds, answer, body if keep else None)


@dataclass
class _Mixed:
    """The long-document side of a mixed run."""

    pairs: Sequence[tuple[str, str]]
    count: int
    lead_s: float
    outcomes: list[Outcome]
    finished: float = 0.0  # perf_counter when the last long request was answered


async def _closed_loop(
    url: str,
    pairs: Sequence[tuple[str, str]],
    concurrency: int,
    requests: int,
    api_key,
    timeout,
    mixed: _Mixed | None = None,
) -> tuple[list[Outcome], float, float]:
    """Ordinary outcomes, their wall time, and perf_counter when the last one ended."""
    httpx = require("httpx", "serve")
    connections = concurrency + (1 if mixed else 0)
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    counter = iter(range(requests - (mixed.count if mixed else 0)))
    outcomes: list[Outcome] = []
    async with httpx.AsyncClient(timeout=timeout, limits=limits, headers=_headers(api_key)) as c:

        async def client() -> None:
            for n in counter:
                question, context = pairs[n % len(pairs)]
                outcomes.append(await _send(c, url, n % len(pairs), question, context))

        async def long_client() -> None:
            for n in range(mixed.count):
                question, context = mixed.pairs[n % len(mixed.pairs)]
                mixed.outcomes.append(await _send(c, url, n, question, context, keep=True))
            mixed.finished = time.perf_counter()

        background = asyncio.ensure_future(long_client()) if mixed else None
        if mixed:
            await asyncio.sleep(mixed.lead_s)
        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        ended = time.perf_counter()
        if background is not None:
            await background
    return outcomes, ended - started, ended


async def _burst(url, pairs, size: int, api_key, timeout) -> tuple[list[Outcome], float]:
    httpx = require("httpx", "serve")
    limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
    async with httpx.AsyncClient(timeout=timeout, limits=limits, headers=_headers(api_key)) as c:
        started = time.perf_counter()
        outcomes = await asyncio.gather(
            *(_send(c, url, n % len(pairs), *pairs[n % len(pairs)]) for n in range(size))
        )
        return list(outcomes), time.perf_counter() - started


def summarize(outcomes: Sequence[Outcome], wall: float, examples=None) -> dict[str, Any]:
    """Throughput, latency percentiles (ms, answered requests), statuses, lost, F1."""
    statuses = Counter(str(o.status) for o in outcomes)
    answered = [o for o in outcomes if isinstance(o.status, int) and 200 <= o.status < 300]
    rejected = sum(1 for o in outcomes if o.status in REJECTED)
    ms = np.asarray([o.seconds * 1000 for o in answered]) if answered else None
    out: dict[str, Any] = {
        "sent": len(outcomes),
        "answered": len(answered),
        "rejected": rejected,
        "lost": len(outcomes) - len(answered) - rejected,
        "statuses": dict(sorted(statuses.items())),
        "wall_s": wall,
        "throughput_qps": len(answered) / wall if wall > 0 else None,
        "latency_ms": None
        if ms is None
        else {
            "p50": float(np.percentile(ms, 50)),
            "p95": float(np.percentile(ms, 95)),
            "p99": float(np.percentile(ms, 99)),
            "mean": float(ms.mean()),
            "max": float(ms.max()),
        },
        "f1": None,
    }
    if examples is not None and answered:
        from qa_engine.metrics import squad_metrics

        scored = {o.index: o.answer for o in answered}
        subset = [examples[i] for i in sorted(scored)]
        predictions = {examples[i].id: text for i, text in scored.items()}
        out["f1"] = squad_metrics(predictions, subset, version_2=False)["f1"]
    return out


def run_load(
    url: str,
    pairs: Sequence[tuple[str, str]],
    *,
    concurrency: int,
    requests: int,
    api_key: str | None = None,
    timeout: float = 120.0,
    examples=None,
    long_pairs: Sequence[tuple[str, str]] = (),
    long_fraction: float = 0.0,
    long_lead_s: float = 1.0,
) -> dict[str, Any]:
    """``requests`` requests from ``concurrency`` closed-loop clients; :func:`summarize`.

    With ``long_fraction`` > 0 and ``long_pairs``: that fraction of the requests (at least
    one) are long-document ones (see the module doc); the summary is the ordinary
    requests', with ``long`` beside it.
    """
    if not 0.0 <= long_fraction < 1.0:
        raise ValueError(f"long_fraction must be in [0, 1), got {long_fraction}")
    mixed = None
    if long_pairs and long_fraction > 0:
        count = max(1, math.ceil(requests * long_fraction))
        mixed = _Mixed(long_pairs, count, long_lead_s, [])
    outcomes, wall, ended = asyncio.run(
        _closed_loop(url, pairs, concurrency, requests, api_key, timeout, mixed)
    )
    out = {"concurrency": concurrency, **summarize(outcomes, wall, examples)}
    if mixed is not None:
        long = summarize(mixed.outcomes, 0.0)
        out["long"] = {
            "chars": [len(context) for _, context in mixed.pairs],
            **{k: long[k] for k in ("sent", "answered", "rejected", "lost", "statuses")},
            "seconds": [o.seconds for o in mixed.outcomes],
            "results": [o.result for o in mixed.outcomes],
            # True: every ordinary request ran beside a long one.
            "in_flight_throughout": mixed.finished > ended,
        }
    return out


def run_burst(
    url: str,
    pairs: Sequence[tuple[str, str]],
    *,
    size: int = 500,
    api_key: str | None = None,
    timeout: float = 120.0,
) -> dict[str, Any]:
    """``size`` requests sent at once (each on its own connection); then a health check."""
    httpx = require("httpx", "serve")
    outcomes, wall = asyncio.run(_burst(url, pairs, size, api_key, timeout))
    base = url.rstrip("/").rsplit("/predict", 1)[0]
    try:
        health = httpx.get(base + "/health", timeout=10).status_code
        question, context = pairs[0]
        after = httpx.post(
            url,
            json={"inputs": {"question": question, "context": context}},
            headers=_headers(api_key),
            timeout=30,
        ).status_code
    except httpx.TransportError as err:
        health = after = type(err).__name__
    summary = summarize(outcomes, wall)
    only_2xx_429 = all(
        (isinstance(s, str) and s.isdigit() and (s.startswith("2") or s == "429"))
        for s in summary["statuses"]
    )
    return {
        "size": size,
        **summary,
        "only_2xx_and_429": only_2xx_429,
        "health_after": health,
        "answer_after": after,
    }


def wait_ready(base_url: str, timeout: float = 300.0) -> None:
    """Poll ``/ready`` until 200 (``/health`` where there is no ``/ready``)."""
    httpx = require("httpx", "serve")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status = httpx.get(base_url + "/ready", timeout=2).status_code
            if status == 404:
                status = httpx.get(base_url + "/health", timeout=2).status_code
            if status == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{base_url} not ready within {timeout:.0f} s")
