"""Shared set-up of the Ray tests: one small local Ray, Serve on a slow machine."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

# Ray's workers start slowly on 2 busy cores: the proxy's 5 s readiness check (three
# misses and Serve kills it) would fail a correct deployment. Read by the controller,
# which inherits the driver's environment at ray.init.
SLOW_MACHINE_ENV = {"RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S": "60"}
OBJECT_STORE_BYTES = 100 * 1024**2


@contextlib.contextmanager
def slow_machine_env() -> Iterator[None]:
    """``SLOW_MACHINE_ENV`` set for the block, the environment restored after it."""
    saved = {key: os.environ.get(key) for key in SLOW_MACHINE_ENV}
    os.environ.update(SLOW_MACHINE_ENV)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def init_local_ray() -> None:
    """A local Ray of 2 CPUs and a 100 MB object store, quiet, without the dashboard."""
    import ray

    ray.init(
        num_cpus=2,
        object_store_memory=OBJECT_STORE_BYTES,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
    )
