"""The stages' shared parts: what a batch runner is, padding into reusable buffers, and the
per-stage timing counters (pure numpy).

:mod:`qa_engine.pipeline` strings them into the overlapped host pipeline; the engine's
``run_batch`` and the serve batcher pad and run through :func:`run_padded`, so a batch is
padded the same way wherever it comes from: padding rows and columns have attention 0 and
their outputs are dropped.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Protocol

import numpy as np

from qa_engine.batching import fill_padded
from qa_engine.tokenization import Window

# Batches padded ahead of the one running (the pipeline's queues, the pool's slots).
DEPTH = 2
# How often a blocked stage looks whether the pipeline was stopped.
POLL_S = 0.05


@dataclass
class StageTimes:
    """Seconds spent in each stage, summed over calls (pass one in to accumulate).

    Attributes:
        tokenize_s: Tokenizing questions into windows.
        pad_s: Planning batches and padding them into buffers.
        run_s: Model calls (host-to-device copies and the logits back included).
        decode_s: Decoding spans from the logits.
        wall_s: Wall time of the whole call, first request to last answer.
        questions: Questions answered.
        windows: Windows run.
        batches: Model calls.
        padded_tokens: Tokens sent to the model, padding included.
        real_tokens: Tokens of the windows themselves.
    """

    tokenize_s: float = 0.0
    pad_s: float = 0.0
    run_s: float = 0.0
    decode_s: float = 0.0
    wall_s: float = 0.0
    questions: int = 0
    windows: int = 0
    batches: int = 0
    padded_tokens: int = 0
    real_tokens: int = 0

    @property
    def host_s(self) -> float:
        """Host work outside the model call: tokenize + pad + decode."""
        return self.tokenize_s + self.pad_s + self.decode_s

    @property
    def host_ms_per_question(self) -> float | None:
        """Host milliseconds per question (None before any question)."""
        return 1000.0 * self.host_s / self.questions if self.questions else None

    def add(self, other: StageTimes) -> None:
        """Add ``other``'s counters to these."""
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)

    def to_dict(self) -> dict[str, float | int | None]:
        """The counters plus ``host_s`` and ``host_ms_per_question``."""
        return {
            **asdict(self),
            "host_s": self.host_s,
            "host_ms_per_question": self.host_ms_per_question,
        }


class BatchRunner(Protocol):
    """Runs one padded batch: what the pipeline's run stage calls."""

    def padded_shape(self, rows: int, width: int) -> tuple[int, int]:
        """The ``(rows, width)`` a batch of ``rows`` windows padded to ``width`` is sent as."""
        ...

    def run(
        self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """``start_logits``, ``end_logits``, each ``(rows, width)`` float32."""
        ...


class SessionRunner:
    """A plain session: every batch runs at its own shape."""

    def __init__(self, session) -> None:
        self.session = session

    def padded_shape(self, rows: int, width: int) -> tuple[int, int]:
        return rows, width

    def run(
        self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        return self.session.run(input_ids, attention_mask, token_type_ids)


# ------------------------------------------------------------------ pad and run
class BufferPool:
    """Host buffers for padded batches, reused across batches instead of reallocated.

    ``slots`` buffers of three int64 arrays each; :meth:`acquire` blocks while all are in
    use (the back-pressure that keeps the prepare stage at most ``slots`` batches ahead).
    A slot grows only when a batch needs more tokens than it has ever held.
    """

    def __init__(self, slots: int = DEPTH + 2) -> None:
        self._free: queue.Queue[int] = queue.Queue()
        self._flat: list[list[np.ndarray]] = [[] for _ in range(slots)]
        for slot in range(slots):
            self._free.put(slot)
        self.allocations = 0  # how often a slot had to grow (tests check reuse)

    def acquire(self, stop: threading.Event | None = None) -> int | None:
        """A free slot, or None once ``stop`` is set."""
        while True:
            try:
                return self._free.get(timeout=POLL_S)
            except queue.Empty:
                if stop is not None and stop.is_set():
                    return None

    def release(self, slot: int) -> None:
        self._free.put(slot)

    def arrays(self, slot: int, rows: int, width: int) -> tuple[np.ndarray, ...]:
        """The slot's three ``(rows, width)`` views (contiguous; contents undefined)."""
        size = rows * width
        flat = self._flat[slot]
        if not flat or flat[0].size < size:
            flat[:] = [np.empty(size, dtype=np.int64) for _ in range(3)]
            self.allocations += 1
        return tuple(a[:size].reshape(rows, width) for a in flat)


def cut_outputs(
    start: np.ndarray, end: np.ndarray, lengths: Sequence[int]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each real row's logits cut to its window's length; padding rows are dropped."""
    return [(start[row, :n].copy(), end[row, :n].copy()) for row, n in enumerate(lengths)]


def run_padded(
    runner: BatchRunner,
    windows: Sequence[Window],
    width: int,
    pad_id: int,
    arrays: tuple[np.ndarray, ...] | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Pad ``windows`` to the runner's shape for ``(len(windows), width)``, run, cut.

    ``arrays``: buffers of that shape to pad into (default: fresh ones).
    """
    rows, padded_width = runner.padded_shape(len(windows), width)
    if arrays is None:
        arrays = tuple(np.empty((rows, padded_width), dtype=np.int64) for _ in range(3))
    start, end = runner.run(*fill_padded(windows, arrays, pad_id))
    return cut_outputs(start, end, [len(w) for w in windows])
