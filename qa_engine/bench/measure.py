"""Interleaved timing: every runner gets the same inputs, in turn, so drift cancels.

Latency: after ``warmup`` rounds, round ``i`` asks every runner question ``i mod n`` at
batch 1, starting with a different runner each round (A B C, B C A, ...), so slow
machine drift (thermal, a neighbour's job) spreads over all runners alike.

Throughput: the data set is cut into chunks of about ``CHUNK_QUESTIONS`` questions (a
whole number of batches); each chunk is answered by every runner in turn, again
rotating the order, and the time of each ``answer_many`` call (tokenization, inference
and span decoding) is summed per runner: questions/s = questions / summed time.

Between two timed calls there is a short pause (``settle_s``, not timed) so that the
previous runner's spinning worker threads (OpenMP, ONNX Runtime) go idle instead of
competing with the next runner for the cores.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from qa_engine.bench.runners import Predictions, Runner

CHUNK_QUESTIONS = 32


@dataclass
class LatencyStats:
    """Batch-1 latency in milliseconds over ``runs`` timed calls."""

    p50: float
    p95: float
    p99: float
    mean: float
    min: float
    runs: int

    @classmethod
    def of(cls, seconds: Sequence[float]) -> LatencyStats:
        ms = np.asarray(seconds, dtype=np.float64) * 1e3
        p50, p95, p99 = np.percentile(ms, [50, 95, 99])
        return cls(float(p50), float(p95), float(p99), float(ms.mean()), float(ms.min()), ms.size)


@dataclass
class Ledger:
    """What each runner was asked and what failed: the harness's shared bookkeeping.

    Attributes:
        digests: Per runner, a SHA-1 over every (question, context) it was given, in
            order; equal digests prove the runners saw the same inputs.
        questions: Per runner, how many questions it was asked.
        errors: Per runner, the error that took it out of the run.
    """

    digests: dict[str, Any] = field(default_factory=dict)
    questions: dict[str, int] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def record(self, name: str, questions: Sequence[str], contexts: Sequence[str]) -> None:
        digest = self.digests.setdefault(name, hashlib.sha1())
        for q, c in zip(questions, contexts, strict=True):
            digest.update(q.encode() + b"\x00" + c.encode() + b"\x01")
        self.questions[name] = self.questions.get(name, 0) + len(questions)

    def hexdigest(self, name: str) -> str | None:
        return self.digests[name].hexdigest() if name in self.digests else None

    def alive(self, runners: Sequence[Runner]) -> list[Runner]:
        return [r for r in runners if r.name not in self.errors]

    def fail(self, runner: Runner, err: BaseException) -> None:
        self.errors[runner.name] = f"{type(err).__name__}: {err}"


def _rotated(items: list, k: int) -> list:
    if not items:
        return items
    k %= len(items)
    return items[k:] + items[:k]


def measure_latency(
    runners: Sequence[Runner],
    questions: Sequence[str],
    contexts: Sequence[str],
    *,
    runs: int,
    warmup: int,
    ledger: Ledger,
    settle_s: float = 0.01,
    tick: Callable[[], None] | None = None,
) -> dict[str, LatencyStats]:
    """Interleaved batch-1 latency of each runner (see the module docstring)."""
    n = len(questions)
    times: dict[str, list[float]] = {r.name: [] for r in runners}
    for i in range(warmup + runs):
        q, c = questions[i % n], contexts[i % n]
        for runner in _rotated(ledger.alive(runners), i):
            time.sleep(settle_s)
            try:
                start = time.perf_counter()
                runner.answer_one(q, c)
                elapsed = time.perf_counter() - start
            except Exception as err:  # one broken runner must not sink the others
                ledger.fail(runner, err)
                continue
            if i >= warmup:
                ledger.record(runner.name, [q], [c])
                times[runner.name].append(elapsed)
        if tick is not None:
            tick()
    return {name: LatencyStats.of(t) for name, t in times.items() if t}


def chunk_bounds(n: int, batch_size: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of each chunk: whole batches, about ``CHUNK_QUESTIONS`` each."""
    size = batch_size * max(1, round(CHUNK_QUESTIONS / batch_size))
    return [(i, min(i + size, n)) for i in range(0, n, size)]


def measure_throughput(
    runners: Sequence[Runner],
    questions: Sequence[str],
    contexts: Sequence[str],
    *,
    batch_size: int,
    ledger: Ledger,
    settle_s: float = 0.01,
    tick: Callable[[], None] | None = None,
) -> tuple[dict[str, float], dict[str, Predictions]]:
    """Interleaved end-to-end throughput at one batch size.

    Returns:
        Questions per second and the predictions (in question order) of each runner
        that finished.
    """
    # One untimed batch first: the first call at a new shape allocates buffers.
    for runner in ledger.alive(runners):
        try:
            runner.answer_many(questions[:batch_size], contexts[:batch_size], batch_size)
        except Exception as err:
            ledger.fail(runner, err)
    seconds = {r.name: 0.0 for r in runners}
    texts: dict[str, list[str]] = {r.name: [] for r in runners}
    scores: dict[str, list[float] | None] = {r.name: [] for r in runners}
    for k, (lo, hi) in enumerate(chunk_bounds(len(questions), batch_size)):
        qs, cs = questions[lo:hi], contexts[lo:hi]
        for runner in _rotated(ledger.alive(runners), k):
            time.sleep(settle_s)
            try:
                start = time.perf_counter()
                preds = runner.answer_many(qs, cs, batch_size)
                seconds[runner.name] += time.perf_counter() - start
            except Exception as err:
                ledger.fail(runner, err)
                continue
            if len(preds.texts) != len(qs):
                ledger.fail(runner, RuntimeError(f"{len(preds.texts)} answers for {len(qs)}"))
                continue
            ledger.record(runner.name, qs, cs)
            texts[runner.name].extend(preds.texts)
            if preds.no_answer_scores is None or scores[runner.name] is None:
                scores[runner.name] = None
            else:
                scores[runner.name].extend(preds.no_answer_scores)
        if tick is not None:
            tick()
    done = [r.name for r in ledger.alive(runners)]
    qps = {name: len(questions) / seconds[name] for name in done if seconds[name] > 0}
    predictions = {name: Predictions(texts[name], scores[name]) for name in done}
    return qps, predictions
