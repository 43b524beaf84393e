"""``qa-engine serve --ray``: a Ray Serve deployment with the HTTP contract of ``qa-engine serve``.

Each replica holds one :class:`~qa_engine.engine.QAEngine` and mounts the very FastAPI
app of ``qa-engine serve`` (``create_app(engine, settings)``: same routes, errors and
results, same batching core), built on the replica after the engine loads, with
onnxruntime threads from the CPUs Ray gave the replica. The app's own lifespan starts
the batcher and warm-up and drains on shutdown; the batcher runs onnxruntime on its
worker thread, off the replica's event loop.

Overload, in the order a request meets it: the Serve proxy queues a request when all
replicas hold ``max_ongoing_requests``; past ``max_queued_requests`` it answers 503; a
replica admits at most ``max_concurrent_requests`` and answers 429 past that.

``serve run`` / ``serve deploy`` use :func:`build_app` (see ``export/ray-serve.yaml``).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields
from typing import Any

from ray import serve

from qa_engine.ray.batch import actor_threads
from qa_engine.serve.settings import REQUEST_TIMEOUT_S


@dataclass(frozen=True)
class RayServeOptions:
    """How the deployment scales and sheds load.

    Attributes:
        replicas: Fixed replica count; None with ``max_replicas`` set: autoscaling.
        min_replicas: Autoscaling lower bound (0 lets an idle app scale to zero).
        max_replicas: Autoscaling upper bound (None: fixed ``replicas``).
        target_ongoing_requests: Autoscaling target of requests in flight per replica.
        max_ongoing_requests: Requests a replica holds at once; more wait in the proxy.
            Keep it at least the batch a replica should form (it caps batching).
        max_queued_requests: Requests waiting in the proxy for a replica; more get 503
            (-1: unbounded, which turns overload into latency instead of an answer).
        cpus_per_replica: CPUs Ray reserves per replica; its onnxruntime threads.
        gpus_per_replica: GPUs per replica (with ``device="cuda"``).
        name: Application name; ``route_prefix``: where it is mounted.
    """

    replicas: int | None = 1
    min_replicas: int = 1
    max_replicas: int | None = None
    target_ongoing_requests: float = 32
    max_ongoing_requests: int = 64
    max_queued_requests: int = 256
    cpus_per_replica: float = 1.0
    gpus_per_replica: float = 0.0
    name: str = "qa-engine"
    route_prefix: str = "/"

    def __post_init__(self) -> None:
        if self.replicas is not None and self.replicas < 1:
            raise ValueError(f"replicas must be >= 1, got {self.replicas}")
        if self.max_replicas is not None and self.max_replicas < max(1, self.min_replicas):
            raise ValueError(f"max_replicas must be >= max(1, min_replicas={self.min_replicas})")
        if self.max_ongoing_requests < 1:
            raise ValueError(f"max_ongoing_requests must be >= 1, got {self.max_ongoing_requests}")
        if self.max_queued_requests < -1 or self.max_queued_requests == 0:
            raise ValueError("max_queued_requests must be >= 1, or -1 for unbounded")
        if self.cpus_per_replica <= 0:
            raise ValueError(f"cpus_per_replica must be > 0, got {self.cpus_per_replica}")

    def deployment_options(self) -> dict[str, Any]:
        """Keyword arguments of ``Deployment.options`` for these settings."""
        options: dict[str, Any] = {
            "max_ongoing_requests": self.max_ongoing_requests,
            "max_queued_requests": self.max_queued_requests,
            "ray_actor_options": {
                "num_cpus": self.cpus_per_replica,
                "num_gpus": self.gpus_per_replica,
            },
            # Warm-up runs every batch shape once; give a big model time before
            # Serve declares the replica unhealthy.
            "health_check_timeout_s": 60,
        }
        if self.max_replicas is not None:
            options["autoscaling_config"] = {
                "min_replicas": self.min_replicas,
                "max_replicas": self.max_replicas,
                "target_ongoing_requests": self.target_ongoing_requests,
            }
        else:
            options["num_replicas"] = self.replicas
        return options


@serve.ingress()  # the app is built per replica, by __serve_build_asgi_app__
class QAReplica:
    """One replica: one engine and the serve app (batching core, admission, metrics)."""

    def __init__(self, export_dir: str, settings: dict[str, Any]) -> None:
        from qa_engine.engine import QAEngine
        from qa_engine.serve.settings import ServeSettings

        threads = actor_threads()  # Ray's OMP_NUM_THREADS does not reach onnxruntime
        self.settings = ServeSettings(**{**settings, "threads": threads})
        # spinning off: the proxy, other replicas and Ray's own workers share the node.
        self.engine = QAEngine(
            export_dir, device=self.settings.device, threads=threads, spinning=False
        )

    def __serve_build_asgi_app__(self):
        from qa_engine.serve.app import create_app

        # Serve routes to a replica once its ASGI startup ends: end it after warm-up, so
        # no request waits behind the first run of every batch shape.
        self._service_app = create_app(self.engine, self.settings, warm_before_startup=True)
        return self._service_app

    def check_health(self) -> None:
        """Serve's periodic health check: a replica whose warm-up failed is replaced."""
        service = getattr(getattr(self, "_service_app", None), "state", None)
        error = getattr(getattr(service, "service", None), "warmup_error", None)
        if error:
            raise RuntimeError(f"warm-up failed: {error}")


