"""Load benchmark of an HTTP endpoint that speaks the Inference API QA contract.

``N`` concurrent clients (asyncio + httpx, one keep-alive connection each) send real
SQuAD questions, one per request, in a closed loop until ``requests`` were sent. Per
level: throughput (answered / wall time), latency percentiles of answered requests,
status counts, and *lost* = sent - answered - rejected, where answered is a 2xx and
rejected an explicit 429 or 503; a transport error, a 5xx other than 503 or any other
status is lost. Answers are scored with the official SQuAD metric, so a fast wrong
endpoint does not look good.
"""

from __future__ import annotations

import asyncio
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


def _headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


async def _send(client, url: str, index: int, question: str, context: str) -> Outcome:
    started = time.perf_counter()
    try:
        response = await client.post(
            url, json={"inputs": {"question": question, "context": context}}
        )
    except Exception as err:  # httpx.TransportError and friends: the request is lost
        return Outcome(index, type(err).__name__, time.perf_counter() - started, None)
    seconds = time.perf_counter() - started
    answer = None
    if 200 <= response.status_code < 300:
        try:
            answer = response.json()["answer"]
        except (ValueError, KeyError, TypeError):
            return Outcome(index, "bad-body", seconds, None)
    return Outcome(index, response.status_code, seconds, answer)


async def _closed_loop(
    url: str, pairs: Sequence[tuple[str, str]], concurrency: int, requests: int, api_key, timeout
) -> tuple[list[Outcome], float]:
    httpx = require("httpx", "serve")
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    counter = iter(range(requests))
    outcomes: list[Outcome] = []
    async with httpx.AsyncClient(timeout=timeout, limits=limits, headers=_headers(api_key)) as c:

        async def client() -> None:
            for n in counter:
                question, context = pairs[n % len(pairs)]
                outcomes.append(await _send(c, url, n % len(pairs), question, context))

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return outcomes, wall


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
) -> dict[str, Any]:
    """``requests`` requests from ``concurrency`` closed-loop clients; :func:`summarize`."""
    outcomes, wall = asyncio.run(_closed_loop(url, pairs, concurrency, requests, api_key, timeout))
    return {"concurrency": concurrency, **summarize(outcomes, wall, examples)}


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
