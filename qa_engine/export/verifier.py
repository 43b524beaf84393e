"""Every variant against PyTorch, on as many parity questions as its evidence needs.

The PyTorch reference (:class:`TorchReference`) runs once, in length-sorted batches, and
only as far as some variant needs it: its logits are cached and shared by every variant.
Each variant (:meth:`Verifier.verify`) runs on a prefix of the parity questions:

- fp32 graphs: the first look (32 questions) carries the parity gate (a broken graph is
  broken on every window); they are eligible by that gate, not by F1.
- lossy variants with accuracy evidence (real questions the model can answer): the
  sequential paired bootstrap of :func:`evidence.sequential_f1_drop`, which stops as
  soon as an interval decides and runs to the cap only when none does.
- lossy variants without (generated pairs, or a model with no skill on the questions):
  logit parity and answer agreement only, never F1, on every generated pair or on the
  first look's real questions (``PARITY_ONLY_QUESTIONS``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from qa_engine.data import QAExample
from qa_engine.export.evidence import (
    FIRST_LOOK,
    f1_drop,
    missing_accuracy_evidence,
    sequential_f1_drop,
)
from qa_engine.export.features import Windows
from qa_engine.export.fusion import batch_invariant, count_fused_ops
from qa_engine.export.parity import (
    BATCH_SIZE,
    DecodeSettings,
    Logits,
    batched_throughput,
    check_fp32,
    compare,
    decode_answers,
    fp32_gate,
    latency_ms,
    make_session,
    question_f1,
    session_logits,
    torch_logits,
    tune_null_threshold,
    window_bar,
)
from qa_engine.export.variants import Variant

Log = Callable[[str], None]
# Without accuracy evidence the comparison is about logits, which needs windows, not a
# statistical sample: the first look's real questions (~80 full windows for a SQuAD
# paragraph at 384 tokens), which the reference has run already to find that out.
PARITY_ONLY_QUESTIONS = FIRST_LOOK


@dataclass
class TorchReference:
    """PyTorch's logits on the parity windows, computed on demand and kept.

    Attributes:
        net: The PyTorch model (None once released).
        windows: All parity windows, in question order.
        logits: Logits of the first ``len(logits)`` windows.
        seconds: Time spent computing them.
    """

    net: Any
    windows: Windows
    logits: Logits = field(default_factory=list, repr=False)
    seconds: float = 0.0

    def extend(self, count: int, log: Log) -> Logits:
        """Logits of the first ``count`` windows, computing only those not yet computed."""
        done = len(self.logits)
        if count > done:
            if self.net is None:
                raise RuntimeError("the PyTorch reference was released")
            began = time.perf_counter()
            with window_bar(count - done, "PyTorch reference") as bar:
                self.logits.extend(
                    torch_logits(self.net, self.windows, range(done, count), progress=bar.update)
                )
            took = time.perf_counter() - began
            self.seconds += took
            log(f"    PyTorch reference: windows {done}-{count} in {took:.1f} s")
        return self.logits[:count]

    def release(self) -> None:
        """Drop the PyTorch weights (the computed logits stay)."""
        self.net = None


@dataclass
class Verifier:
    """Checks variants against the shared PyTorch reference.

    Attributes:
        windows: The windows of every parity question (the cap).
        examples: The parity questions.
        reference: PyTorch's logits, computed as far as needed.
        settings: Decoding settings (SQuAD 2.0: the threshold is re-tuned per prefix).
        device: "cpu" or "cuda" for the ONNX sessions.
        pairs: "squad" or "generated".
        atol: fp32 gate.
        max_f1_drop: The F1 budget (%) lossy variants are judged against.
        time_it: Measure batch-1 latency too.
        log: Progress output.
        batch_size: Also measure windows/s in batches of this size (>1), the speed
            ``auto`` ranks by when the model will run batched.
    """

    windows: Windows
    examples: Sequence[QAExample]
    reference: TorchReference
    settings: DecodeSettings
    device: str
    pairs: str
    atol: float
    max_f1_drop: float = 1.0
    time_it: bool = True
    log: Log = print
    batch_size: int = 1
    # Caches: PyTorch's answers per question count; the evidence verdict, once judged.
    _reference_answers: dict[int, list[str]] = field(default_factory=dict, init=False, repr=False)
    _missing_evidence: list[str | None] = field(default_factory=list, init=False, repr=False)

    @property
    def cap(self) -> int:
        """Parity questions available."""
        return len(self.examples)

    def first_look(self) -> int:
        return min(FIRST_LOOK, self.cap)

    def reference_answers(self, questions: int) -> list[str]:
        """PyTorch's answers to the first ``questions`` questions."""
        if questions not in self._reference_answers:
            windows = self.windows.head(questions)
            logits = self.reference.extend(len(windows), self.log)
            examples = self.examples[:questions]
            settings, _ = self._tuned(windows, logits, examples)
            self._reference_answers[questions] = decode_answers(windows, logits, examples, settings)
        return self._reference_answers[questions]

    def missing_accuracy_evidence(self) -> str | None:
        """Why F1 is no accuracy evidence here (judged once, on the first look), or None."""
        if not self._missing_evidence:
            n = self.first_look()
            version_2 = self.settings.version_2
            reference_f1 = question_f1(self.reference_answers(n), self.examples[:n], version_2)
            reason = missing_accuracy_evidence(reference_f1)
            self._missing_evidence.append(reason)
            if reason is not None:
                self.log(
                    f"No accuracy evidence: {reason}. Variants are judged on logit parity and "
                    "answer agreement; the manifest records no F1 drop."
                )
        return self._missing_evidence[0]

    def verify(self, variant: Variant, log: Log) -> Variant:
        """Run ``variant`` on as many questions as its evidence needs, compare with
        PyTorch, gate fp32, time it (see the module docstring).

        Raises:
            ParityError: An fp32 variant is off by more than its gate.
        """
        began, reference_began = time.perf_counter(), self.reference.seconds
        # int8-openvino is timed where it is meant to run: on the OpenVINO provider when
        # this onnxruntime build has it (the CPU provider runs its QDQ graph too).
        session = make_session(
            variant.path, self.device, openvino=variant.precision == "int8-openvino"
        )
        # A graph that is not batch-invariant (dynamic int8) runs one window per call in
        # the runtime, so it is measured that way.
        batch_size = BATCH_SIZE if batch_invariant(variant.path) else 1
        logits: Logits = []
        answers: list[str] = []

        def run_to(questions: int) -> list[str]:
            count = self.windows.windows_of(questions)
            self.reference.extend(count, log)
            if count > len(logits):
                label = f"{variant.name} (to {questions} questions)"
                with window_bar(count - len(logits), label) as bar:
                    logits.extend(
                        session_logits(
                            session,
                            self.windows,
                            range(len(logits), count),
                            batch_size=batch_size,
                            progress=bar.update,
                        )
                    )
            answers[:] = self._own_answers(variant, logits, questions)
            return answers

        def paired(questions: int) -> tuple[np.ndarray, np.ndarray]:
            return self._paired_f1(run_to(questions), questions)

        missing = self.missing_accuracy_evidence()
        if variant.precision == "fp32" or missing is not None:
            questions = self.first_look() if variant.precision == "fp32" else self._parity_only()
            run_to(questions)
            variant.drop = None
            if missing is None:  # fp32: reported, not used (the parity gate decides)
                estimate = f1_drop(*paired(questions), self.max_f1_drop)
                variant.drop = replace(estimate, looks=(questions,), cap=self.cap)
        else:
            variant.drop = sequential_f1_drop(paired, self.max_f1_drop, self.cap)
            questions = variant.drop.questions
        variant.logits = logits
        variant.parity = compare(
            self.reference.logits[: len(logits)],
            self.reference_answers(questions),
            logits,
            answers,
            self.examples[:questions],
            self.settings.version_2,
            self.pairs,
        )
        variant.fused_ops = count_fused_ops(variant.path)
        if variant.precision == "fp32":
            gate = fp32_gate(variant.fused_ops, self.atol)
            variant.settings["parity_gate"] = gate
            check_fp32(variant.name, variant.parity, gate["atol"], gate["min_agreement"])
        if self.time_it:
            variant.latency = {
                **latency_ms(session, self.windows),
                "provider": session.get_providers()[0],
            }
            if self.batch_size > 1:
                variant.latency["batched"] = batched_throughput(
                    session,
                    self.windows,
                    batch_size=self.batch_size,
                    batch_invariant=batch_invariant(variant.path),
                )
        reference_s = self.reference.seconds - reference_began
        variant.timings = {
            "verify_s": round(time.perf_counter() - began - reference_s, 1),
            "reference_s": round(reference_s, 1),
        }
        self._log(variant, batch_size, log)
        return variant

    def _parity_only(self) -> int:
        """Questions a lossy variant runs on without accuracy evidence."""
        return self.cap if self.pairs == "generated" else min(self.cap, PARITY_ONLY_QUESTIONS)

    def _tuned(
        self, windows: Windows, logits: Logits, examples: Sequence[QAExample]
    ) -> tuple[DecodeSettings, float | None]:
        """SQuAD 2.0: the settings with the null threshold that fits these logits."""
        if not self.settings.version_2:
            return self.settings, None
        threshold = tune_null_threshold(windows, logits, examples, self.settings)
        if threshold is None:
            return self.settings, None
        return replace(self.settings, null_threshold=threshold), threshold

    def _own_answers(self, variant: Variant, logits: Logits, questions: int) -> list[str]:
        """The variant's answers to the first ``questions`` questions, at its own
        SQuAD 2.0 threshold."""
        windows = self.windows.head(questions)
        examples = self.examples[:questions]
        settings, variant.null_threshold = self._tuned(windows, logits[: len(windows)], examples)
        return decode_answers(windows, logits[: len(windows)], examples, settings)

    def _paired_f1(self, answers: list[str], questions: int) -> tuple[np.ndarray, np.ndarray]:
        """Per-question gold F1 of PyTorch and of the variant (real questions only)."""
        examples = self.examples[:questions]
        version_2 = self.settings.version_2
        reference = question_f1(self.reference_answers(questions), examples, version_2)
        variant = question_f1(answers, examples, version_2)
        if reference is None or variant is None:
            raise RuntimeError("paired F1 needs gold answers")
        return reference, variant

    def _log(self, variant: Variant, batch_size: int, log: Log) -> None:
        p = variant.parity
        if p is None:
            raise RuntimeError(f"{variant.name} has not been verified")
        log(
            f"  {variant.name}: {p.questions} questions ({p.windows} windows, batch "
            f"{batch_size}) in {variant.timings['verify_s']:.1f} s: max|dlogit| "
            f"{p.max_abs_logit_diff:.2e}, answers agree {p.answer_agreement:.1%}"
            + (f", F1 {p.f1:.2f} (PyTorch {p.f1_pytorch:.2f})" if p.f1 is not None else "")
            + (f", {variant.latency['p50']:.2f} ms/window" if variant.latency else "")
            + (
                f", null threshold {variant.null_threshold:.3f}"
                if variant.null_threshold is not None
                else ""
            )
            + f", {variant.size_mb:.1f} MB"
        )
        if variant.precision == "fp32":
            return
        if variant.drop is not None:
            log(f"    {variant.drop.describe()}")
        else:
            log("    no accuracy evidence: judged on logit parity and answer agreement")