QADeployment = serve.deployment(QAReplica, name="QAEngine")


def serve_settings(values: dict[str, Any]) -> dict[str, Any]:
    """Validated ``ServeSettings`` fields (as a dict that travels to the replicas)."""
    from qa_engine.serve.settings import ServeSettings

    return asdict(ServeSettings.from_env(**values))


def build(
    export_dir: str | os.PathLike,
    settings: dict[str, Any],
    options: RayServeOptions,
    *,
    log_level: str | None = None,
):
    """The Ray Serve application (bind it with ``serve.run``).

    ``log_level`` sets the replicas' logging, with Serve's per-request access log only
    at DEBUG (as ``qa-engine serve``: a log line per request costs CPU the engine needs);
    None leaves Serve's own logging config (a config file's ``logging_config``).
    """
    export_dir = os.path.abspath(export_dir)
    if not os.path.isdir(export_dir):
        raise FileNotFoundError(f"{export_dir}: export directory not found")
    values = serve_settings(settings)
    # Serve force-kills a stopping replica after graceful_shutdown_timeout_s (20 s by
    # default): give it the service's drain timeout, so admitted requests get answered.
    extra: dict[str, Any] = {"graceful_shutdown_timeout_s": values["drain_timeout_s"]}
    if log_level is not None:
        extra["logging_config"] = logging_config(log_level)
    deployment = QADeployment.options(**options.deployment_options(), **extra)
    return deployment.bind(export_dir, values)


# Keys that look like settings but are not ``build_app`` args, and where each one goes.
MISPLACED_ARGS = {
    "name": "the application's own name (beside import_path)",
    "route_prefix": "the application's own route_prefix (beside import_path)",
    "host": "http_options.host (Serve's proxy binds it, not a replica)",
    "port": "http_options.port (Serve's proxy binds it, not a replica)",
    "threads": "cpus_per_replica (a replica runs one onnxruntime thread per CPU it gets)",
}


def _arg_types() -> dict[str, str]:
    """Every ``build_app`` arg but ``export_dir``, with its annotation (a string)."""
    from qa_engine.serve.settings import ServeSettings

    types = {f.name: str(f.type) for f in (*fields(ServeSettings), *fields(RayServeOptions))}
    return {name: kind for name, kind in types.items() if name not in MISPLACED_ARGS}


def _parse(name: str, value: Any, kind: str) -> Any:
    """``serve run IMPORT_PATH key=value`` passes strings: parse one by its field's type."""
    if not isinstance(value, str) or kind.startswith("str"):
        return value
    if "None" in kind and value.lower() in ("none", "null"):
        return None
    booleans = {"true": True, "1": True, "false": False, "0": False}
    try:
        if kind.startswith("bool"):
            return booleans[value.lower()]
        if kind.startswith("int"):
            return int(value)
        if kind.startswith("float"):
            return float(value)
    except (KeyError, ValueError):
        raise ValueError(f"build_app arg {name} must be {kind}, got {value!r}") from None
    return value


