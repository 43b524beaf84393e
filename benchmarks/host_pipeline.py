"""The host pipeline's overlap, measured: the same questions answered with the stages one
after the other (``overlap=False``) and overlapped (the default), interleaved in rounds.

Prints, per mode, wall questions/s (median over rounds) and the pipeline's counters per
question: host (tokenize + pad + decode), model call, wall. Both modes must give the same
answers (checked). Usage::

    python benchmarks/host_pipeline.py EXPORT_DIR --data dev-v1.1.json.gz \\
        [--questions 512] [--rounds 5] [--batch-size 32] [--device cpu] [--threads N]

On a shared machine, print ``cat /proc/loadavg`` beside the numbers: they are a claim only
when the machine was otherwise idle.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from qa_engine import QAEngine
from qa_engine.data import load_squad
from qa_engine.pipeline import StageTimes


def measure(args: argparse.Namespace) -> dict:
    squad = load_squad(args.data)
    examples = squad.examples[: args.questions]
    questions = [e.question for e in examples]
    contexts = [e.context for e in examples]
    engine = QAEngine(args.export, device=args.device, threads=args.threads)
    if args.cuda_graphs:
        engine.enable_cuda_graphs(max_windows=args.batch_size)
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    # Warm-up: every batch shape once.
    list(engine.decode(questions, contexts, batch_size=args.batch_size, overlap=False))
    modes = {"serial": False, "overlapped": True}
    walls: dict[str, list[float]] = {m: [] for m in modes}
    stats = {m: StageTimes() for m in modes}
    answers: dict[str, list[str]] = {}
    for round_ in range(args.rounds):
        order = list(modes) if round_ % 2 == 0 else list(reversed(modes))
        for mode in order:
            started = time.perf_counter()
            decoded = list(
                engine.decode(
                    questions,
                    contexts,
                    batch_size=args.batch_size,
                    overlap=modes[mode],
                    stats=stats[mode],
                )
            )
            walls[mode].append(time.perf_counter() - started)
            answers.setdefault(mode, [d.answers[0].text for d in decoded])
    result = {
        "export": str(args.export),
        "data": str(args.data),
        "questions": len(questions),
        "windows": sum(len(w) for w in engine.tokenizer.encode_batch(questions, contexts)),
        "batch_size": args.batch_size,
        "rounds": args.rounds,
        "device": args.device,
        "providers": engine.providers,
        "cuda_graphs": args.cuda_graphs,
        "threads": args.threads,
        "cores": len(os.sched_getaffinity(0)),
        "loadavg_before": load_before,
        "same_answers": answers["serial"] == answers["overlapped"],
        "modes": {},
    }
    for mode in modes:
        s = stats[mode]
        n = s.questions
        result["modes"][mode] = {
            "qps_median": len(questions) / statistics.median(walls[mode]),
            "wall_s": walls[mode],
            "host_ms_per_question": s.host_ms_per_question,
            "tokenize_ms_per_question": 1000 * s.tokenize_s / n,
            "pad_ms_per_question": 1000 * s.pad_s / n,
            "decode_ms_per_question": 1000 * s.decode_s / n,
            "run_ms_per_question": 1000 * s.run_s / n,
            "wall_ms_per_question": 1000 * s.wall_s / n,
        }
    result["speedup"] = (
        result["modes"]["overlapped"]["qps_median"] / result["modes"]["serial"]["qps_median"]
    )
    result["loadavg_after"] = Path("/proc/loadavg").read_text().split()[:3]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("export", type=Path)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--questions", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--cuda-graphs", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args(argv)
    result = measure(args)
    print(
        f"{result['questions']} questions ({result['windows']} windows), batch "
        f"{result['batch_size']}, {result['rounds']} rounds on {result['providers'][0]}, "
        f"{result['cores']} cores; load average {' '.join(result['loadavg_before'])} -> "
        f"{' '.join(result['loadavg_after'])}; same answers: {result['same_answers']}"
    )
    print("| mode | q/s (median) | host ms/q | tokenize | pad | decode | model call | wall ms/q |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for mode, m in result["modes"].items():
        cells = [
            m[k]
            for k in (
                "host_ms_per_question",
                "tokenize_ms_per_question",
                "pad_ms_per_question",
                "decode_ms_per_question",
                "run_ms_per_question",
                "wall_ms_per_question",
            )
        ]
        print(f"| {mode} | {m['qps_median']:.1f} | " + " | ".join(f"{v:.2f}" for v in cells) + " |")
    print(f"overlapped / serial: {result['speedup']:.3f}x")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["same_answers"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
