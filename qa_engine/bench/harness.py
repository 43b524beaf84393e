"""Run a benchmark: load every runner, time them interleaved, score them, assemble results.

Order of work: import the libraries every runner kind needs (so ``load_s`` is the model
load, not ``import torch``), load each runner (timed), batch-1 latency (interleaved),
throughput at each batch size (interleaved), then, with the runners released, one
memory probe subprocess per runner (:mod:`qa_engine.bench.memory`), and finally the
official SQuAD metrics and the ratios.
"""

from __future__ import annotations

import contextlib
import gc
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

from qa_engine.bench.environment import collect_environment
from qa_engine.bench.measure import (
    LatencyStats,
    Ledger,
    chunk_bounds,
    measure_latency,
    measure_throughput,
)
from qa_engine.bench.memory import measure_memory
from qa_engine.bench.plan import RunnerSpec, model_size_bytes
from qa_engine.bench.results import SCHEMA_VERSION, add_ratios
from qa_engine.bench.runners import (
    ORT_SPINNING,
    Predictions,
    Runner,
    check_dependencies,
    make_runner,
)
from qa_engine.data import QAExample
from qa_engine.extras import require
from qa_engine.metrics import squad_metrics

MEMORY_MODES = ("subprocess", "off")
_MIB = 1024 * 1024


@dataclass
class BenchOptions:
    """How much to measure.

    Attributes:
        batch_sizes: Throughput batch sizes; the first one's predictions are scored.
        latency_runs: Timed batch-1 calls per runner.
        warmup: Untimed batch-1 rounds before them.
        settle_s: Untimed pause between two timed calls (lets worker threads go idle).
        memory: ``"subprocess"`` (peak RSS probe per runner) or ``"off"``.
        memory_questions: Questions the memory probe answers after loading.
        progress: Show tqdm progress bars.
    """

    batch_sizes: tuple[int, ...] = (1, 8, 32)
    latency_runs: int = 50
    warmup: int = 5
    settle_s: float = 0.01
    memory: str = "subprocess"
    memory_questions: int = 8
    progress: bool = True

    def __post_init__(self) -> None:
        self.batch_sizes = tuple(self.batch_sizes)
        if not self.batch_sizes or any(b < 1 for b in self.batch_sizes):
            raise ValueError(f"batch_sizes must be positive integers, got {self.batch_sizes}")
        if self.latency_runs < 1 or self.warmup < 0:
            raise ValueError("latency_runs must be >= 1 and warmup >= 0")
        if self.memory not in MEMORY_MODES:
            raise ValueError(f"memory must be one of {MEMORY_MODES}, got {self.memory!r}")


def _bar(options: BenchOptions, total: int, desc: str) -> Any:
    tqdm = require("tqdm").tqdm
    return tqdm(total=total, desc=desc, unit="step", disable=not options.progress, leave=False)


def _load_all(runners: list[Runner], ledger: Ledger, options: BenchOptions) -> dict[str, float]:
    for runner in runners:
        runner.import_libraries()
    load_s: dict[str, float] = {}
    with _bar(options, len(runners), "loading") as bar:
        for runner in runners:
            bar.set_postfix_str(runner.name)
            try:
                start = time.perf_counter()
                runner.load()
                load_s[runner.name] = time.perf_counter() - start
            except Exception as err:
                ledger.fail(runner, err)
            bar.update()
    return load_s


def _agreement(a: Sequence[str] | None, b: Sequence[str] | None) -> float | None:
    if not a or not b or len(a) != len(b):
        return None
    return sum(x == y for x, y in zip(a, b, strict=True)) / len(a)


