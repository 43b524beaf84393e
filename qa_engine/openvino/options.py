"""Options of onnxruntime's OpenVINO execution provider, built and checked without onnxruntime.

``qa_engine/session.py`` (the one module that imports onnxruntime) calls these:

- :meth:`OpenVINOOptions.provider_options` gives the ``(name, options)`` entry for
  ``InferenceSession``: ``device_type``, ``load_config`` (a JSON *string* of OpenVINO CPU
  properties, not a path) and, when asked for, ``cache_dir`` (compiled-model cache).
  The cache is off by default: measured on SpanBERT-base (onnxruntime-openvino 1.24.1,
  2 vCPU), a cached load took 2.5-2.6 s against 2.3-2.4 s uncached, because the provider
  still parses the ONNX file and importing the 412 MB blob costs what compiling did.
  (Plain OpenVINO caching a file path does pay: 5.6 s -> 0.9 s; the bench peer uses it.)
- :func:`prefers_openvino` is the ``device="auto"`` rule: the provider is installed and
  the CPU computes bf16 natively (AMX or AVX512-BF16). It runs int8-openvino exports 3-4x
  faster than the CPU provider runs them, even with the f32 hint.
- :func:`assignment_problem` reads back which provider got which nodes. A provider
  that fails to initialise (bad option, bad JSON, unknown device) is silently dropped by
  onnxruntime: ``session.get_providers()`` then lacks it. Nodes it cannot run go to the
  CPU provider: the session lists both providers and is slow. Both poison benchmarks.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from qa_engine.openvino.cpu import has_amx, has_bf16

PROVIDER = "OpenVINOExecutionProvider"
CPU_PROVIDER = "CPUExecutionProvider"
PRECISIONS = ("auto", "bf16", "f32")
PERFORMANCE_HINTS = ("LATENCY", "THROUGHPUT", "CUMULATIVE_THROUGHPUT")
DEVICE_TYPES = ("CPU",)
# Session config entry that makes onnxruntime record the node -> provider assignment.
RECORD_ASSIGNMENT = ("session.record_ep_graph_assignment_info", "1")
CACHE_ENV = "QA_ENGINE_OPENVINO_CACHE"
CACHE_OFF = ("", "0", "off", "none")


def default_cache_dir() -> Path | None:
    """Where compiled models are cached: ``$QA_ENGINE_OPENVINO_CACHE``, else
    ``$XDG_CACHE_HOME/qa-engine/openvino`` (``~/.cache/...``); None when the variable is
    set to "", "0", "off" or "none".

    OpenVINO keys each blob by a hash of the model and the compile properties, so one
    directory serves every model and precision (a SpanBERT-base blob is 412 MB in bf16,
    170 MB in int8).
    """
    value = os.environ.get(CACHE_ENV)
    if value is not None:
        return None if value.strip().lower() in CACHE_OFF else Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "qa-engine" / "openvino"


@dataclass
class OpenVINOOptions:
    """How the OpenVINO provider compiles the model.

    Attributes:
        precision: Inference precision of the layers that are not int8: ``"bf16"``,
            ``"f32"``, or ``"auto"``: bf16 on AMX CPUs, f32 elsewhere, which is OpenVINO's
            own default. On AVX512-BF16 without AMX (AMD Zen 4 here) the bf16 path of
            OpenVINO 2025.4, the build onnxruntime-openvino 1.24.1 bundles, wrecks a
            fine-tuned MiniLM (SQuAD dev F1 63.9 -> 8.6; plain OpenVINO 2026.4 is fine),
            while int8 graphs run as fast under f32 as under bf16.
        threads: OpenVINO inference threads (``INFERENCE_NUM_THREADS``); None lets it
            pick (one per physical core). ``SessionOptions.intra_op_num_threads`` does
            not reach OpenVINO's own thread pool, so the session passes its count here.
        performance_hint: ``LATENCY`` (one stream, all threads on one request) or
            ``THROUGHPUT`` (several streams, for many concurrent requests).
        cache_dir: Compiled-model cache dir; None: ``$QA_ENGINE_OPENVINO_CACHE`` when
            set, else no cache (see the module docstring for why that is the default).
        use_cache: False disables the cache whatever ``cache_dir`` or the variable say.
        device_type: OpenVINO device; only ``"CPU"`` is supported here.
    """

    precision: str = "auto"
    threads: int | None = None
    performance_hint: str = "LATENCY"
    cache_dir: str | os.PathLike | None = None
    use_cache: bool = True
    device_type: str = "CPU"

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.performance_hint not in PERFORMANCE_HINTS:
            raise ValueError(
                f"performance_hint must be one of {PERFORMANCE_HINTS}, "
                f"got {self.performance_hint!r}"
            )
        if self.device_type not in DEVICE_TYPES:
            raise ValueError(f"device_type must be one of {DEVICE_TYPES}, got {self.device_type!r}")
        if self.threads is not None:
            if isinstance(self.threads, bool) or not isinstance(self.threads, int):
                raise TypeError(f"threads must be an int, got {type(self.threads).__name__}")
            if self.threads < 1:
                raise ValueError(f"threads must be >= 1, got {self.threads}")

    @classmethod
    def from_device(cls, device: str, threads: int | None = None) -> OpenVINOOptions:
        """Options for ``device="openvino"``, ``"openvino:bf16"`` or ``"openvino:f32"``.

        Raises:
            ValueError: Not an ``openvino[:precision]`` device string.
        """
        kind, colon, precision = device.partition(":")
        if kind != "openvino" or (colon and precision not in PRECISIONS):
            raise ValueError(
                f"expected 'openvino' or 'openvino:<precision>' with precision in "
                f"{PRECISIONS}, got {device!r}"
            )
        return cls(precision=precision or "auto", threads=threads)

    def resolved_precision(self, flags: frozenset[str] | None = None) -> str:
        """``bf16`` or ``f32`` (``auto``: bf16 on AMX CPUs only, see ``precision``)."""
        if self.precision != "auto":
            return self.precision
        return "bf16" if has_amx(flags) else "f32"

    def resolved_cache_dir(self) -> Path | None:
        """The provider's cache dir, or None for no cache."""
        if not self.use_cache:
            return None
        if self.cache_dir:
            return Path(self.cache_dir).expanduser()
        return default_cache_dir() if CACHE_ENV in os.environ else None

    def core_properties(self, flags: frozenset[str] | None = None) -> dict[str, str]:
        """OpenVINO CPU plugin properties (``core.compile_model(..., properties)``)."""
        properties = {
            "INFERENCE_PRECISION_HINT": self.resolved_precision(flags),
            "PERFORMANCE_HINT": self.performance_hint,
        }
        if self.threads is not None:
            properties["INFERENCE_NUM_THREADS"] = str(self.threads)
        return properties

    def provider_options(self, flags: frozenset[str] | None = None) -> dict[str, str]:
        """Provider options for ``InferenceSession(..., provider_options=[...])``.

        ``load_config`` is a JSON string (the provider also accepts a path, and silently
        drops itself when the JSON is bad). Caching goes through the provider's own
        ``cache_dir`` option, not the ``CACHE_DIR`` property.
        """
        options = {
            "device_type": self.device_type,
            "load_config": json.dumps({self.device_type: self.core_properties(flags)}),
        }
        cache = self.resolved_cache_dir()
        if cache is not None:
            options["cache_dir"] = str(cache)
        return options


