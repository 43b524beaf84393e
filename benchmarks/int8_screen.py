"""Screen int8 candidate graphs side by side (issue 19, part 3): windows/s at batch 1 and at
batch N (interleaved, same windows), logit error and argmax agreement against the first
graph, and batch invariance (max |logit| difference of a window run batched vs alone).

    N=120 BS=32 ROUNDS=2 python benchmarks/int8_screen.py export/tokenizer.json \\
        fp32=export/model.onnx int8-nncf=cand/int8-nncf.onnx ...

Windows come from SQuAD train questions (START..START+N), 256 tokens, stride 128, padded
to the runtime's length buckets; the first graph is the reference.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import onnxruntime as ort

from qa_engine.batching import BatchLimits, length_buckets, pad_windows, plan_batches
from qa_engine.data import load_squad
from qa_engine.tokenization import QATokenizer

TRAIN = os.environ.get("TRAIN", "../shared/data/squad-v1.1/train-v1.1.reconstructed.json.gz")
N = int(os.environ.get("N", "120"))
ROUNDS = int(os.environ.get("ROUNDS", "2"))
START = int(os.environ.get("START", "40000"))
BATCH = int(os.environ.get("BS", "32"))
Logits = list[tuple[np.ndarray, np.ndarray]]


def session(path: str) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def run(s: ort.InferenceSession, windows: list, pad_id: int, batch: int) -> Logits:
    """Logits of every window, ``batch`` windows per call (length-sorted, bucket-padded)."""
    names = [i.name for i in s.get_inputs()]
    out: Logits = [None] * len(windows)  # type: ignore[list-item]
    limits = BatchLimits(batch, None, length_buckets(256) if batch > 1 else None)
    for b in plan_batches([len(w) for w in windows], limits):
        arrays = dict(
            zip(
                ("input_ids", "attention_mask", "token_type_ids"),
                pad_windows([windows[i] for i in b.indices], b.width, pad_id),
                strict=True,
            )
        )
        start, end = s.run(None, {n: arrays[n] for n in names})[:2]  # (batch, seq) each
        for row, i in enumerate(b.indices):
            n = len(windows[i])
            out[i] = (start[row, :n], end[row, :n])
    return out


def max_diff(a: Logits, b: Logits) -> float:
    return max(float(np.abs(np.stack(x) - np.stack(y)).max()) for x, y in zip(a, b, strict=True))


def main() -> None:
    tokenizer_json, *specs = sys.argv[1:]
    graphs = dict(spec.split("=", 1) for spec in specs)
    tok = QATokenizer.from_file(tokenizer_json, 256, 128)
    ex = load_squad(TRAIN).examples[START : START + N]
    windows = [
        w for ws in tok.encode_batch([e.question for e in ex], [e.context for e in ex]) for w in ws
    ]
    print(f"{len(windows)} windows, mean length {np.mean([len(w) for w in windows]):.0f}")
    sessions = {name: session(path) for name, path in graphs.items()}
    for s in sessions.values():  # warm every shape up once
        run(s, windows, tok.pad_id, BATCH)
        run(s, windows, tok.pad_id, 1)
    best = {name: {1: float("inf"), BATCH: float("inf")} for name in sessions}
    logits: dict[str, dict[int, Logits]] = {name: {} for name in sessions}
    for _ in range(ROUNDS):
        for name, s in sessions.items():
            for batch in (1, BATCH):
                t0 = time.perf_counter()
                logits[name][batch] = run(s, windows, tok.pad_id, batch)
                best[name][batch] = min(best[name][batch], time.perf_counter() - t0)
    print(f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}, {ROUNDS} rounds, best of each")
    print(
        f"{'graph':<18}{'b1 win/s':>9}{f'b{BATCH} win/s':>10}{f'b{BATCH}/b1':>8}"
        f"{'b1 vs ref':>10}{'max|d| ref':>11}{'agree':>7}{'max|d| batched':>16}"
    )
    ref = next(iter(sessions))
    for name in sessions:
        b1, bn = len(windows) / best[name][1], len(windows) / best[name][BATCH]
        one, many = logits[name][1], logits[name][BATCH]
        agree = np.mean(
            [
                (a[0].argmax(), a[1].argmax()) == (b[0].argmax(), b[1].argmax())
                for a, b in zip(one, logits[ref][1], strict=True)
            ]
        )
        print(
            f"{name:<18}{b1:9.1f}{bn:10.1f}{bn / b1:8.2f}"
            f"{best[ref][1] / best[name][1]:10.2f}{max_diff(one, logits[ref][1]):11.3f}"
            f"{agree:7.1%}{max_diff(one, many):16.2e}"
        )


if __name__ == "__main__":
    main()
