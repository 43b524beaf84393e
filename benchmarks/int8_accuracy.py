"""Paired SQuAD F1 of several exports, chunk by chunk, written as it goes (issue 19, part 3).

Each chunk of questions runs through every export in turn (the same questions, rotated
order), and after each chunk the JSON at --out holds official EM/F1 of every export on
the questions done so far, with questions/s: a run cut short still leaves a paired
comparison. On the full file the numbers are those of ``qa-engine eval`` (same decoder,
same batching).

    python benchmarks/int8_accuracy.py fp32=runs/x/fp32 int8-nncf=runs/x/int8-nncf \\
        --data ../shared/data/squad-v1.1/dev-v1.1.json.gz --out results.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from qa_engine.cpu import cpu_model
from qa_engine.data import load_squad
from qa_engine.engine import QAEngine
from qa_engine.metrics import squad_metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("exports", nargs="+", help="NAME=EXPORT_DIR, one per variant")
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--samples", type=int, default=None)
    parser.add_argument("--chunk", type=int, default=500)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--device",
        default="cpu",
        help='QAEngine device for every export ("auto": the default path)',
    )
    args = parser.parse_args()

    examples = load_squad(args.data).examples[: args.samples]
    specs = dict(spec.split("=", 1) for spec in args.exports)
    engines = {
        name: QAEngine(path, device=args.device, threads=args.threads)
        for name, path in specs.items()
    }
    predictions: dict[str, dict[str, str]] = {name: {} for name in engines}
    seconds = dict.fromkeys(engines, 0.0)
    names = list(engines)
    for k, lo in enumerate(range(0, len(examples), args.chunk)):
        chunk = examples[lo : lo + args.chunk]
        for name in names[k % len(names) :] + names[: k % len(names)]:
            start = time.perf_counter()
            answers = engines[name].predict(
                [ex.question for ex in chunk],
                [ex.context for ex in chunk],
                batch_size=args.batch_size,
            )
            seconds[name] += time.perf_counter() - start
            predictions[name].update({ex.id: a.text for ex, a in zip(chunk, answers, strict=True)})
        done = examples[: lo + len(chunk)]
        rows = {}
        for name, engine in engines.items():
            metrics = squad_metrics(predictions[name], done, False)
            rows[name] = {
                **{key: round(float(value), 3) for key, value in metrics.items()},
                "questions_per_second": round(len(done) / seconds[name], 2),
                "precision": engine.manifest.precision,
                "variant": engine.manifest.extra.get("variant"),
                "batch_invariant": engine.batch_invariant,
                "self_check": engine.self_check.summary(),
            }
        reference = rows[names[0]]["f1"]
        for row in rows.values():
            row["f1_pct_of_first"] = round(100.0 * row["f1"] / reference, 2) if reference else None
        result = {
            "data": str(args.data),
            "questions": len(done),
            "of": len(examples),
            "batch_size": args.batch_size,
            "threads": args.threads,
            "cpu": cpu_model(),
            "machine": platform.machine(),
            "loadavg": os.getloadavg(),
            "exports": specs,
            "results": rows,
        }
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
        summary = ", ".join(
            f"{n} F1 {r['f1']:.2f} ({r['f1_pct_of_first']}%)" for n, r in rows.items()
        )
        print(f"{len(done)}/{len(examples)}: {summary}; load {os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    main()
