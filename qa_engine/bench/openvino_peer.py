"""Bench peer: the plain OpenVINO runtime on an export dir's fp32 ``model.onnx``.

What an Intel-CPU user would otherwise pick: ``openvino.Core().compile_model(onnx, "CPU",
{"INFERENCE_PRECISION_HINT": "bf16", "PERFORMANCE_HINT": "LATENCY", ...})``, no
onnxruntime at all. Questions go through qa-engine's own tokenizer and decoder, so the
peer differs from the qa-engine runner only in the engine that runs the graph.

Registered in ``qa_engine/bench/runners.py:make_runner`` under ``kind == "openvino"``;
``spec.autocast == "bf16"`` selects the bf16 hint, None plain f32.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from qa_engine.bench.runners import Predictions, Runner, sigmoid
from qa_engine.decoding import WindowLogits, decode_question
from qa_engine.extras import require
from qa_engine.manifest import MODEL_NAME, TOKENIZER_NAME
from qa_engine.openvino.options import OpenVINOOptions, default_cache_dir
from qa_engine.tokenization import QATokenizer, Window


def pad_windows(
    windows: Sequence[Window], pad_id: int, input_names: Sequence[str]
) -> dict[str, np.ndarray]:
    """Right-padded ``(batch, seq)`` int64 feeds of ``windows``, only the declared inputs."""
    longest = max(len(w) for w in windows)
    ids = np.full((len(windows), longest), pad_id, dtype=np.int64)  # (batch, seq)
    mask = np.zeros_like(ids)  # (batch, seq)
    types = np.zeros_like(ids)  # (batch, seq)
    for row, window in enumerate(windows):
        n = len(window)
        ids[row, :n] = window.input_ids
        mask[row, :n] = 1
        types[row, :n] = window.type_ids
    arrays = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
    return {name: arrays[name] for name in input_names}


class OpenVINORunner(Runner):
    """Plain OpenVINO (``openvino`` package, CPU plugin) on ``model.onnx`` of an export dir."""

    requires = ("openvino", "tokenizers")
    libraries = ("openvino", "tokenizers")

    def load(self) -> None:
        ov = require("openvino", "openvino-tools")
        model_dir = Path(self.spec.model_dir)
        model_path = model_dir / MODEL_NAME
        if not model_path.is_file():
            raise FileNotFoundError(f"{model_path}: ONNX model not found")
        s = self.spec.settings
        self.tokenizer = QATokenizer.from_file(
            model_dir / TOKENIZER_NAME, s.max_seq_length, s.doc_stride, s.max_question_len
        )
        options = OpenVINOOptions(
            precision="bf16" if self.spec.autocast == "bf16" else "f32",
            threads=self.spec.threads,
        )
        properties = options.core_properties()
        cache = default_cache_dir()
        if cache is not None:  # what a careful user does: the second load skips compiling
            properties["CACHE_DIR"] = str(cache)
        try:
            self.compiled = ov.Core().compile_model(str(model_path), "CPU", properties)
        except RuntimeError as err:  # e.g. onnxruntime-only fused operators
            raise ValueError(
                f"{model_path}: OpenVINO cannot compile this graph (onnxruntime-only "
                f"operators?); give the peer a plain fp32 export (--optimize none): {err}"
            ) from err
        self.request = self.compiled.create_infer_request()
        self.input_names = [port.get_any_name() for port in self.compiled.inputs]
        outputs = [port.get_any_name() for port in self.compiled.outputs]
        self.output_names = (
            ["start_logits", "end_logits"]
            if {"start_logits", "end_logits"} <= set(outputs)
            else outputs[:2]
        )
        self.precision = properties["INFERENCE_PRECISION_HINT"]
        self.version = ov.get_version()

    def _logits(self, windows: Sequence[Window], batch_size: int) -> list[tuple[np.ndarray, ...]]:
        """``(start, end)`` logits of each window, ``batch_size`` windows per inference."""
        out = []
        for first in range(0, len(windows), batch_size):
            chunk = windows[first : first + batch_size]
            feeds = pad_windows(chunk, self.tokenizer.pad_id, self.input_names)
            result = self.request.infer(feeds)
            start, end = (np.asarray(result[name], dtype=np.float32) for name in self.output_names)
            for row, window in enumerate(chunk):  # drop the padding again
                out.append((start[row, : len(window)], end[row, : len(window)]))
        return out

    def _answer(self, questions: Sequence[str], contexts: Sequence[str], batch_size: int) -> list:
        s = self.spec.settings
        per_question = self.tokenizer.encode_batch(questions, contexts)
        flat = [w for windows in per_question for w in windows]
        logits = iter(self._logits(flat, max(1, batch_size)))
        decoded = []
        for windows, context in zip(per_question, contexts, strict=True):
            window_logits = []
            for window in windows:
                start, end = next(logits)
                window_logits.append(WindowLogits(start, end, window.offsets, window.context_mask))
            decoded.append(
                decode_question(
                    window_logits,
                    context,
                    max_answer_length=s.max_answer_length,
                    null_threshold=s.null_threshold if s.version_2 else None,
                )
            )
        return decoded

    def answer_one(self, question: str, context: str) -> str:
        return self._answer([question], [context], 1)[0].answers[0].text

    def answer_many(
        self, questions: Sequence[str], contexts: Sequence[str], batch_size: int
    ) -> Predictions:
        decoded = self._answer(list(questions), list(contexts), batch_size)
        texts = [d.answers[0].text for d in decoded]
        s = self.spec.settings
        if not s.version_2:
            return Predictions(texts)
        return Predictions(texts, [sigmoid(d.null_minus_best - s.null_threshold) for d in decoded])

    @property
    def provider_used(self) -> str:
        return f"openvino-{self.version.split('-')[0]}-CPU-{self.precision}"

    def close(self) -> None:
        self.request = self.compiled = None
