"""Issue 20: one long document must not stall everyone else.

Fair scheduling in the batching core (a short request submitted behind a long one is
answered first, both equal to ``QAEngine.predict``), per-request context limits (413
naming the limit and the size, before any window runs), cancellation and timeouts
(waiting windows dropped, counted in /metrics), the limits in /info, the CLI flags.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
from types import SimpleNamespace

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from click.testing import CliRunner  # noqa: E402

from qa_engine import QAEngine  # noqa: E402
from qa_engine.batching import BatchLimits  # noqa: E402
from qa_engine.serve.app import create_app  # noqa: E402
from qa_engine.serve.batcher import Batcher, RequestTooLarge, context_tokens  # noqa: E402
from qa_engine.serve.scheduler import FairQueue, QueuedWindow  # noqa: E402
from qa_engine.serve.settings import ServeSettings  # noqa: E402
from tests.test_serve import (  # noqa: E402
    WORDS,
    GatedEngine,
    _metric,
    assert_same,
    expected,
    got,
    run,
    serving,
)


@pytest.fixture(scope="module")
def engine(tiny_onnx_dir) -> QAEngine:
    return QAEngine.from_pretrained(tiny_onnx_dir, device="cpu", threads=1)


def words(n: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) for _ in range(n))


LONG = {"question": "who built the museum?", "context": words(1500, seed=1)}
SHORT = {"question": "what city was born?", "context": words(12, seed=2)}


# ---------------------------------------------------------------- the fair queue
class _Fake:
    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n


def queued(owner: str, count: int, width: int = 48) -> list[QueuedWindow]:
    return [QueuedWindow(owner, 0, i, _Fake(width)) for i in range(count)]


def test_fair_queue_takes_round_robin_by_request_with_one_chunk_each() -> None:
    queue = FairQueue(BatchLimits(32, None, (32, 48)), 480, 32, max_request_tokens=96)
    queue.add("long", queued("long", 50))
    first = queue.take()
    assert [w.owner for w in first] == ["long", "long"]  # one chunk (96 tokens), not 10
    queue.add("short", queued("short", 1))
    queue.add("other", queued("other", 3))
    second = queue.take()
    assert sorted(w.owner for w in second) == ["long"] * 2 + ["other"] * 2 + ["short"]
    assert [w.index for w in second if w.owner == "long"] == [2, 3]  # in order
    assert len(queue) == 46 + 1 and queue.requests == 2
    # "long" and "other" were both served: the turn order keeps every request moving.
    assert {w.owner for w in queue.take()} == {"long", "other"}


def test_fair_queue_respects_the_batch_budgets_and_drops_by_request() -> None:
    queue = FairQueue(BatchLimits(32, None, (32, 48)), 100, 3)
    queue.add("a", queued("a", 5))
    queue.add("b", queued("b", 5, width=20))  # padded to the 32 bucket
    batch = queue.take()
    assert len(batch) == 2 and sum(queue.limits.width_for(len(w.window)) for w in batch) <= 100
    assert queue.padded_tokens == 4 * 48 + 4 * 32
    assert queue.drop("a") == 4 and queue.drop("a") == 0
    assert len(queue) == 4 and queue.padded_tokens == 4 * 32


# ---------------------------------------------------------------- fairness, end to end
def test_a_short_request_behind_a_long_one_is_answered_first_and_both_equal_predict(engine):
    gated = GatedEngine(engine)
    windows = len(engine.tokenizer.encode(LONG["question"], LONG["context"]))
    assert windows > 30  # a long document for this model

    async def main():
        batcher = Batcher(gated, max_batch_tokens=480, max_request_batch_tokens=96)
        await batcher.start()
        finished: list[str] = []
        left_when_short_done: list[int] = []

        async def ask(name: str, item: dict):
            decoded = await batcher.submit([item["question"]], [item["context"]])
            finished.append(name)
            if name == "short":
                left_when_short_done.append(batcher.queue_depth)
            return decoded[0]

        long_task = asyncio.create_task(ask("long", LONG))
        while not gated.shapes:  # the long request's first batch is running (held)
            await asyncio.sleep(0.005)
        short_task = asyncio.create_task(ask("short", SHORT))
        while batcher.waiting_requests < 2:  # the short one is queued behind it
            await asyncio.sleep(0.005)
        gated.gate.set()
        long_answer, short_answer = await asyncio.gather(long_task, short_task)
        await batcher.close()
        return finished, left_when_short_done[0], long_answer, short_answer

    finished, left, long_answer, short_answer = run(main())
    assert finished == ["short", "long"]
    assert left > windows // 2  # it did not wait for the long one's windows
    for decoded, item in ((long_answer, LONG), (short_answer, SHORT)):
        answer = decoded.answers[0]
        assert_same(
            [(answer.text, answer.start, answer.end, answer.score)], expected(engine, item, 1)
        )


class SlowLongTokenizer:
    """The engine's tokenizer, holding every context over 1,000 characters until released."""

    def __init__(self, tokenizer) -> None:
        self._tokenizer = tokenizer
        self.release = threading.Event()

    def __getattr__(self, name: str):
        return getattr(self._tokenizer, name)

    def encode_batch(self, questions, contexts):
        if max(len(c) for c in contexts) > 1000 and not self.release.wait(timeout=30):
            raise TimeoutError("test never released the long tokenization")
        return self._tokenizer.encode_batch(questions, contexts)


