"""Serving settings: one dataclass shared by the HTTP app, the batcher and the CLI."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

API_KEY_ENV = "QA_ENGINE_API_KEY"
# Seconds a request may take before it is answered 504 (HTTP) or 408 (Ray's proxy).
REQUEST_TIMEOUT_S = 60.0
# Context tokens one request may hold (see ServeSettings.max_context_tokens).
MAX_CONTEXT_TOKENS = 32768
# Padded tokens one request may take of one batch (see ServeSettings).
MAX_REQUEST_BATCH_TOKENS = 2048


@dataclass
class ServeSettings:
    """What ``qa-engine serve`` (or a Ray replica) runs with; validated on creation."""

    # Interface to bind. Loopback by default: put a reverse proxy in front for TLS.
    host: str = "127.0.0.1"
    # TCP port (0: any free port).
    port: int = 8000
    # Engine device: auto, cpu, cuda, cuda:N, tensorrt, openvino, openvino:bf16, openvino:f32.
    device: str = "auto"
    # onnxruntime intra-op threads (None: one per core).
    threads: int | None = None
    # Padded tokens per onnxruntime call (rows x padded width), the batch's token budget.
    max_batch_tokens: int = 8192
    # Windows (rows) per onnxruntime call.
    max_batch_windows: int = 32
    # How long the oldest queued window may wait for a batch to fill, in milliseconds.
    # Only waited while more work is on its way (requests still tokenizing): a lone
    # request never waits.
    max_wait_ms: float = 2.0
    # Admitted HTTP requests at once; one more gets 429 with Retry-After.
    max_concurrent_requests: int = 512
    # Question/context pairs per request (a list in ``inputs``); more gets 413.
    max_client_batch_size: int = 32
    # Request body limit in bytes (413 above it); 4 MiB holds a long paper as context.
    max_request_bytes: int = 4 * 1024 * 1024
    # Context tokens one request may hold, all its pairs together (413 above it, before
    # any window runs). What one request may cost: see MAX_CONTEXT_TOKENS's measurement
    # in the README (Serve). None: no limit.
    max_context_tokens: int | None = MAX_CONTEXT_TOKENS
    # Padded tokens one request may take of one batch: a request arriving while a long
    # one runs waits for at most this chunk of it, then shares the next batch.
    max_request_batch_tokens: int = MAX_REQUEST_BATCH_TOKENS
    # Seconds from admission to answer; later: 504, and the request's waiting windows
    # are dropped. None: no limit.
    request_timeout_s: float | None = REQUEST_TIMEOUT_S
    # Let onnxruntime's idle threads spin between calls (they then compete with the
    # HTTP side for the cores).
    spinning: bool = False
    # Largest top_k a request may ask for (422 above it).
    max_top_k: int = 20
    # Bearer key the POST routes and /info require (None: open). Falls back to
    # $QA_ENGINE_API_KEY when created through :meth:`from_env`.
    api_key: str | None = field(default=None, repr=False)
    # Run every (bucket, batch size) shape once before /ready answers 200.
    warmup: bool = True
    # Pad each batch's rows up to a warmed batch size as well as its width up to a
    # bucket (None: only on OpenVINO, where every new input shape costs a slow first run).
    pad_batch_rows: bool | None = None
    # Split each batch by length into calls no smaller than the engine needs for full
    # speed (measured at warm-up), instead of padding every window to the longest one.
    split_by_length: bool = True
    # Run batches on captured CUDA graphs, one per (rows, width) bucket, captured during
    # warm-up (None: when the engine runs on CUDA and the variant is batch-invariant; a
    # graph that cannot be captured then falls back to the plain session with a warning).
    cuda_graphs: bool | None = None
    # Seconds a 429 asks the client to wait (Retry-After).
    retry_after_s: int = 1
    # Longest a drain waits for admitted requests before the process exits anyway.
    drain_timeout_s: float = 60.0

    def __post_init__(self) -> None:
        positive = (
            "max_batch_tokens",
            "max_batch_windows",
            "max_concurrent_requests",
            "max_client_batch_size",
            "max_request_bytes",
            "max_top_k",
            "retry_after_s",
            "max_request_batch_tokens",
        )
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, got {type(value).__name__}")
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be in [0, 65535], got {self.port}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")
        if self.max_context_tokens is not None and (
            isinstance(self.max_context_tokens, bool)
            or not isinstance(self.max_context_tokens, int)
            or self.max_context_tokens < 1
        ):
            raise ValueError(
                f"max_context_tokens must be an int >= 1 or None, got {self.max_context_tokens!r}"
            )
        if self.request_timeout_s is not None and not self.request_timeout_s > 0:
            raise ValueError(f"request_timeout_s must be > 0, got {self.request_timeout_s!r}")
        if self.max_wait_ms < 0 or self.drain_timeout_s < 0:
            raise ValueError("max_wait_ms and drain_timeout_s must be >= 0")
        if self.api_key is not None and not self.api_key.strip():
            raise ValueError("api_key must not be empty")

    @classmethod
    def from_env(cls, **values: Any) -> ServeSettings:
        """Settings from keyword values; ``api_key`` falls back to ``$QA_ENGINE_API_KEY``."""
        if values.get("api_key") is None:
            values["api_key"] = os.environ.get(API_KEY_ENV) or None
        return cls(**values)

    def public_dict(self) -> dict[str, Any]:
        """The settings for ``/info``: the key itself is never shown."""
        out = asdict(self)
        out["api_key"] = "set" if self.api_key else None
        return out