def logging_config(log_level: str) -> dict[str, Any]:
    """Serve's logging config for a level: the access log only at DEBUG."""
    level = log_level.upper()
    return {"log_level": level, "enable_access_log": level == "DEBUG"}


def build_app(args: dict[str, Any]):
    """App builder for ``serve run`` / ``serve deploy`` (``import_path: ...:build_app``).

    ``args`` holds ``export_dir`` plus any :class:`RayServeOptions` field (but ``name``
    and ``route_prefix``: the application's own keys) and any ``ServeSettings`` field
    (but ``host``/``port``: ``http_options``; ``threads``: ``cpus_per_replica``). Values
    may be strings, as ``serve run IMPORT_PATH key=value`` passes them.

    Raises:
        ValueError: ``export_dir`` missing, an unknown or misplaced arg (named, with the
            valid ones), ``replicas`` beside ``max_replicas``, or autoscaling settings
            without ``max_replicas``; an invalid value.
        FileNotFoundError: ``export_dir`` is not a directory.
    """
    args = dict(args)
    types = _arg_types()
    misplaced = sorted(set(args) & set(MISPLACED_ARGS))
    if misplaced:
        where = "; ".join(f"{name} -> {MISPLACED_ARGS[name]}" for name in misplaced)
        raise ValueError(f"build_app: {', '.join(misplaced)} do not go in args: set {where}")
    unknown = sorted(set(args) - set(types) - {"export_dir"})
    if unknown:
        raise ValueError(
            f"build_app got unknown args {', '.join(unknown)}; "
            f"valid: export_dir, {', '.join(sorted(types))}"
        )
    if not args.get("export_dir"):
        raise ValueError("build_app needs args.export_dir (the export directory)")
    export_dir = args.pop("export_dir")
    values = {name: _parse(name, value, types[name]) for name, value in args.items()}
    autoscaling = values.get("max_replicas") is not None
    if autoscaling and values.get("replicas") is not None:
        raise ValueError(
            "build_app: replicas is a fixed count and max_replicas turns on autoscaling; "
            "give min_replicas/max_replicas, or replicas alone"
        )
    idle = sorted({"min_replicas", "target_ongoing_requests"} & set(values))
    if idle and not autoscaling:
        raise ValueError(f"build_app: {', '.join(idle)} set autoscaling: give max_replicas too")
    names = {f.name for f in fields(RayServeOptions)}
    options = {name: values.pop(name) for name in list(values) if name in names}
    if autoscaling:
        options.setdefault("replicas", None)
    return build(export_dir, values, RayServeOptions(**options))


def run(
    export_dir: str | os.PathLike,
    settings: dict[str, Any],
    options: RayServeOptions,
    *,
    address: str | None = None,
    blocking: bool = True,
    log_level: str = "info",
    request_timeout_s: float | None = REQUEST_TIMEOUT_S,
) -> None:
    """Deploy on Ray (a local one unless ``address``) with the proxy on host:port; block.

    SIGTERM or Ctrl-C ends it: on a Ray this call started, Serve shuts down (each
    replica drains through the app's lifespan) and so does Ray; on a cluster it joined,
    only this application is deleted, the cluster and its other applications stay.
    """
    import signal
    import threading

    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False)
    local = started and address is None
    handle_sigterm = blocking and threading.current_thread() is threading.main_thread()
    if handle_sigterm:
        signal.signal(signal.SIGTERM, _interrupt)
    http = {
        "host": settings.get("host", "127.0.0.1"),
        "port": settings.get("port", 8000),
        # Serve's proxy waits forever by default; a request it retries after its
        # replica died has hung that way (measured in tests/test_ray_serve.py).
        "request_timeout_s": request_timeout_s,
    }
    try:
        serve.start(http_options=http, logging_config=logging_config(log_level))
        app = build(export_dir, settings, options, log_level=log_level)
        serve.run(app, name=options.name, route_prefix=options.route_prefix, blocking=blocking)
    except KeyboardInterrupt:
        pass
    finally:
        if handle_sigterm:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends at once
        if blocking:
            if local:
                serve.shutdown()
            else:
                serve.delete(options.name)
            if started:
                ray.shutdown()


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt
