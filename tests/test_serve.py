"""qa-engine serve in process (httpx over ASGI, the app's own lifespan): batch invariance
under 32 concurrent clients, every status code, readiness, drain, metrics."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import threading

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from qa_engine import QAEngine  # noqa: E402
from qa_engine.serve.app import create_app  # noqa: E402
from qa_engine.serve.batcher import row_sizes  # noqa: E402
from qa_engine.serve.settings import ServeSettings  # noqa: E402

WORDS = (
    "the a an of in on at to is was who what when where which how many year city river born "
    "first built name called capital people more than one two three by and for with from it "
    "its as his her their did does long old new great museum king war"
).split()


@pytest.fixture(scope="module")
def engine(tiny_onnx_dir) -> QAEngine:
    return QAEngine.from_pretrained(tiny_onnx_dir, device="cpu", threads=1)


class GatedEngine:
    """The engine, with run_batch held until ``gate`` is set; records every call's shape."""

    def __init__(self, engine: QAEngine) -> None:
        self._engine = engine
        self.gate = threading.Event()
        self.shapes: list[tuple[int, int]] = []

    def __getattr__(self, name: str):
        return getattr(self._engine, name)

    def run_batch(self, windows, width=None):
        self.shapes.append((len(windows), width))
        if not self.gate.wait(timeout=30):
            raise TimeoutError("test gate never opened")
        return self._engine.run_batch(windows, width)


@contextlib.asynccontextmanager
async def serving(engine, **settings):
    """The app running (lifespan entered), and an async client on it."""
    settings.setdefault("warmup", False)
    app = create_app(engine, ServeSettings(**settings))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://qa", timeout=30) as c:
            c.service = app.state.service
            yield c


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 60))


def text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def pair(rng: random.Random) -> dict[str, str]:
    # 3 to 150 words: one window up to ~10 windows of the tiny model (48 tokens, stride 16).
    return {
        "question": text(rng, rng.randint(1, 6)) + "?",
        "context": text(rng, rng.choice([3, 12, 40, 150])),
    }


def expected(engine: QAEngine, item: dict, top_k: int) -> list[tuple[str, int, int, float]]:
    answers = engine.predict(item["question"], item["context"], top_k=top_k)
    answers = answers if isinstance(answers, list) else [answers]
    return [(a.text, a.start, a.end, a.score) for a in answers]


def got(result) -> list[tuple[str, int, int, float]]:
    results = result if isinstance(result, list) else [result]
    return [(r["answer"], r["start"], r["end"], r["score"]) for r in results]


def assert_same(actual, wanted) -> None:
    assert [a[:3] for a in actual] == [w[:3] for w in wanted]
    assert [a[3] for a in actual] == pytest.approx([w[3] for w in wanted], rel=1e-4, abs=1e-6)


# ---------------------------------------------------------------- batch invariance
def test_32_concurrent_clients_get_what_predict_gives_alone(engine) -> None:
    rng = random.Random(0)
    plans = []  # (client, body, [(item, top_k)])
    for client in range(32):
        for _ in range(3):
            top_k = rng.choice([1, 1, 3])
            if rng.random() < 0.3:
                items = [pair(rng) for _ in range(rng.randint(2, 5))]
                body = {"inputs": items, "parameters": {"top_k": top_k}}
            else:
                items = [pair(rng)]
                body = {"inputs": items[0], "parameters": {"top_k": top_k}}
            plans.append((client, body, items, top_k))

    async def main():
        async with serving(engine, max_wait_ms=5, max_batch_tokens=1024) as c:

            async def client(number: int):
                out = []
                for _, body, items, top_k in (p for p in plans if p[0] == number):
                    r = await c.post("/", json=body)
                    out.append((r, body, items, top_k))
                return out

            results = await asyncio.gather(*(client(n) for n in range(32)))
            metrics = (await c.get("/metrics")).text
        return [x for per_client in results for x in per_client], metrics

    responses, metrics = run(main())
    assert len(responses) == 96
    for response, body, items, top_k in responses:
        assert response.status_code == 200, response.text
        data = response.json()
        if isinstance(body["inputs"], list):
            assert len(data) == len(items)
            for result, item in zip(data, items, strict=True):
                assert_same(got(result), expected(engine, item, top_k))
        else:
            assert_same(got(data), expected(engine, items[0], top_k))
    # Windows of different requests really shared onnxruntime calls.
    count = _metric(metrics, "qa_batch_windows_count")
    windows = _metric(metrics, "qa_batch_windows_sum")
    assert windows / count > 2


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


def test_bucketed_padding_and_padded_rows_change_no_answer(engine) -> None:
    rng = random.Random(1)
    items = [pair(rng) for _ in range(24)]

    async def main():
        async with serving(engine, pad_batch_rows=True, max_wait_ms=5) as c:
            return await asyncio.gather(*(c.post("/predict", json={"inputs": i}) for i in items))

    for response, item in zip(run(main()), items, strict=True):
        assert_same(got(response.json()), expected(engine, item, 1))


def test_split_by_length_runs_no_padding_and_changes_no_answer(engine) -> None:
    """With min_call_tokens 1 every call holds windows of one length: no padded token."""
    rng = random.Random(2)
    items = [pair(rng) for _ in range(24)]

    async def main():
        async with serving(engine, max_wait_ms=20) as c:
            batcher = c.service.batcher
            assert batcher.limits.buckets is None  # the CPU provider pads to no bucket
            batcher._set_limits(dataclasses.replace(batcher.limits, min_call_tokens=1))
            responses = await asyncio.gather(
                *(c.post("/predict", json={"inputs": i}) for i in items)
            )
            return responses, (await c.get("/metrics")).text

    responses, metrics = run(main())
    for response, item in zip(responses, items, strict=True):
        assert_same(got(response.json()), expected(engine, item, 1))
    padded = _metric(metrics, "qa_batch_padded_tokens_sum")
    assert padded == _metric(metrics, "qa_batch_real_tokens_sum")
    # Each take from the queue is one round of one or more calls.
    calls = _metric(metrics, "qa_batch_windows_count")
    assert _metric(metrics, "qa_round_calls_sum") == calls
    assert 1 <= _metric(metrics, "qa_round_seconds_count") <= calls


def test_warm_up_measures_the_smallest_full_speed_call(engine) -> None:
    async def main():
        async with serving(engine, warmup=True, max_batch_tokens=256) as c:
            await c.service._warmup_task
            return (await c.get("/info")).json()["batching"]

    batching = run(main())
    width = 48  # the tiny model's widest bucket (no bucket reaches 64)
    assert batching["min_call_tokens"] in {r * width for r in row_sizes(256 // width)}


# ---------------------------------------------------------------- status codes
GOOD = {"inputs": {"question": "who built it?", "context": "the city was built by the king."}}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "body"),
        (b"\xff\xfe{}", "body"),
        (b"[" * 50_000 + b"]" * 50_000, "body"),
        (b'{"inputs": {"question": "a", "context": NaN}}', "body"),
        (b"[1, 2]", "body"),
        (b"{}", "inputs"),
        (b'{"inputs": {"question": "a", "context": "b"}, "extra": 1}', "extra"),
        (b'{"inputs": []}', "inputs"),
        (b'{"inputs": "who?"}', "inputs"),
        (b'{"inputs": {"question": 3, "context": "b"}}', "inputs.question"),
        (b'{"inputs": {"question": "a"}}', "inputs.context"),
        (b'{"inputs": {"question": " \\n\\t ", "context": "b"}}', "inputs.question"),
        (b'{"inputs": {"question": "a", "context": ""}}', "inputs.context"),
        (
            b'{"inputs": [{"question": "a", "context": "b"}, {"question": "a"}]}',
            "inputs[1].context",
        ),
        (
            b'{"inputs": {"question": "a", "context": "b"}, "parameters": {"top_k": 0}}',
            "parameters.top_k",
        ),
        (
            b'{"inputs": {"question": "a", "context": "b"}, "parameters": {"top_k": "2"}}',
            "parameters.top_k",
        ),
        (
            b'{"inputs": {"question": "a", "context": "b"}, "parameters": {"top_k": 1000}}',
            "parameters.top_k",
        ),
        (
            b'{"inputs": {"question": "a", "context": "b"}, "parameters": {"max_answer_len": -1}}',
            "parameters.max_answer_len",
        ),
        (
            b'{"inputs": {"question": "a", "context": "b"}, '
            b'"parameters": {"handle_impossible_answer": "yes"}}',
            "parameters.handle_impossible_answer",
        ),
        (
            b'{"inputs": {"question": "a", "context": "b"}, "parameters": {"doc_stride": 3}}',
            "parameters.doc_stride",
        ),
        (
            b'{"inputs": {"question": "a", "context": "b"}, "parameters": {"temperature": 1}}',
            "parameters.temperature",
        ),
        (b'{"inputs": {"question": "a", "context": "b"}, "parameters": [1]}', "parameters"),
    ],
)
def test_bad_bodies_are_422_naming_the_field(engine, body: bytes, field: str) -> None:
    async def main():
        async with serving(engine) as c:
            return await c.post("/", content=body, headers={"content-type": "application/json"})

    response = run(main())
    assert response.status_code == 422, response.text
    assert response.json()["error"].startswith(field + ":"), response.json()["error"]


def test_status_codes_200_401_413_and_hf_parameters(engine) -> None:
    async def main():
        async with serving(
            engine, api_key="s3cret", max_request_bytes=2000, max_client_batch_size=4
        ) as c:
            no_key = await c.post("/", json=GOOD)
            wrong = await c.post("/", json=GOOD, headers={"Authorization": "Bearer nope"})
            info_no_key = await c.get("/info")
            auth = {"Authorization": "Bearer s3cret"}
            ok = await c.post("/", json=GOOD, headers=auth)
            x_key = await c.post("/predict", json=GOOD, headers={"X-API-Key": "s3cret"})
            big = await c.post(
                "/", json={"inputs": {"question": "a", "context": "b " * 2000}}, headers=auth
            )
            many = await c.post("/", json={"inputs": [GOOD["inputs"]] * 5}, headers=auth)
            geometry = await c.post(
                "/",
                json={**GOOD, "parameters": {"doc_stride": 16, "max_seq_len": 48, "top_k": 2}},
                headers=auth,
            )
            health = await c.get("/health")  # probes need no key
            info = await c.get("/info", headers=auth)
            return no_key, wrong, info_no_key, ok, x_key, big, many, geometry, health, info

    no_key, wrong, info_no_key, ok, x_key, big, many, geometry, health, info = run(main())
    assert no_key.status_code == wrong.status_code == info_no_key.status_code == 401
    assert no_key.headers["www-authenticate"] == "Bearer"
    assert ok.status_code == x_key.status_code == 200
    assert set(ok.json()) == {"answer", "score", "start", "end"}
    assert big.status_code == 413 and "max-request-bytes" in big.json()["error"]
    assert many.status_code == 413 and "max-client-batch-size" in many.json()["error"]
    assert geometry.status_code == 200 and len(geometry.json()) == 2
    assert health.status_code == 200
    body = info.json()
    assert body["precision"] == "fp32" and body["providers"] == ["CPUExecutionProvider"]
    assert body["limits"]["api_key"] == "set" and "s3cret" not in info.text
    assert body["manifest"]["max_seq_length"] == 48 and body["version"]


def test_429_with_retry_after_over_the_admission_limit(engine) -> None:
    gated = GatedEngine(engine)

    async def main():
        async with serving(gated, max_concurrent_requests=2) as c:
            held = [asyncio.create_task(c.post("/", json=GOOD)) for _ in range(2)]
            while c.service.admitted < 2:
                await asyncio.sleep(0.01)
            over = await c.post("/", json=GOOD)
            gated.gate.set()
            return over, await asyncio.gather(*held), await c.post("/", json=GOOD)

    over, held, after = run(main())
    assert over.status_code == 429 and over.headers["retry-after"] == "1"
    assert [r.status_code for r in held] == [200, 200] and after.status_code == 200


# ---------------------------------------------------------------- readiness, drain
def test_ready_is_503_until_every_shape_is_warmed_up(engine) -> None:
    gated = GatedEngine(engine)

    async def main():
        async with serving(gated, warmup=True, max_batch_tokens=256, split_by_length=False) as c:
            before = await c.get("/ready")
            health = await c.get("/health")
            gated.gate.set()
            for _ in range(500):
                after = await c.get("/ready")
                if after.status_code == 200:
                    break
                await asyncio.sleep(0.01)
            return before, health, after, c.service.batcher.shapes()

    before, health, after, shapes = run(main())
    assert before.status_code == 503 and before.json()["reason"] == "warming up"
    assert health.status_code == 200
    assert after.status_code == 200
    # Every (batch size, bucket) shape ran once: buckets (32, 48), up to 256 tokens a call.
    assert set(shapes) == {(r, 32) for r in row_sizes(8)} | {(r, 48) for r in row_sizes(5)}
    assert sorted(gated.shapes) == sorted(shapes)


