"""The HTTP transport: a FastAPI app over one :class:`~qa_engine.serve.service.Service`.

``create_app(engine, settings)`` is all a host needs (uvicorn here, a Ray Serve
deployment elsewhere). Routes: ``POST /`` and ``POST /predict`` (the Hugging Face
Inference API contract), ``GET /health``, ``/ready``, ``/info``, ``/metrics`` and the
OpenAPI docs (``/docs``). Bad input is never a 500. A client that disconnects before its
answer stops costing compute: its request is cancelled and its waiting windows dropped.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Awaitable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qa_engine.serve.metrics import CONTENT_TYPE
from qa_engine.serve.schemas import ApiError, QAAnswer, QARequest, parse_request
from qa_engine.serve.service import Service
from qa_engine.serve.settings import ServeSettings

# nginx's status for "the client closed the connection before the answer" (never sent).
CLIENT_CLOSED = 499
ROUTES = ("/", "/predict", "/health", "/ready", "/info", "/metrics", "/docs", "/openapi.json")


class SafeJSONResponse(JSONResponse):
    """JSON that survives lone surrogates (answers are slices of the client's text)."""

    def render(self, content: Any) -> bytes:
        try:
            return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        except UnicodeEncodeError:
            return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def _error(err: ApiError, retry_after: int) -> SafeJSONResponse:
    headers = {"Retry-After": str(retry_after)} if err.status in (429, 503) else {}
    if err.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return SafeJSONResponse(err.body(), status_code=err.status, headers=headers)


class _CountStatus:
    """ASGI middleware counting responses by route and status (unknown paths: "other")."""

    def __init__(self, app: ASGIApp, service: Service) -> None:
        self.app, self.service = app, service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        route = path if path in ROUTES else "other"
        status = 500

        async def counting_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            self.service.metrics.count(route, status)


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, or 413 as soon as it passes ``limit`` bytes (declared or streamed)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"body of {declared} bytes, over --max-request-bytes {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"body over --max-request-bytes {limit}")
        chunks.append(chunk)
    return b"".join(chunks)


class ClientLeft(Exception):
    """The client disconnected before its answer was ready."""


async def _unless_client_leaves(work: Awaitable[Any], receive: Receive) -> Any:
    """``work``'s result, or ClientLeft once the client disconnects (``work`` is cancelled).

    Called once the body is read: the next ASGI message is then ``http.disconnect``,
    which the server sends when the client goes (or after the response is sent).
    """
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(receive())
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:  # the host cancelled the request (Ray Serve does)
        task.cancel()
        watcher.cancel()
        raise
    if task.done():
        watcher.cancel()
        return task.result()
    if watcher.result().get("type") != "http.disconnect":
        return await task  # not a disconnect: nothing more to watch
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    raise ClientLeft


def create_app(
    engine: Any, settings: ServeSettings | None = None, *, warm_before_startup: bool = False
) -> FastAPI:
    """The FastAPI app serving ``engine``; its :class:`Service` is ``app.state.service``.

    The batcher starts (and warm-up begins) in the app's lifespan; the lifespan's end
    drains. A host that drains earlier calls ``await app.state.service.drain()``.
    ``warm_before_startup``: the lifespan's startup ends only after warm-up, for hosts
    that send traffic once startup ends (Ray Serve) rather than polling ``/ready``.
    """
    settings = settings or ServeSettings()
    service = Service(engine, settings)
    retry_after = settings.retry_after_s

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await service.start(wait_for_warmup=warm_before_startup)
        yield
        await service.drain()

    app = FastAPI(
        title="qa-engine",
        summary="Extractive question answering (Hugging Face Inference API contract).",
        lifespan=lifespan,
    )
    app.state.service = service
    app.add_middleware(_CountStatus, service=service)

    def check_key(request: Request) -> None:
        if settings.api_key is None:
            return
        header = request.headers.get("authorization", "")
        given = header[7:] if header[:7].lower() == "bearer " else request.headers.get("x-api-key")
        if not given or not secrets.compare_digest(given.encode(), settings.api_key.encode()):
            raise ApiError(401, "missing or wrong API key (Authorization: Bearer KEY)")

    async def predict(request: Request) -> Response:
        try:
            check_key(request)
            service.admit()
        except ApiError as err:
            return _error(err, retry_after)
        try:
            body = await _read_body(request, settings.max_request_bytes)
            parsed = parse_request(
                body,
                max_client_batch_size=settings.max_client_batch_size,
                max_top_k=settings.max_top_k,
                geometry=service.geometry(),
            )
            answer = await _unless_client_leaves(service.answer(parsed), request.receive)
            return SafeJSONResponse(answer)
        except ApiError as err:
            return _error(err, retry_after)
        except ClientLeft:
            return Response(status_code=CLIENT_CLOSED)
        finally:
            service.release()

    docs = {
        "openapi_extra": {
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": QARequest.model_json_schema()}},
            }
        },
        "responses": {
            200: {
                "description": "An answer, a list of top_k answers, or a list of those.",
                "content": {"application/json": {"schema": QAAnswer.model_json_schema()}},
            },
            401: {"description": "API key missing or wrong"},
            413: {
                "description": "Body, client batch or context tokens over the limit; the "
                "body names the limit and the request's size"
            },
            422: {"description": "Malformed body; the message names the field"},
            429: {"description": "Over --max-concurrent-requests (see Retry-After)"},
            503: {"description": "Draining"},
            504: {"description": "Not answered within --request-timeout"},
        },
    }
    app.add_api_route("/", predict, methods=["POST"], summary="Answer (Inference API)", **docs)
    app.add_api_route("/predict", predict, methods=["POST"], summary="Answer", **docs)

    @app.get("/health", summary="Alive (the process answers)")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready", summary="Ready: warmed up and not draining (503 otherwise)")
    async def ready() -> Response:
        state = service.readiness()
        return SafeJSONResponse(state, status_code=200 if state["ready"] else 503)

    @app.get("/info", summary="Model, manifest, precision, providers, limits, version")
    async def info(request: Request) -> Response:
        try:
            check_key(request)
        except ApiError as err:
            return _error(err, retry_after)
        return SafeJSONResponse(service.info())

    @app.get("/metrics", summary="Prometheus metrics")
    async def metrics() -> Response:
        return Response(service.metrics.render(), media_type=CONTENT_TYPE)

    return app
