"""The per-machine plan: its file, when an engine uses or ignores it, ``qa-engine tune``,
and offline bucket/row padding (the shapes OpenVINO warms) leaving answers unchanged."""

from __future__ import annotations

import dataclasses
import json
import random
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from qa_engine.batching import BatchLimits, length_buckets, plan_batches, row_sizes
from qa_engine.cli import cli
from qa_engine.engine import QAEngine
from qa_engine.plan import PLAN_NAME, Machine, PlanIgnored, TunePlan, find_plan
from qa_engine.tune.search import Row, TuneOptions, Tuner, Windows

WORDS = (
    "the a an of in on at to is was who what when where which how many year city river born "
    "first built name called capital people more than one two three by and for with from it"
).split()


def text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


@pytest.fixture()
def export_dir(tiny_onnx_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny export: plans are written into it."""
    return Path(shutil.copytree(tiny_onnx_dir, tmp_path / "export"))


@pytest.fixture(scope="module")
def pairs() -> tuple[list[str], list[str]]:
    rng = random.Random(7)
    questions = [text(rng, rng.randint(1, 5)) + "?" for _ in range(30)]
    contexts = [text(rng, rng.choice([3, 10, 25, 60])) for _ in range(30)]
    return questions, contexts


@pytest.fixture()
def squad_file(pairs, tmp_path: Path) -> Path:
    questions, contexts = pairs
    paragraphs = [
        {"context": c, "qas": [{"id": f"q{i}", "question": q, "answers": []}]}
        for i, (q, c) in enumerate(zip(questions, contexts, strict=True))
    ]
    path = tmp_path / "train.json"
    path.write_text(
        json.dumps({"version": "1.1", "data": [{"title": "t", "paragraphs": paragraphs}]})
    )
    return path


def make_plan(export_dir: Path, **changes) -> TunePlan:
    values = dict(
        device="cpu",
        threads=1,
        batch_size=4,
        buckets=(16, 32, 48),
        objective="throughput",
        machine=Machine.current(),
        model_bytes=(export_dir / "model.onnx").stat().st_size,
        precision="fp32",
    )
    values.update(changes)
    return TunePlan(**values)


# ------------------------------------------------------------------ the plan file
def test_plan_round_trips_through_json(export_dir: Path) -> None:
    plan = make_plan(export_dir, measured={"windows_per_s": 12.5}, candidates=[{"a": 1}])
    path = plan.save(export_dir)
    assert path == export_dir / PLAN_NAME
    assert TunePlan.load(export_dir) == plan
    assert json.loads(path.read_text())["buckets"] == [16, 32, 48]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"device": "gpu"}, "device must be one of"),
        ({"objective": "speed"}, "objective must be one of"),
        ({"threads": 0}, "threads must be a positive int"),
        ({"buckets": (32, 16)}, "buckets must be ascending"),
    ],
)
def test_plan_refuses_bad_fields(export_dir: Path, changes, message) -> None:
    with pytest.raises(ValueError, match=message):
        make_plan(export_dir, **changes)


def test_plan_of_another_format_is_refused(export_dir: Path) -> None:
    raw = make_plan(export_dir).to_dict()
    raw["format"] = 99
    (export_dir / PLAN_NAME).write_text(json.dumps(raw))
    with pytest.raises(ValueError, match="plan format 99"):
        TunePlan.load(export_dir)
    with pytest.raises(ValueError, match="plan format 99"):  # a file the caller named
        QAEngine(export_dir, plan=export_dir / PLAN_NAME)
    with pytest.warns(PlanIgnored, match="plan format 99"):  # the export's own: set aside
        assert QAEngine(export_dir).plan is None


def test_plan_names_what_differs_from_this_machine(export_dir: Path) -> None:
    here = Machine.current()
    other = dataclasses.replace(here, cpu="Intel(R) Xeon(R) Platinum 8480+", onnxruntime="0.1")
    plan = make_plan(export_dir, machine=other)
    reason = plan.mismatch(here, plan.model_bytes)
    assert "Intel(R) Xeon(R) Platinum 8480+ (plan)" in reason and "onnxruntime 0.1" in reason
    assert plan.mismatch(here, plan.model_bytes + 1).endswith(f"vs {plan.model_bytes + 1} (here)")
    assert make_plan(export_dir).mismatch(here, plan.model_bytes) is None


def test_find_plan_reads_the_exports_plan_only_when_asked(export_dir: Path) -> None:
    size = (export_dir / "model.onnx").stat().st_size
    assert find_plan(export_dir, True, size) == (None, None)  # no plan file: nothing said
    make_plan(export_dir).save(export_dir)
    plan, note = find_plan(export_dir, True, size)
    assert plan is not None and "batch 4" in note
    assert find_plan(export_dir, False, size) == (None, None)
    with pytest.raises(FileNotFoundError):
        find_plan(export_dir, export_dir / "missing.json", size)


# ------------------------------------------------------------ the engine and a plan
def test_engine_takes_a_matching_plan(export_dir: Path) -> None:
    make_plan(export_dir, threads=1, batch_size=4, buckets=(16, 32, 48)).save(export_dir)
    engine = QAEngine(export_dir)
    assert engine.plan is not None and engine.plan_note.startswith("plan ")
    assert engine.batch_size == 4 and engine.buckets == (16, 32, 48)
    assert engine._session_args["threads"] == 1
    assert engine.batch_limits().buckets == (16, 32, 48)
    assert QAEngine(export_dir, threads=2)._session_args["threads"] == 2  # explicit wins
    assert QAEngine(export_dir, plan=False).plan is None


def test_engine_ignores_a_plan_from_another_cpu_with_a_warning(export_dir: Path) -> None:
    other = dataclasses.replace(Machine.current(), cpu="Some Other CPU", flags=("amx_bf16",))
    make_plan(export_dir, machine=other, batch_size=4).save(export_dir)
    with pytest.warns(PlanIgnored, match="Some Other CPU"):
        engine = QAEngine(export_dir)
    assert engine.plan is None and "ignored" in engine.plan_note
    # The engine's own defaults, as without any plan (buckets only on OpenVINO).
    default = QAEngine(export_dir, plan=False)
    assert engine.batch_size == default.batch_size == 32
    assert engine.buckets == default.buckets
    assert engine.providers == default.providers


def test_engine_ignores_a_plan_whose_device_fails_here(export_dir: Path, monkeypatch) -> None:
    monkeypatch.setattr("qa_engine.session.available_providers", lambda: ["CPUExecutionProvider"])
    # the plan names OpenVINO (its machine key says the same build): this build lacks it
    plan = make_plan(export_dir, device="openvino:f32")
    plan.machine = dataclasses.replace(plan.machine, providers=("CPUExecutionProvider",))
    plan.save(export_dir)
    with pytest.warns(PlanIgnored, match="openvino:f32 fails here"):
        engine = QAEngine(export_dir)
    assert engine.plan is None and engine.providers == ["CPUExecutionProvider"]


def test_an_explicit_device_sets_the_plan_aside(export_dir: Path) -> None:
    make_plan(export_dir, device="openvino:f32").save(export_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PlanIgnored)
        engine = QAEngine(export_dir, device="cpu")
    assert engine.plan is None and "set aside: device='cpu' given" in engine.plan_note


# ---------------------------------------------- padding to warmed shapes (part 4)
def test_rows_pad_to_row_sizes_within_the_token_budget() -> None:
    limits = BatchLimits(max_windows=32, max_tokens=1024, buckets=(32, 64, 128), pad_rows=True)
    assert limits.rows_for(5, 32) == 8
    assert limits.rows_for(5, 128) == 8 and limits.max_rows(128) == 8
    assert limits.rows_for(7, 64) == 8 and limits.rows_for(9, 64) == 16
    assert BatchLimits(max_windows=32, buckets=(32,)).rows_for(5, 32) == 5  # no pad_rows
    assert set(limits.shapes()) == {(r, 32) for r in row_sizes(32)} | {
        (r, 64) for r in row_sizes(16)
    } | {(r, 128) for r in row_sizes(8)}
    batches = plan_batches([30, 30, 30, 60, 60, 100], limits)
    assert [(b.width, len(b.indices), b.padded_rows) for b in batches] == [(128, 6, 8)]


def test_padded_batches_give_the_same_answers(tiny_onnx_dir: Path, pairs) -> None:
    """Bucket and row padding (what OpenVINO sessions do offline) changes no answer."""
    questions, contexts = pairs
    engine = QAEngine(tiny_onnx_dir, device="cpu", threads=1, plan=False)
    plain = engine.predict(questions, contexts, batch_size=8)
    plain_logits = engine.window_logits(questions, contexts, batch_size=8)
    engine.buckets, engine.pad_rows = length_buckets(48, smallest=16), True
    try:
        assert engine.batch_limits(8).pad_rows
        padded = engine.predict(questions, contexts, batch_size=8)
        padded_logits = engine.window_logits(questions, contexts, batch_size=8)
    finally:
        engine.buckets, engine.pad_rows = None, False
    assert [(a.text, a.start, a.end) for a in padded] == [(a.text, a.start, a.end) for a in plain]
    for mine, theirs in zip(padded_logits, plain_logits, strict=True):
        for a, b in zip(mine, theirs, strict=True):
            np.testing.assert_allclose(a.start_logits, b.start_logits, atol=1e-4)
            np.testing.assert_allclose(a.end_logits, b.end_logits, atol=1e-4)


def test_warm_up_runs_each_shape_once(tiny_onnx_dir: Path, monkeypatch) -> None:
    engine = QAEngine(tiny_onnx_dir, device="cpu", threads=1, plan=False)
    assert engine.warm_up(8) == 0  # no buckets on the CPU provider: nothing to warm
    engine.buckets, engine.pad_rows = (16, 48), True
    seen: list[tuple[int, int]] = []
    run_batch = engine.run_batch
    monkeypatch.setattr(
        engine,
        "run_batch",
        lambda w, width=None, rows=None: seen.append((len(w), width)) or run_batch(w, width, rows),
    )
    assert engine.warm_up(4) == len(engine.batch_limits(4).shapes()) == 6
    assert sorted(seen) == sorted(engine.batch_limits(4).shapes())
    assert engine.warm_up(4) == 0  # already warm


# ----------------------------------------------------------------- the search
def test_tuner_measures_candidates_and_picks_by_objective(tiny_onnx_dir: Path, pairs) -> None:
    engine = QAEngine(tiny_onnx_dir, device="cpu", threads=1, plan=False)
    windows = [w for ws in engine.tokenizer.encode_batch(*pairs) for w in ws]
    sample = Windows(windows[:8], windows[8:], {"source": "test"})
    options = TuneOptions(budget_s=60, batch_sizes=(1, 4, 16), threads=(1,), devices=("cpu",))
    seen: list[Row] = []
    plan, rows = Tuner(tiny_onnx_dir, sample, options, progress=seen.append).run()
    assert seen == rows and all(r.status == "ok" for r in rows)
    stages = [(r.stage, r.batch_size, r.buckets) for r in rows]
    assert stages[:3] == [("A", 1, False), ("A", 16, False), ("B", 4, False)]
    # C: buckets the other way at the winner's batch size and at the largest one tried.
    winner = max(rows[:3], key=lambda r: r.windows_per_s).batch_size
    assert stages[3:] == [("C", size, True) for size in dict.fromkeys((winner, 16))]
    best = max(rows, key=lambda r: r.windows_per_s)
    assert (plan.batch_size, plan.buckets is not None) == (best.batch_size, best.buckets)
    single = next(r for r in rows if r.batch_size == 1)
    assert single.p50_ms > 0 and single.p95_ms >= single.p50_ms and single.calls >= 20
    assert plan.machine == Machine.current() and len(plan.candidates) == len(rows)

    latency, rows = Tuner(
        tiny_onnx_dir, sample, dataclasses.replace(options, objective="latency")
    ).run()
    assert latency.batch_size == 1 and all(r.batch_size == 1 for r in rows)
    fastest = min(rows, key=lambda r: r.p50_ms)
    assert (latency.buckets is not None) == fastest.buckets


def test_tuner_records_a_size_that_fails_and_goes_on(
    tiny_onnx_dir: Path, pairs, monkeypatch
) -> None:
    engine = QAEngine(tiny_onnx_dir, device="cpu", threads=1, plan=False)
    windows = [w for ws in engine.tokenizer.encode_batch(*pairs) for w in ws]
    run_batch = QAEngine.run_batch

    def small_batches_only(self, windows, width=None, rows=None):
        if len(windows) > 8:
            raise RuntimeError("out of memory\nat batch > 8")
        return run_batch(self, windows, width, rows)

    monkeypatch.setattr(QAEngine, "run_batch", small_batches_only)
    options = TuneOptions(budget_s=60, batch_sizes=(1, 4, 16), threads=(1,), devices=("cpu",))
    plan, rows = Tuner(tiny_onnx_dir, Windows(windows[:8], windows[8:]), options).run()
    failed = [r for r in rows if r.status == "failed"]
    assert [(r.stage, r.batch_size) for r in failed] == [("A", 16)]
    assert failed[0].note == "RuntimeError: out of memory"
    assert plan.batch_size in (1, 4)


def test_tuner_records_a_refused_device(tiny_onnx_dir: Path, pairs) -> None:
    engine = QAEngine(tiny_onnx_dir, device="cpu", threads=1, plan=False)
    windows = [w for ws in engine.tokenizer.encode_batch(*pairs) for w in ws]
    options = TuneOptions(budget_s=30, threads=(1,), devices=("cuda", "cpu"), objective="latency")
    plan, rows = Tuner(tiny_onnx_dir, Windows(windows[:4], windows[4:]), options).run()
    assert rows[0].device == "cuda" and rows[0].status == "refused" and rows[0].note
    assert plan.device == "cpu"


def test_tune_cli_writes_a_plan_that_predict_uses(
    export_dir: Path, squad_file: Path, monkeypatch
) -> None:
    monkeypatch.setattr("qa_engine.tune.search.os.getloadavg", lambda: (99.0, 99.0, 99.0))
    runner = CliRunner()
    result = runner.invoke(
        cli,
        ["tune", str(export_dir), "--data", str(squad_file), "--windows", "16", "--budget", "30",
         "--device", "cpu", "--threads", "1"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "windows/s" in result.output and "winner (throughput)" in result.output
    assert "the machine was busy (load average 99.0" in result.output
    plan = TunePlan.load(export_dir)
    assert plan.windows["held_out_warmup"] and plan.windows["timed"] == 16
    assert plan.measured["loadavg_1m"] == 99.0
    predicted = runner.invoke(
        cli, ["predict", str(export_dir), "-q", "who was born?", "-c", "the king was born"]
    )
    assert predicted.exit_code == 0, predicted.output
    assert f"plan {export_dir / PLAN_NAME}: {plan.describe()}" in predicted.output


def test_tune_cli_refuses_bad_options(export_dir: Path) -> None:
    result = CliRunner().invoke(cli, ["tune", str(export_dir), "--objective", "speed"])
    assert result.exit_code == 2 and "latency" in result.output
    # no --data and an export without self-check reference windows
    result = CliRunner().invoke(cli, ["tune", str(export_dir)])
    assert result.exit_code == 1 and "--data" in result.output


@pytest.mark.slow
def test_export_tune_writes_a_plan_the_engine_uses(tiny_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "tuned"
    result = CliRunner().invoke(
        cli,
        ["export", str(tiny_model_dir), str(out), "--optimize", "none", "--max-seq-length", "48",
         "--doc-stride", "16", "--parity-samples", "8", "--tune"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    plan = TunePlan.load(out)
    assert plan.windows["source"] == "self-check reference windows"
    engine = QAEngine(out)
    assert engine.plan == plan and engine.batch_size == plan.batch_size
