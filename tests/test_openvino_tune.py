"""Part 4 of the plan on the OpenVINO provider: offline calls pad to the server's length
buckets and row sizes, run only shapes warmed ahead, and answer as unpadded calls do;
``qa-engine tune`` measures the OpenVINO candidates. Runs where onnxruntime-openvino is
installed (``make test-openvino``); elsewhere the module skips."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")
if "OpenVINOExecutionProvider" not in ort.get_available_providers():
    pytest.skip("onnxruntime's OpenVINOExecutionProvider is not installed", allow_module_level=True)

from conftest import _WORDS  # noqa: E402

from qa_engine.batching import length_buckets  # noqa: E402
from qa_engine.engine import QAEngine  # noqa: E402
from qa_engine.tune.search import TuneOptions, Tuner, Windows  # noqa: E402

PROVIDER = "OpenVINOExecutionProvider"


@pytest.fixture(autouse=True)
def _private_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("QA_ENGINE_OPENVINO_CACHE", str(tmp_path / "openvino-cache"))


def _pairs(count: int, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    questions = [" ".join(rng.choices(_WORDS, k=4)) + "?" for _ in range(count)]
    contexts = [" ".join(rng.choices(_WORDS, k=rng.randint(3, 70))) + "." for _ in range(count)]
    return questions, contexts


def test_openvino_engine_buckets_and_warms_batch_one_at_load(tiny_onnx_dir: Path) -> None:
    engine = QAEngine(tiny_onnx_dir, device="openvino:f32", threads=1, plan=False)
    assert engine.providers[0] == PROVIDER
    assert engine.buckets == length_buckets(engine.manifest.max_seq_length) and engine.pad_rows
    assert engine._warmed == {(1, width) for width in engine.buckets}


def test_offline_calls_run_only_warmed_shapes(tiny_onnx_dir: Path, monkeypatch) -> None:
    engine = QAEngine(tiny_onnx_dir, device="openvino:f32", threads=1, plan=False)
    engine.warm_up(8)
    warmed = set(engine._warmed)
    assert warmed == set(engine.batch_limits(8).shapes())
    shapes: list[tuple[int, int]] = []
    run = engine.session.run
    monkeypatch.setattr(
        engine.session, "run", lambda ids, *rest: shapes.append(ids.shape) or run(ids, *rest)
    )
    questions, contexts = _pairs(40)
    engine.predict(questions, contexts, batch_size=8)
    engine.predict(questions[0], contexts[0])
    assert shapes and set(shapes) <= warmed
    assert len({width for _, width in shapes}) > 1  # several buckets were really used


def test_padding_leaves_openvino_answers_unchanged(tiny_onnx_dir: Path) -> None:
    engine = QAEngine(tiny_onnx_dir, device="openvino:f32", threads=1, plan=False)
    questions, contexts = _pairs(30, seed=1)
    padded = engine.predict(questions, contexts, batch_size=8)
    padded_logits = engine.window_logits(questions, contexts, batch_size=8)
    engine.buckets, engine.pad_rows = None, False
    plain = engine.predict(questions, contexts, batch_size=8)
    plain_logits = engine.window_logits(questions, contexts, batch_size=8)
    assert [(a.text, a.start, a.end) for a in padded] == [(a.text, a.start, a.end) for a in plain]
    for mine, theirs in zip(padded_logits, plain_logits, strict=True):
        for a, b in zip(mine, theirs, strict=True):
            np.testing.assert_allclose(a.start_logits, b.start_logits, atol=1e-3)
            np.testing.assert_allclose(a.end_logits, b.end_logits, atol=1e-3)


def test_tuner_measures_openvino_and_cpu(tiny_onnx_dir: Path) -> None:
    engine = QAEngine(tiny_onnx_dir, device="cpu", threads=1, plan=False)
    windows = [w for ws in engine.tokenizer.encode_batch(*_pairs(40, seed=2)) for w in ws]
    options = TuneOptions(
        objective="latency", budget_s=60, threads=(1,), devices=("openvino:f32", "cpu")
    )
    plan, rows = Tuner(tiny_onnx_dir, Windows(windows[:10], windows[10:]), options).run()
    assert [(r.stage, r.device, r.buckets) for r in rows[:2]] == [
        ("A", "openvino:f32", True),  # OpenVINO's default: buckets
        ("A", "cpu", False),
    ]
    assert all(r.status == "ok" and r.batch_size == 1 and r.p95_ms >= r.p50_ms for r in rows)
    first = min(rows[:2], key=lambda r: r.p50_ms)
    toggled = rows[2]  # stage C: the stage-A winner with buckets the other way
    assert (toggled.stage, toggled.device, toggled.buckets) == (
        "C",
        first.device,
        not first.buckets,
    )
    best = min((first, toggled), key=lambda r: r.p50_ms)
    assert (plan.device, plan.buckets is not None, plan.batch_size) == (
        best.device,
        best.buckets,
        1,
    )


def test_serve_split_by_length_on_openvino_runs_only_warmed_shapes(
    tiny_onnx_dir: Path, monkeypatch
) -> None:
    """The serve batcher on OpenVINO: buckets and padded rows, warm-up measures the call
    floor, and a split batch still runs only shapes warmed ahead, answering as predict."""
    import dataclasses

    from conftest import serve_each

    from qa_engine.serve.batcher import Batcher

    engine = QAEngine(tiny_onnx_dir, device="openvino:f32", threads=1, plan=False)
    batcher = Batcher(engine, max_batch_tokens=256, max_wait_ms=20, pad_rows=True)
    assert batcher.limits.buckets == engine.buckets and batcher.pad_rows
    warmed = set(batcher.shapes())
    batcher.warm_up()
    assert batcher.limits.min_call_tokens is not None
    # The smallest floor: every batch splits wherever lengths differ.
    batcher._set_limits(dataclasses.replace(batcher.limits, min_call_tokens=1))
    shapes: list[tuple[int, int]] = []
    run = engine.session.run
    monkeypatch.setattr(
        engine.session, "run", lambda ids, *rest: shapes.append(ids.shape) or run(ids, *rest)
    )
    questions, contexts = _pairs(24, seed=3)
    results = serve_each(batcher, questions, contexts)
    assert shapes and set(shapes) <= warmed
    for (decoded,), question, context in zip(results, questions, contexts, strict=True):
        alone = engine.predict(question, context)
        assert decoded.answers[0].text == alone.text
        assert decoded.answers[0].score == pytest.approx(alone.score, rel=1e-4, abs=1e-6)