def prefers_openvino(available: Sequence[str], flags: frozenset[str] | None = None) -> bool:
    """The ``device="auto"`` rule: OpenVINO provider installed and native bf16 on this CPU.

    CUDA, where present, is still preferred by the caller (onnxruntime-gpu and
    onnxruntime-openvino are never installed together anyway).
    """
    return PROVIDER in available and has_bf16(flags)


@dataclass(frozen=True)
class Assignment:
    """Which provider runs how many of the model's nodes.

    Attributes:
        nodes: Provider name -> number of nodes assigned to it.
        cpu_op_types: Op types of the nodes left to the CPU provider, with counts.
    """

    nodes: dict[str, int]
    cpu_op_types: dict[str, int]

    @property
    def openvino_share(self) -> float:
        total = sum(self.nodes.values())
        return self.nodes.get(PROVIDER, 0) / total if total else 0.0


def summarize_assignment(groups: Iterable[tuple[str, Iterable[str]]]) -> Assignment:
    """Fold ``session.get_provider_graph_assignment_info()`` into counts.

    Args:
        groups: ``(ep_name, op_types)`` per assignment group, e.g.
            ``[(a.ep_name, [n.op_type for n in a.get_nodes()]) for a in info]``.
    """
    nodes: Counter[str] = Counter()
    cpu_ops: Counter[str] = Counter()
    for name, op_types in groups:
        ops = list(op_types)
        nodes[name] += len(ops)
        if name != PROVIDER:
            cpu_ops.update(ops)
    return Assignment(dict(nodes), dict(cpu_ops))


def assignment_problem(providers: Sequence[str], assignment: Assignment | None) -> str | None:
    """Why an OpenVINO session would not really run on OpenVINO, or None if it does.

    Args:
        providers: ``session.get_providers()``.
        assignment: From :func:`summarize_assignment`, or None when it was not recorded.

    Returns:
        A message for the caller to raise (provider dropped, or no node on OpenVINO) or
        to warn with (some nodes on the CPU provider), prefixed ``"error: "`` or
        ``"warning: "``.
    """
    if PROVIDER not in providers:
        return (
            f"error: {PROVIDER} was requested but the session runs on {list(providers)}: "
            "onnxruntime dropped it while creating it (bad provider option or load_config "
            "JSON, unavailable device); see its log above"
        )
    if assignment is None:
        return None
    if assignment.nodes.get(PROVIDER, 0) == 0:
        return f"error: {PROVIDER} is listed but runs no node of the model: {assignment.nodes}"
    if assignment.cpu_op_types:
        left = ", ".join(f"{op} x{n}" for op, n in sorted(assignment.cpu_op_types.items()))
        return (
            f"warning: {PROVIDER} runs {assignment.openvino_share:.0%} of the nodes; the CPU "
            f"provider runs the rest ({left}), with a copy at each hop. Export without "
            "onnxruntime-specific fused ops (--optimize none) for OpenVINO"
        )
    return None
