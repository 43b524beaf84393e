"""The onnxruntime session: provider resolution, input feeding, IO binding.

This is the only module that imports onnxruntime. Provider rules (see STYLE.md):

- ``providers`` (an explicit list) wins; every name must be one this onnxruntime build
  offers, or ``ValueError`` lists the ones it does.
- ``device="auto"`` picks CUDA when this build has it, else OpenVINO when this build has
  it and the CPU computes bf16 natively (AMX or AVX512-BF16), else CPU; ``"cpu"``,
  ``"cuda"`` (``"cuda:N"`` for device N) and ``"openvino"`` (``"openvino:bf16"``,
  ``"openvino:f32"``; plain ``"openvino"`` is bf16 on AMX CPUs, f32 elsewhere) and
  ``"tensorrt"`` (``"tensorrt:N"``: TensorRT fp16 with engine and timing caches and
  length-bucket profiles, :mod:`qa_engine.tensorrt`; CUDA takes what TensorRT cannot run)
  ask for one.
- Asking for an accelerator and silently getting CPU is an error: onnxruntime falls back
  to CPU when a provider fails to initialise, which would poison benchmark numbers, so
  the providers of the built session are checked. For OpenVINO the node assignment is
  read back too: nodes it cannot run go to the CPU provider (a warning; none at all on
  OpenVINO is an error). Its options come from :mod:`qa_engine.openvino.options`.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from qa_engine import tensorrt
from qa_engine.openvino.cpu import has_amx
from qa_engine.openvino.options import (
    RECORD_ASSIGNMENT,
    OpenVINOOptions,
    assignment_problem,
    prefers_openvino,
    summarize_assignment,
)

DEVICES = ("auto", "cpu", "cuda", "openvino", "tensorrt")
CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
OPENVINO = "OpenVINOExecutionProvider"
TENSORRT = tensorrt.TENSORRT
# Inputs a BERT-family QA model may declare; token_type_ids is absent for some exports.
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")

ProviderSpec = str | tuple[str, dict[str, Any]]

_INT_TYPES = {"tensor(int64)": np.int64, "tensor(int32)": np.int32}


def available_providers() -> list[str]:
    """Execution providers this onnxruntime build offers."""
    return list(ort.get_available_providers())


def onnxruntime_version() -> str:
    """The version of the installed onnxruntime build."""
    return str(ort.__version__)


def resolve_providers(
    device: str = "auto",
    providers: Sequence[ProviderSpec] | None = None,
    threads: int | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """Turn ``device``/``providers`` into the ``(name, options)`` list to build a session with.

    ``threads`` reaches OpenVINO through its ``load_config`` (its thread pool ignores
    onnxruntime's intra-op setting).

    Raises:
        ValueError: An unknown device, a provider this build lacks, or both ``device``
            (other than ``"auto"``) and ``providers`` given.
    """
    available = available_providers()
    if providers is not None:
        if device != "auto":
            raise ValueError(f"pass either device={device!r} or providers, not both")
        if isinstance(providers, str):
            providers = [providers]
        resolved = []
        for spec in providers:
            name, options = (spec, {}) if isinstance(spec, str) else (spec[0], dict(spec[1]))
            if name not in available:
                raise ValueError(
                    f"unknown or unavailable execution provider {name!r}; "
                    f"this onnxruntime build offers {available}"
                )
            resolved.append((name, options))
        if not resolved:
            raise ValueError(f"providers is empty; this onnxruntime build offers {available}")
        return resolved

    if not isinstance(device, str):
        raise TypeError(f"device must be a string, got {type(device).__name__}")
    kind, colon, index = device.partition(":")
    valid_index = not colon or (
        index.isdigit()
        if kind in ("cuda", "tensorrt")
        else kind == "openvino" and index in ("bf16", "f32")
    )
    if kind not in DEVICES or not valid_index:
        raise ValueError(
            f"device must be one of {DEVICES} (or 'cuda:N', 'tensorrt:N', 'openvino:bf16', "
            f"'openvino:f32'), got {device!r}"
        )
    if kind == "auto":
        if CUDA in available:
            return [(CUDA, {}), (CPU, {})]
        if prefers_openvino(available):
            return [(OPENVINO, OpenVINOOptions(threads=threads).provider_options()), (CPU, {})]
        return [(CPU, {})]
    if kind == "cpu":
        return [(CPU, {})]
    if kind == "tensorrt":
        if TENSORRT not in available:
            raise ValueError(tensorrt.missing_message(device, available))
        # The caches and profiles are filled in by OnnxQASession, which knows the model.
        device_id = int(index or 0)
        return [
            (TENSORRT, {"device_id": str(device_id), "trt_fp16_enable": "True"}),
            (CUDA, {"device_id": device_id}),
            (CPU, {}),
        ]
    wanted, options = (
        (CUDA, {"device_id": int(index or 0)})
        if kind == "cuda"
        else (OPENVINO, OpenVINOOptions.from_device(device, threads).provider_options())
    )
    if wanted not in available:
        extra = "gpu" if kind == "cuda" else "openvino"
        raise ValueError(
            f"device={device!r} needs {wanted}, but this onnxruntime build offers only "
            f'{available}; install the right build: pip install "qa-engine[{extra}]"'
        )
    return [(wanted, options), (CPU, {})]


def candidate_devices(device: str, flags: frozenset[str] | None = None) -> list[str]:
    """The device strings to try, in order, for ``device``; the engine's self-check takes
    the first that passes.

    ``"auto"``: CUDA when this build has it, then OpenVINO (bf16 on AMX CPUs, then f32)
    when it has that and the CPU computes bf16 natively, then the CPU provider. Plain
    ``"openvino"``: bf16 on AMX CPUs, then f32. Anything else is tried alone.
    """
    available = available_providers()
    openvino = ["openvino:bf16", "openvino:f32"] if has_amx(flags) else ["openvino:f32"]
    if device == "auto":
        candidates = ["cuda"] if CUDA in available else []
        if prefers_openvino(available, flags):
            candidates += openvino
        return [*candidates, "cpu"]
    if device == "openvino":
        return openvino
    return [device]


def preload_cuda_libraries() -> None:
    """Load CUDA and cuDNN from the ``nvidia-*`` pip packages (or torch) before a CUDA session.

    onnxruntime-gpu's ``[cuda,cudnn]`` extras install those libraries as Python packages,
    which the provider does not find on its own unless they are preloaded
    (``onnxruntime.preload_dlls``, onnxruntime >= 1.21). Harmless when the libraries are
    already on the loader's path; a provider that still cannot load is caught afterwards
    as a CPU fallback.
    """
    preload = getattr(ort, "preload_dlls", None)
    if preload is None:
        return
    try:
        preload()
    except Exception:  # best effort: the fallback check reports what is really missing
        pass


# onnxruntime session config key: idle intra-op workers spin (1, default) or sleep (0).
ALLOW_SPINNING = "session.intra_op.allow_spinning"


def session_options(threads: int | None = None, spinning: bool = True) -> ort.SessionOptions:
    """onnxruntime session options: intra-op ``threads`` (None: its default) and spinning."""
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
    if not spinning:
        options.add_session_config_entry(ALLOW_SPINNING, "0")
    return options


def create_session(
    path: Path,
    resolved: list[tuple[str, dict[str, Any]]],
    threads: int | None = None,
    spinning: bool = True,
    *,
    quiet: bool = False,
) -> ort.InferenceSession:
    """A raw onnxruntime session on ``resolved`` providers (see :func:`resolve_providers`).

    CUDA libraries are preloaded first; ``quiet`` keeps onnxruntime's log to errors.
    Whether an accelerator was silently dropped is the caller's check.

    Raises:
        ValueError: onnxruntime cannot load the model.
    """
    if any(name == CUDA for name, _ in resolved):
        preload_cuda_libraries()
    options = session_options(threads, spinning)
    if quiet:
        options.log_severity_level = 3  # errors only
    if any(name == OPENVINO for name, _ in resolved):
        options.add_session_config_entry(*RECORD_ASSIGNMENT)
    try:
        return ort.InferenceSession(
            str(path),
            sess_options=options,
            providers=[name for name, _ in resolved],
            provider_options=[opts for _, opts in resolved],
        )
    except Exception as err:  # onnxruntime raises its own Fail/InvalidProtobuf types
        raise ValueError(f"{path}: onnxruntime cannot load this model ({err})") from err


class OnnxQASession:
    """A thread-safe onnxruntime session for a span-extraction QA model.

    Args:
        model_path: ``model.onnx``.
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` (``"cuda:N"``) or ``"openvino"``
            (``"openvino:bf16"``, ``"openvino:f32"``).
        providers: Explicit providers, names or ``(name, options)`` pairs; wins over
            ``device``.
        threads: Intra-op threads (``None``: onnxruntime's default, one per core).
        spinning: Idle intra-op workers spin (onnxruntime's default) or sleep (False:
            for sessions that share cores with other sessions).
        whole_graph: An OpenVINO session that leaves nodes to the CPU provider is an
            error rather than a warning (``device="auto"`` then tries its next candidate).
        max_seq_length: Longest window (TensorRT's profiles; default 512).
        trt_cache_dir: TensorRT engine and timing cache (default: ``trt-cache/`` beside
            the model).

    Raises:
        FileNotFoundError: ``model_path`` does not exist.
        ValueError: Bad device/providers/threads, or the file is not a usable QA model.
        RuntimeError: An accelerator was asked for and onnxruntime fell back to CPU.
    """

    def __init__(
        self,
        model_path: str | os.PathLike,
        *,
        device: str = "auto",
        providers: Sequence[ProviderSpec] | None = None,
        threads: int | None = None,
        spinning: bool = True,
        whole_graph: bool = False,
        max_seq_length: int | None = None,
        trt_cache_dir: str | os.PathLike | None = None,
    ) -> None:
        path = Path(model_path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: ONNX model not found")
        if threads is not None:
            if isinstance(threads, bool) or not isinstance(threads, int):
                raise TypeError(f"threads must be an int, got {type(threads).__name__}")
            if threads < 1:
                raise ValueError(f"threads must be >= 1, got {threads}")
        resolved = resolve_providers(device, providers, threads)
        resolved = _with_tensorrt_settings(resolved, path, max_seq_length, trt_cache_dir)
        # The OpenVINO precision hint that reached the provider (None: not OpenVINO);
        # TensorRT with fp16 on computes in f16 below an fp32 graph.
        self.inference_hint: str | None = _openvino_hint(resolved) or _tensorrt_hint(resolved)
        self._session = create_session(path, resolved, threads, spinning)
        self.providers: list[str] = list(self._session.get_providers())
        accelerators = [name for name, _ in resolved if name != CPU]
        dropped = [name for name in accelerators if name not in self.providers]
        if dropped:
            message = (
                tensorrt.fallback_message(self.providers)
                if TENSORRT in dropped
                else f"{dropped} requested but the session runs on {self.providers}: "
                "onnxruntime fell back (missing driver/libraries, or no device); see its "
                "log above"
            )
            if device == "auto" and providers is None:
                warnings.warn(message, stacklevel=2)
            else:
                raise RuntimeError(message)
        # Share of the graph's nodes OpenVINO runs (None: not an OpenVINO session).
        self.openvino_share: float | None = None
        if OPENVINO in self.providers:
            auto = device == "auto" and providers is None
            partial = self._check_openvino(strict=not auto, quiet=whole_graph)
            if partial and whole_graph:
                raise RuntimeError(
                    f"OpenVINO runs only {self.openvino_share:.0%} of this graph's nodes "
                    "(onnxruntime-specific fused operators); the CPU provider runs it whole"
                )
            if partial and auto:
                # auto chose OpenVINO for the CPU, but this graph holds operators only
                # onnxruntime has (an --optimize O1-O4 export): hopping between the two
                # providers is slower than the CPU provider alone.
                resolved = [(CPU, {})]
                self._session = create_session(path, resolved, threads, spinning)
                self.providers = list(self._session.get_providers())
                self.openvino_share = None
                self.inference_hint = None
        self._device_id = next(
            (int(opts.get("device_id", 0)) for name, opts in resolved if name in (CUDA, TENSORRT)),
            0,
        )
        self.model_path = path
        self.uses_cuda = CUDA in self.providers

        declared = {i.name: i.type for i in self._session.get_inputs()}
        unknown = sorted(set(declared) - set(MODEL_INPUTS))
        if unknown or "input_ids" not in declared:
            raise ValueError(
                f"{path}: expected inputs among {MODEL_INPUTS} including input_ids, "
                f"the model declares {sorted(declared)}"
            )
        # Feed only what the model declares, in the integer type it declares.
        self.input_types = {name: _INT_TYPES.get(kind, np.int64) for name, kind in declared.items()}
        outputs = [o.name for o in self._session.get_outputs()]
        if {"start_logits", "end_logits"} <= set(outputs):
            self.output_names = ["start_logits", "end_logits"]
        elif len(outputs) == 2:
            self.output_names = outputs
        else:
            raise ValueError(f"{path}: expected outputs start_logits and end_logits, got {outputs}")

    def _check_openvino(self, *, strict: bool, quiet: bool = False) -> bool:
        """Nodes OpenVINO cannot run go to the CPU provider: warn; none on OpenVINO: error.

        Returns:
            Whether some nodes do not run on OpenVINO (``device="auto"`` then drops it).
        """
        info = self._session.get_provider_graph_assignment_info()
        assignment = summarize_assignment(
            (group.ep_name, [node.op_type for node in group.get_nodes()]) for group in info
        )
        self.openvino_share = assignment.openvino_share
        problem = assignment_problem(self.providers, assignment)
        if problem is None:
            return False
        level, _, message = problem.partition(": ")
        if level == "error" and strict:
            raise RuntimeError(message)
        if not strict:
            message += "; device='auto' uses the CPU provider alone instead"
        if not quiet:
            warnings.warn(message, stacklevel=4)
        return True

    def run(
        self,
        input_ids: np.ndarray,
        attention_mask: np.ndarray,
        token_type_ids: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Run one padded batch.

        Args:
            input_ids: ``(batch, seq)`` token ids.
            attention_mask: ``(batch, seq)`` 1 for real tokens, 0 for padding.
            token_type_ids: ``(batch, seq)`` segment ids; ignored if the model lacks them.

        Returns:
            ``start_logits`` and ``end_logits``, each ``(batch, seq)`` float32 (fp16 models
            are cast up).
        """
        arrays = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "token_type_ids": token_type_ids
            if token_type_ids is not None
            else np.zeros_like(input_ids),
        }
        feeds = {
            name: np.ascontiguousarray(arrays[name], dtype=dtype)
            for name, dtype in self.input_types.items()
        }
        if self.uses_cuda:
            # Bind inputs and outputs: one host-to-device copy in, one copy of the two
            # small logit tensors out, nothing else. A binding per call keeps run()
            # thread-safe.
            binding = self._session.io_binding()
            for name, array in feeds.items():
                binding.bind_cpu_input(name, array)
            for name in self.output_names:
                binding.bind_output(name, "cuda", self._device_id)
            self._session.run_with_iobinding(binding)
            start, end = binding.copy_outputs_to_cpu()
        else:
            start, end = self._session.run(self.output_names, feeds)
        return np.asarray(start, dtype=np.float32), np.asarray(end, dtype=np.float32)


def _with_tensorrt_settings(
    resolved: list[tuple[str, dict[str, Any]]],
    path: Path,
    max_seq_length: int | None,
    cache_dir: str | os.PathLike | None,
) -> list[tuple[str, dict[str, Any]]]:
    """Fill a TensorRT entry's caches and profiles (the model's input names are read
    first: a profile may only name inputs the model has)."""
    if not any(name == TENSORRT for name, _ in resolved):
        return resolved
    out = []
    for name, options in resolved:
        if name == TENSORRT:
            defaults = tensorrt.tensorrt_options(
                cache_dir or path.parent / tensorrt.CACHE_DIR_NAME,
                _input_names(path),
                max_seq_length or 512,
                device_id=int(options.get("device_id", 0)),
                fp16=str(options.get("trt_fp16_enable", "True")).lower() in ("1", "true"),
            )
            options = {**defaults, **options}  # explicit options win
        out.append((name, options))
    return out


def _input_names(path: Path) -> list[str]:
    """The model's declared inputs, from a CPU session with every optimisation off."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(path), options, providers=[CPU])
    except Exception as err:  # onnxruntime raises its own Fail/InvalidProtobuf types
        raise ValueError(f"{path}: onnxruntime cannot load this model ({err})") from err
    return [i.name for i in session.get_inputs() if i.name in MODEL_INPUTS]


def _tensorrt_hint(resolved: list[tuple[str, dict[str, Any]]]) -> str | None:
    for name, options in resolved:
        if name == TENSORRT:
            return "f16" if str(options.get("trt_fp16_enable")).lower() in ("1", "true") else None
    return None


def _openvino_hint(resolved: list[tuple[str, dict[str, Any]]]) -> str | None:
    """``INFERENCE_PRECISION_HINT`` in the OpenVINO provider's ``load_config``, if any."""
    for name, options in resolved:
        if name != OPENVINO:
            continue
        try:
            config = json.loads(options.get("load_config", "{}"))
        except (TypeError, ValueError):
            return None
        for properties in config.values() if isinstance(config, dict) else ():
            if isinstance(properties, dict) and "INFERENCE_PRECISION_HINT" in properties:
                return str(properties["INFERENCE_PRECISION_HINT"])
        return None
    return None
