"""CUDA graphs: one captured graph per (rows, width) bucket, fed through fixed device buffers.

A CUDA graph replays a recorded sequence of kernel launches at fixed device addresses and
shapes, so a batch can only run on a graph captured for its exact shape, with its inputs
copied into that graph's buffers. The plan here: the widths are the length buckets
(:func:`~qa_engine.batching.length_buckets`), the rows per width the powers of two up to
what the batch budgets allow (:func:`~qa_engine.batching.row_sizes`); a batch runs on
the smallest bucket that holds it, its extra rows and columns padding with attention 0,
their outputs dropped (a row's logits do not depend on the other rows).

Pure bookkeeping: the device side is a :class:`GraphBinder`. On a GPU it is
``qa_engine.session.CudaGraphBinder`` (onnxruntime's CUDA provider with
``enable_cuda_graph``, one ``gpu_graph_id`` per bucket, IO binding to preallocated
``OrtValue`` buffers); the tests use a host-memory binder to check the planning, the
buffer reuse and the masking on a CPU.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from qa_engine.batching import BatchLimits, length_buckets, max_rows_for, row_sizes

INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")


@dataclass(frozen=True)
class GraphBucket:
    """One captured shape: ``rows`` windows padded to ``width`` tokens, graph ``graph_id``."""

    rows: int
    width: int
    graph_id: int


class GraphPlan:
    """The buckets to capture, and which one a batch runs on.

    Args:
        widths: Padded widths, ascending (the length buckets).
        max_windows: Rows per batch at most.
        max_tokens: Padded tokens per batch at most (None: rows bound only).
    """

    def __init__(
        self, widths: Sequence[int], max_windows: int, max_tokens: int | None = None
    ) -> None:
        widths = tuple(widths)
        if not widths or list(widths) != sorted(set(widths)) or widths[0] < 1:
            raise ValueError(f"widths must be positive and strictly ascending, got {widths}")
        self.widths = widths
        self.max_windows = max_windows
        self.max_tokens = max_tokens
        self.rows = {w: row_sizes(max_rows_for(w, max_windows, max_tokens)) for w in widths}
        # Graph ids start at 1: onnxruntime reserves -1 (no graph) and uses 0 as default.
        ids = iter(range(1, 1 + sum(len(r) for r in self.rows.values())))
        self.buckets = [GraphBucket(r, w, next(ids)) for w in widths for r in self.rows[w]]
        self._index = {(b.rows, b.width): b for b in self.buckets}

    @classmethod
    def for_limits(cls, limits: BatchLimits, max_seq_length: int) -> GraphPlan:
        """The plan for a batcher's or engine's limits (widths: its buckets, else the
        length buckets of ``max_seq_length``)."""
        widths = limits.buckets or length_buckets(max_seq_length)
        return cls(widths, limits.max_windows, limits.max_tokens)

    def limits(self) -> BatchLimits:
        """Batch limits whose batches all fit a bucket."""
        return BatchLimits(self.max_windows, self.max_tokens, self.widths)

    def bucket_for(self, rows: int, width: int) -> GraphBucket:
        """The smallest bucket holding ``rows`` windows of at most ``width`` tokens.

        Raises:
            ValueError: Wider than the widest bucket or more rows than its width allows.
        """
        i = bisect.bisect_left(self.widths, width)
        if i == len(self.widths):
            raise ValueError(
                f"a batch {width} tokens wide exceeds the widest captured graph "
                f"({self.widths[-1]}); captured widths: {self.widths}"
            )
        bucket_width = self.widths[i]
        sizes = self.rows[bucket_width]
        j = bisect.bisect_left(sizes, rows)
        if j == len(sizes):
            raise ValueError(
                f"a batch of {rows} windows exceeds the {sizes[-1]} rows captured at width "
                f"{bucket_width}; plan batches with GraphPlan.limits()"
            )
        return self._index[(sizes[j], bucket_width)]

    def __iter__(self) -> Iterator[GraphBucket]:
        return iter(self.buckets)

    def __len__(self) -> int:
        return len(self.buckets)


class GraphBinder(Protocol):
    """The device side: buffers bound once per bucket, inputs copied in, a graph replayed."""

    input_names: Sequence[str]  # the model's inputs (token_type_ids may be absent)

    def allocate(self, bucket: GraphBucket) -> None:
        """Allocate and bind the bucket's input and output buffers (once per bucket)."""
        ...

    def write(self, bucket: GraphBucket, name: str, array: np.ndarray) -> None:
        """Copy ``array`` (the bucket's shape) into the bucket's bound input ``name``."""
        ...

    def replay(self, bucket: GraphBucket) -> tuple[np.ndarray, np.ndarray]:
        """Run the bucket's graph (captured on its first runs); start and end logits,
        ``(rows, width)`` float32 on the host."""
        ...


class GraphRunner:
    """A :class:`~qa_engine.pipeline.BatchRunner` over captured buckets.

    Batches are padded to their bucket by the pipeline (:meth:`padded_shape`), copied
    into the bucket's buffers and replayed. One replay at a time: a bucket's buffers are
    shared, so calls from several threads are serialised.
    """

    def __init__(self, plan: GraphPlan, binder: GraphBinder) -> None:
        self.plan = plan
        self.binder = binder
        self.allocated: set[int] = set()  # graph ids whose buffers exist
        self.replays: dict[int, int] = {}  # graph id -> replays (warm-up included)
        self._lock = threading.Lock()

    def padded_shape(self, rows: int, width: int) -> tuple[int, int]:
        bucket = self.plan.bucket_for(rows, width)
        return bucket.rows, bucket.width

    def run(
        self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        rows, width = input_ids.shape
        bucket = self.plan.bucket_for(rows, width)
        if (bucket.rows, bucket.width) != (rows, width):
            raise ValueError(
                f"a ({rows}, {width}) batch is not a captured shape; pad it to "
                f"({bucket.rows}, {bucket.width}) (GraphRunner.padded_shape)"
            )
        arrays = dict(zip(INPUT_NAMES, (input_ids, attention_mask, token_type_ids), strict=True))
        with self._lock:
            if bucket.graph_id not in self.allocated:
                self.binder.allocate(bucket)
                self.allocated.add(bucket.graph_id)
            for name in self.binder.input_names:
                self.binder.write(bucket, name, arrays[name])
            outputs = self.binder.replay(bucket)
            self.replays[bucket.graph_id] = self.replays.get(bucket.graph_id, 0) + 1
        return outputs

    def capture(self, pad_id: int, runs: int = 2) -> int:
        """Allocate every bucket and run it ``runs`` times on padding (onnxruntime
        captures a graph on its first runs), so no capture happens while serving.

        Returns:
            The buckets captured.
        """
        for bucket in self.plan:
            ids = np.full((bucket.rows, bucket.width), pad_id, dtype=np.int64)
            attention = np.zeros_like(ids)
            attention[:, 0] = 1  # one real token per row
            for _ in range(runs):
                self.run(ids, attention, np.zeros_like(ids))
        return len(self.plan)