def test_ordinary_requests_never_wait_behind_a_long_ones_tokenization(engine, monkeypatch):
    import qa_engine.serve.batcher as batcher_module

    monkeypatch.setattr(batcher_module, "LONG_REQUEST_CHARS", 1000)
    slow = SlowLongTokenizer(engine.tokenizer)
    wrapped = SimpleNamespace(
        tokenizer=slow,
        manifest=engine.manifest,
        batch_limits=engine.batch_limits,
        run_batch=engine.run_batch,
    )

    async def main():
        batcher = Batcher(wrapped, workers=2)
        await batcher.start()
        longs = [
            asyncio.create_task(batcher.submit([LONG["question"]], [LONG["context"]]))
            for _ in range(3)  # more than the 2 ordinary workers
        ]
        await asyncio.sleep(0.05)
        short = await asyncio.wait_for(batcher.submit([SHORT["question"]], [SHORT["context"]]), 20)
        still_waiting = sum(not t.done() for t in longs)
        slow.release.set()
        await asyncio.gather(*longs)
        await batcher.close()
        return short[0], still_waiting

    short, still_waiting = run(main())
    assert still_waiting == 3  # answered while all three long ones were still tokenizing
    answer = short.answers[0]
    assert_same([(answer.text, answer.start, answer.end, answer.score)], expected(engine, SHORT, 1))


# ---------------------------------------------------------------- per-request limits
def test_context_tokens_of_windows_equal_the_tokenizers_count(engine) -> None:
    tokenizer = engine.tokenizer
    for seed, n in ((3, 5), (4, 40), (5, 700)):
        context = words(n, seed)
        counted = tokenizer.count_context_tokens(context)
        windows = tokenizer.encode("who was it?", context)
        assert context_tokens(windows, tokenizer.doc_stride) == counted


def test_counting_with_a_ceiling_stops_early_with_a_lower_bound(engine) -> None:
    tokenizer = engine.tokenizer
    # Many words: their count alone passes the ceiling.
    context = words(700, seed=5)
    assert tokenizer.count_context_tokens(context, stop_after=100) == 101
    # Few whitespace-separated words of many tokens each: a prefix is tokenized.
    rng = random.Random(6)
    context = " ".join(",".join(rng.choice(WORDS) for _ in range(10)) for _ in range(80))
    counted = tokenizer.count_context_tokens(context)
    partial = tokenizer.count_context_tokens(context, stop_after=300)
    assert 300 < partial < counted  # over the ceiling, from a prefix only
    assert tokenizer.count_context_tokens(context, stop_after=counted) == counted


def test_over_the_context_limit_is_413_naming_the_limit_and_size_before_any_window(engine):
    # Commas make each word two tokens: the word count alone does not settle it.
    many = [{"question": "who?", "context": words(60, seed=s).replace(" ", ", ")} for s in range(3)]
    per_pair = [engine.tokenizer.count_context_tokens(p["context"]) for p in many]
    limit = sum(per_pair) - 1  # each pair fits alone; together they do not

    async def main():
        async with serving(engine, max_context_tokens=limit) as c:
            huge = await c.post("/", json={"inputs": LONG})
            together = await c.post("/", json={"inputs": many})
            fits = await c.post("/", json={"inputs": many[:2]})
            info = (await c.get("/info")).json()
            return huge, together, fits, info, (await c.get("/metrics")).text

    huge, together, fits, info, metrics = run(main())
    assert huge.status_code == 413, huge.text
    body = huge.json()
    assert body["error_type"] == "payload_too_large"
    assert f"--max-context-tokens {limit}" in body["error"]
    assert body["limit"] == {"max_context_tokens": limit}
    assert body["size"]["context_tokens"] > limit and body["size"]["exact"] is False
    assert body["size"]["context_characters"] == len(LONG["context"])
    assert together.status_code == 413
    assert together.json()["size"] == {
        "context_tokens": sum(per_pair),
        "exact": True,
        "context_characters": sum(len(p["context"]) for p in many),
    }
    assert fits.status_code == 200
    assert _metric(metrics, "qa_batch_windows_sum") == sum(
        len(engine.tokenizer.encode(p["question"], p["context"])) for p in many[:2]
    )  # the refused requests ran no window
    assert info["limits"]["max_context_tokens"] == limit


