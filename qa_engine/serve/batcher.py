"""The batching core: windows of every waiting request, batched under a token budget.

Hand-written because no library does this: serving batchers (Ray Serve's
``@serve.batch``, Triton's dynamic batcher) batch *requests* up to a count, while a QA
request is a variable number of windows (one per 48 to 384 tokens of context), and the
cost of an onnxruntime call is its padded tokens, not its request count. So the unit
here is the window: every request is tokenized (in a worker thread, so the next batch
tokenizes while the current one runs), its windows join one FIFO queue, and one
background task takes windows off the front under ``max_batch_tokens`` /
``max_batch_windows``, groups them by length with the one batching rule
(:func:`qa_engine.batching.plan_batches`, padded to length buckets), runs them on a single
inference thread (the event loop keeps accepting meanwhile) and hands each request its
own logits back; each request is then decoded on its own with the one decoder. A
window's logits do not depend on what shares its batch (a variant for which they would,
dynamic int8, gets one window per call from ``engine.batch_limits``), so every request
gets what ``QAEngine.predict`` gives it alone.

Knows nothing of HTTP: the FastAPI app and a Ray Serve replica both call
:meth:`Batcher.submit`. Stage timings go to an optional :class:`BatchObserver`.
"""

from __future__ import annotations

import asyncio
import os
import time
import warnings
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from qa_engine.batching import length_buckets, plan_batches, row_sizes
from qa_engine.decoding import DecodedQuestion, WindowLogits, decode_question
from qa_engine.engine import _check_text
from qa_engine.tokenization import Window

# Sentinel for "use the engine's length buckets" (None means no buckets).
DEFAULT_BUCKETS: Any = "default"


class Draining(RuntimeError):
    """The batcher is shutting down and admits no new work."""


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

    def on_request(self, timings: Timings) -> None: ...


@dataclass
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


@dataclass
class _Item:
    """One queued window: which request, which question and window it belongs to."""

    entry: _Entry
    question: int
    index: int
    window: Window


