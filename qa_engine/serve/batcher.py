"""The batching core: windows of every waiting request, batched under a token budget.

Hand-written because no library does this: serving batchers (Ray Serve's
``@serve.batch``, Triton's dynamic batcher) batch *requests* up to a count, while a QA
request is a variable number of windows (one per 48 to 384 tokens of context), and the
cost of an onnxruntime call is its padded tokens, not its request count. So the unit
here is the window: every request is tokenized (in a worker thread, so the next batch
tokenizes while the current one runs), its windows join the fair queue
(:class:`~qa_engine.serve.scheduler.FairQueue`: round-robin by request, at most one chunk
of a request per batch, so a long document never stalls the requests behind it), and one
background task takes batches from it under ``max_batch_tokens`` /
``max_batch_windows``, groups them by length with the one batching rule
(:func:`qa_engine.batching.plan_batches`: the engine's length buckets, and a split by
length into calls no smaller than the session needs for full speed, measured at warm-up
by :mod:`qa_engine.call_cost`), runs them on a single
inference thread (the event loop keeps accepting meanwhile) and hands each request its
own logits back; each request is then decoded on its own with the one decoder. A
window's logits do not depend on what shares its batch (a variant for which they would,
dynamic int8, gets one window per call from ``engine.batch_limits``), so every request
gets what ``QAEngine.predict`` gives it alone.

Per-request limits are refused before any window runs (``max_context_tokens``: by a word
count first, then on a prefix, so refusing a huge document never costs tokenizing it);
a request whose caller stops waiting (cancelled: a client that left, a timeout) or that
failed has its waiting windows dropped at once. Requests over ``LONG_REQUEST_CHARS`` are
tokenized and decoded on a thread of their own, so ordinary ones never queue behind them.

Knows nothing of HTTP: the FastAPI app and a Ray Serve replica both call
:meth:`Batcher.submit`. Stage timings go to an optional :class:`BatchObserver`.
"""

from __future__ import annotations

import asyncio
import os
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from qa_engine.batching import (
    BatchLimits,
    length_buckets,
    plan_batches,
    row_sizes,
    warmup_windows,
)
from qa_engine.call_cost import measure_min_call_tokens
from qa_engine.decoding import DecodedQuestion, WindowLogits, decode_question
from qa_engine.engine import _check_text
from qa_engine.serve.scheduler import FairQueue, QueuedWindow
from qa_engine.tokenization import Window

# Sentinel for "the engine's own buckets" (``QAEngine.buckets``: length buckets where
# input shapes cost, on OpenVINO; none on onnxruntime's CPU provider). None: no buckets.
DEFAULT_BUCKETS: Any = "default"
# Requests with more context characters than this are tokenized and decoded on a thread
# of their own (seconds of CPU for a megabyte), so ordinary requests never queue behind them.
LONG_REQUEST_CHARS = 100_000


class Draining(RuntimeError):
    """The batcher is shutting down and admits no new work."""


class RequestTooLarge(Exception):
    """A request's contexts hold more tokens than ``max_context_tokens``.

    Attributes:
        limit: The limit, in context tokens per request.
        tokens: Context tokens counted (a lower bound when ``exact`` is False: counting
            stopped once past the limit).
        exact: Whether ``tokens`` is the whole request's count.
        characters: Characters of the request's contexts.
    """

    def __init__(self, limit: int, tokens: int, exact: bool, characters: int) -> None:
        self.limit, self.tokens, self.exact, self.characters = limit, tokens, exact, characters
        size = f"{tokens:,}" if exact else f"at least {tokens:,}"
        super().__init__(
            f"contexts of {size} tokens ({characters:,} characters), over the limit of "
            f"{limit:,} context tokens per request"
        )


@dataclass(frozen=True)
class RequestOptions:
    """Decoding options of one request (same meaning as in ``QAEngine.predict``)."""

    top_k: int = 1
    max_answer_length: int | None = None
    handle_impossible: bool | None = None


@dataclass
class Timings:
    """Where one request's time went, in seconds (fed to the metrics)."""

    tokenization: float = 0.0
    queue: float = 0.0
    inference: float = 0.0
    decoding: float = 0.0
    total: float = 0.0
    questions: int = 0
    windows: int = 0


