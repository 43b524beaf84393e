"""The peers: what a user would otherwise run, set up the way a careful user would.

- the transformers ``question-answering`` pipeline on the PyTorch checkpoint, fp32, and
  under ``torch.autocast("cpu", dtype=torch.bfloat16)`` on CPUs with AMX/AVX512-BF16,
  and under CUDA fp16 autocast on GPUs;
- Optimum's ``ORTModelForQuestionAnswering`` inside the same pipeline, on an export
  dir's ``model.onnx`` (``optimum.onnxruntime.pipeline``).

Both get the shared window settings (``max_seq_len``, ``doc_stride``,
``max_answer_len``, ``max_question_len``) and, for SQuAD 2.0 models,
``handle_impossible_answer=True``. The pipeline only reports the winning answer's
probability, so its "no answer" score is that probability when it abstains and minus the
best span's probability when it answers: confident answers rank as the least likely to
be unanswerable, which is what ``best_f1``'s threshold search needs.
"""

from __future__ import annotations

import contextlib
import importlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from qa_engine.bench.runners import ORT_SPINNING, Predictions, Runner
from qa_engine.extras import require
from qa_engine.manifest import MODEL_NAME


def _quiet_transformers() -> None:
    # "Device set to use cpu" and friends would break the progress bars.
    require("transformers").logging.set_verbosity_error()


class _PipelineRunner(Runner):
    """Shared calling convention of both pipelines."""

    pipe: Any
    requires = ("torch", "transformers")
    libraries = ("torch", "transformers", "transformers.pipelines")

    def import_libraries(self) -> None:
        super().import_libraries()
        # transformers imports each architecture's modeling code on first use: do it now.
        config = Path(self.spec.model_dir) / "config.json"
        with contextlib.suppress(ImportError, OSError, ValueError, AttributeError):
            transformers = importlib.import_module("transformers")
            for arch in json.loads(config.read_text()).get("architectures") or []:
                getattr(transformers, arch)

    def _call_kwargs(self, batch_size: int | None) -> dict[str, Any]:
        s = self.spec.settings
        kwargs: dict[str, Any] = {
            "max_seq_len": s.max_seq_length,
            "doc_stride": s.doc_stride,
            "max_answer_len": s.max_answer_length,
            "max_question_len": s.max_question_len,
            "handle_impossible_answer": s.version_2,
        }
        if batch_size is not None:
            kwargs["batch_size"] = batch_size
        return kwargs

    def _context(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()

    def _run(self, questions: list[str], contexts: list[str], batch_size: int) -> list:
        with self._context():
            out = self.pipe(question=questions, context=contexts, **self._call_kwargs(batch_size))
        return [out] if isinstance(out, dict) else list(out)  # one question gives a dict

    def answer_one(self, question: str, context: str) -> str:
        # Plain strings, as a single request would call it.
        with self._context():
            out = self.pipe(question=question, context=context, **self._call_kwargs(None))
        return out["answer"]

    def answer_many(
        self, questions: Sequence[str], contexts: Sequence[str], batch_size: int
    ) -> Predictions:
        results = self._run(list(questions), list(contexts), batch_size)
        texts = [r["answer"] for r in results]
        if not self.spec.settings.version_2:
            return Predictions(texts)
        scores = [float(r["score"]) if r["answer"] == "" else -float(r["score"]) for r in results]
        return Predictions(texts, scores)


class TransformersPipelineRunner(_PipelineRunner):
    """transformers' QA pipeline on the PyTorch checkpoint (fp32, bf16 or fp16 autocast)."""

    def load(self) -> None:
        torch = require("torch")
        transformers = require("transformers")
        _quiet_transformers()
        if self.spec.threads is not None:
            torch.set_num_threads(self.spec.threads)
        model = transformers.AutoModelForQuestionAnswering.from_pretrained(self.spec.model_dir)
        model.eval()
        tokenizer = transformers.AutoTokenizer.from_pretrained(self.spec.model_dir)
        device = 0 if self.spec.device == "cuda" else -1
        self.pipe = transformers.pipeline(
            "question-answering", model=model, tokenizer=tokenizer, device=device
        )
        self._torch = torch

    def _context(self) -> contextlib.AbstractContextManager:
        if self.spec.autocast == "bf16":
            return self._torch.autocast("cpu", dtype=self._torch.bfloat16)
        if self.spec.autocast == "fp16":
            return self._torch.autocast("cuda", dtype=self._torch.float16)
        return contextlib.nullcontext()

    @property
    def provider_used(self) -> str:
        device = str(self.pipe.model.device)
        return f"torch-{device}" + (f"+{self.spec.autocast}-autocast" if self.spec.autocast else "")

    def close(self) -> None:
        self.pipe = None


class OptimumPipelineRunner(_PipelineRunner):
    """Optimum's ORTModelForQuestionAnswering in the transformers pipeline."""

    requires = _PipelineRunner.requires + ("onnxruntime", "optimum.onnxruntime")
    libraries = _PipelineRunner.libraries + ("onnxruntime", "optimum.onnxruntime")

    def load(self) -> None:
        require("onnxruntime", "cpu")  # a missing flavour: the pip command, not a traceback
        transformers = require("transformers")
        optimum_ort = require("optimum.onnxruntime", "export")
        _quiet_transformers()
        # the same options as the qa-engine runners: threads and spinning (ORT_SPINNING)
        from qa_engine.session import session_options

        options = session_options(self.spec.threads, ORT_SPINNING)
        provider = "CUDAExecutionProvider" if self.spec.device == "cuda" else "CPUExecutionProvider"
        model_dir = Path(self.spec.model_dir)
        self.model = optimum_ort.ORTModelForQuestionAnswering.from_pretrained(
            model_dir, file_name=MODEL_NAME, provider=provider, session_options=options
        )
        providers = self.model.model.get_providers()
        if providers[0] != provider:  # a silent CPU fallback would poison the numbers
            raise RuntimeError(f"asked for {provider}, onnxruntime gave {providers}")
        tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir)
        device = "cuda:0" if self.spec.device == "cuda" else "cpu"
        self.pipe = optimum_ort.pipeline(
            "question-answering", model=self.model, tokenizer=tokenizer, device=device
        )

    @property
    def provider_used(self) -> str:
        return ",".join(self.model.model.get_providers())

    def close(self) -> None:
        self.pipe = self.model = None