class Batcher:
    """Cross-request dynamic batching over one :class:`~qa_engine.engine.QAEngine`.

    Args:
        engine: The loaded engine (``tokenizer``, ``batch_limits``, ``run_batch``).
        max_batch_tokens: Padded tokens per onnxruntime call.
        max_batch_windows: Windows per onnxruntime call (1 for a non-invariant variant).
        max_wait_ms: How long the oldest queued window may wait for more windows, while
            requests are still being tokenized.
        buckets: Padded widths (default: ``length_buckets(max_seq_length)``; None: none).
        pad_rows: Also pad each batch's rows up to one of :func:`row_sizes`, so only
            warmed-up shapes ever run (worth it on OpenVINO; wasted work elsewhere).
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
        observer: BatchObserver | None = None,
        workers: int | None = None,
        cuda_graphs: bool | None = None,
    ) -> None:
        if buckets is DEFAULT_BUCKETS:
            buckets = length_buckets(engine.manifest.max_seq_length)
        self.engine = engine
        self.limits = engine.batch_limits(max_batch_windows, max_batch_tokens, buckets)
        self.max_batch_tokens = max_batch_tokens
        self.max_batch_windows = max_batch_windows
        self.max_wait_s = max_wait_ms / 1000.0
        self.pad_rows = pad_rows
        self.observer = observer
        self.cuda_graphs = cuda_graphs
        self.graphs_captured = 0  # CUDA graphs captured at warm-up
        self.graphs_error: str | None = None
        self._workers = workers or max(2, len(os.sched_getaffinity(0)))
        self._queue: deque[_Item] = deque()
        self._tokenizing = 0
        self._inflight = 0
        self._closing = False
        self._task: asyncio.Task | None = None
        self._wake: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None
        self._infer_pool: ThreadPoolExecutor | None = None
        self._cpu_pool: ThreadPoolExecutor | None = None

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Start the batching task on the running loop (idempotent)."""
        if self._task is not None:
            return
        # One inference thread: onnxruntime already uses every core inside one call.
        self._infer_pool = ThreadPoolExecutor(1, thread_name_prefix="qa-infer")
        self._cpu_pool = ThreadPoolExecutor(self._workers, thread_name_prefix="qa-cpu")
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
        for pool in (self._infer_pool, self._cpu_pool):
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
    def queue_depth(self) -> int:
        """Windows waiting for a batch."""
        return len(self._queue)

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

        Raises:
            Draining: The batcher is closing.
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
        loop = asyncio.get_running_loop()
        start = time.perf_counter()
        self._inflight += 1
        self._idle.clear()
        try:
            self._tokenizing += 1
            try:
                windows = await loop.run_in_executor(
                    self._cpu_pool, self.engine.tokenizer.encode_batch, questions, contexts
                )
            finally:
                self._tokenizing -= 1
            entry = self._enqueue(contexts, windows, loop.create_future())
            entry.timings.tokenization = entry.enqueued - start
            await entry.future  # all logits are in
            decoded, entry.timings.decoding = await loop.run_in_executor(
                self._cpu_pool, _decode, entry, options.top_k, max_answer_length, threshold
            )
            entry.timings.total = time.perf_counter() - start
            if self.observer is not None:
                self.observer.on_request(entry.timings)
            return decoded
        finally:
            self._inflight -= 1
            if self._inflight == 0:
                self._idle.set()

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
        for q, question_windows in enumerate(windows):
            for w, window in enumerate(question_windows):
                self._queue.append(_Item(entry, q, w, window))
        self._wake.set()
        return entry

    # ------------------------------------------------------------------- batching
    async def _batch_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            await self._fill()
            items = self._take()
            if not items:
                continue
            try:
                done = await loop.run_in_executor(self._infer_pool, self._infer, items)
            except Exception as err:  # an engine failure fails its requests, not the loop
                for entry in {id(i.entry): i.entry for i in items}.values():
                    if not entry.future.done():
                        entry.future.set_exception(err)
                continue
            for entry in done:
                if not entry.future.done():
                    entry.future.set_result(None)

    async def _fill(self) -> None:
        """Wait for a fuller batch while more work is coming, at most ``max_wait``."""
        deadline = self._queue[0].entry.enqueued + self.max_wait_s
        while self._tokenizing and len(self._queue) < self.max_batch_windows:
            if sum(len(i.window) for i in self._queue) >= self.max_batch_tokens:
                return
            left = deadline - time.perf_counter()
            if left <= 0:
                return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), left)
            except asyncio.TimeoutError:
                return

    def _take(self) -> list[_Item]:
        """Windows off the front of the queue, up to one call's token and row budget."""
        items: list[_Item] = []
        tokens = 0
        while self._queue and len(items) < self.max_batch_windows:
            item = self._queue[0]
            if item.entry.future.done():  # its request was cancelled: skip its windows
                self._queue.popleft()
                continue
            width = self.limits.width_for(len(item.window))
            if items and tokens + width > self.max_batch_tokens:
                break
            items.append(self._queue.popleft())
            tokens += width
        return items

    def _infer(self, items: list[_Item]) -> list[_Entry]:
        """Run ``items`` in planned batches (inference thread); the requests completed."""
        done: list[_Entry] = []
        for batch in plan_batches([len(i.window) for i in items], self.limits):
            windows = [items[i].window for i in batch.indices]
            rows = self._padded_rows(len(windows), batch.width)
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
                entry = item.entry
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
        return done

    def _padded_rows(self, rows: int, width: int) -> int:
        if not self.pad_rows:
            return rows
        sizes = row_sizes(self._max_rows(width))
        return next((s for s in sizes if s >= rows), rows)

    def _max_rows(self, width: int) -> int:
        return max(1, min(self.limits.max_windows, self.max_batch_tokens // width))

    # -------------------------------------------------------------------- warm-up
    def shapes(self) -> list[tuple[int, int]]:
        """Every (rows, width) a batch may run with: what warm-up runs once each."""
        widths = self.limits.buckets or length_buckets(self.engine.manifest.max_seq_length)
        return [(rows, width) for width in widths for rows in row_sizes(self._max_rows(width))]

    def _wants_graphs(self) -> bool:
        if self.cuda_graphs is not None:
            return self.cuda_graphs
        session = getattr(self.engine, "session", None)
        return bool(getattr(session, "uses_cuda", False)) and self.engine.batch_invariant

    def warm_up(self) -> int:
        """Run each shape once (blocking; call it in a thread). Returns the shapes run.

        With CUDA graphs, warm-up is their capture: one graph per shape.
        """
        if self._wants_graphs():
            if self.limits.buckets is None:  # a batch must be planned at a captured width
                widths = length_buckets(self.engine.manifest.max_seq_length)
                self.limits = self.engine.batch_limits(
                    self.max_batch_windows, self.max_batch_tokens, widths
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
            window = Window(
                np.full(width, pad, dtype=np.int64),
                np.zeros(width, dtype=np.int64),
                np.zeros((width, 2), dtype=np.int64),
                np.zeros(width, dtype=bool),
            )
            self.engine.run_batch([window] * rows, width)
        return len(shapes)


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
