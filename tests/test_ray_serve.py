"""`qa-engine serve --ray` on one local Ray (2 CPUs, 100 MB object store, no dashboard).

The same requests go to the Ray Serve app and to `qa-engine serve`'s own app in process:
same answers (= QAEngine.predict), same status codes and bodies. Then overload (429/503,
nothing lost) and a replica killed under load (replaced; later requests succeed).
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from ports import free_port
from ray_kit import init_local_ray, slow_machine_env

ray = pytest.importorskip("ray")
pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
from ray import serve  # noqa: E402

from qa_engine import QAEngine  # noqa: E402
from qa_engine.ray.serve_app import RayServeOptions, build  # noqa: E402

pytestmark = pytest.mark.slow  # a Ray start and Serve deployments
KEY = "test-key"
CONTEXT = "the city of a river was built in 1200 by the king. the museum is old. " * 3
QUESTIONS = ["who built the city?", "when was it built?", "what is old?", "where is the river?"]
SETTINGS = {
    "device": "cpu",
    "api_key": KEY,
    "max_client_batch_size": 4,
    "max_request_bytes": 4096,
    "max_context_tokens": 1000,
}
AUTH = {"Authorization": f"Bearer {KEY}"}
REQUEST_TIMEOUT_S = 20


@pytest.fixture(scope="module")
def url(tiny_onnx_dir):
    """Ray Serve on 127.0.0.1 with the main app at /; shut down after the module."""
    with slow_machine_env():
        init_local_ray()
        port = free_port()
        # As `serve --ray` sets it: a request Serve's router retries after its replica
        # died can hang, and the proxy's timeout answers it with 408 instead.
        http = {"host": "127.0.0.1", "port": port, "request_timeout_s": REQUEST_TIMEOUT_S}
        serve.start(http_options=http)
        options = RayServeOptions(replicas=1, cpus_per_replica=0.25)
        serve.run(build(tiny_onnx_dir, SETTINGS, options), name="main", route_prefix="/")
        yield f"http://127.0.0.1:{port}"
        serve.shutdown()
        ray.shutdown()


@pytest.fixture(scope="module")
def engine(tiny_onnx_dir) -> QAEngine:
    return QAEngine(tiny_onnx_dir, device="cpu", threads=1)


def expected(engine: QAEngine, question: str, context: str = CONTEXT, top_k: int = 1):
    result = engine.predict(question, context, top_k=top_k)
    answers = result if isinstance(result, list) else [result]
    shaped = [{"answer": a.text, "score": a.score, "start": a.start, "end": a.end} for a in answers]
    return shaped if top_k > 1 else shaped[0]


def close(got, want) -> bool:
    if isinstance(want, list):
        return len(got) == len(want) and all(map(close, got, want))
    same = {k: got[k] for k in ("answer", "start", "end")} == {
        k: want[k] for k in ("answer", "start", "end")
    }
    return same and abs(got["score"] - want["score"]) < 1e-5


def post(url: str, body, headers=AUTH, path: str = "/") -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(url + path, content=content, headers=headers, timeout=60)


def test_answers_equal_engine_predict(url, engine):
    for question in QUESTIONS:
        r = post(url, {"inputs": {"question": question, "context": CONTEXT}})
        assert r.status_code == 200, r.text
        assert close(r.json(), expected(engine, question))
    batch = {"inputs": [{"question": q, "context": CONTEXT} for q in QUESTIONS]}
    r = post(url, batch, path="/predict")
    assert r.status_code == 200 and all(
        close(got, expected(engine, q)) for got, q in zip(r.json(), QUESTIONS, strict=True)
    )
    r = post(
        url, {"inputs": {"question": QUESTIONS[0], "context": CONTEXT}, "parameters": {"top_k": 3}}
    )
    assert r.status_code == 200 and close(r.json(), expected(engine, QUESTIONS[0], top_k=3))
    assert httpx.get(url + "/ready").status_code == 200
    assert httpx.get(url + "/health").json() == {"status": "ok"}
    assert "qa_requests" in httpx.get(url + "/metrics").text


# (body, headers) pairs covering every status code of `qa-engine serve` but 429/503.
OVER_CONTEXT = {"inputs": {"question": "who?", "context": "a, " * 1200}}  # 2,400 tokens
CASES = [
    (b"{not json", AUTH),
    ({"inputs": {"question": "  ", "context": CONTEXT}}, AUTH),
    ({"inputs": {"question": 3, "context": CONTEXT}}, AUTH),
    ({"inputs": {"question": "who?"}}, AUTH),
    ({"inputs": {"question": "who?", "context": CONTEXT}, "parameters": {"top_k": 0}}, AUTH),
    ({"inputs": [{"question": "who?", "context": "x"}] * 5}, AUTH),  # over the client batch
    ({"inputs": {"question": "who?", "context": "x" * 5000}}, AUTH),  # over the body limit
    (OVER_CONTEXT, AUTH),
    ({"inputs": {"question": "who?", "context": CONTEXT}}, {}),  # no key
    ({"inputs": {"question": "who?", "context": CONTEXT}}, {"Authorization": "Bearer nope"}),
    (b"\xff\xfe broken utf-8", AUTH),
]


def test_error_codes_equal_qa_engine_serve(url, engine):
    from fastapi.testclient import TestClient

    from qa_engine.serve.app import create_app
    from qa_engine.serve.settings import ServeSettings

    app = create_app(engine, ServeSettings(**SETTINGS, warmup=False))
    with TestClient(app) as local:
        for body, headers in CASES:
            content = body if isinstance(body, bytes) else json.dumps(body).encode()
            want = local.post("/", content=content, headers=headers)
            got = post(url, body, headers)
            assert (got.status_code, got.json()) == (want.status_code, want.json()), body
            assert want.status_code in (401, 413, 422)
            if body is OVER_CONTEXT:  # the replica applies the per-request limit
                assert got.json()["limit"] == {"max_context_tokens": 1000}


def _burst(url: str, n: int, path: str) -> list[int]:
    body = {"inputs": {"question": QUESTIONS[0], "context": CONTEXT * 8}}
    with ThreadPoolExecutor(n) as pool:
        responses = list(pool.map(lambda _: post(url, body, path=path), range(n)))
    for r in responses:
        if r.status_code == 200:
            assert r.json()["answer"]  # an admitted request got its answer
    return [r.status_code for r in responses]


def test_overload_gives_429_or_503_and_loses_nothing(url, tiny_onnx_dir):
    # A replica admits 1 (then 429); it holds at most 2; the proxy queues 1 (then 503).
    settings = {**SETTINGS, "max_concurrent_requests": 1}
    options = RayServeOptions(
        replicas=1, cpus_per_replica=0.25, max_ongoing_requests=2, max_queued_requests=1
    )
    serve.run(build(tiny_onnx_dir, settings, options), name="tight", route_prefix="/tight")
    statuses = _burst(url, 24, "/tight/")
    assert len(statuses) == 24  # every request got an answer: lost = 0
    assert set(statuses) <= {200, 429, 503}, statuses
    assert 200 in statuses and ({429, 503} & set(statuses)), statuses
    assert post(
        url, {"inputs": {"question": "who?", "context": CONTEXT}}, path="/tight/"
    ).is_success
    serve.delete("tight")


def _replicas(app: str) -> set[str]:
    names = ray.util.list_named_actors(all_namespaces=True)
    return {a["name"] for a in names if a["name"].startswith(f"SERVE_REPLICA::{app}#")}


def test_killed_replica_is_replaced_and_requests_succeed(url, tiny_onnx_dir, engine):
    options = RayServeOptions(replicas=2, cpus_per_replica=0.25)
    serve.run(build(tiny_onnx_dir, SETTINGS, options), name="kill", route_prefix="/kill")
    before = _replicas("kill")
    assert len(before) == 2
    body = {"inputs": {"question": QUESTIONS[1], "context": CONTEXT}}
    want = expected(engine, QUESTIONS[1])
    with ThreadPoolExecutor(8) as pool:
        load = [pool.submit(post, url, body, AUTH, "/kill/") for _ in range(120)]
        time.sleep(0.5)
        victim = sorted(before)[0]
        ray.kill(ray.get_actor(victim, namespace="serve"), no_restart=True)
        statuses = [f.result().status_code for f in load]  # a client timeout raises
    # Every request was answered (the client waits 60 s, the proxy at most 20): the ones
    # on the killed replica may fail (500) or time out in the proxy (408), never hang.
    assert len(statuses) == 120 and set(statuses) <= {200, 408, 500}, statuses
    assert statuses.count(200) > 100
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = serve.status().applications["kill"]
        now = _replicas("kill")
        if status.status == "RUNNING" and len(now) == 2 and victim not in now:
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"replica not replaced: {_replicas('kill')}")
    for _ in range(20):
        r = post(url, body, path="/kill/")
        assert r.status_code == 200 and close(r.json(), want)
    serve.delete("kill")
