"""CUDA-graph buckets: planning, buffer reuse and masked padding rows, checked on the CPU
through a host-memory binder; the `gpu` tests replay real graphs on a CUDA device."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qa_engine import QAEngine
from qa_engine.batching import BatchLimits, plan_batches
from qa_engine.graph_session import CudaGraphBinder, supports_graph_ids
from qa_engine.graphs import GraphBucket, GraphPlan
from tests.test_engine import key, make_pairs


class HostBinder:
    """A GraphBinder over a CPU session: fixed host buffers per bucket instead of device
    buffers, the plain session instead of a graph replay."""

    def __init__(self, session) -> None:
        self.session = session
        self.input_names = list(session.input_types)
        self.buffers: dict[int, dict[str, np.ndarray]] = {}
        self.allocations = 0
        self.replayed: list[tuple[GraphBucket, np.ndarray]] = []

    def allocate(self, bucket: GraphBucket) -> None:
        assert bucket.graph_id not in self.buffers, "a bucket's buffers are bound once"
        shape = (bucket.rows, bucket.width)
        self.buffers[bucket.graph_id] = {n: np.zeros(shape, np.int64) for n in self.input_names}
        self.allocations += 1

    def write(self, bucket: GraphBucket, name: str, array: np.ndarray) -> None:
        target = self.buffers[bucket.graph_id][name]
        assert array.shape == target.shape  # a graph's shape is fixed
        np.copyto(target, array)

    def replay(self, bucket: GraphBucket) -> tuple[np.ndarray, np.ndarray]:
        b = self.buffers[bucket.graph_id]
        self.replayed.append((bucket, b["attention_mask"].copy()))
        return self.session.run(b["input_ids"], b["attention_mask"], b.get("token_type_ids"))


@pytest.fixture(scope="module")
def plain(tiny_onnx_dir) -> QAEngine:
    return QAEngine(tiny_onnx_dir, device="cpu", threads=1)


@pytest.fixture
def graphed(tiny_onnx_dir) -> tuple[QAEngine, HostBinder]:
    engine = QAEngine(tiny_onnx_dir, device="cpu", threads=1)
    binder = HostBinder(engine.session)
    engine.enable_cuda_graphs(max_windows=8, max_tokens=256, binder=binder)
    return engine, binder


def test_plan_buckets_rows_by_token_budget_and_maps_batches_to_the_smallest():
    plan = GraphPlan((32, 64, 128), max_windows=8, max_tokens=512)
    assert plan.rows == {32: (1, 2, 4, 8), 64: (1, 2, 4, 8), 128: (1, 2, 4)}
    assert [b.graph_id for b in plan] == list(range(1, len(plan) + 1)) and len(plan) == 11
    assert plan.bucket_for(3, 40) == GraphBucket(4, 64, 7)
    assert plan.bucket_for(1, 1) == GraphBucket(1, 32, 1)
    assert plan.bucket_for(8, 64).rows == 8
    with pytest.raises(ValueError, match="exceeds the 4 rows captured at width 128"):
        plan.bucket_for(5, 100)
    with pytest.raises(ValueError, match="widest captured graph"):
        plan.bucket_for(1, 129)
    with pytest.raises(ValueError, match="strictly ascending"):
        GraphPlan((64, 32), 8)


def test_every_planned_batch_fits_a_bucket():
    plan = GraphPlan((32, 64, 128, 256, 384), max_windows=32, max_tokens=4096)
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 385, size=500).tolist()
    for batch in plan_batches(lengths, plan.limits()):
        bucket = plan.bucket_for(len(batch.indices), batch.width)
        assert bucket.width == batch.width and bucket.rows >= len(batch.indices)


def test_graph_answers_equal_the_plain_session(plain, graphed):
    engine, binder = graphed
    questions, contexts = make_pairs(30, seed=9)
    for batch_size in (1, 5, 32):  # 32 is clamped to the graphs' 8 rows
        expected = [key(a) for a in plain.predict(questions, contexts, batch_size=batch_size)]
        assert [key(a) for a in engine.predict(questions, contexts, batch_size=batch_size)] == (
            expected
        )
    context = contexts[0] + " " + contexts[1]
    windows = engine.logits(questions[0], context)
    for got, want in zip(windows, plain.logits(questions[0], context), strict=True):
        np.testing.assert_allclose(got.start_logits, want.start_logits, atol=1e-5)


def test_buffers_are_bound_once_per_bucket_and_reused_across_calls(graphed):
    engine, binder = graphed
    plan = engine._graph_runner.plan
    assert binder.allocations == len(plan)  # warm-up captured every bucket
    assert all(engine._graph_runner.replays[b.graph_id] >= 2 for b in plan)
    questions, contexts = make_pairs(20, seed=3)
    for _ in range(3):
        engine.predict(questions, contexts, batch_size=4)
    assert binder.allocations == len(plan)


def test_padding_rows_and_columns_are_masked_and_dropped(plain, graphed):
    engine, binder = graphed
    context = next(
        c
        for n in range(8, 40)
        if len(engine.tokenizer.encode("who built it?", c := "the king built the city. " * n)) == 3
    )
    windows = engine.tokenizer.encode("who built it?", context)
    binder.replayed.clear()
    outputs = engine.run_batch(windows)
    ((bucket, attention),) = binder.replayed
    assert (bucket.rows, bucket.width) == (4, 48)  # 3 windows of <= 48 tokens
    for row, window in enumerate(windows):
        assert attention[row, : len(window)].all() and not attention[row, len(window) :].any()
    assert not attention[3].any()  # the padding row
    assert len(outputs) == 3
    for (start, end), (s, e), window in zip(
        outputs, plain.run_batch(windows), windows, strict=True
    ):
        assert start.shape == (len(window),)
        np.testing.assert_allclose(start, s, atol=1e-5)
        np.testing.assert_allclose(end, e, atol=1e-5)


def test_runner_refuses_a_shape_that_is_not_a_bucket(graphed):
    engine, _ = graphed
    ids = np.zeros((3, 48), dtype=np.int64)
    with pytest.raises(ValueError, match=r"pad it to \(4, 48\)"):
        engine._graph_runner.run(ids, ids, ids)


def test_enable_needs_cuda_or_a_binder_and_a_batch_invariant_variant(tiny_onnx_dir, monkeypatch):
    engine = QAEngine(tiny_onnx_dir, device="cpu", threads=1)
    with pytest.raises(ValueError, match="device='cuda'"):
        engine.enable_cuda_graphs()
    with pytest.raises(ValueError, match="widest bucket"):
        engine.enable_cuda_graphs(buckets=(16, 32), binder=HostBinder(engine.session))
    monkeypatch.setattr(QAEngine, "batch_invariant", property(lambda self: False))
    with pytest.raises(ValueError, match="not batch-invariant"):
        engine.enable_cuda_graphs(binder=HostBinder(engine.session))
    engine.disable_cuda_graphs()
    assert engine._graph_runner is None


def test_graph_ids_need_onnxruntime_1_17():
    assert not supports_graph_ids("1.16.3")
    assert supports_graph_ids("1.17.0") and supports_graph_ids("1.31.1")


def test_cuda_binder_without_cuda_names_the_install(tiny_onnx_dir: Path):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match=r"CUDAExecutionProvider.*qa-engine\[gpu\]"):
        CudaGraphBinder(tiny_onnx_dir / "model.onnx")


def test_limits_of_a_plan_keep_the_budgets():
    plan = GraphPlan((32, 48), max_windows=4, max_tokens=100)
    assert plan.limits() == BatchLimits(4, 100, (32, 48))
    assert plan.rows == {32: (1, 2, 3), 48: (1, 2)}


# ------------------------------------------------------------------ on a GPU
@pytest.mark.gpu
@pytest.mark.slow
def test_cuda_graphs_replay_the_plain_cuda_answers(tiny_model_dir: Path, tmp_path: Path):
    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("needs onnxruntime-gpu and a CUDA device")
    from click.testing import CliRunner

    from qa_engine.cli import cli

    out = tmp_path / "o4"
    args = ["export", str(tiny_model_dir), str(out), "--device", "cuda", "--optimize", "O4"]
    args += ["--max-seq-length", "48", "--doc-stride", "16"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    plain_gpu = QAEngine(out, device="cuda")
    graphed_gpu = QAEngine(out, device="cuda")
    captured = graphed_gpu.enable_cuda_graphs(max_windows=8)
    assert captured == len(graphed_gpu._graph_runner.plan)
    questions, contexts = make_pairs(40, seed=12)
    expected = [key(a) for a in plain_gpu.predict(questions, contexts, batch_size=8)]
    for _ in range(2):  # replays after capture give the same answers every time
        assert [key(a) for a in graphed_gpu.predict(questions, contexts, batch_size=8)] == (
            expected
        )
    binder = graphed_gpu._graph_runner.binder
    assert len(binder._bound) == captured  # no buffer was bound after warm-up


# ------------------------------------------------------------- serving on graphs
def test_serve_batcher_runs_on_the_captured_buckets(tiny_onnx_dir, plain, monkeypatch):
    from conftest import serve_each

    from qa_engine.serve.batcher import Batcher

    engine = QAEngine(tiny_onnx_dir, device="cpu", threads=1)
    binder = HostBinder(engine.session)
    capture = engine.enable_cuda_graphs
    monkeypatch.setattr(engine, "enable_cuda_graphs", lambda *a: capture(*a, binder=binder))
    batcher = Batcher(
        engine, max_batch_tokens=256, max_batch_windows=8, buckets=None, cuda_graphs=True
    )
    assert batcher.warm_up() == len(engine._graph_runner.plan) == binder.allocations
    assert batcher.limits.buckets == (32, 48)  # without buckets, graphs plan at their widths
    questions, contexts = make_pairs(24, seed=5)
    answers = [key(d[0].answers[0]) for d in serve_each(batcher, questions, contexts)]
    assert answers == [key(a) for a in plain.predict(questions, contexts)]
    assert binder.allocations == len(engine._graph_runner.plan)  # nothing bound after warm-up


def test_serve_falls_back_to_the_session_when_capture_fails(tiny_onnx_dir, monkeypatch):
    from qa_engine.serve.batcher import Batcher

    engine = QAEngine(tiny_onnx_dir, device="cpu", threads=1)
    monkeypatch.setattr(engine.session, "uses_cuda", True)  # as if on CUDA: graphs wanted

    def refuse(*args):
        raise ValueError("nodes left on the CPU")

    monkeypatch.setattr(engine, "enable_cuda_graphs", refuse)
    batcher = Batcher(engine, max_batch_tokens=256, max_batch_windows=8)
    with pytest.warns(UserWarning, match="CUDA graphs off: ValueError: nodes left"):
        shapes = batcher.warm_up()
    assert shapes == len(batcher.shapes()) and batcher.graphs_captured == 0
    assert engine._graph_runner is None
    strict = Batcher(engine, max_batch_tokens=256, max_batch_windows=8, cuda_graphs=True)
    with pytest.raises(ValueError, match="nodes left"):
        strict.warm_up()