def test_warm_before_startup_holds_startup_until_every_shape_ran(engine) -> None:
    """The Ray Serve replica's mode: its host routes traffic once startup ends."""
    gated = GatedEngine(engine)
    app = create_app(
        gated,
        ServeSettings(warmup=True, max_batch_tokens=256, split_by_length=False),
        warm_before_startup=True,
    )

    async def main():
        entered = asyncio.Event()

        async def host():
            async with app.router.lifespan_context(app):
                entered.set()
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://qa") as c:
                    return await c.get("/ready")

        task = asyncio.create_task(host())
        await asyncio.sleep(0.3)
        held = not entered.is_set()  # warm-up is blocked on the gate: startup waits too
        gated.gate.set()
        return held, await task

    held, ready = run(main())
    assert held
    assert ready.status_code == 200  # ready the moment startup ended
    assert app.state.service.batcher.shapes() and sorted(gated.shapes) == sorted(
        app.state.service.batcher.shapes()
    )


def test_no_warmup_is_ready_at_once(engine) -> None:
    async def main():
        async with serving(engine, warmup=False) as c:
            return await c.get("/ready")

    assert run(main()).status_code == 200


def test_drain_answers_every_admitted_request_and_refuses_new_work(engine) -> None:
    gated = GatedEngine(engine)

    async def main():
        async with serving(gated) as c:
            held = [asyncio.create_task(c.post("/", json=GOOD)) for _ in range(3)]
            while c.service.admitted < 3:
                await asyncio.sleep(0.01)
            drain = asyncio.create_task(c.service.drain())
            await asyncio.sleep(0.05)
            ready, new = await c.get("/ready"), await c.post("/", json=GOOD)
            assert not drain.done()  # still waiting for the admitted three
            gated.gate.set()
            return ready, new, await asyncio.gather(*held), await drain

    ready, new, held, drained = run(main())
    assert ready.status_code == 503 and ready.json()["reason"] == "draining"
    assert new.status_code == 503
    assert [r.status_code for r in held] == [200, 200, 200]
    assert drained is True


# ---------------------------------------------------------------- metrics, docs
def test_metrics_by_stage_and_status(engine) -> None:
    async def main():
        async with serving(engine) as c:
            await c.post("/", json=GOOD)
            await c.post("/", content=b"{")
            await c.get("/no-such-route")
            return await c.get("/metrics"), await c.get("/openapi.json")

    metrics, openapi = run(main())
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert 'qa_requests_total{route="/",status="200"} 1.0' in text
    assert 'qa_requests_total{route="/",status="422"} 1.0' in text
    assert 'qa_requests_total{route="other",status="404"} 1.0' in text
    for stage in ("queue", "tokenization", "inference", "decoding", "request"):
        assert _metric(text, f"qa_{stage}_seconds_count") == 1.0
    assert (
        _metric(text, "qa_batch_padded_tokens_sum") >= _metric(text, "qa_batch_real_tokens_sum") > 0
    )
    for gauge in ("qa_queue_windows", "qa_inflight_requests", "qa_ready"):
        assert gauge in text
    paths = openapi.json()["paths"]
    assert {"/", "/predict", "/health", "/ready", "/info", "/metrics"} <= set(paths)


def test_two_apps_in_one_process_have_their_own_metrics(engine) -> None:
    first = create_app(engine, ServeSettings(warmup=False))
    second = create_app(engine, ServeSettings(warmup=False))
    first.state.service.metrics.count("/", 200)
    assert b'route="/"' not in second.state.service.metrics.render()


def test_serve_help_explains_every_option_without_importing_fastapi() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from click.testing import CliRunner; from qa_engine.cli import cli; "
        "r = CliRunner().invoke(cli, ['serve', '--help']); print(r.output); "
        "assert 'fastapi' not in sys.modules and 'uvicorn' not in sys.modules"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    for option in (
        "--host",
        "--port",
        "--device",
        "--threads",
        "--max-batch-tokens",
        "--max-wait-ms",
        "--max-concurrent-requests",
        "--max-client-batch-size",
        "--max-request-bytes",
        "--api-key",
        "QA_ENGINE_API_KEY",
        "--no-warmup",
        "--max-context-tokens",
        "--max-request-batch-tokens",
        "--request-timeout",
        "--spinning / --no-spinning",
    ):
        assert option in out.stdout
