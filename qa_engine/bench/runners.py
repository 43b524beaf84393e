"""The common runner interface, the qa-engine runner, and the factory for all kinds.

Every runner answers the same questions with the same settings and returns plain
answer texts, plus a "no answer" score per question for SQuAD 2.0 metrics (higher
means more likely unanswerable; only its order matters for ``best_f1``, and it never
exceeds 1 so that the official script's ``na_prob_thresh=1.0`` leaves the predictions
as the runner made them).
"""

from __future__ import annotations

import contextlib
import importlib
import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from qa_engine.bench.plan import RunnerSpec, model_size_bytes
from qa_engine.extras import require

# The runners share one process and are timed interleaved. onnxruntime's idle workers
# spin by default, and one session's spinning workers steal the cores the next session
# needs: on 2 cores, two co-resident sessions of the same file each took 46 ms a
# question with spinning, 25 ms without (23 ms alone). So every onnxruntime-based runner
# (qa-engine and Optimum alike) runs with spinning off; results record it.
ORT_SPINNING = False


@dataclass
class Predictions:
    """Answers of one ``answer_many`` call.

    Attributes:
        texts: One answer text per question ("" is "no answer").
        no_answer_scores: One score per question in [-1, 1], higher = more likely
            unanswerable; None when the runner is not in SQuAD 2.0 mode.
    """

    texts: list[str]
    no_answer_scores: list[float] | None = None


class Runner(ABC):
    """One inference stack on one model. Build with :func:`make_runner`, then ``load()``."""

    def __init__(self, spec: RunnerSpec) -> None:
        self.spec = spec

    @property
    def name(self) -> str:
        return self.spec.name

    #: Modules :meth:`load` needs; ``check_dependencies`` requires them up front.
    requires: tuple[str, ...] = ()
    #: Modules imported by :meth:`import_libraries` (``requires`` and their heavy parts).
    libraries: tuple[str, ...] = ()

    def import_libraries(self) -> None:
        """Import what :meth:`load` needs, so that timing ``load`` times the model alone.

        Missing modules are ignored here: ``load`` raises the helpful error.
        """
        for module in self.libraries:
            with contextlib.suppress(ImportError):
                importlib.import_module(module)

    @abstractmethod
    def load(self) -> None:
        """Load the model and tokenizer (timed by the harness)."""

    @abstractmethod
    def answer_one(self, question: str, context: str) -> str:
        """Answer one question the way a user would for a single request."""

    @abstractmethod
    def answer_many(
        self, questions: Sequence[str], contexts: Sequence[str], batch_size: int
    ) -> Predictions:
        """Answer a list of questions, ``batch_size`` windows per forward pass."""

    @property
    @abstractmethod
    def provider_used(self) -> str:
        """The execution provider / device really used, read back after loading."""

    @property
    def self_check(self) -> dict | None:
        """The runtime's self-check verdict (qa-engine runners), else None."""
        return None

    def stage_times(self) -> dict[str, dict] | None:
        """Seconds per pipeline stage of the ``answer_many`` calls, per batch size
        (``StageTimes.to_dict()``; qa-engine runners), else None."""
        return None

    @property
    def model_size(self) -> int:
        """Bytes on disk of the weights this runner loads."""
        return model_size_bytes(self.spec)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the model (the harness drops its reference afterwards)."""


def sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


class QAEngineRunner(Runner):
    """qa-engine's torch-free runtime on one export dir."""

    requires = ("onnxruntime", "tokenizers")
    libraries = ("onnxruntime", "tokenizers", "qa_engine.engine")

    def load(self) -> None:
        engine_module = require("qa_engine.engine", "cpu")
        self.engine = engine_module.QAEngine.from_pretrained(
            self.spec.model_dir,
            device=self.spec.device,
            threads=self.spec.threads,
            spinning=ORT_SPINNING,
        )
        if self.spec.cuda_graphs:
            self.engine.enable_cuda_graphs(max_windows=32)
        self._stage_class = require("qa_engine.pipeline", "cpu").StageTimes
        self._stages: dict[int, Any] = {}

    def answer_one(self, question: str, context: str) -> str:
        return self.engine(question, context).text

    def answer_many(
        self, questions: Sequence[str], contexts: Sequence[str], batch_size: int
    ) -> Predictions:
        s = self.spec.settings
        decoded = self.engine.decode(
            list(questions),
            list(contexts),
            batch_size=batch_size,
            max_answer_length=s.max_answer_length,
            handle_impossible=s.version_2,
            null_threshold=s.null_threshold if s.version_2 else None,
            stats=self._stages.setdefault(batch_size, self._stage_class()),
        )
        texts, scores = [], []
        for d in decoded:
            texts.append(d.answers[0].text)
            # The engine answers "" when null_minus_best > null_threshold; the shifted
            # sigmoid keeps that order and stays below 1 (see the module docstring).
            scores.append(sigmoid(d.null_minus_best - s.null_threshold))
        return Predictions(texts, scores if s.version_2 else None)

    @property
    def provider_used(self) -> str:
        return ",".join(self.engine.providers)

    @property
    def self_check(self) -> dict | None:
        return self.engine.self_check.to_dict()

    def stage_times(self) -> dict[str, dict] | None:
        return {str(bs): stats.to_dict() for bs, stats in self._stages.items()}

    def close(self) -> None:
        self.engine = None


def runner_class(kind: str) -> type[Runner]:
    """The Runner subclass of a spec kind."""
    if kind == "qa-engine":
        return QAEngineRunner
    if kind == "openvino":
        from qa_engine.bench.openvino_peer import OpenVINORunner

        return OpenVINORunner
    from qa_engine.bench.peers import OptimumPipelineRunner, TransformersPipelineRunner

    return TransformersPipelineRunner if kind == "transformers" else OptimumPipelineRunner


def make_runner(spec: RunnerSpec) -> Runner:
    """The runner for ``spec.kind`` (not loaded yet)."""
    return runner_class(spec.kind)(spec)


def check_dependencies(specs: Sequence[RunnerSpec]) -> None:
    """Import every module the runners need.

    Raises:
        MissingExtraError: One is missing; the message names the pip command to run
            (better than a run where that runner shows up as failed).
    """
    for module in sorted({m for spec in specs for m in runner_class(spec.kind).requires}):
        require(module)
