"""Everything issue 20 measures for `qa-engine serve` (fairness, limits), in one run.

    python benchmarks/serve_fairness.py --export runs/demo/onnx-fp32-O2 \
        --data ../shared/data/squad-v1.1/dev-v1.1.json.gz

1. offline, in this process first: ``engine.predict(batch_size=32)`` throughput;
2. server A, the defaults: ordinary load at 1, 20 and 32 clients; requests over
   ``--max-context-tokens`` (one --long-chars document each) sent beside 20 clients
   (status, seconds, body); a client that gives up on a long request under the limit
   (windows dropped, how soon); a burst of 500 and a short RSS soak; SIGTERM;
3. server B, ``--max-context-tokens 0 --request-timeout 600``: 20 clients alone, then
   the same 20 clients beside one --long-chars request sent a second earlier;
4. server C: server A's levels with the other ``--spinning`` setting;
5. offline ``QAEngine.predict`` on the long request, compared with server B's answer.

Writes ``fairness.json`` and ``fairness.md`` under ``--out``, with the targets, the CPU
and the load average at each phase. One server at a time; the load client shares the
cores with it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_bench import (  # noqa: E402
    DEFAULT_DATA,
    REPO,
    free_port,
    offline,
    results_header,
    soak,
    start,
    stop,
)

ORDINARY_CLIENTS = 20


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages, as /proc/loadavg gives them."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def metric(base: str, name: str) -> float:
    import httpx

    for line in httpx.get(base + "/metrics", timeout=10).text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise KeyError(name)


def serve_command(export: str, port: int, threads: int, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "qa_engine.cli",
        "serve",
        export,
        "--port",
        str(port),
        "--device",
        "cpu",
        "--threads",
        str(threads),
        "--max-concurrent-requests",
        "64",
        "--log-level",
        "warning",
        *extra,
    ]


def levels(base: str, pairs, clients_list, requests: int, examples) -> list[dict]:
    from qa_engine.bench.load import run_load

    out = []
    for clients in clients_list:
        print(f"  {clients} clients, {requests} requests", flush=True)
        out.append(
            {
                **run_load(
                    base + "/", pairs, concurrency=clients, requests=requests, examples=examples
                ),
                "loadavg": loadavg(),
            }
        )
    return out


def disconnect(base: str, long_request, give_up_s: float) -> dict:
    """A client that stops waiting for a long request: how soon its windows are dropped."""
    import httpx

    question, context = long_request
    dropped_before = metric(base, "qa_dropped_windows_total")
    try:
        httpx.post(
            base + "/",
            json={"inputs": {"question": question, "context": context}},
            timeout=give_up_s,
        )
        status = "answered before the client gave up"
    except httpx.TimeoutException:
        status = "client gave up"
    gave_up = time.perf_counter()
    while time.perf_counter() - gave_up < 30:
        depth = metric(base, "qa_queue_windows")
        dropped = metric(base, "qa_dropped_windows_total") - dropped_before
        if depth == 0 and dropped > 0:
            break
        time.sleep(0.01)
    seconds = time.perf_counter() - gave_up
    # One batch = one take from the queue (split by length into one or more calls): the
    # windows of a request cancelled meanwhile are dropped before the next take.
    batches = metric(base, "qa_round_seconds_count")
    mean_batch = metric(base, "qa_round_seconds_sum") / batches if batches else None
    return {
        "chars": len(context),
        "client_timeout_s": give_up_s,
        "status": status,
        "dropped_windows": dropped,
        "queue_empty_and_dropped_after_s": seconds,
        "mean_round_s": mean_batch,
        "loadavg": loadavg(),
    }


def ordinary(level: dict) -> dict:
    lat = level["latency_ms"] or {}
    return {
        "p50_ms": lat.get("p50"),
        "p99_ms": lat.get("p99"),
        "max_ms": lat.get("max"),
        "qps": level["throughput_qps"],
        "statuses": level["statuses"],
        "f1": level.get("f1"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--export", required=True)
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--requests", type=int, default=300, help="ordinary requests per run")
    parser.add_argument("--long-chars", type=int, default=1_000_000)
    parser.add_argument("--over-limit", type=int, default=20, help="over-limit requests sent")
    parser.add_argument("--over-limit-chars", type=int, default=1_000_000)
    parser.add_argument("--give-up-chars", type=int, default=120_000)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--soak", type=int, default=2000, help="0 skips the soak")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "serve"))
    args = parser.parse_args()

    from qa_engine import QAEngine
    from qa_engine.bench.load import long_pair, run_burst, run_load
    from qa_engine.data import load_squad
    from qa_engine.serve.settings import ServeSettings

    squad = load_squad(args.data).examples
    examples = squad[: args.samples]
    pairs = [(ex.question, ex.context) for ex in examples]
    contexts = [ex.context for ex in squad]
    long_request = long_pair(examples[0].question, contexts, args.long_chars)
    give_up_request = long_pair(examples[1].question, contexts, args.give_up_chars)
    over_request = long_pair(examples[2].question, contexts, args.over_limit_chars)
    default_spinning = ServeSettings().spinning
    results: dict = {
        **results_header(args.threads),
        "config": {
            "export": args.export,
            "data": args.data,
            "samples": len(pairs),
            "requests": args.requests,
            "long_chars": len(long_request[1]),
            "threads": args.threads,
            "defaults": {
                k: v
                for k, v in ServeSettings().public_dict().items()
                if k
                in (
                    "max_batch_tokens",
                    "max_request_batch_tokens",
                    "max_context_tokens",
                    "request_timeout_s",
                    "spinning",
                )
            },
        },
        "loadavg_start": loadavg(),
    }
    print("offline engine ...", flush=True)
    results["offline"] = offline(args.export, pairs, args.threads, 20)

    # ---- server A: the defaults
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start(serve_command(args.export, port, args.threads), base)
    try:
        print("A: ordinary load", flush=True)
        results["default"] = {"levels": levels(base, pairs, (1, 20, 32), args.requests, examples)}
        print("A: over-limit requests beside 20 clients", flush=True)
        fraction = args.over_limit / (args.requests + args.over_limit)
        results["over_limit"] = {
            **run_load(
                base + "/",
                pairs,
                concurrency=ORDINARY_CLIENTS,
                requests=args.requests + args.over_limit,
                long_pairs=[over_request],
                long_fraction=fraction,
                long_lead_s=0.0,
            ),
            "loadavg": loadavg(),
        }
        print("A: a client that gives up", flush=True)
        results["disconnect"] = disconnect(base, give_up_request, 1.0)
        print("A: burst", flush=True)
        results["burst"] = run_burst(base + "/", pairs, size=500)
        results["burst"].pop("latency_ms", None)
        if args.soak:
            print(f"A: soak {args.soak}", flush=True)
            results["soak"] = soak(base + "/", pairs, server.pid, args.soak, 8, 500)
    finally:
        results["server_exit_code"] = stop(server)

    # ---- server B: no context limit, one long document beside 20 clients
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    extra = ("--max-context-tokens", "0", "--request-timeout", "900")
    server = start(serve_command(args.export, port, args.threads, *extra), base)
    try:
        print("B: 20 clients alone", flush=True)
        alone = run_load(base + "/", pairs, concurrency=ORDINARY_CLIENTS, requests=args.requests)
        alone["loadavg"] = loadavg()
        print(f"B: 20 clients beside one {len(long_request[1]):,}-character request", flush=True)
        beside = run_load(
            base + "/",
            pairs,
            concurrency=ORDINARY_CLIENTS,
            requests=args.requests + 1,
            long_pairs=[long_request],
            long_fraction=1 / (args.requests + 1),
            long_lead_s=1.0,
            timeout=900,
        )
        beside["loadavg"] = loadavg()
        results["fairness"] = {"alone": alone, "beside": beside}
    finally:
        stop(server)

    # ---- server C: the other spinning setting
    other = "--no-spinning" if default_spinning else "--spinning"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start(serve_command(args.export, port, args.threads, other), base)
    try:
        print(f"C: {other}", flush=True)
        results["other_spinning"] = {
            "flag": other,
            "levels": levels(base, pairs, (1, 20, 32), args.requests, examples),
        }
    finally:
        stop(server)

    print("offline predict on the long request ...", flush=True)
    engine = QAEngine.from_pretrained(args.export, device="cpu", threads=args.threads)
    started = time.perf_counter()
    reference = engine.predict(*long_request)
    results["long_offline"] = {
        "seconds": time.perf_counter() - started,
        "answer": {
            "answer": reference.text,
            "score": reference.score,
            "start": reference.start,
            "end": reference.end,
        },
        "windows": len(engine.tokenizer.encode(*long_request)),
        "context_tokens": engine.tokenizer.count_context_tokens(long_request[1]),
        "loadavg": loadavg(),
    }
    results["loadavg_end"] = loadavg()
    results["targets"] = targets(results)
    results["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "fairness.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "fairness.md").write_text(markdown(results))
    print(markdown(results))


def targets(results: dict) -> dict:
    """Issue 20's targets, each with what was measured and hit or miss."""
    out: dict = {}
    alone = results["fairness"]["alone"]["latency_ms"]["p99"]
    beside_level = results["fairness"]["beside"]
    beside = beside_level["latency_ms"]["p99"]
    bound = max(3 * alone, alone + 1000)
    out["ordinary p99 beside the long request <= max(3x alone, alone + 1 s)"] = {
        "alone_ms": round(alone, 1),
        "beside_ms": round(beside, 1),
        "bound_ms": round(bound, 1),
        "long_in_flight_throughout": beside_level["long"]["in_flight_throughout"],
        "met": beside <= bound,
    }
    long = beside_level["long"]
    served = long["results"][0] if long["results"] else None
    ref = results["long_offline"]["answer"]
    same = (
        served is not None
        and long["statuses"] == {"200": 1}
        and (served["answer"], served["start"], served["end"])
        == (ref["answer"], ref["start"], ref["end"])
        and abs(served["score"] - ref["score"]) <= 1e-4 * max(1.0, abs(ref["score"]))
    )
    out["long request answered, equal to QAEngine.predict"] = {
        "statuses": long["statuses"],
        "seconds": [round(s, 1) for s in long["seconds"]],
        "served": served,
        "predict": ref,
        "met": bool(same),
    }
    over = results["over_limit"]["long"]
    bodies = [r or {} for r in over["results"]]
    named = all("--max-context-tokens" in b.get("error", "") for b in bodies)
    slowest = max(over["seconds"]) if over["seconds"] else None
    out["over the limit: 413 in < 100 ms, naming the limit"] = {
        "statuses": over["statuses"],
        "max_s": slowest,
        "median_s": sorted(over["seconds"])[len(over["seconds"]) // 2] if over["seconds"] else None,
        "example_body": bodies[0] if bodies else None,
        "met": over["statuses"] == {"413": over["sent"]} and named and slowest < 0.1,
    }
    twenty = next(lv for lv in results["default"]["levels"] if lv["concurrency"] == 20)
    mixed = results["over_limit"]["latency_ms"]
    out["nothing else slowed: ordinary p50 beside over-limit requests <= 1.2x alone"] = {
        "alone_p50_ms": round(twenty["latency_ms"]["p50"], 1),
        "beside_p50_ms": round(mixed["p50"], 1),
        "alone_p99_ms": round(twenty["latency_ms"]["p99"], 1),
        "beside_p99_ms": round(mixed["p99"], 1),
        "met": mixed["p50"] <= 1.2 * twenty["latency_ms"]["p50"],
    }
    gone = results["disconnect"]
    out["a disconnected client's waiting windows dropped within one batch"] = {
        "dropped_windows": gone["dropped_windows"],
        "after_s": round(gone["queue_empty_and_dropped_after_s"], 3),
        "mean_batch_s": gone["mean_round_s"],
        "met": gone["dropped_windows"] > 0
        and gone["queue_empty_and_dropped_after_s"] <= (gone["mean_round_s"] or 0),
    }
    top = next(lv for lv in results["default"]["levels"] if lv["concurrency"] == 32)
    ratio = top["throughput_qps"] / results["offline"]["predict_batch32_qps"]
    out["32 clients >= 90% of offline predict(batch 32)"] = {
        "value": round(ratio, 3),
        "met": ratio >= 0.9,
    }
    burst = results["burst"]
    out["burst: only 2xx/429, 0 lost, healthy after"] = {
        "value": burst["statuses"],
        "met": bool(burst["only_2xx_and_429"] and burst["lost"] == 0),
    }
    if results.get("soak"):
        growth = results["soak"]["growth_pct"]
        out["soak RSS growth < 5%"] = {"value": round(growth, 2), "met": growth < 5}
    out["drain: exit code after SIGTERM == 0"] = {
        "value": results["server_exit_code"],
        "met": results["server_exit_code"] == 0,
    }
    return out


def markdown(results: dict) -> str:
    env = results["environment"]
    lines = [
        "# qa-engine serve: fairness and per-request limits (issue 20)",
        "",
        f"- created: {results.get('created')} — `{results['command']}`",
        f"- CPU: {env['cpu']['model']}; {env['usable_cores']} usable cores; load average "
        f"at start {results['loadavg_start']}, at end {results['loadavg_end']}",
        f"- export: {results['config']['export']}; defaults: {results['config']['defaults']}",
        "",
        "| target | measured | |",
        "| --- | --- | --- |",
    ]
    for name, target in results["targets"].items():
        shown = {k: v for k, v in target.items() if k not in ("met", "served", "predict")}
        lines.append(f"| {name} | `{json.dumps(shown)}` | {'met' if target['met'] else 'miss'} |")
    lines += ["", "## Ordinary load (server A, defaults) and the other spinning setting", ""]
    lines += ["| server | clients | q/s | p50 ms | p99 ms | statuses | load average |"]
    lines += ["| --- | ---: | ---: | ---: | ---: | --- | --- |"]
    default = "spinning" if results["config"]["defaults"]["spinning"] else "no spinning"
    for name, block in ((default, results["default"]), (None, results["other_spinning"])):
        label = name or block["flag"].lstrip("-").replace("-", " ")
        for lv in block["levels"]:
            lat = lv["latency_ms"]
            lines.append(
                f"| {label} | {lv['concurrency']} | {lv['throughput_qps']:.1f} | "
                f"{lat['p50']:.1f} | {lat['p99']:.1f} | {lv['statuses']} | {lv['loadavg']} |"
            )
    lines += ["", f"offline predict(batch 32): {results['offline']['predict_batch32_qps']:.1f} q/s"]
    fair = results["fairness"]
    lines += ["", "## Fairness (server B, no context limit)", ""]
    for name in ("alone", "beside"):
        lines.append(f"- 20 clients {name}: {json.dumps(ordinary(fair[name]))}")
    lines.append(f"- long request: {json.dumps({k: v for k, v in fair['beside']['long'].items()})}")
    lines.append(f"- offline predict on it: {json.dumps(results['long_offline'])}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