def test_batcher_raises_request_too_large_with_the_numbers(engine) -> None:
    async def main():
        batcher = Batcher(engine, max_context_tokens=50)
        await batcher.start()
        try:
            with pytest.raises(RequestTooLarge) as caught:
                await batcher.submit([LONG["question"]], [LONG["context"]])
        finally:
            await batcher.close()
        return caught.value

    err = run(main())
    assert err.limit == 50 and err.tokens > 50 and "50" in str(err)


# ---------------------------------------------------------------- cancellation, timeouts
def test_a_cancelled_request_drops_its_waiting_windows_and_metrics_count_them(engine):
    gated = GatedEngine(engine)
    windows = len(engine.tokenizer.encode(LONG["question"], LONG["context"]))

    async def main():
        async with serving(gated, max_batch_tokens=480, max_request_batch_tokens=96) as c:
            batcher = c.service.batcher
            task = asyncio.create_task(batcher.submit([LONG["question"]], [LONG["context"]]))
            while not gated.shapes:
                await asyncio.sleep(0.005)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            depth = batcher.queue_depth
            gated.gate.set()
            return depth, batcher.dropped_windows, (await c.get("/metrics")).text

    depth, dropped, metrics = run(main())
    assert depth == 0
    assert dropped == windows - 2  # all but the chunk already running
    assert _metric(metrics, "qa_dropped_windows_total") == dropped


def test_a_failed_request_leaves_no_windows_behind(engine) -> None:
    class Failing(GatedEngine):
        def run_batch(self, windows, width=None):
            raise RuntimeError("engine failure")

    async def main():
        batcher = Batcher(Failing(engine), max_batch_tokens=480, max_request_batch_tokens=96)
        await batcher.start()
        with pytest.raises(RuntimeError, match="engine failure"):
            await batcher.submit([LONG["question"]], [LONG["context"]])
        depth = batcher.queue_depth
        await batcher.close()
        return depth

    assert run(main()) == 0


def test_a_client_that_disconnects_stops_costing_compute(engine) -> None:
    gated = GatedEngine(engine)
    windows = len(engine.tokenizer.encode(LONG["question"], LONG["context"]))
    body = json.dumps({"inputs": LONG}).encode()

    async def main():
        settings = ServeSettings(warmup=False, max_batch_tokens=480, max_request_batch_tokens=96)
        app = create_app(gated, settings)
        service = app.state.service
        async with app.router.lifespan_context(app):
            left = asyncio.Event()
            sent: list[dict] = []
            messages = iter([{"type": "http.request", "body": body, "more_body": False}])

            async def receive():
                message = next(messages, None)
                if message is not None:
                    return message
                await left.wait()
                return {"type": "http.disconnect"}

            async def send(message):
                sent.append(message)

            scope = {
                "type": "http",
                "asgi": {"version": "3.0"},
                "http_version": "1.1",
                "method": "POST",
                "scheme": "http",
                "path": "/",
                "raw_path": b"/",
                "query_string": b"",
                "root_path": "",
                "headers": [(b"content-type", b"application/json")],
                "client": ("127.0.0.1", 1),
                "server": ("127.0.0.1", 80),
            }
            call = asyncio.create_task(app(scope, receive, send))
            while not gated.shapes:
                await asyncio.sleep(0.005)
            left.set()  # the client goes while its first chunk runs
            while service.batcher.queue_depth:
                await asyncio.sleep(0.005)
            dropped = service.batcher.dropped_windows
            gated.gate.set()
            await call
            return dropped, sent, service.metrics.render().decode()

    dropped, sent, metrics = run(main())
    assert dropped == windows - 2
    assert sent[0]["status"] == 499
    assert 'qa_requests_total{route="/",status="499"} 1.0' in metrics
    assert _metric(metrics, "qa_dropped_windows_total") == dropped


def test_request_timeout_is_504_with_a_body_and_nothing_hangs(engine) -> None:
    gated = GatedEngine(engine)

    async def main():
        async with serving(
            gated, request_timeout_s=0.3, max_batch_tokens=480, max_request_batch_tokens=96
        ) as c:
            late = await c.post("/", json={"inputs": LONG})
            dropped = c.service.batcher.dropped_windows
            gated.gate.set()
            after = await c.post("/", json={"inputs": SHORT})
            return late, dropped, after

    late, dropped, after = run(main())
    assert late.status_code == 504, late.text
    assert late.json()["error_type"] == "timeout"
    assert "--request-timeout 0.3 s" in late.json()["error"]
    assert late.json()["limit"] == {"request_timeout_s": 0.3}
    assert dropped > 0
    assert after.status_code == 200
    assert_same(got(after.json()), expected(engine, SHORT, 1))


