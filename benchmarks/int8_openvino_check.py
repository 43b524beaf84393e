"""One export on the OpenVINO provider and on the CPU provider (issue 19, part 3).

For each device: the providers QAEngine settled on, its self-check verdict, F1 on the first
N SQuAD v1.1 dev questions at batch 32, and how many of the first 60 answers change when
each question runs alone. Run it in the OpenVINO environment (onnxruntime-openvino):

    .venv-openvino/bin/python benchmarks/int8_openvino_check.py EXPORT_DIR 300
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

from qa_engine.data import load_squad
from qa_engine.engine import QAEngine
from qa_engine.metrics import squad_metrics

DEV = os.environ.get("DEV", "../shared/data/squad-v1.1/dev-v1.1.json.gz")
ALONE = 60  # questions also run one at a time


def main() -> None:
    path, count = sys.argv[1], int(sys.argv[2])
    examples = load_squad(DEV).examples[:count]
    questions, contexts = [e.question for e in examples], [e.context for e in examples]
    out: dict = {"loadavg": os.getloadavg()}
    answers = {}
    for device in ("openvino", "cpu"):
        t0 = time.perf_counter()
        engine = QAEngine(path, device=device, threads=2)
        batched = engine.predict(questions, contexts, batch_size=32)
        alone = [engine(q, c) for q, c in zip(questions[:ALONE], contexts[:ALONE], strict=True)]
        answers[device] = [a.text for a in batched]
        predictions = {e.id: a.text for e, a in zip(examples, batched, strict=True)}
        out[device] = {
            "providers": engine.providers,
            "self_check": engine.self_check.summary(),
            "batch_invariant": engine.batch_invariant,
            "openvino_share": getattr(engine.session, "openvino_share", None),
            "b32_vs_b1_differ": sum(a.text != b.text for a, b in zip(batched, alone, strict=False)),
            "f1": squad_metrics(predictions, examples, False)["f1"],
            "seconds": round(time.perf_counter() - t0, 1),
        }
    same = [a == b for a, b in zip(answers["openvino"], answers["cpu"], strict=True)]
    out["answers_agree_openvino_vs_cpu"] = float(np.mean(same))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
