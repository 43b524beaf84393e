"""Graceful drain on SIGTERM/SIGINT for uvicorn.

uvicorn's own handler stops listening at once and, after exiting, re-raises the signal
(so the process dies by it). Here the first signal starts a drain instead: ``/ready``
and new work answer 503 while the server keeps listening, every admitted request is
answered, then uvicorn shuts down and the process exits 0. A second signal exits at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from types import FrameType

import uvicorn

log = logging.getLogger("qa_engine.serve")


class DrainingServer(uvicorn.Server):
    """``uvicorn.Server`` whose exit signals drain first (``drain`` returns when done)."""

    def __init__(self, config: uvicorn.Config, drain: Callable[[], Awaitable[bool]]) -> None:
        super().__init__(config)
        self._drain = drain
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain_task: asyncio.Task | None = None
        self.drained: bool | None = None

    async def serve(self, sockets=None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Not appended to _captured_signals: uvicorn would re-raise it after exiting.
        if self._loop is None or self._drain_task is not None or self.should_exit:
            self.should_exit = True
            self.force_exit = self._drain_task is not None
            return
        log.info("signal %d: draining", sig)
        self._loop.call_soon_threadsafe(self._start_drain)

    def _start_drain(self) -> None:
        if self._drain_task is None:
            self._drain_task = asyncio.get_running_loop().create_task(self._drain_then_exit())

    async def _drain_then_exit(self) -> None:
        try:
            self.drained = await self._drain()
        finally:
            self.should_exit = True
