"""The benchmark harness: planning, interleaving, ratios, and the CLI and speed suite end to end."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner

from qa_engine.bench.environment import cpu_info
from qa_engine.bench.measure import (
    LatencyStats,
    Ledger,
    chunk_bounds,
    measure_latency,
    measure_throughput,
)
from qa_engine.bench.plan import QASettings, RunnerSpec, plan_runners, resolve_settings
from qa_engine.bench.results import (
    RUNNER_KEYS,
    SCHEMA_VERSION,
    TOP_KEYS,
    add_ratios,
    validate_results,
)
from qa_engine.bench.runners import Predictions, Runner
from qa_engine.bench.synthetic import generated_vocab
from qa_engine.data import QAExample, save_squad_json
from qa_engine.manifest import ExportManifest

REPO_ROOT = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# Contexts and answers made of the tiny vocabulary's words (tests/conftest.py).
_PAIRS = [
    ("the museum was built by the king in the year one", "who built the museum", "the king"),
    (
        "the river city was the capital of the great war king",
        "what was the capital",
        "the river city",
    ),
    (
        "his first name was called long and he was born in the new city",
        "where was he born",
        "the new city",
    ),
    ("the old king was born in the city by the river", "who was born in the city", "the old king"),
]


def tiny_squad(path: Path, *, version_2: bool = False) -> Path:
    """A SQuAD file of the pairs above (and, for v2, one unanswerable question each)."""
    examples = []
    for i, (context, question, answer) in enumerate(_PAIRS):
        start = context.index(answer)
        answers = {"text": [answer], "answer_start": [start]}
        examples.append(QAExample(f"q{i}", "t", context, question, answers))
        if version_2:
            empty = {"text": [], "answer_start": []}
            examples.append(
                QAExample(f"n{i}", "t", context, "how many museum", empty, is_impossible=True)
            )
    return save_squad_json(examples, path, version_2=version_2)


# --------------------------------------------------------------------- planning
def _fake_export(path: Path, precision: str = "fp32", optimization: str = "none", **fields) -> str:
    path.mkdir(parents=True)
    (path / "model.onnx").write_bytes(b"x" * 1000)
    ExportManifest(48, 16, precision=precision, optimization=optimization, **fields).save(path)
    return str(path)


def _fake_pytorch(path: Path) -> str:
    path.mkdir(parents=True)
    (path / "config.json").write_text("{}")
    (path / "model.safetensors").write_bytes(b"x" * 4000)
    return str(path)


def test_plan_puts_baseline_first_and_optimum_on_the_plainest_export(tmp_path: Path) -> None:
    pt = _fake_pytorch(tmp_path / "pt")
    int8 = _fake_export(tmp_path / "int8", "int8-dynamic", "O3")
    fp32 = _fake_export(tmp_path / "fp32", "fp32", "O3")
    settings = resolve_settings([pt, int8, fp32], data_version_2=False)
    assert (settings.max_seq_length, settings.doc_stride) == (48, 16)
    specs = plan_runners([int8, pt, fp32], settings, threads=2, bf16=True)
    assert [s.name for s in specs] == [
        "transformers fp32",
        "transformers bf16-autocast",
        "optimum fp32 O3",
        "qa-engine int8-dynamic O3",
        "qa-engine fp32 O3",
    ]
    optimum = specs[2]
    assert optimum.model_dir == fp32 and optimum.same_file_as == "qa-engine fp32 O3"
    assert all(s.settings == settings and s.threads == 2 for s in specs)
    # a spec survives the JSON trip to the memory subprocess
    assert RunnerSpec.from_dict(json.loads(json.dumps(specs[1].to_dict()))) == specs[1]
    # no bf16 peer on CUDA, no peers at all when asked for none
    assert all(s.autocast is None for s in plan_runners([pt], settings, device="cuda", bf16=True))
    # on CUDA the half-precision peer is fp16 autocast, on the GPU like everything else
    gpu = plan_runners([pt, fp32], settings, device="cuda", fp16=True)
    assert [(s.name, s.autocast, s.device) for s in gpu[:2]] == [
        ("transformers fp32", None, "cuda"),
        ("transformers fp16-autocast", "fp16", "cuda"),
    ]
    assert all(s.device == "cuda" for s in gpu)
    assert all(s.autocast is None for s in plan_runners([pt], settings, fp16=True))
    with pytest.raises(ValueError, match="fp16 autocast is for CUDA"):
        RunnerSpec("x", "transformers", pt, autocast="fp16")
    assert [s.kind for s in plan_runners([pt, fp32], settings, peers=())] == ["qa-engine"]


def test_plan_runs_one_export_on_several_devices(tmp_path: Path) -> None:
    pt = _fake_pytorch(tmp_path / "pt")
    fp32 = _fake_export(tmp_path / "fp32")
    settings = resolve_settings([fp32], False)
    specs = plan_runners([pt, fp32, f"{fp32}@openvino:f32"], settings, device="auto")
    assert [(s.name, s.device) for s in specs if s.kind == "qa-engine"] == [
        ("qa-engine fp32 none", "auto"),
        ("qa-engine fp32 none @openvino:f32", "openvino:f32"),
    ]
    assert [s.same_file_as for s in specs if s.kind == "optimum"] == ["qa-engine fp32 none"]
    with pytest.raises(ValueError, match="DIR@DEVICE needs an export dir"):
        plan_runners([f"{pt}@cpu"], settings)
    with pytest.raises(ValueError, match="device must be one of"):
        plan_runners([f"{fp32}@gpu"], settings)


def test_plan_finds_the_baseline_through_the_manifest_source(tmp_path: Path) -> None:
    pt = _fake_pytorch(tmp_path / "pt")
    export = _fake_export(tmp_path / "e", source_model=pt)
    specs = plan_runners([export], resolve_settings([export], False), peers=("transformers",))
    assert [(s.kind, s.model_dir) for s in specs] == [("transformers", pt), ("qa-engine", export)]


def test_plan_rejects_bad_dirs_and_mismatched_settings(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="neither an export dir"):
        plan_runners([str(tmp_path / "empty")], QASettings())
    with pytest.raises(FileNotFoundError):
        plan_runners([str(tmp_path / "missing")], QASettings())
    with pytest.raises(ValueError, match="unknown peer"):
        plan_runners([], QASettings(), peers=("onnx",))
    a = _fake_export(tmp_path / "a")
    b = tmp_path / "b"
    b.mkdir()
    ExportManifest(64, 16).save(b)
    with pytest.raises(ValueError, match="max_seq_length"):
        resolve_settings([a, str(b)], data_version_2=False)


def test_settings_from_qa_config_and_defaults(tmp_path: Path) -> None:
    pt = _fake_pytorch(tmp_path / "pt")
    assert resolve_settings([pt], data_version_2=True) == QASettings(version_2=True)
    config = {"max_seq_length": 256, "doc_stride": 64, "max_answer_length": 20, "version_2": True}
    (Path(pt) / "qa_config.json").write_text(json.dumps(config))
    settings = resolve_settings([pt], data_version_2=True)
    assert (settings.max_seq_length, settings.doc_stride, settings.max_answer_length) == (
        256,
        64,
        20,
    )
    with pytest.raises(ValueError, match="doc_stride"):
        QASettings(max_seq_length=64, doc_stride=64)


# ------------------------------------------------------------------- measuring
class FakeRunner(Runner):
    """Answers with the first word of the context; records every call in ``calls``."""

    def __init__(self, name: str, calls: list, fail_after: int | None = None) -> None:
        super().__init__(RunnerSpec(name, "qa-engine", "/nowhere"))
        self.calls, self.fail_after, self.n = calls, fail_after, 0

    def load(self) -> None:
        pass

    def _tick(self) -> None:
        self.n += 1
        if self.fail_after is not None and self.n > self.fail_after:
            raise RuntimeError("boom")

    def answer_one(self, question: str, context: str) -> str:
        self._tick()
        self.calls.append((self.name, 1))
        return context.split()[0]

    def answer_many(
        self, questions: Sequence[str], contexts: Sequence[str], batch_size: int
    ) -> Predictions:
        self._tick()
        self.calls.append((self.name, len(questions)))
        return Predictions([c.split()[0] for c in contexts])

    @property
    def provider_used(self) -> str:
        return "fake"


def test_latency_is_interleaved_with_rotating_order_and_same_inputs() -> None:
    calls: list = []
    runners = [FakeRunner("A", calls), FakeRunner("B", calls), FakeRunner("C", calls)]
    ledger = Ledger()
    stats = measure_latency(
        runners, ["q1", "q2"], ["c1 x", "c2 y"], runs=4, warmup=1, ledger=ledger, settle_s=0
    )
    order = [name for name, _ in calls]
    assert order[:9] == ["A", "B", "C", "B", "C", "A", "C", "A", "B"]
    assert {s.runs for s in stats.values()} == {4}
    assert len({ledger.hexdigest(n) for n in "ABC"}) == 1
    assert ledger.questions == {"A": 4, "B": 4, "C": 4}


def test_a_failing_runner_drops_out_and_the_others_finish() -> None:
    calls: list = []
    runners = [FakeRunner("A", calls), FakeRunner("B", calls, fail_after=2)]
    ledger = Ledger()
    qs, cs = [f"q{i}" for i in range(70)], [f"w{i} z" for i in range(70)]
    qps, preds = measure_throughput(runners, qs, cs, batch_size=8, ledger=ledger, settle_s=0)
    assert set(qps) == {"A"} and "RuntimeError: boom" in ledger.errors["B"]
    assert preds["A"].texts == [f"w{i}" for i in range(70)]


def test_chunks_are_whole_batches_and_stats_are_percentiles() -> None:
    bounds = chunk_bounds(100, 8)
    assert bounds[0] == (0, 32) and bounds[-1] == (96, 100)
    assert all((hi - lo) % 8 == 0 for lo, hi in bounds[:-1])
    assert chunk_bounds(10, 64) == [(0, 10)]
    stats = LatencyStats.of([0.001 * i for i in range(1, 101)])
    assert stats.p50 == pytest.approx(50.5) and stats.p99 == pytest.approx(99.01)
    assert stats.min == pytest.approx(1.0) and stats.runs == 100


# ---------------------------------------------------------------------- results
def _entry(name: str, p50: float, qps: float, f1: float, **extra) -> dict:
    entry = dict.fromkeys(RUNNER_KEYS)
    entry.update(name=name, kind="qa-engine", model_dir="/m", model_size_mib=100.0)
    entry.update(latency_ms={"p50": p50, "p95": 2 * p50}, throughput_qps={"1": qps, "8": 2 * qps})
    entry.update(metrics={"exact": f1 - 10, "f1": f1}, **extra)
    return entry


def test_ratios_against_the_baseline_and_same_file_comparison() -> None:
    results = dict.fromkeys(TOP_KEYS)
    results.update(schema_version=SCHEMA_VERSION, baseline="base", config={"batch_sizes": [1, 8]})
    results["runners"] = [
        _entry("base", 300.0, 3.0, 80.0),
        _entry("fast", 50.0, 24.0, 79.5, model_size_mib=25.0),
        _entry("opt", 100.0, 12.0, 80.0, same_file_as="fast"),
    ]
    add_ratios(results)
    validate_results(results)
    base, fast, _ = (r["ratios"] for r in results["runners"])
    assert base["latency_p50_speedup"] == 1.0 and base["f1_delta"] == 0.0
    assert fast["latency_p50_speedup"] == pytest.approx(6.0)
    assert fast["throughput_speedup"] == {"1": pytest.approx(8.0), "8": pytest.approx(8.0)}
    assert fast["f1_delta"] == pytest.approx(-0.5) and fast["size_ratio"] == 0.25
    (comparison,) = results["comparisons"]
    assert comparison["runner"] == "fast" and comparison["peer"] == "opt"
    assert comparison["throughput_speedup"]["8"] == pytest.approx(2.0)

    results["runners"][0]["error"] = "RuntimeError: broken"
    add_ratios(results)
    assert results["baseline"] is None
    assert all(r["ratios"] is None for r in results["runners"])
    del results["runners"][1]["throughput_qps"]
    with pytest.raises(ValueError, match="throughput_qps"):
        validate_results(results)


# ---------------------------------------------------------------- environment
def test_cpu_info_reads_model_and_flags(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("model name\t: Intel Xeon X\nflags\t\t: fpu avx2 avx512_vnni amx_bf16 sse\n")
    info = cpu_info(cpuinfo)
    assert info == {"model": "Intel Xeon X", "flags": ["avx2", "avx512_vnni", "amx_bf16"],
                    "has_bf16": True}  # fmt: skip


def test_generated_vocab_is_cased_unique_and_exact() -> None:
    vocab = generated_vocab(28996)
    assert len(vocab) == len(set(vocab)) == 28996
    assert vocab[:4] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
    assert any(w[0].isupper() and len(w) > 3 for w in vocab)


def test_bench_command_imports_nothing_heavy() -> None:
    code = (
        "import sys, qa_engine.bench.command; "
        "print(sorted(m for m in ('torch','transformers','optimum','matplotlib','onnxruntime') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------ end to end
@pytest.mark.slow
def test_synthetic_pairs_tokenize_to_the_exact_length(tiny_model_dir: Path) -> None:
    from qa_engine.bench.synthetic import synthetic_examples

    tokenizers = pytest.importorskip("tokenizers")
    tokenizer = tokenizers.Tokenizer.from_file(str(tiny_model_dir / "tokenizer.json"))
    for length in (32, 128):
        for ex in synthetic_examples(tiny_model_dir / "tokenizer.json", length, 3):
            assert len(tokenizer.encode(ex.question, ex.context).ids) == length
            start, text = ex.answers["answer_start"][0], ex.answers["text"][0]
            assert ex.context[start : start + len(text)] == text


@pytest.mark.slow
def test_bench_cli_writes_json_markdown_and_plots(
    tiny_model_dir: Path, tiny_onnx_dir: Path, tmp_path: Path
) -> None:
    from qa_engine.bench.command import bench

    data = tiny_squad(tmp_path / "squad.json")
    out = tmp_path / "out"
    args = ["--model", str(tiny_model_dir), "--model", str(tiny_onnx_dir), "--data", str(data)]
    args += ["--batch-sizes", "1,2", "--latency-runs", "4", "--warmup", "1", "--threads", "1"]
    args += ["--bf16", "on", "--out", str(out), "--no-progress"]
    result = CliRunner().invoke(bench, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "transformers fp32 (baseline)" in result.output

    results = json.loads((out / "results.json").read_text())
    validate_results(results)
    assert results["schema_version"] == SCHEMA_VERSION
    assert results["baseline"] == "transformers fp32"
    assert results["config"]["settings"]["max_seq_length"] == 48
    assert results["config"]["samples"] == len(_PAIRS)
    assert results["config"]["ort_spinning"] is False
    assert isinstance(results["environment"]["cpu"]["flags"], list)
    runners = {r["name"]: r for r in results["runners"]}
    assert list(runners) == [
        "transformers fp32",
        "transformers bf16-autocast",
        "optimum fp32 none",
        "qa-engine fp32 none",
    ]
    base = runners["transformers fp32"]
    for r in runners.values():
        assert r["error"] is None
        assert isinstance(r["provider"], str) and r["model_size_mib"] > 0
        assert set(r["latency_ms"]) == {"p50", "p95", "p99", "mean", "min", "runs"}
        assert r["latency_ms"]["runs"] == 4
        assert set(r["throughput_qps"]) == {"1", "2"}
        assert all(v > 0 for v in r["throughput_qps"].values())
        assert r["metrics"]["total"] == len(_PAIRS) and 0 <= r["metrics"]["f1"] <= 100
        assert r["peak_rss_mib"] > r["model_rss_mib"] > 0 and r["cold_load_s"] > 0
        # every runner saw exactly the same questions, in the same order
        assert r["inputs_sha1"] == base["inputs_sha1"] and r["questions"] == base["questions"]
        ratios = r["ratios"]
        assert ratios["latency_p50_speedup"] == pytest.approx(
            base["latency_ms"]["p50"] / r["latency_ms"]["p50"]
        )
        assert ratios["throughput_speedup"]["2"] == pytest.approx(
            r["throughput_qps"]["2"] / base["throughput_qps"]["2"]
        )
    assert base["ratios"]["latency_p50_speedup"] == 1.0
    assert runners["qa-engine fp32 none"]["provider"] == "CPUExecutionProvider"
    # Optimum runs the same fp32 graph through the same pipeline code as the baseline
    assert runners["optimum fp32 none"]["agreement_with_baseline"] >= 0.75
    assert [c["runner"] for c in results["comparisons"]] == ["qa-engine fp32 none"]

    markdown = (out / "results.md").read_text()
    assert all(name in markdown for name in runners)
    for png in ("latency_vs_f1.png", "throughput.png"):
        assert (out / png).read_bytes()[:8] == PNG_MAGIC


@pytest.mark.slow
def test_bench_v2_reports_hasans_noans_and_best_f1(tiny_model_dir: Path, tmp_path: Path) -> None:
    from conftest import export_tiny_onnx

    from qa_engine.bench.harness import BenchOptions, run_benchmark
    from qa_engine.data import load_squad

    export = export_tiny_onnx(tiny_model_dir, tmp_path / "v2", version_2=True)
    squad = load_squad(tiny_squad(tmp_path / "v2.json", version_2=True))
    dirs = [str(tiny_model_dir), str(export)]
    settings = resolve_settings(dirs, squad.version_2)
    assert settings.version_2
    specs = plan_runners(dirs, settings, threads=1)
    options = BenchOptions(batch_sizes=(4,), latency_runs=2, warmup=0, memory="off", progress=False)
    results = run_benchmark(specs, squad.examples, version_2=True, options=options)
    for r in results["runners"]:
        assert r["error"] is None
        for key in ("HasAns_f1", "NoAns_f1", "best_f1", "best_f1_thresh"):
            assert key in r["metrics"], (r["name"], r["metrics"])
        assert r["peak_rss_mib"] is None  # memory probes off
        if r["kind"] == "qa-engine":  # the host pipeline's counters, per batch size
            stages = r["stage_times"]["4"]
            assert stages["questions"] >= len(squad.examples) and stages["run_s"] > 0
            assert r["host_ms_per_question"] == {"4": stages["host_ms_per_question"]}
            assert r["host_ms_per_question"]["4"] > 0
        else:
            assert r["stage_times"] is None and r["host_ms_per_question"] is None


@pytest.mark.slow
def test_speed_suite_quick_runs_on_a_tiny_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "speed"
    cmd = [sys.executable, str(REPO_ROOT / "benchmarks" / "speed_suite.py"), "--quick", "--tiny"]
    cmd += ["--cache-dir", str(tmp_path / "cache"), "--out", str(out), "--no-progress"]
    cmd += ["--threads", "1", "--questions", "4", "--latency-runs", "2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| qa-engine int8-dynamic O3 |" in proc.stdout
    assert "Host share, seq 128" in proc.stdout and "host ms/q @8" in proc.stdout
    summary = json.loads((out / "speed.json").read_text())
    assert summary["runs"] == {"128": "seq128/results.json"}
    host = summary["host"]["128"]["qa-engine int8-dynamic O3"]["8"]
    assert host["host_ms_per_question"] > 0 and host["run_ms_per_question"] > 0
    assert {t["target"] for t in summary["targets"]} >= {"latency vs transformers fp32"}
    results = json.loads((out / "seq128" / "results.json").read_text())
    validate_results(results)
    assert [r["name"] for r in results["runners"] if r["error"]] == []
    assert "## Sequence length 128" in (out / "speed.md").read_text()
    assert "exporting int8-dynamic" in proc.stderr
    # the exports are cached: asking again exports nothing and gives the same dirs
    spec = importlib.util.spec_from_file_location("speed_suite", cmd[1])
    suite = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(suite)
    exported: list[str] = []
    monkeypatch.setattr(suite, "log", exported.append)
    model_dir, dirs = suite.prepare_models("tiny", ["fp32-O3"], tmp_path / "cache")
    assert exported == [] and dirs[0].name == "fp32-O3"
    assert results["config"]["settings"]["max_seq_length"] == suite.MAX_SEQ_LENGTH


def test_speed_suite_refuses_variants_of_the_other_device(tmp_path: Path) -> None:
    base = [sys.executable, str(REPO_ROOT / "benchmarks" / "speed_suite.py"), "--tiny"]
    base += ["--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "o")]
    for extra, wrong in (
        (["--variants", "fp16-O4"], "fp16-O4"),
        (["--device", "cuda", "--variants", "int8-dynamic"], "int8-dynamic"),
        (["--batch-sizes", "0"], "--batch-sizes"),
    ):
        proc = subprocess.run(base + extra, capture_output=True, text=True, timeout=120)
        assert proc.returncode != 0 and wrong in proc.stderr, proc.stderr[-2000:]
    assert not (tmp_path / "cache").exists()  # refused before building anything


def test_missing_extra_stops_the_run_with_the_pip_command(tmp_path: Path) -> None:
    export = _fake_export(tmp_path / "e")
    data = tiny_squad(tmp_path / "squad.json")
    blocker = (
        "import sys\n"
        "class Blocker:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'matplotlib':\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, Blocker())\n"
        "sys.argv = ['qa-engine', *sys.argv[1:]]\n"
        "from qa_engine.cli import main\n"
        "main()\n"
    )
    args = ["bench", "--model", export, "--data", str(data), "--out", str(tmp_path / "o")]
    proc = subprocess.run(
        [sys.executable, "-c", blocker, *args], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert 'pip install "qa-engine[bench]"' in proc.stderr and "Traceback" not in proc.stderr


def test_onnxruntime_runners_share_one_thread_policy(tiny_onnx_dir: Path) -> None:
    """qa-engine and Optimum runners both sleep idle workers (co-resident sessions)."""
    from qa_engine.bench.runners import ORT_SPINNING, make_runner
    from qa_engine.session import ALLOW_SPINNING

    settings = resolve_settings([str(tiny_onnx_dir)], False)
    expected = "1" if ORT_SPINNING else "0"
    sessions = {}
    for kind in ("qa-engine", "optimum"):
        runner = make_runner(RunnerSpec(kind, kind, str(tiny_onnx_dir), settings, threads=1))
        runner.load()
        session = runner.engine.session._session if kind == "qa-engine" else runner.model.model
        sessions[kind] = session.get_session_options().get_session_config_entry(ALLOW_SPINNING)
        runner.close()
    assert sessions == {"qa-engine": expected, "optimum": expected}
