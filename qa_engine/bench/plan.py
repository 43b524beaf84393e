"""From model dirs to runner specs, with one set of QA settings shared by every runner.

A fine-tuned PyTorch dir (``config.json`` + weights, optionally ``qa_config.json``) gives
the transformers-pipeline peers (fp32, and bf16 autocast on CPUs with AMX/AVX512-BF16).
An export dir (``qa_manifest.json``) gives a qa-engine runner; the plainest export dir
(fp32 before int8, least optimised first) also gives the Optimum pipeline peer on the
*same* ONNX file, so the two runtimes can be compared on identical graphs; the plain
OpenVINO peer (``--peers ...,openvino``, needs the ``openvino`` package) runs that file
too (OpenVINO reads fp32 graphs, fused up to O3, but not onnxruntime's int8 operators).
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from qa_engine.manifest import MANIFEST_NAME, OPTIMIZATIONS, PRECISIONS, ExportManifest

KINDS = ("transformers", "optimum", "openvino", "qa-engine")
PEERS = ("transformers", "optimum", "openvino")
DEFAULT_PEERS = ("transformers", "optimum")
# "openvino": qa-engine runners on onnxruntime's OpenVINO provider (the peers run on CPU);
# "auto": qa-engine runners take what QAEngine's default takes (the peers run on CPU).
# An export dir given as "DIR@DEVICE" runs its qa-engine runner there (e.g. openvino:f32).
DEVICES = ("cpu", "cuda", "openvino", "auto")
AUTOCASTS = (None, "bf16", "fp16")
QA_CONFIG_NAME = "qa_config.json"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
ONNX_SUFFIXES = (".onnx", ".onnx_data", ".onnx.data")


@dataclass(frozen=True)
class QASettings:
    """Window and decoding settings every runner uses, so they all answer the same task.

    Attributes:
        max_seq_length: Tokens per window (question + context + special tokens).
        doc_stride: Overlapping tokens between consecutive windows of a long context.
        max_answer_length: Longest answer in tokens.
        max_question_len: Longest question in tokens.
        version_2: The model can answer "no answer" (SQuAD 2.0).
        null_threshold: SQuAD 2.0 threshold on ``null_score - best_span_score``.
    """

    max_seq_length: int = 384
    doc_stride: int = 128
    max_answer_length: int = 30
    max_question_len: int = 64
    version_2: bool = False
    null_threshold: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.doc_stride < self.max_seq_length:
            raise ValueError(
                f"doc_stride must be in [0, max_seq_length), got {self.doc_stride} "
                f"with max_seq_length {self.max_seq_length}"
            )
        if self.max_answer_length < 1:
            raise ValueError(f"max_answer_length must be >= 1, got {self.max_answer_length}")


@dataclass(frozen=True)
class RunnerSpec:
    """Everything needed to build one runner, in a form that survives JSON (subprocesses).

    Attributes:
        name: Label in tables and plots, unique within a run.
        kind: One of ``KINDS``.
        model_dir: The PyTorch dir or export dir it loads.
        settings: The shared QA settings.
        device: ``"cpu"`` or ``"cuda"``.
        threads: Intra-op threads (None: the library's default).
        autocast: ``"bf16"`` for the transformers pipeline under ``torch.autocast`` on CPU,
            and for the OpenVINO peer's bf16 inference-precision hint; ``"fp16"`` for the
            pipeline under CUDA fp16 autocast.
        precision: Weight precision, for the tables (``fp32``, ``bf16``, ``int8-dynamic``...).
        optimization: ORT optimisation level of the graph, for the tables.
        same_file_as: For the Optimum peer: the qa-engine runner on the same ONNX file.
        cuda_graphs: For qa-engine on CUDA: batches run on captured CUDA graphs
            (``QAEngine.enable_cuda_graphs``, captured at load).
    """

    name: str
    kind: str
    model_dir: str
    settings: QASettings = field(default_factory=QASettings)
    device: str = "cpu"
    threads: int | None = None
    autocast: str | None = None
    precision: str = "fp32"
    optimization: str = "none"
    same_file_as: str | None = None
    cuda_graphs: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.device.partition(":")[0] not in DEVICES:
            raise ValueError(
                f"device must be one of {DEVICES} (or e.g. 'openvino:f32'), got {self.device!r}"
            )
        if self.autocast not in AUTOCASTS:
            raise ValueError(f"autocast must be one of {AUTOCASTS}, got {self.autocast!r}")
        if self.autocast == "fp16" and self.device != "cuda":
            raise ValueError("fp16 autocast is for CUDA; on CPU use bf16")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RunnerSpec:
        raw = dict(raw)
        raw["settings"] = QASettings(**raw.get("settings", {}))
        return cls(**raw)


def is_export_dir(path: str | os.PathLike) -> bool:
    return (Path(path) / MANIFEST_NAME).is_file()


def is_pytorch_dir(path: str | os.PathLike) -> bool:
    path = Path(path)
    return (path / "config.json").is_file() and any(
        p.suffix in WEIGHT_SUFFIXES for p in path.iterdir() if p.is_file()
    )


def model_size_bytes(spec: RunnerSpec) -> int:
    """Bytes on disk of the weights the runner loads (ONNX files, or PyTorch weights)."""
    directory = Path(spec.model_dir)
    suffixes = WEIGHT_SUFFIXES if spec.kind == "transformers" else ONNX_SUFFIXES
    return sum(
        p.stat().st_size
        for p in directory.iterdir()
        if p.is_file() and any(p.name.endswith(s) for s in suffixes)
    )


def settings_of(path: str | os.PathLike) -> QASettings | None:
    """The QA settings a model dir records (manifest or ``qa_config.json``), if any."""
    path = Path(path)
    if is_export_dir(path):
        m = ExportManifest.load(path)
        return QASettings(
            m.max_seq_length,
            m.doc_stride,
            m.max_answer_length,
            m.max_question_len,
            m.version_2,
            m.null_threshold,
        )
    config_path = path / QA_CONFIG_NAME
    if not config_path.is_file():
        return None
    raw = json.loads(config_path.read_text())
    known = ("max_seq_length", "doc_stride", "max_answer_length", "version_2", "null_threshold")
    return QASettings(**{k: raw[k] for k in known if raw.get(k) is not None})


def resolve_settings(model_dirs: list[str], data_version_2: bool) -> QASettings:
    """One set of settings for all runners: the first dir that records any wins.

    Export dirs come first (their manifest is what qa-engine applies). A dir whose
    window settings disagree is an error: the runners would not be answering the same
    task. With no recorded settings, the transformers defaults (384/128/30) are used and
    ``version_2`` follows the data.
    """
    ordered = sorted(model_dirs, key=lambda d: not is_export_dir(d))
    found = [(d, s) for d in ordered if (s := settings_of(d)) is not None]
    if not found:
        return QASettings(version_2=data_version_2)
    reference_dir, reference = found[0]
    for directory, other in found[1:]:
        for name in ("max_seq_length", "doc_stride", "max_answer_length"):
            if getattr(other, name) != getattr(reference, name):
                raise ValueError(
                    f"{directory} has {name}={getattr(other, name)} but {reference_dir} has "
                    f"{getattr(reference, name)}; benchmark models made with the same settings"
                )
    if reference.version_2 != data_version_2:
        warnings.warn(
            f"the model is {'v2' if reference.version_2 else 'v1.1'} but the data is "
            f"{'v2' if data_version_2 else 'v1.1'}; scoring with the data's metric",
            stacklevel=2,
        )
    return reference


def _plainness(path: str) -> tuple[int, int]:
    m = ExportManifest.load(path)
    return (PRECISIONS.index(m.precision), OPTIMIZATIONS.index(m.optimization))


def split_model_arg(entry: str) -> tuple[str, str | None]:
    """``DIR`` -> ``(DIR, None)``; ``DIR@DEVICE`` (an export run on DEVICE) -> ``(DIR, DEVICE)``."""
    if "@" in entry and not Path(entry).is_dir():
        directory, _, device = entry.rpartition("@")
        return directory, device
    return entry, None


def plan_runners(
    model_dirs: list[str],
    settings: QASettings,
    *,
    peers: tuple[str, ...] = DEFAULT_PEERS,
    device: str = "cpu",
    threads: int | None = None,
    bf16: bool = False,
    fp16: bool = False,
) -> list[RunnerSpec]:
    """The runners to benchmark, baseline (transformers fp32) first when there is one.

    Args:
        model_dirs: PyTorch dirs and/or export dirs.
        settings: The shared settings (see :func:`resolve_settings`).
        peers: Which peer stacks to include, a subset of ``PEERS``.
        device: ``"cpu"``, ``"cuda"`` or ``"openvino"``.
        threads: Intra-op threads for every runner.
        bf16: Add the transformers pipeline under bf16 autocast (CPU only); the OpenVINO
            peer then gets the bf16 hint (else f32).
        fp16: Add the transformers pipeline under fp16 autocast (CUDA only): what GPU
            users run when they do not export.

    Raises:
        FileNotFoundError: A dir does not exist.
        ValueError: A dir is neither a PyTorch dir nor an export dir; an unknown peer.
    """
    unknown = [p for p in peers if p not in PEERS]
    if unknown:
        raise ValueError(f"unknown peer(s) {unknown}; valid: {list(PEERS)}")
    pytorch_dirs, export_dirs = [], []
    engines: list[tuple[str, str]] = []  # (export dir, device of its qa-engine runner)
    for entry in model_dirs:
        d, override = split_model_arg(str(entry))
        if not Path(d).is_dir():
            raise FileNotFoundError(f"model dir not found: {d}")
        if is_export_dir(d):
            engines.append((d, override or device))
            if d not in export_dirs:
                export_dirs.append(d)
        elif override:
            raise ValueError(f"{entry}: DIR@DEVICE needs an export dir ({MANIFEST_NAME})")
        elif is_pytorch_dir(d):
            pytorch_dirs.append(str(d))
        else:
            raise ValueError(
                f"{d}: neither an export dir ({MANIFEST_NAME}) nor a PyTorch dir "
                "(config.json + weights)"
            )
    if not pytorch_dirs and "transformers" in peers:
        # The export's source checkpoint, when it is still around, gives the baseline.
        for d in export_dirs:
            source = ExportManifest.load(d).source_model
            if source and Path(source).is_dir() and is_pytorch_dir(source):
                pytorch_dirs.append(source)
                break

    common = {"settings": settings, "device": device, "threads": threads}
    specs: list[RunnerSpec] = []
    several = len(pytorch_dirs) > 1
    for d in pytorch_dirs if "transformers" in peers else []:
        suffix = f" ({Path(d).name})" if several else ""
        specs.append(RunnerSpec(f"transformers fp32{suffix}", "transformers", d, **common))
        if bf16 and device != "cuda":
            specs.append(
                RunnerSpec(
                    f"transformers bf16-autocast{suffix}",
                    "transformers",
                    d,
                    autocast="bf16",
                    precision="bf16",
                    **common,
                )
            )
        if fp16 and device == "cuda":
            specs.append(
                RunnerSpec(
                    f"transformers fp16-autocast{suffix}",
                    "transformers",
                    d,
                    autocast="fp16",
                    precision="fp16",
                    **common,
                )
            )
    engine_names: dict[str, str] = {}  # export dir -> its first qa-engine runner
    for d, engine_device in engines:
        m = ExportManifest.load(d)
        name = f"qa-engine {m.precision} {m.optimization}"
        if engine_device != device:
            name = f"{name} @{engine_device}"
        if any(s.name == name for s in specs):
            name = f"{name} ({Path(d).name})"
        engine_names.setdefault(d, name)
        specs.append(
            RunnerSpec(
                name,
                "qa-engine",
                d,
                precision=m.precision,
                optimization=m.optimization,
                **{**common, "device": engine_device},
            )
        )
    if "optimum" in peers and export_dirs:
        d = min(export_dirs, key=_plainness)
        m = ExportManifest.load(d)
        specs.insert(
            len([s for s in specs if s.kind == "transformers"]),
            RunnerSpec(
                f"optimum {m.precision} {m.optimization}",
                "optimum",
                d,
                precision=m.precision,
                optimization=m.optimization,
                same_file_as=engine_names[d],
                **common,
            ),
        )
    if "openvino" in peers and export_dirs:
        d = min(export_dirs, key=_plainness)
        m = ExportManifest.load(d)
        hint = "bf16" if bf16 else "f32"
        specs.insert(
            len([s for s in specs if s.kind in ("transformers", "optimum")]),
            RunnerSpec(
                f"openvino {hint} {m.precision} {m.optimization}",
                "openvino",
                d,
                autocast="bf16" if bf16 else None,
                precision=m.precision,
                optimization=m.optimization,
                same_file_as=engine_names[d],
                **common,
            ),
        )
    return specs
