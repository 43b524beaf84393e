"""The transport-independent server state: batcher, admission, readiness and drain.

The HTTP app and a Ray Serve replica each hold one :class:`Service` and differ only in
how requests reach :meth:`Service.answer`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from qa_engine.serve.batcher import Batcher, Draining, RequestTooLarge
from qa_engine.serve.metrics import ServeMetrics
from qa_engine.serve.schemas import ApiError, ParsedRequest, render_answers
from qa_engine.serve.settings import ServeSettings

log = logging.getLogger("qa_engine.serve")


class Service:
    """One engine served: admission limit, warm-up state, drain.

    Args:
        engine: A loaded :class:`~qa_engine.engine.QAEngine`.
        settings: Limits and batching settings.
    """

    def __init__(self, engine: Any, settings: ServeSettings) -> None:
        self.engine = engine
        self.settings = settings
        self.metrics = ServeMetrics()
        openvino = any("OpenVINO" in p for p in engine.providers)
        pad_rows = openvino if settings.pad_batch_rows is None else settings.pad_batch_rows
        self.batcher = Batcher(
            engine,
            max_batch_tokens=settings.max_batch_tokens,
            max_batch_windows=settings.max_batch_windows,
            max_wait_ms=settings.max_wait_ms,
            pad_rows=pad_rows,
            max_request_batch_tokens=settings.max_request_batch_tokens,
            max_context_tokens=settings.max_context_tokens,
            observer=self.metrics,
            cuda_graphs=settings.cuda_graphs,
            split_by_length=settings.split_by_length,
        )
        self.admitted = 0
        self.warmed_up = not settings.warmup
        self.warmup_s: float | None = None
        self.warmup_error: str | None = None
        self.draining = False
        self._warmup_task: asyncio.Task | None = None
        self.metrics.bind(
            inflight=lambda: self.admitted,
            queue=lambda: self.batcher.queue_depth,
            waiting=lambda: self.batcher.waiting_requests,
            ready=lambda: self.ready,
        )

    # ---------------------------------------------------------------- lifecycle
    async def start(self, *, wait_for_warmup: bool = False) -> None:
        """Start batching, and warm up in the background (``/ready`` waits for it).

        ``wait_for_warmup`` returns only once warm-up has ended (a host that routes
        traffic as soon as startup returns, such as a Ray Serve replica, wants this).
        """
        await self.batcher.start()
        if not self.warmed_up:
            self._warmup_task = asyncio.get_running_loop().create_task(self._warm_up())
            if wait_for_warmup:
                await self._warmup_task

    async def _warm_up(self) -> None:
        started = time.perf_counter()
        try:
            shapes = await asyncio.to_thread(self.batcher.warm_up)
        except Exception as err:  # stay unready, say why on /ready and /info
            self.warmup_error = f"{type(err).__name__}: {err}"
            log.error("warm-up failed: %s", self.warmup_error)
            return
        self.warmup_s = time.perf_counter() - started
        self.warmed_up = True
        log.info("warmed up %d shapes in %.1f s; ready", shapes, self.warmup_s)

    async def drain(self) -> bool:
        """Refuse new work (503, ``/ready`` 503), answer every admitted request, stop.

        Returns:
            True when everything admitted was answered within ``drain_timeout_s``.
        """
        if not self.draining:
            self.draining = True
            log.info("draining: %d admitted request(s) to answer", self.admitted)
        if self._warmup_task is not None and not self._warmup_task.done():
            self._warmup_task.cancel()
        drained = await self.batcher.close(self.settings.drain_timeout_s)
        if not drained:
            log.warning("drain timed out with %d request(s) unanswered", self.batcher.inflight)
        return drained

    @property
    def ready(self) -> bool:
        return self.warmed_up and not self.draining

    def readiness(self) -> dict[str, Any]:
        reason = "draining" if self.draining else None
        if reason is None and not self.warmed_up:
            reason = "warm-up failed" if self.warmup_error else "warming up"
        return {"ready": self.ready, "reason": reason, "warmup_error": self.warmup_error}

    # ----------------------------------------------------------------- requests
    def admit(self) -> None:
        """Take an admission slot or raise 503 (draining) / 429 (full)."""
        if self.draining:
            raise ApiError(503, "the server is draining; retry on another replica")
        if self.admitted >= self.settings.max_concurrent_requests:
            raise ApiError(
                429,
                f"over --max-concurrent-requests {self.settings.max_concurrent_requests}",
            )
        self.admitted += 1

    def release(self) -> None:
        self.admitted -= 1

    async def answer(self, request: ParsedRequest) -> Any:
        """Answers of an admitted, parsed request, in the Inference API shape.

        Raises:
            ApiError: 413 over ``max_context_tokens``, 504 past ``request_timeout_s``
                (its waiting windows are dropped), 503 draining, 422 bad input.
        """
        timeout = self.settings.request_timeout_s
        try:
            decoded = await asyncio.wait_for(
                self.batcher.submit(request.questions, request.contexts, request.options),
                timeout,
            )
        except Draining:
            raise ApiError(503, "the server is draining; retry on another replica") from None
        except RequestTooLarge as err:
            raise ApiError(
                413,
                f"{err} (--max-context-tokens {err.limit})",
                extra={
                    "limit": {"max_context_tokens": err.limit},
                    "size": {
                        "context_tokens": err.tokens,
                        "exact": err.exact,
                        "context_characters": err.characters,
                    },
                },
            ) from None
        except asyncio.TimeoutError:
            raise ApiError(
                504,
                f"not answered within --request-timeout {timeout:g} s; its waiting work was "
                "dropped (try a shorter context)",
                extra={"limit": {"request_timeout_s": timeout}},
            ) from None
        except (TypeError, ValueError) as err:  # the schema should have caught it already
            raise ApiError(422, str(err)) from None
        return render_answers(decoded, request.options.top_k, request.batched)

    def geometry(self) -> dict[str, int]:
        m = self.engine.manifest
        return {
            "doc_stride": m.doc_stride,
            "max_seq_len": m.max_seq_length,
            "max_question_len": m.max_question_len,
        }

    def info(self) -> dict[str, Any]:
        """What ``/info`` shows: model, manifest, precision, providers, limits, version."""
        from importlib.metadata import PackageNotFoundError, version

        try:
            package_version = version("qa-engine")
        except PackageNotFoundError:
            package_version = None
        m = self.engine.manifest
        self_check = getattr(self.engine, "self_check", None)
        return {
            "model": str(getattr(self.engine, "path", "")),
            "source_model": m.source_model,
            "precision": m.precision,
            "optimization": m.optimization,
            "batch_invariant": bool(self.engine.batch_invariant),
            "providers": list(self.engine.providers),
            "manifest": m.to_dict(),
            "self_check": self_check.to_dict() if hasattr(self_check, "to_dict") else None,
            "limits": self.settings.public_dict(),
            "batching": {
                "max_windows": self.batcher.limits.max_windows,
                "max_tokens": self.batcher.limits.max_tokens,
                "buckets": self.batcher.limits.buckets,
                "pad_rows": self.batcher.pad_rows,
                "min_call_tokens": self.batcher.limits.min_call_tokens,
                "shapes": len(self.batcher.shapes()),
                "cuda_graphs": self.batcher.graphs_captured,
                "cuda_graphs_error": self.batcher.graphs_error,
            },
            "warmup_s": self.warmup_s,
            "version": package_version,
        }
