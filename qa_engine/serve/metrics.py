"""Prometheus metrics of one server, named by stage (queue, tokenization, inference, decoding).

Each app gets its own ``CollectorRegistry``, so several apps in one process (tests, a
Ray replica beside another) never clash over metric names.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from qa_engine.serve.batcher import Timings

# Seconds: from a tenth of a millisecond to a minute (a whole paper as context).
_SECONDS = (0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 60)
_WINDOWS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
_TOKENS = (32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class ServeMetrics:
    """The server's metrics; also the batcher's :class:`~qa_engine.serve.batcher.BatchObserver`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "qa_requests",
            "HTTP requests by route and status code.",
            ["route", "status"],
            registry=r,
        )
        self.questions = Counter("qa_questions", "Questions answered.", registry=r)
        self.inflight = Gauge(
            "qa_inflight_requests", "Admitted requests not yet answered.", registry=r
        )
        self.queue_windows = Gauge("qa_queue_windows", "Windows waiting for a batch.", registry=r)
        self.waiting_requests = Gauge(
            "qa_waiting_requests", "Requests with windows waiting for a batch.", registry=r
        )
        self.dropped_windows = Counter(
            "qa_dropped_windows",
            "Windows dropped unrun: their request was cancelled (client left, timeout) or failed.",
            registry=r,
        )
        self.ready = Gauge("qa_ready", "1 when warmed up and not draining.", registry=r)
        self.batch_windows = Histogram(
            "qa_batch_windows", "Windows per onnxruntime call.", buckets=_WINDOWS, registry=r
        )
        self.batch_padded_tokens = Histogram(
            "qa_batch_padded_tokens",
            "Padded tokens per onnxruntime call (rows x padded width).",
            buckets=_TOKENS,
            registry=r,
        )
        self.batch_real_tokens = Histogram(
            "qa_batch_real_tokens", "Real (unpadded) tokens per call.", buckets=_TOKENS, registry=r
        )
        self.batch_seconds = Histogram(
            "qa_batch_inference_seconds",
            "Time of one onnxruntime call.",
            buckets=_SECONDS,
            registry=r,
        )
        self.round_calls = Histogram(
            "qa_round_calls",
            "onnxruntime calls per batch taken from the queue (split by length).",
            buckets=_WINDOWS,
            registry=r,
        )
        self.round_seconds = Histogram(
            "qa_round_seconds",
            "Time of one batch taken from the queue: all its calls (windows of a cancelled "
            "request that are still waiting are dropped before the next one).",
            buckets=_SECONDS,
            registry=r,
        )

        def stage(name: str, what: str) -> Histogram:
            return Histogram(f"qa_{name}_seconds", what, buckets=_SECONDS, registry=r)

        self.tokenization = stage("tokenization", "Per request: tokenizing into windows.")
        self.queue = stage("queue", "Per request: enqueued until its first window runs.")
        self.inference = stage("inference", "Per request: onnxruntime calls holding its windows.")
        self.decoding = stage("decoding", "Per request: span decoding.")
        self.request = stage("request", "Per request: submitted to answered, in the batcher.")

    def bind(
        self,
        *,
        inflight: Callable[[], float],
        queue: Callable[[], float],
        waiting: Callable[[], float],
        ready: Callable[[], bool],
    ) -> None:
        """Read the live gauges from the service when scraped."""
        self.inflight.set_function(inflight)
        self.queue_windows.set_function(queue)
        self.waiting_requests.set_function(waiting)
        self.ready.set_function(lambda: float(ready()))

    def on_batch(self, windows: int, padded_tokens: int, real_tokens: int, seconds: float) -> None:
        self.batch_windows.observe(windows)
        self.batch_padded_tokens.observe(padded_tokens)
        self.batch_real_tokens.observe(real_tokens)
        self.batch_seconds.observe(seconds)

    def on_round(self, calls: int, seconds: float) -> None:
        self.round_calls.observe(calls)
        self.round_seconds.observe(seconds)

    def on_request(self, timings: Timings) -> None:
        self.questions.inc(timings.questions)
        self.tokenization.observe(timings.tokenization)
        self.queue.observe(timings.queue)
        self.inference.observe(timings.inference)
        self.decoding.observe(timings.decoding)
        self.request.observe(timings.total)

    def on_dropped(self, windows: int) -> None:
        self.dropped_windows.inc(windows)

    def count(self, route: str, status: int) -> None:
        self.requests.labels(route=route, status=str(status)).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
