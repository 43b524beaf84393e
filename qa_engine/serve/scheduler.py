"""Which queued windows run next: round-robin across requests, under the token budget.

vLLM's scheduler is the model. A single FIFO of windows lets one long document hold
every request that arrives after it for as long as the document takes; here each
request keeps its own queue of windows, and a batch is filled in rounds, one window
per waiting request per round, until the batch's token or row budget is spent. A
request may also take at most ``max_request_tokens`` padded tokens of one batch (a
*chunk*, as in chunked prefill), so the batch in flight when a short request arrives
holds at most one chunk of a long one: a short request waits for at most that chunk,
then shares the next batch. Requests served in a batch move behind those that were
not, so none starves, and a long request still gets its chunk of every batch.

Pure bookkeeping (no asyncio, no engine): the batcher owns the loop and the threads.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Any

from qa_engine.batching import BatchLimits
from qa_engine.tokenization import Window


@dataclass
class QueuedWindow:
    """One window waiting for a batch: its request, its question and window index."""

    owner: Any
    question: int
    index: int
    window: Window


class FairQueue:
    """Windows of every waiting request, taken round-robin by request.

    Args:
        limits: The engine's batch limits (padded widths for the token count).
        max_batch_tokens: Padded tokens one batch may hold.
        max_batch_windows: Windows one batch may hold.
        max_request_tokens: Padded tokens one request may take of one batch (None: the
            whole batch). A window wider than this still runs, one per batch.
    """

    def __init__(
        self,
        limits: BatchLimits,
        max_batch_tokens: int,
        max_batch_windows: int,
        max_request_tokens: int | None = None,
    ) -> None:
        self.limits = limits
        self.max_batch_tokens = max_batch_tokens
        self.max_batch_windows = max_batch_windows
        self.max_request_tokens = max_request_tokens or max_batch_tokens
        # Requests with windows waiting, in the order they get their next turn.
        self._requests: OrderedDict[Hashable, deque[QueuedWindow]] = OrderedDict()
        self._windows = 0
        self._padded_tokens = 0

    def __len__(self) -> int:
        """Windows waiting."""
        return self._windows

    @property
    def requests(self) -> int:
        """Requests with windows waiting."""
        return len(self._requests)

    @property
    def padded_tokens(self) -> int:
        """Padded tokens waiting (each window at its bucket's width)."""
        return self._padded_tokens

    def keys(self) -> list[Hashable]:
        """The requests with windows waiting."""
        return list(self._requests)

    def add(self, key: Hashable, windows: Iterable[QueuedWindow]) -> None:
        """Queue a request's windows (its turn comes after every request already waiting)."""
        queue = self._requests.setdefault(key, deque())
        for window in windows:
            queue.append(window)
            self._windows += 1
            self._padded_tokens += self._width(window)
        if not queue:
            del self._requests[key]

    def drop(self, key: Hashable) -> int:
        """Forget a request's waiting windows (its client left); how many were dropped."""
        queue = self._requests.pop(key, None)
        if not queue:
            return 0
        self._windows -= len(queue)
        self._padded_tokens -= sum(self._width(w) for w in queue)
        return len(queue)

    def take(self) -> list[QueuedWindow]:
        """The next batch: one window per waiting request per round, within the budgets."""
        taken: list[QueuedWindow] = []
        tokens = 0
        per_request: dict[Hashable, int] = {}
        active = list(self._requests)
        while active and len(taken) < self.max_batch_windows:
            next_round = []
            for key in active:
                if len(taken) >= self.max_batch_windows:
                    break
                queue = self._requests[key]
                width = self._width(queue[0])
                mine = per_request.get(key, 0)
                over_batch = taken and tokens + width > self.max_batch_tokens
                over_share = mine and mine + width > self.max_request_tokens
                if over_batch or over_share:
                    continue  # this request is done for this batch; smaller ones may fit
                taken.append(queue.popleft())
                tokens += width
                per_request[key] = mine + width
                if queue:
                    next_round.append(key)
                else:
                    del self._requests[key]
            active = next_round
        for key in per_request:  # served this time: behind those that were not
            if key in self._requests:
                self._requests.move_to_end(key)
        self._windows -= len(taken)
        self._padded_tokens -= tokens
        return taken

    def _width(self, item: QueuedWindow) -> int:
        return self.limits.width_for(len(item.window))
