"""One provider/precision row of the trust run: self-check verdict, dev F1, batch invariance.

The self-check runs as QAEngine does at load. An engine the check refuses is scored too,
with verify=False, so the verdict can be compared with what the path really answers.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from qa_engine.data import load_squad
from qa_engine.engine import QAEngine
from qa_engine.metrics import squad_metrics
from qa_engine.selfcheck import SelfCheckError


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("export_dir")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data", required=True)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--invariance-samples", type=int, default=300)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    began = time.perf_counter()
    refusal = None
    try:
        engine = QAEngine(args.export_dir, device=args.device, threads=args.threads)
    except SelfCheckError as err:
        refusal = str(err)
        engine = QAEngine(args.export_dir, device=args.device, threads=args.threads, verify=False)
    verdict = engine.run_self_check() if refusal else engine.self_check
    load_s = time.perf_counter() - began
    began = time.perf_counter()
    unchecked = QAEngine(args.export_dir, device=verdict.device, threads=args.threads, verify=False)
    load_unchecked_s = time.perf_counter() - began
    del unchecked
    print(verdict.summary() if refusal is None else refusal, file=sys.stderr)

    examples = load_squad(args.data).examples[: args.samples]
    questions = [ex.question for ex in examples]
    contexts = [ex.context for ex in examples]
    began = time.perf_counter()
    answers = engine.predict(questions, contexts, batch_size=32)
    seconds = time.perf_counter() - began
    predictions = {ex.id: a.text for ex, a in zip(examples, answers, strict=True)}
    metrics = squad_metrics(predictions, examples, version_2=False)

    n = args.invariance_samples
    single = [engine(q, c) for q, c in zip(questions[:n], contexts[:n], strict=True)]
    differ = sum(
        (a.text, a.start, a.end) != (b.text, b.start, b.end)
        for a, b in zip(answers[:n], single, strict=True)
    )
    print(
        json.dumps(
            {
                "export": args.export_dir,
                "device": args.device,
                "precision": verdict.precision,
                "providers": engine.providers,
                "self_check": verdict.to_dict(),
                "refused": refusal,
                "f1": metrics["f1"],
                "exact_match": metrics["exact_match"],
                "questions": len(examples),
                "questions_per_second": len(examples) / seconds,
                "batch_invariant": engine.batch_invariant,
                "batch32_vs_single_differ": differ,
                "invariance_questions": n,
                "load_s": load_s,
                "load_without_check_s": load_unchecked_s,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
