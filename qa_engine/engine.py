"""QAEngine: the torch-free runtime (numpy, tokenizers, onnxruntime).

The path of a question: tokenize into overlapping windows (:mod:`qa_engine.tokenization`)
-> run the windows of many questions in batches, sorted by length so each batch is
padded only to its longest member (:mod:`qa_engine.session`) -> decode the best span
over all windows of each question (:mod:`qa_engine.decoding`).

An engine holds no per-call state, so one engine can serve many threads at once
(onnxruntime sessions and ``tokenizers`` encoders are safe to call concurrently).
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qa_engine import verification
from qa_engine.batching import BatchLimits, length_buckets, plan_batches, warmup_windows
from qa_engine.decoding import Answer, DecodedQuestion, WindowLogits, decode_question
from qa_engine.graphs import GraphBinder, GraphPlan, GraphRunner
from qa_engine.manifest import MODEL_NAME, TOKENIZER_NAME, ExportManifest
from qa_engine.pipeline import BatchRunner, Pipeline, SessionRunner, StageTimes, run_padded
from qa_engine.plan import PlanIgnored, TunePlan, find_plan
from qa_engine.selfcheck import Verdict
from qa_engine.session import OPENVINO, OnnxQASession, ProviderSpec
from qa_engine.tokenization import QATokenizer, Window

# Questions tokenized and batched together when streaming: large enough to sort windows
# by length usefully, small enough to keep memory flat on endless iterables.
_CHUNK_QUESTIONS = 512
# Windows per onnxruntime call when neither the caller nor a plan says.
DEFAULT_BATCH_SIZE = 32
# batch_limits(buckets=...) default: the engine's own buckets (see QAEngine.buckets).
_ENGINE_BUCKETS: Any = "engine"


class QAEngine:
    """Extractive question answering over an exported model directory.

    Args:
        path: Export directory with ``model.onnx``, ``tokenizer.json`` and
            ``qa_manifest.json`` (written by ``qa-engine export``).
        device: ``"auto"`` (CUDA if available, else OpenVINO if installed and the CPU
            has AMX/AVX512-BF16, else CPU), ``"cpu"``, ``"cuda"`` (``"cuda:N"``) or
            ``"openvino"`` (``"openvino:bf16"``, ``"openvino:f32"``).
        providers: Explicit onnxruntime providers (names or ``(name, options)`` pairs);
            wins over ``device``.
        threads: Inference threads (``None``: one per core); OpenVINO gets them through
            its ``load_config``.
        spinning: Let onnxruntime's idle worker threads spin for the next call (its
            default; lowest latency for one engine per machine). Pass False when several
            sessions share the cores, e.g. several engines in one process: spinning
            workers of one session then steal the cores the next one needs (measured on
            2 cores: two co-resident engines took 46 ms a question each with spinning,
            25 ms without, 23 ms alone).
        verify: Run the export's reference windows on the resolved provider and
            precision at load and refuse a path whose answers are not the model's
            (:mod:`qa_engine.selfcheck`); ``device="auto"`` and plain ``"openvino"``
            take the first candidate that passes. The verdict is ``engine.self_check``.
        plan: Use the per-machine plan ``qa-engine tune`` wrote (``True``: the export's
            ``qa_plan.json`` if there is one; a path: that file; ``False``: none). A plan
            that matches this machine sets the device, threads, batch size and length
            buckets (explicit ``threads`` wins; an explicit ``device`` or ``providers``
            other than the plan's sets the plan aside); one made for another CPU,
            onnxruntime build or model is ignored with a :class:`PlanIgnored` warning.
            ``engine.plan`` is the plan in use, ``engine.plan_note`` says which or why not.

    Attributes:
        batch_size: Default windows per call (the plan's, else 32).
        buckets: Padded widths offline batches use: the plan's; else, on OpenVINO, the
            server's ``length_buckets`` (each new input shape costs OpenVINO a slow first
            run, so offline calls stick to the shapes warmed at load); else None.
        pad_rows: Batches are also padded to ``batching.row_sizes`` rows (OpenVINO).

    Raises:
        FileNotFoundError: The directory or one of its files is missing (named).
        ValueError: A file is corrupt (named), or a bad device/provider.
        RuntimeError: An accelerator was requested and onnxruntime fell back to CPU.
        SelfCheckError: The self-check failed (the message names the provider, the
            precision, what was measured and the device strings that pass).

    Example:
        >>> engine = QAEngine.from_pretrained("exports/spanbert-squad")
        >>> engine("Who built it?", "The tower was built by Eiffel.").text
        'eiffel'
    """

    # The captured CUDA graphs that replace the plain session for every batch, or None.
    _graph_runner: GraphRunner | None = None

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        device: str = "auto",
        providers: Sequence[ProviderSpec] | None = None,
        threads: int | None = None,
        spinning: bool = True,
        verify: bool = True,
        plan: bool | str | os.PathLike = True,
    ) -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            raise FileNotFoundError(f"{self.path}: export directory not found")
        self.manifest = ExportManifest.load(self.path)
        self.tokenizer = QATokenizer.from_file(
            self.path / TOKENIZER_NAME,
            self.manifest.max_seq_length,
            self.manifest.doc_stride,
            self.manifest.max_question_len,
        )
        self.session: OnnxQASession
        # Until the session is open (the self-check runs windows unpadded).
        self.batch_size, self.buckets, self.pad_rows = DEFAULT_BATCH_SIZE, None, False
        self.plan, self.plan_note = self._find_plan(plan, device, providers)
        self.self_check: Verdict = self._open(device, providers, threads, spinning, verify)
        self.batch_size = self.plan.batch_size if self.plan else DEFAULT_BATCH_SIZE
        on_openvino = OPENVINO in self.session.providers
        if self.plan is not None:
            self.buckets = self.plan.buckets
        else:
            self.buckets = length_buckets(self.manifest.max_seq_length) if on_openvino else None
        self.pad_rows = on_openvino and self.buckets is not None and self.batch_invariant
        self._warmed: set[tuple[int, int]] = set()
        if self.pad_rows:
            self.warm_up(1)  # the batch-1 shapes: cheap, and what a lone question runs

    def _find_plan(
        self, plan: bool | str | os.PathLike, device: str, providers: Sequence | None
    ) -> tuple[TunePlan | None, str | None]:
        model = self.path / MODEL_NAME
        found, note = find_plan(self.path, plan, model.stat().st_size if model.is_file() else 0)
        if found is not None and (providers is not None or device not in ("auto", found.device)):
            given = "providers" if providers is not None else f"device={device!r}"
            return None, f"plan {found.device} set aside: {given} given"
        return found, note

    def _open(self, device, providers, threads, spinning, verify) -> Verdict:
        """Open the session on the plan's device and threads (if any), else as asked."""
        if self.plan is not None:
            self._session_args = {
                "threads": self.plan.threads if threads is None else threads,
                "spinning": spinning,
            }
            try:
                return verification.open_verified(self, self.plan.device, None, verify)
            except (RuntimeError, ValueError) as err:  # a self-check refusal included
                self.plan_note = f"plan ignored: its device {self.plan.device} fails here ({err})"
                warnings.warn(self.plan_note, PlanIgnored, stacklevel=3)
                self.plan = None
        self._session_args = {"threads": threads, "spinning": spinning}
        return verification.open_verified(self, device, providers, verify)

    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike,
        device: str = "auto",
        providers: Sequence[ProviderSpec] | None = None,
        threads: int | None = None,
        spinning: bool = True,
        verify: bool = True,
        plan: bool | str | os.PathLike = True,
    ) -> QAEngine:
        """Load an export directory (same arguments as the constructor)."""
        return cls(
            path,
            device=device,
            providers=providers,
            threads=threads,
            spinning=spinning,
            verify=verify,
            plan=plan,
        )

    # ------------------------------------------------------------- the self-check
    def run_self_check(self) -> Verdict:
        """Run the export's reference windows on the current session now and return the
        verdict, without refusing anything (load already did that unless ``verify=False``)."""
        return verification.recheck(self)

    def _build(
        self, device: str, providers: Sequence[ProviderSpec] | None, *, whole: bool = False
    ) -> OnnxQASession:
        """A session on one candidate (``whole``: OpenVINO must run every node)."""
        return OnnxQASession(
            self.path / MODEL_NAME,
            device=device,
            providers=providers,
            whole_graph=whole,
            max_seq_length=self.manifest.max_seq_length,
            **self._session_args,
        )

    def enable_cuda_graphs(
        self,
        max_windows: int = 32,
        max_tokens: int | None = None,
        buckets: tuple[int, ...] | None = None,
        *,
        binder: GraphBinder | None = None,
    ) -> int:
        """Capture one CUDA graph per (rows, width) bucket and run every batch on them.

        Batches are then planned within the graphs' limits and padded to their bucket
        (masked rows and columns, outputs dropped), copied into the bucket's device
        buffers and replayed: no per-call allocation, one launch per batch.

        Args:
            max_windows: Rows of the largest bucket.
            max_tokens: Padded tokens per batch at most (bounds the rows of wide buckets).
            buckets: Widths (default: the length buckets of ``max_seq_length``).
            binder: The device side (default: ``CudaGraphBinder`` on this engine's model
                and CUDA device; tests pass a host-memory one).

        Returns:
            The graphs captured.

        Raises:
            ValueError: The engine does not run on CUDA (and no ``binder`` was given),
                or the variant is not batch-invariant.
        """
        if not self.batch_invariant:
            raise ValueError(
                f"this {self.manifest.precision} variant is not batch-invariant: its padded "
                "rows would change the real rows' answers, so it cannot run on CUDA graphs"
            )
        limits = BatchLimits(max_windows, max_tokens, buckets)
        plan = GraphPlan.for_limits(limits, self.manifest.max_seq_length)
        if plan.widths[-1] < self.manifest.max_seq_length:
            raise ValueError(
                f"the widest bucket ({plan.widths[-1]}) must hold the longest window "
                f"(max_seq_length {self.manifest.max_seq_length}); got buckets {plan.widths}"
            )
        if binder is None:
            if not self.session.uses_cuda:
                raise ValueError(
                    f"CUDA graphs need a CUDA session; this engine runs on {self.providers} "
                    "(load it with device='cuda')"
                )
            from qa_engine.graph_session import CudaGraphBinder

            binder = CudaGraphBinder(
                self.path / MODEL_NAME, self.session._device_id, self._session_args["threads"]
            )
        runner = GraphRunner(plan, binder)
        captured = runner.capture(self.tokenizer.pad_id)
        self._graph_runner = runner
        return captured

    def disable_cuda_graphs(self) -> None:
        """Run batches on the plain session again."""
        self._graph_runner = None

    @property
    def batch_invariant(self) -> bool:
        """Whether windows may share an onnxruntime call without changing each other's
        logits; False (dynamic int8) makes every call take one window."""
        return self.manifest.is_batch_invariant

    @property
    def runner(self) -> BatchRunner:
        """What runs a padded batch: the captured CUDA graphs if enabled, else the session."""
        return self._graph_runner or SessionRunner(self.session)

    @property
    def providers(self) -> list[str]:
        """The execution providers the session actually runs on."""
        return self.session.providers

    def __repr__(self) -> str:
        m = self.manifest
        return (
            f"QAEngine({str(self.path)!r}, precision={m.precision!r}, "
            f"max_seq_length={m.max_seq_length}, doc_stride={m.doc_stride}, "
            f"providers={self.providers})"
        )

    # ----------------------------------------------------------------- answering
    def __call__(self, question: str, context: str, **options) -> Answer | list[Answer]:
        """Answer one question; same options as :meth:`predict`."""
        return self.predict(question, context, **options)

    def predict(
        self,
        questions: str | Iterable[str],
        contexts: str | Iterable[str],
        *,
        batch_size: int | None = None,
        top_k: int = 1,
        max_answer_length: int | None = None,
        handle_impossible: bool | None = None,
        null_threshold: float | None = None,
    ) -> Answer | list[Answer] | list[list[Answer]]:
        """Answer one question or many; a batch gives exactly what one-by-one calls give.

        Args:
            questions: A question, or an iterable of them (consumed in chunks).
            contexts: A context, or an iterable with one per question. A single string
                on either side is paired with every item of the other.
            batch_size: Windows per onnxruntime call (bounds memory; None: the plan's,
                else 32).
            top_k: Answers per question.
            max_answer_length: Longest answer in tokens (default: the manifest's).
            handle_impossible: Allow "no answer" (``""``) as SQuAD 2.0 does; ``None``
                follows the manifest's ``version_2``.
            null_threshold: Answer "" when null score - best span score exceeds it
                (default: the manifest's); implies ``handle_impossible`` unless False.

        Returns:
            For two strings, an :class:`Answer` (a list of ``top_k`` if ``top_k > 1``);
            otherwise a list with one such entry per question.

        Raises:
            TypeError: A question or context is not a string.
            ValueError: An empty or whitespace-only string, lengths that differ, or a
                bad option.
        """
        results = list(
            self.stream(
                questions,
                contexts,
                batch_size=batch_size,
                top_k=top_k,
                max_answer_length=max_answer_length,
                handle_impossible=handle_impossible,
                null_threshold=null_threshold,
            )
        )
        return results[0] if isinstance(questions, str) and isinstance(contexts, str) else results

    def stream(
        self, questions: str | Iterable[str], contexts: str | Iterable[str], **options
    ) -> Iterator[Answer | list[Answer]]:
        """Like :meth:`predict`, but yields one result per question as chunks finish.

        Arguments are checked at once; iterables are consumed lazily, in chunks.
        """
        top_k = options.get("top_k", 1)
        decoded = self.decode(questions, contexts, **options)
        return (d.answers[0] if top_k == 1 else d.answers for d in decoded)

    def decode(
        self,
        questions: str | Iterable[str],
        contexts: str | Iterable[str],
        *,
        batch_size: int | None = None,
        top_k: int = 1,
        max_answer_length: int | None = None,
        handle_impossible: bool | None = None,
        null_threshold: float | None = None,
        n_best: int = 20,
        stats: StageTimes | None = None,
        overlap: bool = True,
    ) -> Iterator[DecodedQuestion]:
        """Like :meth:`stream`, yielding the full decoding (answers plus null/best scores).

        Evaluation uses ``null_minus_best`` for the SQuAD 2.0 threshold search.

        Args:
            stats: A :class:`~qa_engine.pipeline.StageTimes` the call adds its stage
                seconds to (tokenize, pad, run, decode, wall); host ms per question.
            overlap: Tokenize and pad the next batch, and decode the last one, in worker
                threads while the current batch runs (:mod:`qa_engine.pipeline`); False
                runs the stages one after the other. The answers are the same.
        """
        batch_size = self.batch_size if batch_size is None else batch_size
        _positive_int("batch_size", batch_size)
        _positive_int("top_k", top_k)
        _positive_int("n_best", n_best)
        if max_answer_length is None:
            max_answer_length = self.manifest.max_answer_length
        _positive_int("max_answer_length", max_answer_length)
        threshold = self._threshold(handle_impossible, null_threshold)
        pairs = _pairs(questions, contexts)  # type and length errors raise here, not lazily
        pipeline = self.pipeline(
            batch_size,
            top_k=top_k,
            n_best=max(n_best, top_k),
            max_answer_length=max_answer_length,
            null_threshold=threshold,
        )
        return _timed(
            pipeline.run_overlapped if overlap else pipeline.run_serial,
            pairs,
            StageTimes() if stats is None else stats,
        )

    def pipeline(self, batch_size: int = 32, **decode_options) -> Pipeline:
        """The host pipeline of one call: this engine's tokenizer, batch limits, runner and
        decoder (``decode_options`` as :func:`~qa_engine.decoding.decode_question` takes)."""

        def decode(windows: list[WindowLogits], context: str) -> DecodedQuestion:
            return decode_question(windows, context, **decode_options)

        return Pipeline(
            self.tokenizer.encode_batch,
            self.runner,
            self._run_limits(batch_size),
            self.tokenizer.pad_id,
            decode,
            max(_CHUNK_QUESTIONS, batch_size),
        )

    def _threshold(self, handle_impossible: bool | None, null_threshold: float | None):
        if handle_impossible is False:
            if null_threshold is not None:
                raise ValueError("null_threshold needs handle_impossible=True (or None)")
            return None
        if handle_impossible is None and null_threshold is None and not self.manifest.version_2:
            return None
        return float(self.manifest.null_threshold if null_threshold is None else null_threshold)

    # ------------------------------------------------------------ raw model outputs
    def logits(self, question: str, context: str) -> list[WindowLogits]:
        """Raw start/end logits of each window of one question (for parity checks)."""
        return self.window_logits([question], [context])[0]

    def window_logits(
        self, questions: Sequence[str], contexts: Sequence[str], *, batch_size: int = 32
    ) -> list[list[WindowLogits]]:
        """Tokenize many pairs and run all their windows in length-sorted batches.

        Returns:
            For each pair, one :class:`WindowLogits` per window, in context order.
        """
        if len(questions) != len(contexts):
            raise ValueError(f"got {len(questions)} questions but {len(contexts)} contexts")
        for i, (question, context) in enumerate(zip(questions, contexts, strict=True)):
            _check_text("question", i, question)
            _check_text("context", i, context)
        per_question = self.tokenizer.encode_batch(questions, contexts)
        flat = [window for windows in per_question for window in windows]
        outputs = iter(self.run_windows(flat, batch_size=batch_size))
        return [
            [
                WindowLogits(start, end, window.offsets, window.context_mask)
                for window, (start, end) in zip(windows, outputs)  # noqa: B905 (shared iterator)
            ]
            for windows in per_question
        ]

    def run_windows(
        self,
        windows: Sequence[Window],
        *,
        batch_size: int = 32,
        max_tokens: int | None = None,
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Run windows through the model, batched by similar length (dynamic padding).

        Args:
            windows: Tokenized windows, e.g. from ``engine.tokenizer.encode_batch``.
            batch_size: Windows per onnxruntime call (one for a variant that is not
                batch-invariant, see :attr:`batch_invariant`).
            max_tokens: Padded tokens per call (windows x longest window), or None.

        Returns:
            ``(start_logits, end_logits)`` per window, in input order, each ``(seq,)``
            float32 with the window's own length (padding cut off).
        """
        _positive_int("batch_size", batch_size)
        limits = self._run_limits(batch_size, max_tokens)
        results: list[tuple[np.ndarray, np.ndarray]] = [None] * len(windows)  # type: ignore[list-item]
        # Longest first, so a batch too big for memory fails at once, not at the end.
        for batch in plan_batches([len(w) for w in windows], limits):
            outputs = self.run_batch([windows[i] for i in batch.indices], batch.width, batch.rows)
            for index, output in zip(batch.indices, outputs, strict=True):
                results[index] = output
        return results

    def batch_limits(
        self,
        max_windows: int = DEFAULT_BATCH_SIZE,
        max_tokens: int | None = None,
        buckets: tuple[int, ...] | None = _ENGINE_BUCKETS,
    ) -> BatchLimits:
        """The limits a batch of this engine may have (see :mod:`qa_engine.batching`).

        ``buckets`` defaults to :attr:`buckets`; batches pad their rows too when
        :attr:`pad_rows`. A variant that is not batch-invariant runs one window per call
        at its own length (no bucket padding either: padding tokens enter its per-call
        activation scales).
        """
        if not self.batch_invariant:
            return BatchLimits(max_windows=1, max_tokens=None, buckets=None)
        if buckets is _ENGINE_BUCKETS:
            buckets = self.buckets
        return BatchLimits(
            max_windows=max_windows,
            max_tokens=max_tokens,
            buckets=buckets,
            pad_rows=self.pad_rows and buckets is not None,
        )

    def warm_up(
        self, batch_size: int | None = None, shapes: Iterable[tuple[int, int]] | None = None
    ) -> int:
        """Run every batch shape offline calls of ``batch_size`` may use once, so none pays
        OpenVINO's first-run compile in the middle of real work (each shape once per engine).

        Args:
            batch_size: Windows per call (None: :attr:`batch_size`).
            shapes: ``(rows, width)`` pairs to run instead (the server passes its own).

        Returns:
            How many shapes ran now (0 without buckets, or when all were warm already).
        """
        if shapes is None:
            limits = self.batch_limits(batch_size or self.batch_size)
            shapes = limits.shapes() if limits.buckets else []
        ran = 0
        for rows, width in shapes:
            if (rows, width) in self._warmed:
                continue
            self.run_batch(warmup_windows(rows, width, self.tokenizer.pad_id), width)
            self._warmed.add((rows, width))
            ran += 1
        return ran

    def _run_limits(self, batch_size: int, max_tokens: int | None = None) -> BatchLimits:
        """The limits of this engine's own calls: with CUDA graphs, within the buckets."""
        limits = self.batch_limits(batch_size, max_tokens)
        if self._graph_runner is None:
            return limits
        graphs = self._graph_runner.plan.limits()
        tokens = [t for t in (max_tokens, graphs.max_tokens) if t is not None]
        return BatchLimits(
            min(limits.max_windows, graphs.max_windows),
            min(tokens) if tokens else None,
            graphs.buckets,
        )

    def run_batch(
        self, windows: Sequence[Window], width: int | None = None, rows: int | None = None
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """One onnxruntime call on ``windows`` padded to ``width`` (default: the longest)
        and to ``rows`` rows (default: one per window; copies of the last one fill up).

        Thread-safe; the serve batching core calls it from worker threads. The pad and
        run stage is the pipeline's (:func:`~qa_engine.pipeline.run_padded`).

        Args:
            windows: The windows of the batch.
            width: Padded width (default: the longest window).
            rows: Pad the batch to this many rows (masked rows, outputs dropped), e.g.
                to one of the shapes a server warmed up; the CUDA-graph runner pads to its
                captured buckets anyway.

        Returns:
            ``(start_logits, end_logits)`` per window, each cut to the window's length.
        """
        if not windows:
            return []
        if not self.batch_invariant and len(windows) > 1:
            raise ValueError(
                f"this {self.manifest.precision} variant is not batch-invariant: run one "
                "window per call (see engine.batch_limits)"
            )
        width = max(len(w) for w in windows) if width is None else width
        runner = self.runner
        if rows is not None and rows > len(windows):
            runner = _RowPadded(runner, rows)
        return run_padded(runner, windows, width, self.tokenizer.pad_id)


class _RowPadded:
    """A runner whose batches have at least ``rows`` rows (the extra rows masked)."""

    def __init__(self, runner: BatchRunner, rows: int) -> None:
        self._runner, self._rows = runner, rows

    def padded_shape(self, rows: int, width: int) -> tuple[int, int]:
        return self._runner.padded_shape(max(rows, self._rows), width)

    def run(self, *arrays: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._runner.run(*arrays)


def _timed(
    stages: Callable[[Iterator[tuple[str, str]], StageTimes], Iterator[DecodedQuestion]],
    pairs: Iterator[tuple[str, str]],
    stats: StageTimes,
) -> Iterator[DecodedQuestion]:
    """Run ``stages`` lazily, adding the call's wall time to ``stats.wall_s``."""
    started = time.perf_counter()
    try:
        yield from stages(pairs, stats)
    finally:
        stats.wall_s += time.perf_counter() - started


def _positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")


def _check_text(kind: str, index: int, value: object) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{kind} {index} must be a str, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{kind} {index} is empty or whitespace only")


def _as_iterable(kind: str, value: object) -> Iterable[str] | str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray) or not isinstance(value, Iterable):
        raise TypeError(f"{kind}s must be a str or an iterable of str, got {type(value).__name__}")
    return value


def _pairs(questions: object, contexts: object) -> Iterator[tuple[str, str]]:
    """Validated (question, context) pairs; a single string pairs with every item.

    Types, and the lengths of sequences, are checked at once; items of other
    iterables as they are consumed.
    """
    questions = _as_iterable("question", questions)
    contexts = _as_iterable("context", contexts)
    if isinstance(questions, str) and isinstance(contexts, str):
        pairs: Iterable[tuple[str, str]] = [(questions, contexts)]
    elif isinstance(questions, str):
        pairs = ((questions, c) for c in contexts)
    elif isinstance(contexts, str):
        pairs = ((q, contexts) for q in questions)
    else:
        if isinstance(questions, Sequence) and isinstance(contexts, Sequence):
            if len(questions) != len(contexts):
                raise ValueError(f"got {len(questions)} questions but {len(contexts)} contexts")
        pairs = _strict_zip(questions, contexts)
    if isinstance(pairs, list) or (
        isinstance(questions, Sequence) and isinstance(contexts, Sequence)
    ):
        # Check everything before any work, so a bad item 10,000 fails at once.
        pairs = list(pairs)
        for i, (question, context) in enumerate(pairs):
            _check_text("question", i, question)
            _check_text("context", i, context)
        return iter(pairs)
    return _checked(pairs)


def _checked(pairs: Iterable[tuple[str, str]]) -> Iterator[tuple[str, str]]:
    for i, (question, context) in enumerate(pairs):
        _check_text("question", i, question)
        _check_text("context", i, context)
        yield question, context


def _strict_zip(questions: Iterable[str], contexts: Iterable[str]) -> Iterator[tuple[str, str]]:
    try:
        yield from zip(questions, contexts, strict=True)
    except ValueError as err:
        if "zip()" not in str(err):
            raise
        raise ValueError(f"questions and contexts have different lengths ({err})") from None