class BatchObserver(Protocol):
    """Receives stage measurements; :class:`qa_engine.serve.metrics.ServeMetrics` is one."""

    def on_batch(self, windows: int, padded_tokens: int, real_tokens: int, seconds: float): ...

    def on_round(self, calls: int, seconds: float) -> None: ...

    def on_request(self, timings: Timings) -> None: ...

    def on_dropped(self, windows: int) -> None: ...


@dataclass(eq=False)  # hashed by identity: the fair queue's key
class _Entry:
    """One submitted request: its windows, the logits as they come back, its timings."""

    contexts: Sequence[str]
    windows: list[list[Window]]
    future: asyncio.Future
    logits: list[list[Any]] = field(default_factory=list)
    remaining: int = 0
    enqueued: float = 0.0
    first_run: float | None = None
    timings: Timings = field(default_factory=Timings)


class Batcher:
    """Cross-request dynamic batching over one :class:`~qa_engine.engine.QAEngine`.

    Args:
        engine: The loaded engine (``tokenizer``, ``batch_limits``, ``run_batch``).
        max_batch_tokens: Padded tokens per onnxruntime call.
        max_batch_windows: Windows per onnxruntime call (1 for a non-invariant variant).
        max_wait_ms: How long the oldest queued window may wait for more windows, while
            requests are still being tokenized.
        buckets: Padded widths (default: the engine's, ``QAEngine.buckets``; None: none).
        pad_rows: Also pad each batch's rows up to one of :func:`row_sizes`, so only
            warmed-up shapes ever run (worth it on OpenVINO; wasted work elsewhere).
            Only with buckets.
        split_by_length: At warm-up, measure how many padded tokens a call needs to run
            at full speed (:func:`~qa_engine.call_cost.measure_min_call_tokens`) and
            split each batch by length into calls no smaller than that, instead of
            padding every window of a batch to its longest one.
        max_request_batch_tokens: Padded tokens one request may take of one batch (None:
            the whole batch): the most a request arriving behind a long one waits for.
        max_context_tokens: Context tokens one request may hold (None: no limit); more
            raises :class:`RequestTooLarge` before any window runs.
        observer: Gets per-batch and per-request measurements.
        workers: Threads for tokenization and decoding (default: the cores, at least 2).
        cuda_graphs: Capture one CUDA graph per (rows, width) shape at warm-up and run
            every batch on them (``engine.enable_cuda_graphs``); None: when the engine
            runs on CUDA and is batch-invariant, falling back to the plain session (with
            a warning) if capture fails.
    """

    def __init__(
        self,
        engine: Any,
        *,
        max_batch_tokens: int = 8192,
        max_batch_windows: int = 32,
        max_wait_ms: float = 2.0,
        buckets: tuple[int, ...] | None = DEFAULT_BUCKETS,
        pad_rows: bool = False,
        max_request_batch_tokens: int | None = None,
        max_context_tokens: int | None = None,
        observer: BatchObserver | None = None,
        workers: int | None = None,
        cuda_graphs: bool | None = None,
        split_by_length: bool = True,
    ) -> None:
        self.engine = engine
        if buckets is DEFAULT_BUCKETS:
            limits = engine.batch_limits(max_batch_windows, max_batch_tokens)
        else:
            limits = engine.batch_limits(max_batch_windows, max_batch_tokens, buckets)
        self.limits: BatchLimits = replace(
            limits, pad_rows=bool(pad_rows) and limits.buckets is not None
        )
        self.max_batch_tokens = max_batch_tokens
        self.max_batch_windows = max_batch_windows
        self.max_wait_s = max_wait_ms / 1000.0
        self.split_by_length = split_by_length
        self.max_context_tokens = max_context_tokens
        self.observer = observer
        self.cuda_graphs = cuda_graphs
        self.graphs_captured = 0  # CUDA graphs captured at warm-up
        self.graphs_error: str | None = None
        self._workers = workers or max(2, len(os.sched_getaffinity(0)))
        self._queue = FairQueue(
            self.limits, max_batch_tokens, max_batch_windows, max_request_batch_tokens
        )
        self.dropped_windows = 0
        self._tokenizing = 0
        self._inflight = 0
        self._closing = False
        self._task: asyncio.Task | None = None
        self._wake: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None
        self._infer_pool: ThreadPoolExecutor | None = None
        self._cpu_pool: ThreadPoolExecutor | None = None
        self._long_pool: ThreadPoolExecutor | None = None

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Start the batching task on the running loop (idempotent)."""
        if self._task is not None:
            return
        # One inference thread: onnxruntime already uses every core inside one call.
        self._infer_pool = ThreadPoolExecutor(1, thread_name_prefix="qa-infer")
        self._cpu_pool = ThreadPoolExecutor(self._workers, thread_name_prefix="qa-cpu")
        self._long_pool = ThreadPoolExecutor(1, thread_name_prefix="qa-long")
        self._wake, self._idle = asyncio.Event(), asyncio.Event()
        self._idle.set()
        self._task = asyncio.get_running_loop().create_task(self._batch_loop(), name="qa-batcher")

    async def close(self, timeout: float | None = None) -> bool:
        """Admit nothing more, answer every admitted request, then stop.

        Returns:
            True when every admitted request was answered within ``timeout``.
        """
        self._closing = True
        drained = await self.wait_idle(timeout)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        for pool in (self._infer_pool, self._cpu_pool, self._long_pool):
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
        return drained

    async def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no submitted request is unanswered (True) or ``timeout`` passes."""
        if self._idle is None:
            return True
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    @property
    def pad_rows(self) -> bool:
        """Whether batches pad their rows up to a warmed batch size."""
        return self.limits.pad_rows

    @property
    def queue_depth(self) -> int:
        """Windows waiting for a batch."""
        return len(self._queue)

    @property
    def waiting_requests(self) -> int:
        """Requests with windows waiting for a batch."""
        return self._queue.requests

    @property
    def inflight(self) -> int:
        """Submitted requests not yet answered."""
        return self._inflight

    # ------------------------------------------------------------------- requests
    async def submit(
        self,
        questions: Sequence[str],
        contexts: Sequence[str],
        options: RequestOptions | None = None,
    ) -> list[DecodedQuestion]:
        """Answer a request of one or more (question, context) pairs.

        Cancelling the call (the client left, a timeout) drops its windows still waiting.

        Raises:
            Draining: The batcher is closing.
            RequestTooLarge: The contexts hold more than ``max_context_tokens`` tokens.
            TypeError, ValueError: A text is not a non-empty string, or a bad option.
        """
        if self._closing or self._task is None:
            raise Draining("the batcher is not running")
        options = options or RequestOptions()
        threshold, max_answer_length = self._decode_settings(options)
        if len(questions) != len(contexts) or not questions:
            raise ValueError(f"got {len(questions)} questions and {len(contexts)} contexts")
        for i, (question, context) in enumerate(zip(questions, contexts, strict=True)):
            _check_text("question", i, question)
            _check_text("context", i, context)
        characters = sum(len(c) for c in contexts)
        self._refuse_by_words(contexts, characters)
        pool = self._long_pool if characters > LONG_REQUEST_CHARS else self._cpu_pool
        loop = asyncio.get_running_loop()
        start = time.perf_counter()
        self._inflight += 1
        self._idle.clear()
        entry: _Entry | None = None
        try:
            self._tokenizing += 1
            try:
                windows = await loop.run_in_executor(pool, self._tokenize, questions, contexts)
            finally:
                self._tokenizing -= 1
            entry = self._enqueue(contexts, windows, loop.create_future())
            entry.timings.tokenization = entry.enqueued - start
            await entry.future  # all logits are in
            decoded, entry.timings.decoding = await loop.run_in_executor(
                pool, _decode, entry, options.top_k, max_answer_length, threshold
            )
            entry.timings.total = time.perf_counter() - start
            if self.observer is not None:
                self.observer.on_request(entry.timings)
            return decoded
        except BaseException:  # cancelled (client gone, timeout) or failed: run nothing more
            if entry is not None:
                self._drop(entry)
            raise
        finally:
            self._inflight -= 1
            if self._inflight == 0:
                self._idle.set()

    def _refuse_by_words(self, contexts: Sequence[str], characters: int) -> None:
        """RequestTooLarge at once when the contexts hold more whitespace-separated words
        than the limit (each word is at least one token). On the event loop, splitting no
        further than the limit (about 1 ms a megabyte), so no queue of tokenization work
        stands in front of the refusal."""
        limit = self.max_context_tokens
        if limit is None or characters <= limit:
            return
        words = 0
        for context in contexts:
            words += len(context.split(maxsplit=limit - words))  # at most limit + 1 in all
            if words > limit:
                raise RequestTooLarge(limit, words, False, characters)

    def _tokenize(self, questions: Sequence[str], contexts: Sequence[str]) -> list[list[Window]]:
        """Windows of every pair (worker thread), or RequestTooLarge before the costly part."""
        limit = self.max_context_tokens
        tokenizer = self.engine.tokenizer
        characters = sum(len(c) for c in contexts)
        if limit is not None:
            # Up front, on a prefix: a context can only pass the limit if it has more
            # characters than the limit (a token covers at least one character).
            for context in contexts:
                if len(context) > limit:
                    counted = tokenizer.count_context_tokens(context, stop_after=limit)
                    if counted > limit:
                        raise RequestTooLarge(limit, counted, False, characters)
        windows = tokenizer.encode_batch(questions, contexts)
        if limit is not None:
            tokens = sum(context_tokens(ws, tokenizer.doc_stride) for ws in windows)
            if tokens > limit:
                raise RequestTooLarge(limit, tokens, True, characters)
        return windows

    def _drop(self, entry: _Entry) -> None:
        dropped = self._queue.drop(entry)
        self.dropped_windows += dropped
        if self.observer is not None and dropped:
            self.observer.on_dropped(dropped)

    def _decode_settings(self, options: RequestOptions) -> tuple[float | None, int]:
        manifest = self.engine.manifest
        for name in ("top_k", "max_answer_length"):
            value = getattr(options, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        max_answer_length = options.max_answer_length or manifest.max_answer_length
        # QAEngine's rule: None follows the manifest's version_2.
        impossible = options.handle_impossible
        if impossible is False or (impossible is None and not manifest.version_2):
            return None, max_answer_length
        return float(manifest.null_threshold), max_answer_length

    def _enqueue(self, contexts: Sequence[str], windows: list[list[Window]], future) -> _Entry:
        entry = _Entry(contexts, windows, future)
        entry.logits = [[None] * len(ws) for ws in windows]
        entry.remaining = sum(len(ws) for ws in windows)
        entry.timings.questions, entry.timings.windows = len(windows), entry.remaining
        entry.enqueued = time.perf_counter()
        self._queue.add(
            entry,
            (
                QueuedWindow(entry, q, w, window)
                for q, question_windows in enumerate(windows)
                for w, window in enumerate(question_windows)
            ),
        )
        self._wake.set()
        return entry

    # ------------------------------------------------------------------- batching
    async def _batch_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not len(self._queue):
                self._wake.clear()
                await self._wake.wait()
                continue
            await self._fill()
            items = self._queue.take()
            if not items:
                continue
            try:
                done = await loop.run_in_executor(self._infer_pool, self._infer, items)
            except Exception as err:  # an engine failure fails its requests, not the loop
                for entry in {id(i.owner): i.owner for i in items}.values():
                    if not entry.future.done():
                        entry.future.set_exception(err)
                continue
            for entry in done:
                if not entry.future.done():
                    entry.future.set_result(None)

    async def _fill(self) -> None:
        """Wait for a fuller batch while more work is coming, at most ``max_wait``."""
        deadline = min(key.enqueued for key in self._queue.keys()) + self.max_wait_s
        while self._tokenizing and len(self._queue) < self.max_batch_windows:
            if self._queue.padded_tokens >= self.max_batch_tokens:
                return
            left = deadline - time.perf_counter()
            if left <= 0:
                return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), left)
            except asyncio.TimeoutError:
                return

    def _infer(self, items: list[QueuedWindow]) -> list[_Entry]:
        """Run ``items`` in planned batches (inference thread); the requests completed."""
        done: list[_Entry] = []
        round_started = time.perf_counter()
        batches = plan_batches([len(i.window) for i in items], self.limits)
        for batch in batches:
            windows = [items[i].window for i in batch.indices]
            rows = batch.padded_rows
            started = time.perf_counter()
            # The pipeline's pad-and-run stage: padding rows are masked and dropped
            # (with CUDA graphs the batch is padded to its captured bucket anyway).
            if rows > len(windows):
                outputs = self.engine.run_batch(windows, batch.width, rows=rows)
            else:
                outputs = self.engine.run_batch(windows, batch.width)
            seconds = time.perf_counter() - started
            if self.observer is not None:
                real = sum(len(w) for w in windows)
                self.observer.on_batch(len(windows), rows * batch.width, real, seconds)
            seen: set[int] = set()
            for index, output in zip(batch.indices, outputs, strict=False):
                item = items[index]
                entry = item.owner
                entry.logits[item.question][item.index] = output
                entry.remaining -= 1
                if entry.first_run is None:
                    entry.first_run = started
                    entry.timings.queue = started - entry.enqueued
                if id(entry) not in seen:
                    seen.add(id(entry))
                    entry.timings.inference += seconds
                if entry.remaining == 0:
                    done.append(entry)
        if self.observer is not None:
            self.observer.on_round(len(batches), time.perf_counter() - round_started)
        return done

    # -------------------------------------------------------------------- warm-up
    def shapes(self) -> list[tuple[int, int]]:
        """Every (rows, width) a batch may run with: what warm-up runs once each."""
        widths = self.limits.buckets or length_buckets(self.engine.manifest.max_seq_length)
        return [
            (rows, width) for width in widths for rows in row_sizes(self.limits.max_rows(width))
        ]

    def _wants_graphs(self) -> bool:
        if self.cuda_graphs is not None:
            return self.cuda_graphs
        session = getattr(self.engine, "session", None)
        return bool(getattr(session, "uses_cuda", False)) and self.engine.batch_invariant

    def warm_up(self) -> int:
        """Run each shape once (blocking; call it in a thread). Returns the shapes run.

        The same warm-up batches as ``QAEngine.warm_up`` (:func:`batching.warmup_windows`).
        With CUDA graphs, warm-up is their capture: one graph per shape.
        """
        if self._wants_graphs():
            if self.limits.buckets is None:  # a batch must be planned at a captured width
                widths = length_buckets(self.engine.manifest.max_seq_length)
                self._set_limits(
                    self.engine.batch_limits(self.max_batch_windows, self.max_batch_tokens, widths)
                )
            try:
                self.graphs_captured = self.engine.enable_cuda_graphs(
                    self.limits.max_windows, self.max_batch_tokens, self.limits.buckets
                )
                return self.graphs_captured
            except Exception as err:  # auto: serve without graphs rather than not at all
                if self.cuda_graphs:
                    raise
                self.graphs_error = f"{type(err).__name__}: {err}"
                warnings.warn(f"CUDA graphs off: {self.graphs_error}", stacklevel=2)
        shapes = self.shapes()
        pad = self.engine.tokenizer.pad_id
        for rows, width in shapes:
            self.engine.run_batch(warmup_windows(rows, width, pad), width)
        if self.split_by_length and self.limits.max_windows > 1:
            self._set_limits(replace(self.limits, min_call_tokens=self._measure_call_tokens()))
        return len(shapes)

    def _measure_call_tokens(self) -> int:
        """The padded tokens a call needs to run at full speed, on the widths batches use."""
        widths = self.limits.buckets or length_buckets(self.engine.manifest.max_seq_length)
        width = next((w for w in widths if w >= 64), widths[-1])
        return measure_min_call_tokens(
            self.engine.run_batch,
            self.engine.tokenizer.pad_id,
            width,
            self.limits.max_rows(width),
        )

    def _set_limits(self, limits: BatchLimits) -> None:
        self.limits = limits
        self._queue.limits = limits


def context_tokens(windows: Sequence[Window], doc_stride: int) -> int:
    """Context tokens of one question's windows (consecutive windows share ``doc_stride``)."""
    held = sum(int(w.context_mask.sum()) for w in windows)
    return held - doc_stride * (len(windows) - 1)


def _decode(
    entry: _Entry, top_k: int, max_answer_length: int, threshold: float | None
) -> tuple[list[DecodedQuestion], float]:
    """Decode every question of a request exactly as ``QAEngine.decode`` would."""
    started = time.perf_counter()
    decoded = [
        decode_question(
            [
                WindowLogits(start, end, window.offsets, window.context_mask)
                for window, (start, end) in zip(windows, logits, strict=True)
            ],
            context,
            top_k=top_k,
            n_best=max(20, top_k),
            max_answer_length=max_answer_length,
            null_threshold=threshold,
        )
        for windows, logits, context in zip(
            entry.windows, entry.logits, entry.contexts, strict=True
        )
    ]
    return decoded, time.perf_counter() - started
