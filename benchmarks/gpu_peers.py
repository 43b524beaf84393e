"""The GPU peers of issue 18, model forward only: PyTorch eager fp16,
``torch.compile(mode="reduce-overhead")`` fp16 (CUDA graphs under the hood), and the floor:
one CUDA graph of the eager fp16 forward replayed with no host work at all.

Each is timed with CUDA events after warm-up, on random token ids of exactly ``--seq``
tokens, at each batch size; p50 of per-call times. No tokenization or decoding: compare
with qa-engine's end-to-end numbers knowing that these leave the host work out.

    python benchmarks/gpu_peers.py --model DIR [--seq 384] [--batch-sizes 1,32]
        [--runs 50] [--out benchmarks/results/gpu/peers.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path


def timed(fn: Callable[[], object], runs: int, warmup: int) -> dict[str, float]:
    """p50/mean/min milliseconds of ``fn`` per call, each call synchronised."""
    import torch

    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(runs):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return {
        "p50_ms": statistics.median(times),
        "mean_ms": statistics.fmean(times),
        "min_ms": min(times),
    }


def measure_batch(model, compiled, feeds: dict, runs: int) -> dict[str, dict[str, float]]:
    """The three peers at one input shape."""
    import torch

    def eager() -> object:
        with torch.inference_mode():
            return model(**feeds)

    def compiled_call() -> object:
        with torch.inference_mode():
            return compiled(**feeds)

    out = {"eager fp16": timed(eager, runs, 5)}
    started = time.perf_counter()
    compiled_call()  # compiles, then records its CUDA graphs on the next calls
    torch.cuda.synchronize()
    first_call_s = time.perf_counter() - started
    out["torch.compile reduce-overhead fp16"] = {
        **timed(compiled_call, runs, 5),
        "first_call_s": first_call_s,
    }
    graph = torch.cuda.CUDAGraph()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            eager()
    torch.cuda.current_stream().wait_stream(stream)
    with torch.inference_mode(), torch.cuda.graph(graph):
        model(**feeds)
    out["one CUDA graph (floor)"] = timed(graph.replay, runs, 5)
    return out


def measure(model_dir: str, seq: int, batch_sizes: list[int], runs: int) -> dict:
    import torch
    from transformers import AutoModelForQuestionAnswering

    model = AutoModelForQuestionAnswering.from_pretrained(model_dir).half().cuda().eval()
    compiled = torch.compile(model, mode="reduce-overhead")
    results: dict[str, dict[str, dict]] = {}
    for batch in batch_sizes:
        ids = torch.randint(1000, model.config.vocab_size, (batch, seq), device="cuda")
        feeds = {
            "input_ids": ids,
            "attention_mask": torch.ones_like(ids),
            "token_type_ids": torch.zeros_like(ids),
        }
        for name, row in measure_batch(model, compiled, feeds, runs).items():
            row["questions_per_s"] = batch / (row["p50_ms"] / 1000)
            results.setdefault(name, {})[str(batch)] = row
    return {
        "model": model_dir,
        "seq": seq,
        "runs": runs,
        "gpu": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "peers": results,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="PyTorch QA model dir")
    parser.add_argument("--seq", type=int, default=384)
    parser.add_argument("--batch-sizes", default="1,32")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/gpu/peers.json"))
    args = parser.parse_args(argv)
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    result = measure(args.model, args.seq, sizes, args.runs)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{result['gpu']}, torch {result['torch']} (CUDA {result['cuda']}), seq {args.seq}")
    print("| peer (forward only) | batch | p50 ms | q/s |")
    print("| --- | ---: | ---: | ---: |")
    for name, by_batch in result["peers"].items():
        for batch, row in by_batch.items():
            print(f"| {name} | {batch} | {row['p50_ms']:.3f} | {row['questions_per_s']:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
