"""The overlapped host pipeline: same answers as the stages run one after the other, errors
reach the caller in order, abandoned generators stop their threads, buffers are reused."""

from __future__ import annotations

import gc
import itertools
import threading
import time

import numpy as np
import pytest

from qa_engine import QAEngine
from qa_engine import engine as engine_module
from qa_engine.pipeline import BufferPool, StageTimes, fill_padded
from tests.test_engine import make_pairs


@pytest.fixture(scope="module")
def engine(tiny_onnx_dir) -> QAEngine:
    return QAEngine.from_pretrained(tiny_onnx_dir, device="cpu", threads=1)


@pytest.fixture
def small_chunks(monkeypatch):
    """Five questions per chunk, so a few dozen questions cross several chunks."""
    monkeypatch.setattr(engine_module, "_CHUNK_QUESTIONS", 5)


def full(decoded) -> list[tuple]:
    return [
        (a.text, a.start, a.end, round(a.score, 6), d.null_minus_best)
        for d in decoded
        for a in d.answers
    ]


def pipeline_threads() -> list[str]:
    names = ("qa-tokenize", "qa-prepare", "qa-run", "qa-decode")
    return [t.name for t in threading.enumerate() if t.name in names]


def wait_no_threads(timeout: float = 5.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while pipeline_threads() and time.monotonic() < deadline:
        time.sleep(0.02)
    return pipeline_threads()


def test_overlapped_equals_serial_and_one_by_one(engine, small_chunks):
    questions, contexts = make_pairs(23, seed=11)
    for batch_size in (1, 3, 32):
        overlapped = full(engine.decode(questions, contexts, batch_size=batch_size, top_k=2))
        serial = full(
            engine.decode(questions, contexts, batch_size=batch_size, top_k=2, overlap=False)
        )
        pairs = zip(questions, contexts, strict=True)
        alone = full(d for q, c in pairs for d in engine.decode(q, c, top_k=2))
        assert overlapped == serial
        assert [row[:3] for row in overlapped] == [row[:3] for row in alone]
    assert not wait_no_threads()


def test_stage_times_count_every_stage(engine, small_chunks):
    questions, contexts = make_pairs(12, seed=4)
    stats = StageTimes()
    answers = list(engine.decode(questions, contexts, batch_size=4, stats=stats))
    assert len(answers) == stats.questions == 12
    windows = sum(len(w) for w in engine.tokenizer.encode_batch(questions, contexts))
    assert stats.windows == windows and stats.batches >= windows / 4
    assert stats.padded_tokens >= stats.real_tokens > 0
    for name in ("tokenize_s", "pad_s", "run_s", "decode_s", "wall_s"):
        assert getattr(stats, name) > 0, name
    assert stats.host_ms_per_question == pytest.approx(1000 * stats.host_s / 12)
    assert stats.to_dict()["host_ms_per_question"] == stats.host_ms_per_question
    # A second call adds to the same counters.
    list(engine.decode(questions[:2], contexts[:2], stats=stats))
    assert stats.questions == 14
    assert StageTimes().host_ms_per_question is None


def test_runner_error_reaches_caller_and_threads_stop(engine, small_chunks, monkeypatch):
    questions, contexts = make_pairs(20, seed=6)
    real_run = engine.session.run
    calls = itertools.count()

    def failing(*arrays):
        if next(calls) == 4:
            raise RuntimeError("device lost")
        return real_run(*arrays)

    monkeypatch.setattr(engine.session, "run", failing)
    with pytest.raises(RuntimeError, match="device lost"):
        list(engine.decode(questions, contexts, batch_size=2))
    assert not wait_no_threads()


def test_bad_item_of_a_lazy_iterable_fails_after_the_results_before_it(engine, small_chunks):
    questions, contexts = make_pairs(12, seed=7)
    questions[8] = "   "
    got = []
    with pytest.raises(ValueError, match="question 8 is empty"):
        for decoded in engine.decode(iter(questions), iter(contexts), batch_size=2):
            got.append(decoded)
    assert len(got) == 5  # the first chunk came back before the failing one
    assert not wait_no_threads()


def test_abandoned_generator_stops_its_threads(engine, small_chunks):
    questions, _ = make_pairs(6, seed=2)
    stream = engine.stream(itertools.cycle(questions), "the king built it", batch_size=2)
    first = list(itertools.islice(stream, 7))
    assert len(first) == 7 and pipeline_threads()
    del stream
    gc.collect()
    assert not wait_no_threads()


def test_single_question_starts_no_thread(engine, monkeypatch):
    started = []
    monkeypatch.setattr(threading.Thread, "start", lambda self: started.append(self.name))
    engine("who built the city?", "the king built the city in one year.")
    assert started == []


def test_buffer_pool_reuses_its_buffers():
    pool = BufferPool(slots=2)
    for rows, width in [(4, 32), (2, 16), (4, 32), (1, 8)] * 5:
        slot = pool.acquire()
        arrays = pool.arrays(slot, rows, width)
        assert all(a.shape == (rows, width) and a.flags.c_contiguous for a in arrays)
        pool.release(slot)
    assert pool.allocations == 2  # each slot allocated once, then reused 9 times
    slot_a, slot_b = pool.acquire(), pool.acquire()
    stop = threading.Event()
    stop.set()
    assert pool.acquire(stop) is None  # both in use: a stopped pipeline does not block
    pool.release(slot_a), pool.release(slot_b)


def test_fill_padded_masks_padding_rows_and_columns(engine):
    windows = engine.tokenizer.encode("who built it?", "the king built the city.")
    pool = BufferPool(slots=1)
    width = len(windows[0]) + 5
    ids, attention, types = fill_padded(windows, pool.arrays(pool.acquire(), 3, width), 0)
    n = len(windows[0])
    assert attention[0, :n].all() and not attention[0, n:].any() and not attention[1:].any()
    np.testing.assert_array_equal(ids[0, :n], windows[0].input_ids)
    assert not types[1:].any()


def test_run_batch_row_padding_drops_the_padding_rows(engine):
    windows = engine.tokenizer.encode("who built the city?", "the king built the city. " * 12)
    plain = engine.run_batch(windows)
    padded = engine.run_batch(windows, max(len(w) for w in windows) + 3, rows=len(windows) + 5)
    assert len(padded) == len(plain)
    for (s1, e1), (s2, e2) in zip(plain, padded, strict=True):
        np.testing.assert_allclose(s1, s2, atol=1e-5)
        np.testing.assert_allclose(e1, e2, atol=1e-5)
