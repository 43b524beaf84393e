"""Everything issue 12 measures for `qa-engine serve`, in one run.

    python benchmarks/serve_bench.py --export runs/accuracy/exports/int8-dynamic \
        --model runs/accuracy/model --data ../shared/data/squad-v1.1/dev-v1.1.json.gz

1. offline: ``engine.predict(batch_size=32)`` throughput and the engine's batch-1
   latency on the same questions (in this process, before any server starts);
2. ``qa-engine serve`` in a subprocess (``--max-concurrent-requests 64``): closed-loop
   load at each concurrency, a burst of 500 simultaneous requests, a soak with the
   server's RSS sampled, then SIGTERM (its exit code recorded);
3. the peer, the transformers pipeline behind FastAPI (``qa_engine.bench.pipeline_server``),
   under the same load, after the server is gone (never both at once on the cores);
4. ``load.json``, ``load.md``, ``load.png`` under ``--out``, with the issue's targets.
"""

from __future__ import annotations

import argparse
import gc
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "squad-v1.1" / "dev-v1.1.json.gz"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(command: list[str], base_url: str, timeout: float = 600) -> subprocess.Popen:
    from qa_engine.bench.load import wait_ready

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    print("$", " ".join(command), flush=True)
    process = subprocess.Popen(command, env=env)
    try:
        wait_ready(base_url, timeout)
    except TimeoutError:
        process.kill()
        raise
    return process


def stop(process: subprocess.Popen) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=120)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


def offline(export: str, pairs, threads: int, latency_runs: int, device: str = "cpu") -> dict:
    from qa_engine import QAEngine

    engine = QAEngine.from_pretrained(export, device=device, threads=threads)
    if engine.session.uses_cuda:  # what serve does on a GPU: batches on CUDA graphs
        engine.enable_cuda_graphs(max_windows=32, max_tokens=8192)
    questions, contexts = [q for q, _ in pairs], [c for _, c in pairs]
    engine.predict(questions[:32], contexts[:32], batch_size=32)  # warm-up
    started = time.perf_counter()
    engine.predict(questions, contexts, batch_size=32)
    qps = len(pairs) / (time.perf_counter() - started)
    for q, c in pairs[:5]:
        engine(q, c)
    times = []
    for q, c in pairs[:latency_runs]:
        t = time.perf_counter()
        engine(q, c)
        times.append((time.perf_counter() - t) * 1000)
    del engine
    gc.collect()
    return {
        "predict_batch32_qps": qps,
        "batch1_latency_ms": {
            "p50": float(np.percentile(times, 50)),
            "p95": float(np.percentile(times, 95)),
            "runs": len(times),
        },
        "questions": len(pairs),
    }


