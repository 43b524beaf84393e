"""Official SQuAD EM/F1 and end-to-end questions/s of one export on one device, with the
host pipeline's share; optionally on captured CUDA graphs.

    python benchmarks/gpu_eval.py EXPORT_DIR --data dev-v1.1.json.gz --device cuda \\
        [--cuda-graphs] [--batch-size 64] [--out result.json]

One untimed pass over the first batch warms up (and captures the graphs); the timed pass
answers every question once, tokenization and decoding included.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from qa_engine import QAEngine
from qa_engine.data import load_squad
from qa_engine.metrics import squad_metrics
from qa_engine.pipeline import StageTimes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("export", type=Path)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--cuda-graphs", action="store_true")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    squad = load_squad(args.data)
    questions = [e.question for e in squad.examples]
    contexts = [e.context for e in squad.examples]
    started = time.perf_counter()
    engine = QAEngine(args.export, device=args.device)
    graphs = engine.enable_cuda_graphs(max_windows=args.batch_size) if args.cuda_graphs else 0
    load_s = time.perf_counter() - started
    engine.predict(questions[: args.batch_size], contexts[: args.batch_size], batch_size=64)
    stats = StageTimes()
    started = time.perf_counter()
    decoded = list(engine.decode(questions, contexts, batch_size=args.batch_size, stats=stats))
    seconds = time.perf_counter() - started
    predictions = {e.id: d.answers[0].text for e, d in zip(squad.examples, decoded, strict=True)}
    metrics = dict(squad_metrics(predictions, squad.examples, squad.version_2))
    metrics.setdefault("exact", metrics.get("exact_match"))  # v1.1 names it exact_match
    result = {
        "export": str(args.export),
        "precision": engine.manifest.precision,
        "device": args.device,
        "providers": engine.providers,
        "cuda_graphs": graphs,
        "batch_size": args.batch_size,
        "load_s": load_s,
        "questions": len(questions),
        "seconds": seconds,
        "questions_per_second": len(questions) / seconds,
        "metrics": metrics,
        "stages": stats.to_dict(),
    }
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
