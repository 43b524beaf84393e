"""Optional dependencies: import them or tell the user exactly what to install."""

from __future__ import annotations

import importlib
from types import ModuleType

import click

# Which extra provides which top-level module.
EXTRA_OF_MODULE = {
    "onnxruntime": "cpu",
    "torch": "train",
    "transformers": "train",
    "datasets": "train",
    "accelerate": "train",
    "optimum": "export",
    "onnx": "export",
    "matplotlib": "bench",
    "psutil": "bench",
    "openvino": "openvino-tools",
    "nncf": "openvino-tools",
    "ray": "ray",
    "pyarrow": "ray",
    "fastapi": "serve",
    "uvicorn": "serve",
    "prometheus_client": "serve",
}


class MissingExtraError(click.ClickException):
    """An optional dependency is missing; the message names the pip command to run."""

    exit_code = 2

    def __init__(self, module: str, extra: str) -> None:
        flavours = (
            " (or [gpu], or [openvino]: one onnxruntime flavour per environment)"
            if module == "onnxruntime"
            else ""
        )
        super().__init__(
            f"this command needs `{module}`, which is not installed. "
            f'Run: pip install "qa-engine[{extra}]"{flavours}'
        )
        self.module = module
        self.extra = extra


def require(module: str, extra: str | None = None) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtraError` naming the extra to install."""
    top = module.split(".")[0]
    try:
        return importlib.import_module(module)
    except ImportError as err:
        if err.name is not None and err.name.split(".")[0] != top:
            raise  # the module exists but one of *its* imports is broken: show it
        raise MissingExtraError(top, extra or EXTRA_OF_MODULE.get(top, "train")) from err


def missing_extra_from(err: ImportError) -> MissingExtraError | None:
    """Translate an ImportError of a known optional module into a MissingExtraError."""
    name = (err.name or "").split(".")[0]
    if name in EXTRA_OF_MODULE:
        return MissingExtraError(name, EXTRA_OF_MODULE[name])
    return None