def soak(url: str, pairs, pid: int, total: int, clients: int, warmup: int) -> dict:
    import psutil

    from qa_engine.bench.load import run_load

    process = psutil.Process(pid)
    first = run_load(url, pairs, concurrency=clients, requests=warmup)
    rss_after_warmup = process.memory_info().rss
    samples, sent, chunk = [rss_after_warmup], warmup, max(500, (total - warmup) // 10)
    lost = first["lost"]
    while sent < total:
        n = min(chunk, total - sent)
        lost += run_load(url, pairs, concurrency=clients, requests=n)["lost"]
        sent += n
        samples.append(process.memory_info().rss)
    mib = [s / 2**20 for s in samples]
    return {
        "requests": sent,
        "clients": clients,
        "lost": lost,
        "rss_mib_after_warmup": mib[0],
        "rss_mib_end": mib[-1],
        "rss_mib_samples": [round(m, 1) for m in mib],
        "growth_pct": 100 * (mib[-1] - mib[0]) / mib[0],
    }


def results_header(threads: int) -> dict:
    """The head of a ``load.json``: schema, this command, and the machine (CPU first)."""
    from qa_engine.bench.environment import collect_environment
    from qa_engine.bench.load_report import SCHEMA

    return {
        "schema": SCHEMA,
        "created": None,
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "environment": collect_environment(threads),
    }


def load_levels(name: str, base: str, pairs, levels, requests: int, examples) -> dict:
    """One endpoint under each concurrency level, closed-loop clients."""
    from qa_engine.bench.load import run_load

    measured = []
    for clients in levels:
        print(f"{name}: {clients} clients", flush=True)
        measured.append(
            run_load(base + "/", pairs, concurrency=clients, requests=requests, examples=examples)
        )
    return {"name": name, "url": base, "levels": measured}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--export", required=True, help="export dir to serve")
    parser.add_argument("--model", help="PyTorch dir for the peer (default: manifest source)")
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--samples", type=int, default=300, help="questions (first N of dev)")
    parser.add_argument("--requests", type=int, default=300, help="requests per load level")
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--burst", type=int, default=500)
    parser.add_argument("--burst-limit", type=int, default=64)
    parser.add_argument("--soak", type=int, default=10_000, help="0 skips the soak")
    parser.add_argument("--soak-clients", type=int, default=8)
    parser.add_argument("--latency-runs", type=int, default=100)
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument(
        "--device", default="cpu", help="engine device, offline and served (cuda: CUDA graphs)"
    )
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "serve"))
    args = parser.parse_args()

    from qa_engine.bench.load import run_burst
    from qa_engine.bench.load_report import load_table, write_load_reports
    from qa_engine.data import load_squad
    from qa_engine.manifest import ExportManifest

    levels = [int(c) for c in args.concurrency.split(",")]
    examples = load_squad(args.data).examples[: args.samples]
    pairs = [(ex.question, ex.context) for ex in examples]
    manifest = ExportManifest.load(args.export)
    results: dict = {
        **results_header(args.threads),
        "config": {
            "data": args.data,
            "samples": len(pairs),
            "requests": args.requests,
            "concurrency": levels,
            "export": args.export,
            "precision": manifest.precision,
            "batch_invariant": manifest.is_batch_invariant,
            "threads": args.threads,
        },
        "endpoints": [],
    }
    print(f"CPU: {results['environment']['cpu']['model']}", flush=True)
    print("offline engine ...", flush=True)
    results["offline"] = offline(args.export, pairs, args.threads, args.latency_runs, args.device)
    print(results["offline"], flush=True)

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start(
        [
            sys.executable,
            "-m",
            "qa_engine.cli",
            "serve",
            args.export,
            "--port",
            str(port),
            "--device",
            args.device,
            "--threads",
            str(args.threads),
            "--max-concurrent-requests",
            str(args.burst_limit),
            "--log-level",
            "warning",
        ],
        base,
    )
    try:
        results["endpoints"].append(
            load_levels("qa-engine serve", base, pairs, levels, args.requests, examples)
        )
        print("burst ...", flush=True)
        results["burst"] = {
            "max_concurrent_requests": args.burst_limit,
            **run_burst(base + "/", pairs, size=args.burst),
        }
        results["burst"].pop("latency_ms", None)
        if args.soak:
            print(f"soak: {args.soak} requests ...", flush=True)
            results["soak"] = soak(base + "/", pairs, server.pid, args.soak, args.soak_clients, 500)
    finally:
        results["server_exit_code"] = stop(server)

    if not args.no_peer:
        model = args.model or manifest.source_model
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        peer = start(
            [
                sys.executable,
                "-m",
                "qa_engine.bench.pipeline_server",
                model,
                "--port",
                str(port),
                "--threads",
                str(args.threads),
            ],
            base,
        )
        try:
            results["endpoints"].append(
                load_levels(
                    "transformers pipeline + FastAPI", base, pairs, levels, args.requests, examples
                )
            )
        finally:
            stop(peer)

    results["targets"] = targets(results, max(levels), min(levels))
    results["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    paths = write_load_reports(results, args.out)
    print(load_table(results))
    print(results["targets"])
    for path in paths.values():
        print("wrote", path)


def targets(results: dict, top: int, one: int) -> dict:
    """The issue's targets, each with the measured value and hit/miss."""
    serve = {lv["concurrency"]: lv for lv in results["endpoints"][0]["levels"]}
    peer = (
        {lv["concurrency"]: lv for lv in results["endpoints"][1]["levels"]}
        if len(results["endpoints"]) > 1
        else {}
    )
    off = results["offline"]
    out: dict = {}
    ratio = serve[top]["throughput_qps"] / off["predict_batch32_qps"]
    out[f"throughput@{top} / offline predict(batch 32) >= 0.9"] = {
        "value": round(ratio, 3),
        "met": ratio >= 0.9,
    }
    if peer and peer[top]["throughput_qps"]:
        vs = serve[top]["throughput_qps"] / peer[top]["throughput_qps"]
        out[f"throughput@{top} / pipeline peer >= 3"] = {"value": round(vs, 2), "met": vs >= 3}
    gap = serve[one]["latency_ms"]["p50"] - off["batch1_latency_ms"]["p50"]
    out[f"p50@{one} - engine batch-1 p50 <= 3 ms"] = {"value": round(gap, 2), "met": gap <= 3}
    burst = results["burst"]
    ok = burst["only_2xx_and_429"] and burst["lost"] == 0 and burst["health_after"] == 200
    out["burst: only 2xx/429, 0 lost, healthy after"] = {
        "value": burst["statuses"],
        "lost": burst["lost"],
        "met": bool(ok),
    }
    if results.get("soak"):
        growth = results["soak"]["growth_pct"]
        out["soak RSS growth < 5%"] = {"value": round(growth, 2), "met": growth < 5}
    out["server exit code after SIGTERM == 0"] = {
        "value": results["server_exit_code"],
        "met": results["server_exit_code"] == 0,
    }
    return out


if __name__ == "__main__":
    main()
