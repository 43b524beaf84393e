"""1,000 malformed or hostile requests: never a 5xx, and the server keeps answering."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from qa_engine import QAEngine  # noqa: E402
from qa_engine.serve.app import create_app  # noqa: E402
from qa_engine.serve.settings import ServeSettings  # noqa: E402

GOOD = {"question": "who built it?", "context": "the city was built by the king."}
ALLOWED = {200, 413, 422}
LIMIT = 64 * 1024
seen: list[int] = []


@pytest.fixture(scope="module")
def client(tiny_onnx_dir):
    engine = QAEngine.from_pretrained(tiny_onnx_dir, device="cpu", threads=1)
    app = create_app(engine, ServeSettings(warmup=False, max_request_bytes=LIMIT))
    with TestClient(app, raise_server_exceptions=False) as c:
        c.engine = engine
        yield c


def post(client, body: bytes, path: str = "/") -> int:
    response = client.post(path, content=body, headers={"content-type": "application/json"})
    seen.append(response.status_code)
    assert response.status_code in ALLOWED, (body[:200], response.status_code, response.text[:300])
    if response.status_code == 200:
        json.loads(response.content)  # always valid JSON, even with lone surrogates
    else:
        assert response.json()["error"]
    return response.status_code


def handmade(rng: random.Random) -> bytes:
    """One hostile body, by kind."""
    kind = rng.randrange(12)
    good = json.dumps({"inputs": GOOD}).encode()
    if kind == 0:  # broken UTF-8 somewhere inside a valid-looking body
        i = rng.randrange(len(good))
        return good[:i] + bytes([rng.choice([0x80, 0xC3, 0xED, 0xFF])]) + good[i:]
    if kind == 1:  # deep JSON, in the body or inside a field
        depth = rng.choice([100, 1000, 20_000])
        inner = "[" * depth + "]" * depth
        return (inner if rng.random() < 0.5 else f'{{"inputs": {{"question": {inner}}}}}').encode()
    if kind == 2:  # huge strings, over and under the body limit
        n = rng.choice([LIMIT // 4, LIMIT * 2])
        field = rng.choice(["question", "context"])
        return json.dumps({"inputs": {**GOOD, field: "the " * (n // 4)}}).encode()
    if kind == 3:  # wrong types everywhere
        value = rng.choice([None, 1, 1.5, True, [], {}, ["a"], {"a": "b"}])
        target = rng.choice(["inputs", "question", "context", "parameters", "top_k"])
        body = {"inputs": dict(GOOD), "parameters": {}}
        if target == "inputs":
            body["inputs"] = value
        elif target == "parameters":
            body["parameters"] = value
        elif target == "top_k":
            body["parameters"]["top_k"] = value
        else:
            body["inputs"][target] = value
        return json.dumps(body).encode()
    if kind == 4:  # truncated JSON
        return good[: rng.randrange(len(good))]
    if kind == 5:  # lone surrogates, NULs and odd code points in the texts
        odd = rng.choice(["\\ud800", "\\udfff", "\\u0000", "\\ufeff", "\\u0301", "\\ud83d\\ude00"])
        texts = f'"question": "who{odd}?", "context": "built{odd} by the king"'
        return f'{{"inputs": {{{texts}}}}}'.encode()
    if kind == 6:  # numbers no parser should trust
        value = rng.choice(["1e999", "-0", "9" * 5000, "NaN", "Infinity", "1.0", "2e2"])
        return f'{{"inputs": {json.dumps(GOOD)}, "parameters": {{"top_k": {value}}}}}'.encode()
    if kind == 7:  # client batches: empty, over the limit, mixed good and bad
        items = [GOOD] * rng.choice([0, 33, 40]) + rng.choice([[], [{"question": 1}]])
        return json.dumps({"inputs": items}).encode()
    if kind == 8:  # random bytes
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
    if kind == 9:  # duplicate keys, weird keys
        return b'{"inputs": {"question": "a", "question": "", "context": "b"}, "\\ud800": 1}'
    if kind == 10:  # whitespace-only texts of every kind
        blank = rng.choice([" ", "\t\n", "\u3000", "\u00a0\u2003", ""])
        return json.dumps({"inputs": {"question": blank, "context": "x"}}).encode()
    return b""  # empty body


@pytest.mark.slow
def test_600_handmade_hostile_bodies(client) -> None:
    rng = random.Random(0)
    for _ in range(600):
        post(client, handmade(rng), rng.choice(["/", "/predict"]))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
bodies = st.one_of(
    json_values.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries(
        {
            "inputs": st.fixed_dictionaries(
                {"question": json_values | st.text(), "context": json_values | st.text()}
            )
        },
        optional={
            "parameters": st.dictionaries(
                st.sampled_from(
                    ["top_k", "max_answer_len", "handle_impossible_answer", "align_to_words", "x"]
                ),
                json_values,
            )
        },
    ).map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=200),
)


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=bodies)
def test_400_generated_bodies(client, body: bytes) -> None:
    post(client, body)


@pytest.mark.slow  # needs the two tests above first
def test_the_server_still_answers_after_the_hostile_requests(client) -> None:
    assert len(seen) >= 1000, "run the whole module: the hostile tests send 1,000 requests first"
    assert {413, 422} <= set(seen)
    assert client.get("/health").status_code == 200
    assert client.get("/ready").status_code == 200
    response = client.post("/", json={"inputs": GOOD})
    assert response.status_code == 200
    answer = client.engine(GOOD["question"], GOOD["context"])
    assert (response.json()["answer"], response.json()["start"]) == (answer.text, answer.start)
    metrics = client.get("/metrics").text
    assert 'status="500"' not in metrics
