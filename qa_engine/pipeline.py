"""The overlapped host pipeline: tokenize and pad the next batch, and decode the last one,
while the current batch runs.

Three stages, in worker threads with bounded queues between them (pure numpy and
``tokenizers``; the model call goes through a :class:`BatchRunner`):

1. **prepare**: tokenize a chunk of questions (the ``tokenizers`` batch encoder uses all
   cores; one thread, a chunk ahead), plan its batches with the one batching rule
   (:func:`plan_batches`) and pad each batch into a reusable buffer (:class:`BufferPool`;
   a second thread, a few batches ahead);
2. **run**: one model call per padded batch (:class:`BatchRunner`: the plain session, or
   a CUDA-graph runner whose padded shapes are its captured buckets);
3. **decode**: decode each question as soon as all its windows have run, and hand the
   results back in input order.

``QAEngine.decode`` (hence ``predict``, ``stream``, ``predict --file``, ``eval`` and
``bench``) runs on it; the serve batcher uses the same pad and run stage
(:func:`run_padded`). The results are those of the stages run one after the other:
the same chunks, the same batch plans, the same padded widths. Errors of any stage reach
the caller in input order (after the results before them); closing or dropping the
generator stops the threads. Each stage adds its seconds to a :class:`StageTimes`, from
which ``host_ms_per_question`` (tokenize + pad + decode, per question) is reported.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from qa_engine.batching import BatchLimits, PlannedBatch, plan_batches
from qa_engine.decoding import DecodedQuestion, WindowLogits
from qa_engine.stages import (
    DEPTH,
    POLL_S,
    BatchRunner,
    BufferPool,
    SessionRunner,
    StageTimes,
    cut_outputs,
    fill_padded,
    run_padded,
)
from qa_engine.tokenization import Window

__all__ = [
    "BatchRunner",
    "BufferPool",
    "Pipeline",
    "SessionRunner",
    "StageTimes",
    "cut_outputs",
    "fill_padded",
    "run_padded",
]


# ----------------------------------------------------------------- the pipeline
@dataclass
class _Chunk:
    """One chunk of questions on its way through the stages."""

    contexts: tuple[str, ...]
    per_question: list[list[Window]]
    flat: list[Window]  # every window of the chunk, question after question
    owner: list[int]  # question index of each flat window
    plan: list[PlannedBatch]


@dataclass
class _Padded:
    chunk: _Chunk
    batch: PlannedBatch
    slot: int
    arrays: tuple[np.ndarray, ...]


@dataclass
class _Ran:
    chunk: _Chunk
    batch: PlannedBatch
    outputs: list[tuple[np.ndarray, np.ndarray]]


@dataclass
class _Failed:
    error: BaseException


_END = object()


class Pipeline:
    """The three stages over one engine's tokenizer and runner.

    Args:
        encode: ``encode_batch(questions, contexts) -> windows per question``.
        runner: The model call (:class:`BatchRunner`).
        limits: Batch limits (:func:`plan_batches`).
        pad_id: Token id written into padding.
        decode: ``decode(windows, context) -> DecodedQuestion``.
        chunk_questions: Questions tokenized and planned together.
        pool: Buffers to pad into (default: a fresh :class:`BufferPool`).
    """

    def __init__(
        self,
        encode: Callable[[Sequence[str], Sequence[str]], list[list[Window]]],
        runner: BatchRunner,
        limits: BatchLimits,
        pad_id: int,
        decode: Callable[[list[WindowLogits], str], DecodedQuestion],
        chunk_questions: int,
        pool: BufferPool | None = None,
    ) -> None:
        self.encode, self.runner, self.limits = encode, runner, limits
        self.pad_id, self.decode, self.chunk_questions = pad_id, decode, chunk_questions
        self.pool = pool or BufferPool()

    # --------------------------------------------------------------- stage bodies
    def _tokenize(self, chunk: list[tuple[str, str]], stats: StageTimes) -> _Chunk:
        started = time.perf_counter()
        questions, contexts = zip(*chunk, strict=True)
        per_question = self.encode(questions, contexts)
        stats.tokenize_s += time.perf_counter() - started
        started = time.perf_counter()
        flat = [w for windows in per_question for w in windows]
        owner = [q for q, windows in enumerate(per_question) for _ in windows]
        lengths = [len(w) for w in flat]
        plan = plan_batches(lengths, self.limits)
        stats.pad_s += time.perf_counter() - started
        stats.questions += len(per_question)
        stats.windows += len(flat)
        stats.real_tokens += sum(lengths)
        return _Chunk(contexts, per_question, flat, owner, plan)

    def _pad(self, chunk: _Chunk, batch: PlannedBatch, slot: int, stats: StageTimes) -> _Padded:
        started = time.perf_counter()
        windows = [chunk.flat[i] for i in batch.indices]
        # batch.padded_rows: the planned rows (row padding to warmed shapes, OpenVINO).
        rows, width = self.runner.padded_shape(batch.padded_rows, batch.width)
        arrays = fill_padded(windows, self.pool.arrays(slot, rows, width), self.pad_id)
        stats.pad_s += time.perf_counter() - started
        stats.padded_tokens += rows * width
        return _Padded(chunk, batch, slot, arrays)

    def _run(self, padded: _Padded, stats: StageTimes) -> _Ran:
        started = time.perf_counter()
        try:
            start, end = self.runner.run(*padded.arrays)
            lengths = [len(padded.chunk.flat[i]) for i in padded.batch.indices]
            outputs = cut_outputs(start, end, lengths)
        finally:
            self.pool.release(padded.slot)
        stats.run_s += time.perf_counter() - started
        stats.batches += 1
        return _Ran(padded.chunk, padded.batch, outputs)

    # ------------------------------------------------------------- one-by-one path
    def run_serial(
        self, pairs: Iterator[tuple[str, str]], stats: StageTimes
    ) -> Iterator[DecodedQuestion]:
        """The stages one after the other in the caller's thread (no overlap)."""
        while chunk := list(itertools.islice(pairs, self.chunk_questions)):
            yield from self._serial_chunk(self._tokenize(chunk, stats), stats)

    def _serial_chunk(self, chunk: _Chunk, stats: StageTimes) -> Iterator[DecodedQuestion]:
        decoder = _ChunkDecoder(chunk, self.decode, stats)
        for batch in chunk.plan:
            slot = self.pool.acquire()
            decoder.add(self._run(self._pad(chunk, batch, slot, stats), stats))
        yield from decoder.ready()

    # ------------------------------------------------------------- overlapped path
    def run_overlapped(
        self, pairs: Iterator[tuple[str, str]], stats: StageTimes
    ) -> Iterator[DecodedQuestion]:
        """The three stages in worker threads; results in input order.

        The first chunk is tokenized in the caller's thread: when it is the only chunk
        and runs as one batch, nothing can overlap and no thread is started (single
        questions keep their latency).
        """
        first = list(itertools.islice(pairs, self.chunk_questions))
        if not first:
            return
        chunk = self._tokenize(first, stats)
        peek = next(pairs, _END)
        if peek is _END and len(chunk.plan) <= 1:
            yield from self._serial_chunk(chunk, stats)
            return
        rest = pairs if peek is _END else itertools.chain([peek], pairs)
        yield from self._threaded(chunk, rest, stats)

    def _threaded(
        self, first: _Chunk, rest: Iterator[tuple[str, str]], stats: StageTimes
    ) -> Iterator[DecodedQuestion]:
        stop = threading.Event()
        to_pad: queue.Queue = queue.Queue(1)
        to_run: queue.Queue = queue.Queue(DEPTH)
        to_decode: queue.Queue = queue.Queue(DEPTH + 1)
        results: queue.Queue = queue.Queue(DEPTH + 1)

        def put(q: queue.Queue, item: object) -> bool:
            while not stop.is_set():
                try:
                    q.put(item, timeout=POLL_S)
                    return True
                except queue.Full:
                    pass
            return False

        def get(q: queue.Queue) -> object:
            while not stop.is_set():
                try:
                    return q.get(timeout=POLL_S)
                except queue.Empty:
                    pass
            return _END

        def tokenize() -> None:
            # Runs one chunk ahead of prepare: the next chunk is tokenized while the
            # current one's batches run.
            try:
                while items := list(itertools.islice(rest, self.chunk_questions)):
                    if not put(to_pad, self._tokenize(items, stats)):
                        return
                put(to_pad, _END)
            except BaseException as err:  # noqa: BLE001 - handed to the caller in order
                put(to_pad, _Failed(err))

        def prepare() -> None:
            item: object = first
            while isinstance(item, _Chunk):
                try:
                    for batch in item.plan:
                        slot = self.pool.acquire(stop)
                        if slot is None or not put(to_run, self._pad(item, batch, slot, stats)):
                            return
                except BaseException as err:  # noqa: BLE001
                    put(to_run, _Failed(err))
                    return
                if not put(to_run, item):  # chunk done: decode may flush it
                    return
                item = get(to_pad)
            put(to_run, item)  # _END or _Failed

        def run() -> None:
            while True:
                item = get(to_run)
                if isinstance(item, _Padded):
                    try:
                        item = self._run(item, stats)
                    except BaseException as err:  # noqa: BLE001
                        item = _Failed(err)
                if not put(to_decode, item) or item is _END or isinstance(item, _Failed):
                    return

        def decode() -> None:
            decoder: _ChunkDecoder | None = None
            while True:
                item = get(to_decode)
                try:
                    if isinstance(item, _Ran):
                        if decoder is None or decoder.chunk is not item.chunk:
                            decoder = _ChunkDecoder(item.chunk, self.decode, stats)
                        decoder.add(item)
                        ready = list(decoder.ready())
                    elif isinstance(item, _Chunk):  # all its batches ran
                        if decoder is None or decoder.chunk is not item:
                            decoder = _ChunkDecoder(item, self.decode, stats)
                        ready = list(decoder.ready())
                        decoder = None
                    else:
                        ready = []
                except BaseException as err:  # noqa: BLE001
                    item = _Failed(err)
                    ready = []
                if ready and not put(results, ready):
                    return
                if item is _END or isinstance(item, _Failed):
                    put(results, item)
                    return

        threads = [
            threading.Thread(target=target, name=f"qa-{target.__name__}", daemon=True)
            for target in (tokenize, prepare, run, decode)
        ]
        for thread in threads:
            thread.start()
        try:
            while True:
                item = results.get()
                if item is _END:
                    return
                if isinstance(item, _Failed):
                    raise item.error
                yield from item
        finally:
            stop.set()
            for thread in threads:
                thread.join()