def _score(preds: Predictions, examples: Sequence[QAExample], version_2: bool) -> dict:
    by_id = {ex.id: text for ex, text in zip(examples, preds.texts, strict=True)}
    probs = None
    if version_2 and preds.no_answer_scores is not None:
        probs = {ex.id: s for ex, s in zip(examples, preds.no_answer_scores, strict=True)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unscorable questions: reported once by load_squad
        metrics = dict(squad_metrics(by_id, examples, version_2, no_answer_probs=probs))
    if "exact" not in metrics:  # v1.1 names it exact_match; keep both for one schema
        metrics["exact"] = metrics["exact_match"]
    return metrics


@dataclass
class _Timings:
    """What the timed part of a run produced, per runner name."""

    load_s: dict[str, float]
    latency: dict[str, LatencyStats]
    throughput: dict[str, dict[str, float]]  # batch size (str) -> questions/s
    predictions: dict[str, dict[int, Predictions]]  # batch size -> predictions
    providers: dict[str, str | None]
    self_checks: dict[str, dict | None]
    stage_times: dict[str, dict | None]  # batch size (str) -> StageTimes.to_dict()


def _time_all(
    runners: list[Runner],
    questions: list[str],
    contexts: list[str],
    options: BenchOptions,
    ledger: Ledger,
) -> _Timings:
    """Load, then latency and throughput, interleaved; closes the runners at the end."""
    load_s = _load_all(runners, ledger, options)
    with _bar(options, options.warmup + options.latency_runs, "latency (batch 1)") as bar:
        latency = measure_latency(
            runners,
            questions,
            contexts,
            runs=options.latency_runs,
            warmup=options.warmup,
            ledger=ledger,
            settle_s=options.settle_s,
            tick=bar.update,
        )
    throughput: dict[str, dict[str, float]] = {r.name: {} for r in runners}
    predictions: dict[str, dict[int, Predictions]] = {r.name: {} for r in runners}
    for bs in options.batch_sizes:
        chunks = len(chunk_bounds(len(questions), bs))
        with _bar(options, chunks, f"throughput (batch {bs})") as bar:
            qps, preds = measure_throughput(
                runners,
                questions,
                contexts,
                batch_size=bs,
                ledger=ledger,
                settle_s=options.settle_s,
                tick=bar.update,
            )
        for name, value in qps.items():
            throughput[name][str(bs)] = value
        for name, p in preds.items():
            predictions[name][bs] = p
    providers: dict[str, str | None] = {}
    self_checks: dict[str, dict | None] = {}
    stages: dict[str, dict | None] = {}
    for runner in runners:
        providers[runner.name] = self_checks[runner.name] = stages[runner.name] = None
        if runner.name in load_s:
            with contextlib.suppress(Exception):  # a provider we cannot read is not fatal
                providers[runner.name] = runner.provider_used
                self_checks[runner.name] = runner.self_check
                stages[runner.name] = runner.stage_times()
        runner.close()
    return _Timings(load_s, latency, throughput, predictions, providers, self_checks, stages)


def _probe_memory(
    specs: Sequence[RunnerSpec],
    questions: list[str],
    contexts: list[str],
    options: BenchOptions,
    ledger: Ledger,
) -> dict[str, dict[str, float]]:
    memory: dict[str, dict[str, float]] = {}
    if options.memory != "subprocess":
        return memory
    n = options.memory_questions
    with _bar(options, len(specs), "memory probes") as bar:
        for spec in specs:
            if spec.name not in ledger.errors:
                try:
                    memory[spec.name] = measure_memory(
                        spec, questions[:n], contexts[:n], max(options.batch_sizes)
                    )
                except Exception as err:  # the timing figures still stand
                    warnings.warn(str(err), stacklevel=3)
            bar.update()
    return memory


def _runner_entry(
    spec: RunnerSpec,
    timings: _Timings,
    memory: dict[str, float],
    examples: Sequence[QAExample],
    version_2: bool,
    ledger: Ledger,
    options: BenchOptions,
    baseline: str | None,
) -> dict[str, Any]:
    """One ``runners[*]`` object of the results (ratios are added afterwards)."""
    name, error = spec.name, ledger.errors.get(spec.name)
    preds = timings.predictions.get(name, {})
    scored = None if error else preds.get(options.batch_sizes[0])
    base = timings.predictions.get(baseline or "", {}).get(options.batch_sizes[0])
    stages = timings.stage_times.get(name)
    consistent = None
    if scored is not None and len(preds) == len(options.batch_sizes):
        same = [len(set(t)) == 1 for t in zip(*(p.texts for p in preds.values()), strict=True)]
        consistent = sum(same) / len(same)
    return {
        **{k: v for k, v in asdict(spec).items() if k not in ("settings", "threads")},
        "provider": timings.providers.get(name),
        "self_check": timings.self_checks.get(name),
        "model_size_mib": model_size_bytes(spec) / _MIB,
        "load_s": timings.load_s.get(name),
        "cold_load_s": memory.get("cold_load_s"),
        "peak_rss_mib": memory.get("peak_rss_mib"),
        "baseline_rss_mib": memory.get("baseline_rss_mib"),
        "model_rss_mib": memory.get("model_rss_mib"),
        "latency_ms": asdict(timings.latency[name]) if name in timings.latency else None,
        "throughput_qps": {} if error else timings.throughput.get(name, {}),
        "stage_times": None if error else stages,
        "host_ms_per_question": None
        if error or stages is None
        else {bs: t["host_ms_per_question"] for bs, t in stages.items()},
        "metrics": None if scored is None else _score(scored, examples, version_2),
        "agreement_with_baseline": None
        if scored is None or base is None
        else _agreement(scored.texts, base.texts),
        "batch_size_agreement": consistent,
        "questions": ledger.questions.get(name, 0),
        "inputs_sha1": ledger.hexdigest(name),
        "ratios": None,
        "error": error,
    }


def run_benchmark(
    specs: Sequence[RunnerSpec],
    examples: Sequence[QAExample],
    *,
    version_2: bool,
    options: BenchOptions,
    config: dict[str, Any] | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """Benchmark ``specs`` on ``examples`` and return the results object.

    Args:
        specs: The runners, baseline first (see :func:`qa_engine.bench.plan.plan_runners`).
        examples: The questions; every runner answers all of them.
        version_2: Score with the SQuAD 2.0 metric.
        options: How much to measure.
        config: Extra entries for ``results["config"]`` (data source, peers...).
        command: The command line, recorded as is.

    Returns:
        The object described in :mod:`qa_engine.bench.results`, ratios included.
    """
    if not specs:
        raise ValueError("nothing to benchmark: no runners")
    if not examples:
        raise ValueError("nothing to benchmark: no questions")
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"runner names must be unique, got {names}")
    check_dependencies(specs)  # a missing extra stops here, with its pip command
    require("matplotlib")
    if options.memory == "subprocess":
        require("psutil")
    questions = [ex.question for ex in examples]
    contexts = [ex.context for ex in examples]
    environment = collect_environment(specs[0].threads)
    ledger = Ledger()
    timings = _time_all([make_runner(s) for s in specs], questions, contexts, options, ledger)
    gc.collect()  # the runners are gone: free their memory before the probes
    memory = _probe_memory(specs, questions, contexts, options, ledger)

    baseline = next(
        (s.name for s in specs if s.kind == "transformers" and s.autocast is None), None
    )
    entries = [
        _runner_entry(
            spec, timings, memory.get(spec.name, {}), examples, version_2, ledger, options, baseline
        )
        for spec in specs
    ]
    results = {
        "schema_version": SCHEMA_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "config": {
            "data": None,
            "samples": len(examples),
            "version_2": version_2,
            "batch_sizes": list(options.batch_sizes),
            "metrics_batch_size": options.batch_sizes[0],
            "latency_runs": options.latency_runs,
            "warmup": options.warmup,
            "settle_s": options.settle_s,
            "ort_spinning": ORT_SPINNING,
            "device": specs[0].device,
            "threads": specs[0].threads,
            "peers": sorted({s.kind for s in specs} - {"qa-engine"}),
            "memory": options.memory,
            "settings": asdict(specs[0].settings),
            **(config or {}),
        },
        "environment": environment,
        "baseline": baseline,
        "runners": entries,
        "comparisons": [],
    }
    return add_ratios(results)
