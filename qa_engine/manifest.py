"""The export directory contract between the export stage and the runtime.

An export directory holds ``model.onnx``, ``tokenizer.json``, ``config.json`` and
``qa_manifest.json`` (this module). The runtime needs nothing else.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

MANIFEST_NAME = "qa_manifest.json"
MODEL_NAME = "model.onnx"
TOKENIZER_NAME = "tokenizer.json"
FORMAT_VERSION = 1

PRECISIONS = ("fp32", "fp16", "int8-dynamic", "int8-static", "int8-openvino", "bf16")
OPTIMIZATIONS = ("none", "O1", "O2", "O3", "O4")


@dataclass
class ExportManifest:
    """Everything the runtime must know about an exported model.

    Attributes:
        max_seq_length: Tokens per window (question + context + special tokens).
        doc_stride: Overlap in tokens between consecutive context windows.
        precision: One of ``PRECISIONS``.
        optimization: ORT graph optimisation level, one of ``OPTIMIZATIONS``.
        source_model: Checkpoint dir or hub id the export came from.
        max_question_len: Questions longer than this (tokens) are cut, with a warning.
        max_answer_length: Default longest answer in tokens.
        version_2: Trained for SQuAD 2.0 (can answer "no answer").
        null_threshold: SQuAD 2.0 threshold on null_score - best_span_score.
        do_lower_case: Whether the tokenizer lower-cases (recorded for humans).
        opset: ONNX opset of model.onnx.
        onnxruntime_version: onnxruntime version used to optimise/verify it.
        fused_ops: Count of fused operators by type (Attention, SkipLayerNormalization, ...).
        parity: Parity numbers against PyTorch (max_abs_logit_diff, answer_agreement, ...).
        extra: Free-form details (quantization settings, auto-selection table, ...).
        batch_invariant: Whether a window's logits are independent of what else is in
            its batch. False for dynamic int8 (activation scales are taken over the whole
            batch, padding included): the runtime then runs one window per call. None:
            written before this was recorded; inferred from ``precision``.
        self_check: Reference windows with PyTorch logits and the tolerance of this
            variant (see :mod:`qa_engine.selfcheck`); None for exports written before.
    """

    max_seq_length: int
    doc_stride: int
    precision: str = "fp32"
    optimization: str = "none"
    source_model: str = ""
    max_question_len: int = 64
    max_answer_length: int = 30
    version_2: bool = False
    null_threshold: float = 0.0
    do_lower_case: bool | None = None
    opset: int | None = None
    onnxruntime_version: str | None = None
    fused_ops: dict[str, int] = field(default_factory=dict)
    parity: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    batch_invariant: bool | None = None
    self_check: dict[str, Any] | None = None
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        if self.max_seq_length < 8:
            raise ValueError(f"max_seq_length must be >= 8, got {self.max_seq_length}")
        if not 0 <= self.doc_stride < self.max_seq_length:
            raise ValueError(
                f"doc_stride must be in [0, max_seq_length), got {self.doc_stride} "
                f"with max_seq_length {self.max_seq_length}"
            )
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.optimization not in OPTIMIZATIONS:
            raise ValueError(
                f"optimization must be one of {OPTIMIZATIONS}, got {self.optimization!r}"
            )

    @property
    def is_batch_invariant(self) -> bool:
        """The recorded answer, else: everything but dynamic int8 is."""
        if self.batch_invariant is not None:
            return bool(self.batch_invariant)
        return self.precision != "int8-dynamic"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``qa_manifest.json`` into ``directory`` and return its path."""
        path = Path(directory) / MANIFEST_NAME
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")
        return path

    @classmethod
    def load(cls, directory: str | os.PathLike) -> ExportManifest:
        """Read ``qa_manifest.json`` from ``directory``.

        Raises:
            FileNotFoundError: The manifest is missing.
            ValueError: The manifest is not valid JSON or lacks required fields.
        """
        path = Path(directory) / MANIFEST_NAME
        if not path.is_file():
            raise FileNotFoundError(
                f"{path}: no {MANIFEST_NAME}; is this a directory written by `qa-engine export`?"
            )
        try:
            raw = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{path}: not valid JSON ({err})") from err
        if not isinstance(raw, dict):
            raise ValueError(f"{path}: expected a JSON object")
        known = {f.name for f in fields(cls)}
        missing = [name for name in ("max_seq_length", "doc_stride") if name not in raw]
        if missing:
            raise ValueError(f"{path}: missing field(s) {missing}")
        try:
            return cls(**{k: v for k, v in raw.items() if k in known})
        except (TypeError, ValueError) as err:
            raise ValueError(f"{path}: {err}") from err
