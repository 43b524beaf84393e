"""``qa-engine serve EXPORT_DIR``: the HTTP answer service (needs the ``[serve]`` extra).

Only click and the standard library at module level; FastAPI, uvicorn and the runtime
are imported when the command runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from qa_engine.commands import device_option, threads_option

if TYPE_CHECKING:
    from qa_engine.ray.serve_app import RayServeOptions


@click.command("serve")
@click.argument("export_dir", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Interface to bind (loopback by default; put a TLS-terminating reverse proxy in front).",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="TCP port (0: any free port).",
)
@device_option
@threads_option
@click.option(
    "--max-batch-tokens",
    type=click.IntRange(min=1),
    default=8192,
    show_default=True,
    help="Padded tokens per onnxruntime call (longest window x windows).",
)
@click.option(
    "--max-batch-windows",
    type=click.IntRange(min=1),
    default=None,
    help="Windows per onnxruntime call (a dynamic-int8 export always runs one) "
    "[default: the plan's batch size (qa-engine tune), else 32].",
)
@click.option(
    "--max-wait-ms",
    type=click.FloatRange(min=0),
    default=2.0,
    show_default=True,
    help="How long a batch may wait to fill while more requests are being "
    "tokenized (a lone request never waits).",
)
@click.option(
    "--max-concurrent-requests",
    type=click.IntRange(min=1),
    default=512,
    show_default=True,
    help="Admitted requests at once; more get 429 + Retry-After.",
)
@click.option(
    "--max-client-batch-size",
    type=click.IntRange(min=1),
    default=32,
    show_default=True,
    help="Question/context pairs per request; more get 413.",
)
@click.option(
    "--max-request-bytes",
    type=click.IntRange(min=1),
    default=4 * 1024 * 1024,
    show_default=True,
    help="Body limit (413 above it); the default holds a paper.",
)
@click.option(
    "--max-context-tokens",
    type=click.IntRange(min=0),
    default=32768,
    show_default=True,
    help="Context tokens one request may hold, all its pairs together (0: no limit); more "
    "get 413 naming the limit and the request's size, before any window runs. The default "
    "holds a long paper (about 150,000 characters of English) and costs about 8 s of "
    "compute on 2 cores (MiniLM-L6, fp32), which fair scheduling shares with every other "
    "request rather than holding the server for it.",
)
@click.option(
    "--max-request-batch-tokens",
    type=click.IntRange(min=1),
    default=2048,
    show_default=True,
    help="Padded tokens one request may take of one batch: a request arriving behind a "
    "long document waits for at most this chunk of it, then shares the next batch.",
)
@click.option(
    "--spinning/--no-spinning",
    default=False,
    show_default=True,
    help="Let onnxruntime's idle threads spin between calls (they compete with the HTTP "
    "side for the cores).",
)
@click.option(
    "--split-by-length/--no-split-by-length",
    default=True,
    show_default=True,
    help="At warm-up, measure how many padded tokens a call needs to run at full speed, "
    "then split each batch by length into calls no smaller than that (less padding); "
    "--no-split-by-length pads every window of a batch to its longest one.",
)
@click.option(
    "--max-top-k",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="Largest top_k a request may ask for.",
)
@click.option(
    "--api-key",
    envvar="QA_ENGINE_API_KEY",
    default=None,
    show_envvar=True,
    help="Require 'Authorization: Bearer KEY' on POST routes and /info.",
)
@click.option(
    "--no-warmup",
    is_flag=True,
    help="Skip running every batch shape once before /ready answers 200.",
)
@click.option(
    "--pad-batch-rows/--no-pad-batch-rows",
    default=None,
    help="Pad batch rows to warmed sizes too [default: only on OpenVINO].",
)
@click.option(
    "--drain-timeout",
    type=click.FloatRange(min=0),
    default=60.0,
    show_default=True,
    help="Seconds a SIGTERM drain waits for admitted requests.",
)
@click.option(
    "--ray",
    "use_ray",
    is_flag=True,
    help="Serve on Ray Serve instead: replicas of this app behind Ray's proxy on "
    "--host/--port (needs the [ray] extra; see export/ray-serve.yaml).",
)
@click.option(
    "--replicas",
    type=click.IntRange(min=1),
    default=None,
    help="With --ray: replicas, each one engine, each --threads CPUs; with --max-replicas, "
    "the fewest autoscaling keeps.  [default: 1]",
)
@click.option(
    "--max-replicas",
    type=click.IntRange(min=1),
    default=None,
    help="With --ray: autoscale between --replicas and this many, aiming at half of "
    "--max-ongoing-requests in flight per replica.  [default: no autoscaling]",
)
@click.option(
    "--max-ongoing-requests",
    type=click.IntRange(min=1),
    default=None,
    help="With --ray: requests one replica holds at once (more wait in Ray's proxy); "
    "it caps the batch a replica can form.  [default: 64]",
)
@click.option(
    "--max-queued-requests",
    type=click.IntRange(min=-1),
    default=None,
    help="With --ray: requests waiting in Ray's proxy for a replica; more get 503 "
    "(-1: unbounded, overload becomes latency).  [default: 256]",
)
@click.option(
    "--request-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Seconds a request may take, then 504 and its waiting windows are dropped; with "
    "--ray, Ray's proxy answers 408 at this time too (a request Serve retries after a "
    "replica died has hung without it).  [default: 60]",
)
@click.option(
    "--address",
    default=None,
    help="With --ray: the cluster to join (auto, HEAD:6379); default: a local Ray.",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
)
def serve(
    export_dir: str,
    host: str,
    port: int,
    device: str,
    threads: int | None,
    max_batch_tokens: int,
    max_batch_windows: int | None,
    max_wait_ms: float,
    max_concurrent_requests: int,
    max_client_batch_size: int,
    max_request_bytes: int,
    max_context_tokens: int,
    max_request_batch_tokens: int,
    spinning: bool,
    split_by_length: bool,
    max_top_k: int,
    api_key: str | None,
    no_warmup: bool,
    pad_batch_rows: bool | None,
    drain_timeout: float,
    use_ray: bool,
    replicas: int | None,
    max_replicas: int | None,
    max_ongoing_requests: int | None,
    max_queued_requests: int | None,
    request_timeout: float | None,
    address: str | None,
    log_level: str,
) -> None:
    """Serve EXPORT_DIR over HTTP with cross-request dynamic batching.

    \b
    POST / and /predict   {"inputs": {"question", "context"}, "parameters": {...}}
    GET  /health /ready /info /metrics /docs
    SIGTERM or SIGINT drains: /ready answers 503, admitted requests are answered, exit 0.
    """
    ray_only = {
        "--replicas": replicas,
        "--max-replicas": max_replicas,
        "--max-ongoing-requests": max_ongoing_requests,
        "--max-queued-requests": max_queued_requests,
        "--address": address,
    }
    given = [flag for flag, value in ray_only.items() if value is not None]
    if given and not use_ray:
        raise click.UsageError(f"{', '.join(given)} only apply with --ray")
    from qa_engine.extras import require

    require("fastapi", "serve")
    require("uvicorn", "serve")
    require("prometheus_client", "serve")
    import logging

    import uvicorn

    from qa_engine.commands import load_engine
    from qa_engine.serve.app import create_app
    from qa_engine.serve.settings import REQUEST_TIMEOUT_S, ServeSettings
    from qa_engine.serve.shutdown import DrainingServer

    try:
        settings = ServeSettings(
            host=host,
            port=port,
            device=device,
            threads=threads,
            max_batch_tokens=max_batch_tokens,
            max_batch_windows=max_batch_windows or 32,
            max_wait_ms=max_wait_ms,
            max_concurrent_requests=max_concurrent_requests,
            max_client_batch_size=max_client_batch_size,
            max_request_bytes=max_request_bytes,
            max_context_tokens=max_context_tokens or None,
            max_request_batch_tokens=max_request_batch_tokens,
            request_timeout_s=request_timeout or REQUEST_TIMEOUT_S,
            spinning=spinning,
            max_top_k=max_top_k,
            api_key=api_key or None,
            warmup=not no_warmup,
            pad_batch_rows=pad_batch_rows,
            split_by_length=split_by_length,
            drain_timeout_s=drain_timeout,
        )
    except (TypeError, ValueError) as err:
        raise click.UsageError(str(err)) from err
    logging.basicConfig(level=log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    if use_ray:
        require("ray", "ray")
        from qa_engine.ray.serve_app import run

        values = {**settings.public_dict(), "api_key": settings.api_key, "threads": None}
        options = ray_options(
            replicas, max_replicas, max_ongoing_requests, max_queued_requests, threads
        )
        run(
            export_dir,
            values,
            options,
            address=address,
            log_level=log_level,
            request_timeout_s=settings.request_timeout_s,
        )
        return
    engine = load_engine(export_dir, device, threads, spinning=spinning)
    if max_batch_windows is None and engine.plan is not None:
        from dataclasses import replace

        settings = replace(settings, max_batch_windows=engine.plan.batch_size)
    app = create_app(engine, settings)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=log_level == "debug",
        timeout_graceful_shutdown=max(1.0, drain_timeout),
    )
    server = DrainingServer(config, drain=app.state.service.drain)
    server.run()
    if not server.started:
        raise SystemExit(1)
    if server.drained is False:
        click.echo("drain timed out: some admitted requests were not answered", err=True)
        raise SystemExit(1)


def ray_options(
    replicas: int | None,
    max_replicas: int | None,
    max_ongoing_requests: int | None,
    max_queued_requests: int | None,
    threads: int | None,
) -> RayServeOptions:
    """``RayServeOptions`` from the ``--ray`` flags (None: not given, the default).

    ``--replicas`` alone is a fixed count; with ``--max-replicas`` it is autoscaling's
    floor, and autoscaling aims at half of ``max_ongoing_requests`` per replica so that
    Serve adds a replica before every one is full. ``--threads`` becomes each replica's
    CPU reservation (and so its onnxruntime threads).
    """
    from dataclasses import replace

    from qa_engine.ray.serve_app import RayServeOptions

    given = {
        "max_ongoing_requests": max_ongoing_requests,
        "max_queued_requests": max_queued_requests,
    }
    limits = {name: value for name, value in given.items() if value is not None}
    if max_replicas is None:
        scale = {"replicas": replicas or 1}
    else:
        scale = {"replicas": None, "min_replicas": replicas or 1, "max_replicas": max_replicas}
    try:
        options = RayServeOptions(**scale, **limits, cpus_per_replica=float(threads or 1))
    except ValueError as err:
        raise click.UsageError(str(err)) from err
    return replace(options, target_ongoing_requests=options.max_ongoing_requests / 2)
