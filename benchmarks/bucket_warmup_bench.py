"""Batch-1 p50/p95 of one engine with and without bucket warm-up (issue 19, part 4).

Two fresh engines on the same export and device, one at a time, answer the same real
questions one by one (``engine(question, context)``, tokenization and decoding
included):

- ``unbucketed``: each call padded only to its own window (every new length is a new
  input shape), nothing warmed: what offline calls did before;
- ``bucketed``: the engine's default on OpenVINO: windows padded to the server's
  ``length_buckets``, the batch-1 shapes warmed at load.

A few other questions are asked first (not timed) in both modes. Run it in the
environment of the provider (``.venv``, the README's install, for OpenVINO)::

    .venv/bin/python benchmarks/bucket_warmup_bench.py EXPORT_DIR \\
        --data /work/shared/data/squad-v1.1/train-v1.1.reconstructed.json.gz \\
        --device openvino:f32 --threads 2 --questions 200 --out result.json
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export_dir", type=Path)
    parser.add_argument("--data", type=Path, required=True, help="SQuAD JSON (train)")
    parser.add_argument("--device", default="openvino:f32")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--warmup-questions", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    from qa_engine.cpu import cpu_model
    from qa_engine.data import load_squad
    from qa_engine.engine import QAEngine
    from qa_engine.session import onnxruntime_version

    examples = load_squad(args.data).examples
    rng = random.Random(args.seed)
    picked = rng.sample(range(len(examples)), args.questions + args.warmup_questions)
    pairs = [(examples[i].question, examples[i].context) for i in picked]
    warm, timed = pairs[: args.warmup_questions], pairs[args.warmup_questions :]

    results = {}
    for mode in ("unbucketed", "bucketed"):
        started = time.perf_counter()
        engine = QAEngine(args.export_dir, device=args.device, threads=args.threads, plan=False)
        load_s = time.perf_counter() - started
        if mode == "unbucketed":
            engine.buckets, engine.pad_rows = None, False
        for question, context in warm:
            engine(question, context)
        seconds, answers = [], []
        for question, context in timed:
            start = time.perf_counter()
            answers.append(engine(question, context).text)
            seconds.append(time.perf_counter() - start)
        ms = np.asarray(seconds) * 1e3
        p50, p95, p99 = np.percentile(ms, [50, 95, 99])
        results[mode] = {
            "providers": engine.providers,
            "buckets": engine.buckets,
            "load_s_including_warmup": round(load_s, 2),
            "p50_ms": round(float(p50), 2),
            "p95_ms": round(float(p95), 2),
            "p99_ms": round(float(p99), 2),
            "max_ms": round(float(ms.max()), 2),
            "p95_over_p50": round(float(p95 / p50), 2),
            "answers": answers,
        }
        print(
            f"{mode:<10} p50 {p50:7.2f} ms  p95 {p95:7.2f} ms  p99 {p99:7.2f} ms  "
            f"p95/p50 {p95 / p50:4.2f}  load {load_s:.1f} s  loadavg {_loadavg()}",
            flush=True,
        )
        del engine
    same = results["unbucketed"]["answers"] == results["bucketed"]["answers"]
    print(f"same answers in both modes: {same}")
    report = {
        "command": " ".join(["bucket_warmup_bench.py", *sys.argv[1:]]),
        "cpu": cpu_model(),
        "onnxruntime": onnxruntime_version(),
        "device": args.device,
        "threads": args.threads,
        "questions": args.questions,
        "loadavg_end": _loadavg(),
        "same_answers": same,
        "modes": {k: {f: v for f, v in r.items() if f != "answers"} for k, r in results.items()},
    }
    if args.out is not None:
        args.out.write_text(json.dumps(report, indent=2) + "\n")


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


if __name__ == "__main__":
    main()
