"""The one batching rule: windows grouped by length into token-budgeted, padded batches.

``QAEngine.run_windows`` (offline) and the serve batching core (online, windows of many
requests) both plan their onnxruntime calls here, so a window is padded and grouped the
same way wherever it comes from. Pure numpy: no onnxruntime, no asyncio.

A batch is bounded by ``max_windows`` (rows) and ``max_tokens`` (padded tokens: rows x
padded width); with ``min_call_tokens`` it is also split by length where smaller calls cost
no more per token (the serve batcher measures that floor at warm-up). Windows are taken
longest first, so every batch is padded to its first member's width (rounded up to a
bucket when ``buckets`` are given: a small set of shapes that an OpenVINO session can
compile and warm up before it is needed), and, with ``pad_rows``, to one of
:func:`row_sizes` rows. On OpenVINO every new input shape costs a slow first run, so the
engine (offline) and the server use the same buckets and row sizes and run each shape
once ahead (:func:`warmup_shapes`, ``QAEngine.warm_up``).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from qa_engine.tokenization import Window


@dataclass(frozen=True)
class BatchLimits:
    """How many windows, and how many padded tokens, one onnxruntime call may take.

    Attributes:
        max_windows: Rows per call.
        max_tokens: Padded tokens per call (rows x padded width); None: no token bound.
            A single window longer than the budget still runs, alone.
        buckets: Padded widths allowed, ascending; a batch is padded to the smallest
            bucket that holds its longest window (None: to the longest window itself).
        pad_rows: Also pad a batch's rows up to one of :func:`row_sizes` (repeating a
            window; its copies are cut off), so only shapes run ahead ever run.
        min_call_tokens: Padded tokens below which a call runs no faster (the session
            needs about this many to reach its full per-token speed; see
            :mod:`qa_engine.call_cost`). When given, :func:`plan_batches` splits windows
            of unlike lengths into separate calls wherever that saves padded tokens
            without making a call smaller than this. None: fill every call (fewest calls).
    """

    max_windows: int = 32
    max_tokens: int | None = None
    buckets: tuple[int, ...] | None = None
    pad_rows: bool = False
    min_call_tokens: int | None = None

    def __post_init__(self) -> None:
        for name in ("max_windows", "max_tokens", "min_call_tokens"):
            value = getattr(self, name)
            if value is None and name != "max_windows":
                continue
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise TypeError(f"{name} must be an int, got {type(value).__name__}")
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if self.buckets is not None:
            if not self.buckets or any(b < 1 for b in self.buckets):
                raise ValueError(f"buckets must be positive widths, got {self.buckets}")
            if list(self.buckets) != sorted(set(self.buckets)):
                raise ValueError(f"buckets must be strictly ascending, got {self.buckets}")

    def width_for(self, length: int) -> int:
        """Padded width of a batch whose longest window has ``length`` tokens."""
        if self.buckets is None:
            return length
        i = bisect.bisect_left(self.buckets, length)
        return self.buckets[i] if i < len(self.buckets) else length

    def max_rows(self, width: int) -> int:
        """Most rows a batch ``width`` tokens wide may have under both bounds."""
        return max_rows_for(width, self.max_windows, self.max_tokens)

    def rows_for(self, rows: int, width: int) -> int:
        """Rows a batch of ``rows`` windows runs with (padded up only with ``pad_rows``)."""
        if not self.pad_rows:
            return rows
        return next((size for size in row_sizes(self.max_rows(width)) if size >= rows), rows)

    def shapes(self, widths: Sequence[int] | None = None) -> list[tuple[int, int]]:
        """Every ``(rows, width)`` a batch may run with, for warm-up.

        Args:
            widths: The widths to cover (default: ``buckets``; there must be some).
        """
        widths = self.buckets if widths is None else tuple(widths)
        if not widths:
            raise ValueError("shapes need length buckets (or widths)")
        if not self.pad_rows:
            return [(1, width) for width in widths]
        return [(rows, width) for width in widths for rows in row_sizes(self.max_rows(width))]


def length_buckets(max_seq_length: int, smallest: int = 32) -> tuple[int, ...]:
    """Powers of two from ``smallest`` up to, and ending at, ``max_seq_length``.

    E.g. 384 -> (32, 64, 128, 256, 384): at most ~2x padding on the shortest windows,
    a handful of shapes to warm up.
    """
    widths = []
    width = min(smallest, max_seq_length)
    while width < max_seq_length:
        widths.append(width)
        width *= 2
    widths.append(max_seq_length)
    return tuple(widths)


def row_sizes(max_rows: int) -> tuple[int, ...]:
    """Batch sizes a row-padded batch may have: powers of two up to, and ending at, max_rows.

    E.g. 32 -> (1, 2, 4, 8, 16, 32): the serve batcher's warmed-up shapes and the CUDA
    graphs' captured buckets, at most ~2x padding rows.
    """
    sizes, rows = [], 1
    while rows < max_rows:
        sizes.append(rows)
        rows *= 2
    return (*sizes, max_rows)


def max_rows_for(width: int, max_windows: int, max_tokens: int | None) -> int:
    """Rows a batch ``width`` wide may have under both budgets (at least one)."""
    if max_tokens is None:
        return max(1, max_windows)
    return max(1, min(max_windows, max_tokens // width))


@dataclass(frozen=True)
class PlannedBatch:
    """One onnxruntime call: which windows (indices into the input), their padded width and
    the rows it runs with (None: one per window; more with ``BatchLimits.pad_rows``)."""

    indices: tuple[int, ...]
    width: int
    rows: int | None = None

    @property
    def padded_rows(self) -> int:
        return len(self.indices) if self.rows is None else self.rows

    @property
    def padded_tokens(self) -> int:
        return self.padded_rows * self.width


def plan_batches(lengths: Sequence[int], limits: BatchLimits) -> list[PlannedBatch]:
    """Group windows of the given token lengths into batches, longest first.

    Each batch is a run of consecutive windows in longest-first order, padded to its first
    (longest) member's width. Without ``limits.min_call_tokens`` every batch is filled up
    to the limits (fewest calls); with it, the runs are chosen to minimize the estimated
    cost, each call counting ``max(padded tokens, min_call_tokens)``: a batch of mixed
    lengths is split by length where the session would not run the smaller calls slower.

    Returns:
        Batches covering every index exactly once; each within ``limits`` (a window
        longer than ``max_tokens`` gets a batch of its own).
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    order = np.argsort(-lengths, kind="stable").tolist()
    if limits.min_call_tokens is None:
        runs = _fill_runs(order, lengths, limits)
    else:
        runs = _cheapest_runs(order, lengths, limits, limits.min_call_tokens)
    return [
        _planned(order[start:end], limits.width_for(int(lengths[order[start]])), limits)
        for start, end in runs
    ]


