"""How many padded tokens one onnxruntime call needs before it runs at full speed.

A batch of mixed lengths is padded to its longest window, so splitting it by length saves
padded tokens; but a call with few tokens can cost more per token (small matrix products,
per-call overhead: int8 on onnxruntime's CPU provider needed ~500 tokens a call on 2 EPYC
cores, fp32 a few dozen). :func:`measure_min_call_tokens` times all-padding batches of
growing rows on the loaded session and returns the fewest padded tokens a call needs to
run within ``slack`` of the best per-token time seen; the batch planner
(``BatchLimits.min_call_tokens``, :func:`qa_engine.batching.plan_batches`) then splits a
batch only into calls at least that large. Measured rather than assumed: the threshold
differs by provider, precision, model size and CPU by more than 10x.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from qa_engine.batching import row_sizes, warmup_windows
from qa_engine.tokenization import Window

RunBatch = Callable[[Sequence[Window], int], object]


def measure_min_call_tokens(
    run_batch: RunBatch,
    pad_id: int,
    width: int,
    max_rows: int,
    *,
    repeats: int = 3,
    slack: float = 1.15,
    timer: Callable[[], float] = time.perf_counter,
) -> int:
    """Fewest padded tokens (``rows x width``) at which a call runs near full speed.

    Args:
        run_batch: Runs one batch (``engine.run_batch``).
        pad_id: The tokenizer's padding id (the batches are all padding).
        width: Tokens per row of the timed batches.
        max_rows: The largest batch timed (rows: :func:`row_sizes` up to it).
        repeats: Timed runs per size after one untimed (the best is kept).
        slack: A size is fast enough when its time per token is within this factor of
            the best size's.
        timer: The clock (seconds).
    """
    if repeats < 1 or slack < 1.0:
        raise ValueError(f"need repeats >= 1 and slack >= 1, got {repeats}, {slack}")
    per_token: dict[int, float] = {}
    for rows in row_sizes(max(1, max_rows)):
        windows = warmup_windows(rows, width, pad_id)
        run_batch(windows, width)  # first run of a shape: compile, allocate
        best = float("inf")
        for _ in range(repeats):
            started = timer()
            run_batch(windows, width)
            best = min(best, timer() - started)
        per_token[rows] = best / (rows * width)
    fastest = min(per_token.values())
    rows = next(r for r, seconds in per_token.items() if seconds <= slack * fastest)
    return rows * width