def test_info_shows_the_limits(engine) -> None:
    async def main():
        async with serving(engine) as c:
            return (await c.get("/info")).json()["limits"]

    limits = run(main())
    defaults = ServeSettings()
    assert limits["max_context_tokens"] == defaults.max_context_tokens
    assert limits["max_request_batch_tokens"] == defaults.max_request_batch_tokens
    assert limits["request_timeout_s"] == defaults.request_timeout_s
    assert limits["max_request_bytes"] == defaults.max_request_bytes


@pytest.mark.parametrize(
    "values",
    [{"max_context_tokens": 0}, {"request_timeout_s": 0}, {"max_request_batch_tokens": 0}],
)
def test_bad_limit_settings_are_refused(values) -> None:
    with pytest.raises(ValueError, match=next(iter(values))):
        ServeSettings(**values)


# ---------------------------------------------------------------- the CLI
def test_serve_flags_reach_the_settings_and_the_engine(tmp_path, monkeypatch) -> None:
    import qa_engine.commands
    import qa_engine.serve.app
    import qa_engine.serve.shutdown
    from qa_engine.cli import cli

    seen: dict = {}

    class FakeServer:
        started, drained = True, True

        def __init__(self, config, drain) -> None:
            seen["config"] = config

        def run(self) -> None:
            pass

    def fake_create_app(engine, settings):
        seen["settings"] = settings
        return SimpleNamespace(state=SimpleNamespace(service=SimpleNamespace(drain=None)))

    def fake_load_engine(export_dir, device, threads, *, spinning=True):
        seen["spinning"] = spinning
        return SimpleNamespace(plan=None)  # no per-machine plan (qa_engine.plan)

    monkeypatch.setattr(qa_engine.commands, "load_engine", fake_load_engine)
    monkeypatch.setattr(qa_engine.serve.app, "create_app", fake_create_app)
    monkeypatch.setattr(qa_engine.serve.shutdown, "DrainingServer", FakeServer)
    monkeypatch.setattr("uvicorn.Config", lambda app, **kwargs: kwargs)

    def serve(*flags: str):
        result = CliRunner().invoke(cli, ["serve", str(tmp_path), *flags])
        assert result.exit_code == 0, result.output
        return seen["settings"]

    settings = serve(
        "--max-context-tokens",
        "1000",
        "--max-request-batch-tokens",
        "512",
        "--request-timeout",
        "5",
        "--spinning",
    )
    assert settings.max_context_tokens == 1000
    assert settings.max_request_batch_tokens == 512
    assert settings.request_timeout_s == 5.0
    assert settings.spinning is True and seen["spinning"] is True
    settings = serve("--max-context-tokens", "0", "--no-spinning")
    assert settings.max_context_tokens is None
    assert settings.spinning is False and seen["spinning"] is False
    settings = serve()
    assert settings == ServeSettings(port=8000, device="auto", warmup=True)


# ---------------------------------------------------------------- the load bench
def test_long_pair_joins_distinct_contexts_to_the_size() -> None:
    from qa_engine.bench.load import long_pair

    question, context = long_pair("who?", ["alpha beta gamma", "delta epsilon"] * 3, 70)
    assert question == "who?" and len(context) <= 70
    assert context.startswith("alpha beta gamma\n\ndelta epsilon\n\nalpha beta gamma")


def test_mixed_load_reports_ordinary_requests_apart_and_answers_the_long_one(engine) -> None:
    import threading

    import uvicorn

    from qa_engine.bench.load import run_load
    from tests.ports import free_port

    port = free_port()
    app = create_app(engine, ServeSettings(warmup=False, max_request_batch_tokens=96))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            threading.Event().wait(0.05)
        pairs = [(SHORT["question"], SHORT["context"]), ("who was born?", words(30, seed=9))]
        level = run_load(
            f"http://127.0.0.1:{port}/",
            pairs,
            concurrency=4,
            requests=41,
            long_pairs=[(LONG["question"], LONG["context"])],
            long_fraction=0.01,
            long_lead_s=0.2,
        )
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    assert level["sent"] == 40 and level["answered"] == 40  # the ordinary requests alone
    long = level["long"]
    assert long["sent"] == 1 and long["statuses"] == {"200": 1}
    assert long["chars"] == [len(LONG["context"])]
    (result,) = long["results"]
    assert_same(got(result), expected(engine, LONG, 1))