class _ChunkDecoder:
    """Collects a chunk's logits, decodes each question once all its windows ran, and
    releases the decoded questions in input order."""

    def __init__(
        self,
        chunk: _Chunk,
        decode: Callable[[list[WindowLogits], str], DecodedQuestion],
        stats: StageTimes,
    ) -> None:
        self.chunk, self.decode, self.stats = chunk, decode, stats
        self.outputs: list[tuple[np.ndarray, np.ndarray] | None] = [None] * len(chunk.owner)
        self.missing = [len(windows) for windows in chunk.per_question]
        self.first = np.cumsum([0] + self.missing[:-1]).tolist()  # first flat window
        self.decoded: list[DecodedQuestion | None] = [None] * len(self.missing)
        self.next = 0

    def add(self, ran: _Ran) -> None:
        started = time.perf_counter()
        complete = []
        for index, output in zip(ran.batch.indices, ran.outputs, strict=True):
            self.outputs[index] = output
            question = self.chunk.owner[index]
            self.missing[question] -= 1
            if self.missing[question] == 0:
                complete.append(question)
        for question in complete:
            self.decoded[question] = self._decode(question)
        self.stats.decode_s += time.perf_counter() - started

    def _decode(self, question: int) -> DecodedQuestion:
        windows = self.chunk.per_question[question]
        first = self.first[question]
        logits = [
            WindowLogits(start, end, window.offsets, window.context_mask)
            for window, (start, end) in zip(
                windows, self.outputs[first : first + len(windows)], strict=True
            )
        ]
        return self.decode(logits, self.chunk.contexts[question])

    def ready(self) -> Iterator[DecodedQuestion]:
        """Decoded questions not yet released, up to the first one still missing."""
        while self.next < len(self.decoded) and self.decoded[self.next] is not None:
            yield self.decoded[self.next]
            self.decoded[self.next] = None
            self.next += 1