def _fill_runs(order: list[int], lengths: np.ndarray, limits: BatchLimits) -> list[tuple[int, int]]:
    """Greedy: each run as long as the limits allow."""
    runs: list[tuple[int, int]] = []
    start = 0
    while start < len(order):
        end = start + _longest_run(order, lengths, limits, start)
        runs.append((start, end))
        start = end
    return runs


def _longest_run(order: list[int], lengths: np.ndarray, limits: BatchLimits, start: int) -> int:
    width = limits.width_for(int(lengths[order[start]]))
    return min(limits.max_rows(width), len(order) - start)


def _cheapest_runs(
    order: list[int], lengths: np.ndarray, limits: BatchLimits, min_call_tokens: int
) -> list[tuple[int, int]]:
    """Runs minimizing the sum of ``max(padded tokens, min_call_tokens)`` (dynamic
    programming over the sorted order, O(windows x max_windows)); ties go to fewer calls."""
    n = len(order)
    cost = [0.0] * (n + 1)  # cost[i]: cheapest plan of order[i:]
    calls = [0] * (n + 1)
    step = [0] * (n + 1)
    for start in range(n - 1, -1, -1):
        width = limits.width_for(int(lengths[order[start]]))
        best: tuple[float, int, int] | None = None
        for rows in range(1, _longest_run(order, lengths, limits, start) + 1):
            padded = limits.rows_for(rows, width) * width
            candidate = (
                max(padded, min_call_tokens) + cost[start + rows],
                1 + calls[start + rows],
                rows,
            )
            if best is None or candidate[:2] < best[:2]:
                best = candidate
        cost[start], calls[start], step[start] = best
    runs, start = [], 0
    while start < n:
        runs.append((start, start + step[start]))
        start += step[start]
    return runs


def _planned(indices: list[int], width: int, limits: BatchLimits) -> PlannedBatch:
    rows = limits.rows_for(len(indices), width)
    return PlannedBatch(tuple(indices), width, None if rows == len(indices) else rows)


def warmup_windows(rows: int, width: int, pad_id: int) -> list[Window]:
    """``rows`` all-padding windows ``width`` tokens long: a batch that compiles a shape."""
    window = Window(
        np.full(width, pad_id, dtype=np.int64),
        np.zeros(width, dtype=np.int64),
        np.zeros((width, 2), dtype=np.int64),
        np.zeros(width, dtype=bool),
    )
    return [window] * rows


def pad_windows(
    windows: Sequence[Window], width: int, pad_id: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``input_ids``, ``attention_mask``, ``token_type_ids``, each ``(batch, width)`` int64."""
    arrays = tuple(np.empty((len(windows), width), dtype=np.int64) for _ in range(3))
    return fill_padded(windows, arrays, pad_id)


def fill_padded(
    windows: Sequence[Window], arrays: tuple[np.ndarray, ...], pad_id: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Write ``windows`` into ``(rows, width)`` arrays; rows and columns beyond them are
    padding with attention 0 (their outputs are dropped)."""
    input_ids, attention, type_ids = arrays  # (rows, width) each
    input_ids.fill(pad_id)
    attention.fill(0)
    type_ids.fill(0)
    width = input_ids.shape[1]
    for row, window in enumerate(windows):
        n = len(window)
        if n > width:
            raise ValueError(f"window of {n} tokens does not fit a batch {width} wide")
        input_ids[row, :n] = window.input_ids
        attention[row, :n] = 1
        type_ids[row, :n] = window.type_ids
    return input_ids, attention, type_ids
