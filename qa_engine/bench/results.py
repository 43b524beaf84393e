"""``results.json``: the machine-readable output of a benchmark run, and its ratios.

Schema (``schema_version`` 1). Fields are only ever added within a version; a rename
or a change of meaning bumps it. JSON object keys are strings, so batch sizes appear
as ``"1"``, ``"8"``...

.. code-block:: text

    schema_version   int, 1
    created          str, ISO 8601 UTC time the run finished
    command          str | null, the command line that produced it
    config           object:
      data             str, SQuAD file (or "synthetic:..." for the speed suite)
      samples          int, questions benchmarked
      version_2        bool, SQuAD 2.0 metric used
      batch_sizes      [int], throughput batch sizes
      metrics_batch_size int, the batch size whose predictions were scored
      latency_runs     int, timed batch-1 calls per runner
      warmup           int, untimed rounds before them
      settle_s         float, untimed pause between two timed calls
      ort_spinning     bool, whether onnxruntime runners' idle workers spin (off:
                       co-resident sessions would steal each other's cores)
      device           "cpu" | "cuda"
      threads          int | null, intra-op threads given to every runner
      peers            [str], peer stacks asked for
      memory           "subprocess" | "off", how peak RSS was measured
      settings         object, the QA settings every runner used: max_seq_length,
                       doc_stride, max_answer_length, max_question_len, version_2,
                       null_threshold
    environment      object (qa_engine.bench.environment.collect_environment): cpu
                     {model, flags, has_bf16}, logical_cores, usable_cores,
                     physical_cores, threads, gpus [{name, memory, driver}],
                     onnxruntime_providers, python, platform, libraries {name: version}
    baseline         str | null, name of the runner ratios are taken against (the
                     transformers pipeline fp32; null when it is absent or failed)
    runners          [object], one per runner, in plan order:
      name, kind ("transformers" | "optimum" | "qa-engine"), model_dir, precision,
      optimization, device, autocast (str | null), same_file_as (str | null)
      provider         str | null, execution provider / device really used
      model_size_mib   float, weights on disk (ONNX files or PyTorch weights)
      load_s           float | null, model load time in the benchmark process (its
                       libraries already imported)
      cold_load_s, peak_rss_mib, baseline_rss_mib, model_rss_mib
                       float | null, from the subprocess probe (qa_engine.bench.memory)
      latency_ms       {p50, p95, p99, mean, min: float; runs: int} | null, batch 1
      throughput_qps   {batch size: float}, questions/s end to end
      stage_times      {batch size: object} | null (qa-engine runners): the host
                       pipeline's counters over that batch size's throughput calls
                       (qa_engine.pipeline.StageTimes.to_dict(): tokenize_s, pad_s,
                       run_s, decode_s, wall_s, questions, windows, batches,
                       padded_tokens, real_tokens, host_s, host_ms_per_question)
      host_ms_per_question {batch size: float} | null, (tokenize + pad + decode)
                       seconds per question, in ms: the host's share
      metrics          object | null, official SQuAD metrics (qa_engine.metrics) of
                       the predictions at metrics_batch_size: exact, f1, total (v1.1
                       also exact_match, the same number); v2 adds
                       HasAns_*/NoAns_* and best_exact/best_f1 (+ _thresh)
      agreement_with_baseline  float | null, share of questions answered with the
                       same text as the baseline
      batch_size_agreement     float | null, share of questions answered identically
                       at every batch size
      questions        int, questions this runner was asked (timed calls)
      inputs_sha1      str | null, digest of every (question, context) it was asked,
                       in order: equal digests = the runners saw the same inputs
      ratios           object | null (null without a baseline):
        latency_p50_speedup, latency_p95_speedup  baseline latency / this latency
        throughput_speedup {batch size: this qps / baseline qps}
        f1_delta, exact_delta  this - baseline (points)
        size_ratio     this size / baseline size
      error            str | null, why the runner dropped out (its figures are null)
    comparisons      [object], qa-engine vs Optimum on the same ONNX file:
      runner, peer, model_dir, latency_p50_speedup (peer / runner),
      throughput_speedup {batch size: runner qps / peer qps}
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
RUNNER_KEYS = (
    "name",
    "kind",
    "model_dir",
    "precision",
    "optimization",
    "device",
    "autocast",
    "same_file_as",
    "provider",
    "model_size_mib",
    "load_s",
    "cold_load_s",
    "peak_rss_mib",
    "baseline_rss_mib",
    "model_rss_mib",
    "latency_ms",
    "throughput_qps",
    "stage_times",
    "host_ms_per_question",
    "metrics",
    "agreement_with_baseline",
    "batch_size_agreement",
    "questions",
    "inputs_sha1",
    "ratios",
    "error",
)
TOP_KEYS = (
    "schema_version",
    "created",
    "command",
    "config",
    "environment",
    "baseline",
    "runners",
    "comparisons",
)


def _div(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def _sub(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _latency(entry: dict[str, Any], key: str) -> float | None:
    return (entry.get("latency_ms") or {}).get(key)


def _metric(entry: dict[str, Any], key: str) -> float | None:
    return (entry.get("metrics") or {}).get(key)


def ratios_against(entry: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """Speed-ups and accuracy deltas of one runner entry against the baseline entry."""
    qps, base_qps = entry.get("throughput_qps") or {}, base.get("throughput_qps") or {}
    return {
        "latency_p50_speedup": _div(_latency(base, "p50"), _latency(entry, "p50")),
        "latency_p95_speedup": _div(_latency(base, "p95"), _latency(entry, "p95")),
        "throughput_speedup": {bs: _div(v, base_qps.get(bs)) for bs, v in qps.items()},
        "f1_delta": _sub(_metric(entry, "f1"), _metric(base, "f1")),
        "exact_delta": _sub(_metric(entry, "exact"), _metric(base, "exact")),
        "size_ratio": _div(entry.get("model_size_mib"), base.get("model_size_mib")),
    }


def add_ratios(results: dict[str, Any]) -> dict[str, Any]:
    """Fill ``runners[*].ratios`` and ``comparisons`` in place; returns ``results``."""
    by_name = {r["name"]: r for r in results["runners"]}
    base = by_name.get(results.get("baseline") or "")
    if base is not None and base.get("error"):
        base = None
        results["baseline"] = None
    for entry in results["runners"]:
        ok = base is not None and not entry.get("error")
        entry["ratios"] = ratios_against(entry, base) if ok else None
    comparisons = []
    for peer in results["runners"]:
        runner = by_name.get(peer.get("same_file_as") or "")
        if runner is None or peer.get("error") or runner.get("error"):
            continue
        qps, peer_qps = runner.get("throughput_qps") or {}, peer.get("throughput_qps") or {}
        comparisons.append(
            {
                "runner": runner["name"],
                "peer": peer["name"],
                "model_dir": peer["model_dir"],
                "latency_p50_speedup": _div(_latency(peer, "p50"), _latency(runner, "p50")),
                "throughput_speedup": {bs: _div(v, peer_qps.get(bs)) for bs, v in qps.items()},
            }
        )
    results["comparisons"] = comparisons
    return results


def validate_results(results: dict[str, Any]) -> None:
    """Check the top-level and per-runner keys of a results object.

    Raises:
        ValueError: A key is missing or the schema version is not this module's.
    """
    missing = [k for k in TOP_KEYS if k not in results]
    if missing:
        raise ValueError(f"results lack key(s) {missing}")
    if results["schema_version"] != SCHEMA_VERSION:
        raise ValueError(f"schema_version {results['schema_version']!r}, expected {SCHEMA_VERSION}")
    for entry in results["runners"]:
        lacking = [k for k in RUNNER_KEYS if k not in entry]
        if lacking:
            raise ValueError(f"runner {entry.get('name')!r} lacks key(s) {lacking}")


def save_results(results: dict[str, Any], path: str | os.PathLike) -> Path:
    """Validate and write ``results`` as indented JSON."""
    validate_results(results)
    path = Path(path)
    path.write_text(json.dumps(results, indent=2) + "\n")
    return path
