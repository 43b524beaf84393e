"""The real server in a subprocess on loopback: an unmodified huggingface_hub
InferenceClient, and a SIGTERM drain under load that loses no admitted request."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ports import free_port

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")

from qa_engine import QAEngine  # noqa: E402

WORDS = "the a of in on at to is was who what city river born first built name king war".split()


def start_server(export_dir: Path, *args: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [sys.executable, "-m", "qa_engine.cli", "serve", str(export_dir), "--port", str(port)]
    command += ["--device", "cpu", "--threads", "1", "--log-level", "warning", *args]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited: {process.stdout.read().decode()[-2000:]}")
        try:
            if httpx.get(url + "/ready", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    raise AssertionError("server not ready within 60 s")


def stop(process: subprocess.Popen) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise


@pytest.fixture(scope="module")
def engine(tiny_onnx_dir) -> QAEngine:
    return QAEngine.from_pretrained(tiny_onnx_dir, device="cpu", threads=1)


# Run in a child: HF_HUB_OFFLINE (set for the whole test session) makes huggingface_hub
# refuse every request, loopback included. The child points the hub at a dead loopback
# port instead, so nothing can reach the Hugging Face hub either way.
CLIENT_SCRIPT = """
import json, sys
from huggingface_hub import InferenceClient
from huggingface_hub.errors import HfHubHTTPError
url, pairs = sys.argv[1], json.loads(sys.stdin.read())
client = InferenceClient(model=url, timeout=30)
out = [client.question_answering(question=q, context=c) for q, c in pairs]
top = client.question_answering(question=pairs[-1][0], context=pairs[-1][1], top_k=3)
try:
    client.question_answering(question=" ", context=pairs[0][1])
    status = 200
except HfHubHTTPError as err:
    status = err.response.status_code
print(json.dumps({
    "single": [[a.answer, a.start, a.end, a.score] for a in out],
    "top": [[a.answer, a.start] for a in top],
    "blank_status": status,
}))
"""


@pytest.mark.slow
def test_unmodified_inference_client_gets_the_engines_answers(tiny_onnx_dir, engine) -> None:
    pytest.importorskip("huggingface_hub")
    process, url = start_server(tiny_onnx_dir)
    rng = random.Random(0)
    pairs = [
        (" ".join(rng.choices(WORDS, k=4)) + "?", " ".join(rng.choices(WORDS, k=n)))
        for n in (8, 80, 8, 80, 30)
    ]
    env = {
        k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    }
    env |= {
        "HF_HUB_OFFLINE": "0",
        "HF_ENDPOINT": "http://127.0.0.1:9",
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }
    try:
        child = subprocess.run(
            [sys.executable, "-c", CLIENT_SCRIPT, url],
            input=json.dumps(pairs),
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
    finally:
        assert stop(process) == 0
    assert child.returncode == 0, child.stderr[-2000:]
    got = json.loads(child.stdout)
    for (question, context), (answer, start, end, score) in zip(pairs, got["single"], strict=True):
        want = engine(question, context)
        assert (answer, start, end) == (want.text, want.start, want.end)
        assert score == pytest.approx(want.score, rel=1e-4)
    want = engine(*pairs[-1], top_k=3)
    assert got["top"] == [[a.text, a.start] for a in want]
    assert got["blank_status"] == 422


@pytest.mark.slow
def test_sigterm_drains_under_load_and_exits_0(tiny_onnx_dir, engine) -> None:
    process, url = start_server(tiny_onnx_dir, "--max-concurrent-requests", "512")
    rng = random.Random(1)
    # Heavy requests (8 long contexts of ~20 windows each) so many are in flight at SIGTERM.
    bodies = [
        {
            "inputs": [
                {
                    "question": " ".join(rng.choices(WORDS, k=3)) + "?",
                    "context": " ".join(rng.choices(WORDS, k=rng.choice([20, 300]))),
                }
                for _ in range(8)
            ]
        }
        for _ in range(64)
    ]

    async def load():
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=0)
        async with httpx.AsyncClient(timeout=60, limits=limits) as client:

            async def one(body):
                try:
                    response = await client.post(url + "/", json=body)
                    return response.status_code, response.json(), time.monotonic()
                except httpx.TransportError as err:
                    return type(err).__name__, None, time.monotonic()

            tasks = [asyncio.create_task(one(b)) for b in bodies]
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            sigterm_at = time.monotonic()
            process.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.05)
            try:
                ready = (await client.get(url + "/ready")).status_code
                late = (await client.post(url + "/", json=bodies[0])).status_code
            except httpx.TransportError as err:
                ready = late = type(err).__name__
            return await asyncio.gather(*tasks), sigterm_at, ready, late

    try:
        results, sigterm_at, ready, late = asyncio.run(asyncio.wait_for(load(), 120))
        rc = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert rc == 0
    assert ready == 503 and late == 503  # still listening while draining, refusing new work
    statuses = [status for status, _, _ in results]
    # Every request sent before SIGTERM was admitted and answered or cleanly refused:
    # no transport error (a lost request), no 5xx other than the drain's 503.
    assert set(statuses) <= {200, 503}, statuses
    answered_after = [t for status, _, t in results if status == 200 and t > sigterm_at]
    assert answered_after, "the drain answered nothing that was in flight"
    for (status, data, _), body in zip(results, bodies, strict=True):
        if status == 200:
            first = body["inputs"][0]
            want = engine(first["question"], first["context"])
            assert (data[0]["answer"], data[0]["start"]) == (want.text, want.start)


@pytest.mark.slow
def test_bench_url_drives_the_server_and_writes_json_markdown_plot(
    tiny_onnx_dir, tmp_path: Path
) -> None:
    pytest.importorskip("matplotlib")
    from click.testing import CliRunner

    from qa_engine.bench.command import bench
    from qa_engine.data import QAExample, save_squad_json

    rng = random.Random(2)
    examples = []
    for i in range(12):
        context = " ".join(rng.choices(WORDS, k=rng.choice([10, 60])))
        answer = context.split()[3]
        answers = {"text": [answer], "answer_start": [context.index(answer)]}
        examples.append(QAExample(f"q{i}", "t", context, "who built it?", answers))
    data = save_squad_json(examples, tmp_path / "dev.json", version_2=False)
    process, url = start_server(tiny_onnx_dir, "--max-concurrent-requests", "4")
    try:
        result = CliRunner().invoke(
            bench,
            [
                "--url",
                f"engine={url}/predict",
                "--data",
                str(data),
                "--concurrency",
                "1,8",
                "--requests",
                "24",
                "--out",
                str(tmp_path / "out"),
            ],
        )
    finally:
        assert stop(process) == 0
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out" / "load.json").read_text())
    one, eight = report["endpoints"][0]["levels"]
    assert report["endpoints"][0]["name"] == "engine"
    assert one["sent"] == one["answered"] == 24 and one["lost"] == 0
    assert one["latency_ms"]["p50"] > 0 and one["throughput_qps"] > 0 and one["f1"] is not None
    # 8 clients against an admission limit of 4: the excess is rejected (429), not lost.
    assert eight["sent"] == 24 and eight["lost"] == 0
    assert eight["answered"] + eight["rejected"] == 24
    assert set(eight["statuses"]) <= {"200", "429"}
    assert "| engine | 8 |" in (tmp_path / "out" / "load.md").read_text()
    assert (tmp_path / "out" / "load.png").stat().st_size > 0
