"""The search behind ``qa-engine tune``: measure the candidates on this machine, pick one.

Small and timed, in three stages, each on real question windows:

A. every device string the engine would try here (``session.candidate_devices``: the CPU
   provider, OpenVINO f32, OpenVINO bf16 on AMX) x threads (1, half, all cores); a
   candidate whose answers fail the export's self-check is refused, not measured. Each
   gets batch 1 (p50/p95 per call) first, then, for the throughput objective, batch 16,
   with its default buckets (OpenVINO: ``length_buckets``, warmed; CPU provider: none).
B. (throughput) the other batch sizes on stage A's winner.
C. length buckets on vs off on the winner, at its batch size, at the largest batch size
   tried (throughput: padding to a bucket costs most there; measured on SpanBERT-base's
   int8 on OpenVINO, 2 EPYC cores: 16% at batch 32, nothing at batch 1) and at batch 1 on
   OpenVINO (for the p95 the buckets are for); whichever row is best is the plan.

Every measurement first runs a warm-up set of windows, then times *other* windows
(held-out questions), so a shape the warm-up did not see costs what it costs in real
use. The winner is the candidate with the most windows/s (``throughput``) or the lowest
batch-1 p50 (``latency``). The budget bounds the whole search: once it is spent, what
is left is recorded as skipped.
"""

from __future__ import annotations

import datetime
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from qa_engine.batching import length_buckets, plan_batches
from qa_engine.engine import QAEngine
from qa_engine.manifest import MODEL_NAME
from qa_engine.plan import OBJECTIVES, Machine, TunePlan
from qa_engine.session import OPENVINO, available_providers, candidate_devices
from qa_engine.tokenization import Window

BATCH_SIZES = (1, 8, 16, 32, 64)
STAGE_A_BATCH = 16  # the batch size devices and threads are compared at (throughput)
MIN_LATENCY_CALLS = 20  # batch-1 calls timed at least, so p95 means something
MIN_BATCH_CALLS = 2  # calls timed at least at larger batch sizes


@dataclass
class TuneOptions:
    """What ``qa-engine tune`` searches.

    Attributes:
        objective: ``throughput`` (windows/s at the best batch size) or ``latency``
            (batch-1 p50).
        budget_s: Seconds the whole search may take (loading included).
        batch_sizes: Batch sizes stage B tries (throughput objective).
        threads: Thread counts stage A tries (None: 1, half and all usable cores).
        devices: Device strings stage A tries (None: every one this machine offers).
    """

    objective: str = "throughput"
    budget_s: float = 120.0
    batch_sizes: tuple[int, ...] = BATCH_SIZES
    threads: tuple[int, ...] | None = None
    devices: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")
        if not self.budget_s > 0:
            raise ValueError(f"budget_s must be > 0, got {self.budget_s}")
        for name in ("batch_sizes", "threads"):
            values = getattr(self, name)
            if values is not None and (not values or any(int(v) < 1 for v in values)):
                raise ValueError(f"{name} must be positive ints, got {values}")


@dataclass
class Row:
    """One measured (or refused, or skipped) candidate: a row of the printed table."""

    stage: str
    device: str
    threads: int
    batch_size: int
    buckets: bool
    status: str = "ok"  # ok | refused (self-check or load) | failed (at this size) | skipped
    windows_per_s: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    calls: int = 0
    note: str = ""

    def key(self) -> tuple:
        return (self.device, self.threads, self.batch_size, self.buckets)


def thread_options(cores: int) -> tuple[int, ...]:
    """1, half and all of ``cores`` (deduplicated, ascending)."""
    return tuple(sorted({1, max(1, cores // 2), cores}))


def device_options() -> list[str]:
    """Every device string the engine would try on this machine, in its order."""
    devices = list(candidate_devices("auto"))
    if OPENVINO in available_providers():
        devices += candidate_devices("openvino")
    return list(dict.fromkeys(devices))


@dataclass
class Windows:
    """The windows a search runs: a warm-up set and a timed set (other questions)."""

    warm: list[Window]
    timed: list[Window]
    source: dict = field(default_factory=dict)


class Tuner:
    """Runs the search (see the module docstring).

    Args:
        path: The export directory.
        windows: Warm-up and timed windows.
        options: What to search.
        progress: Called with each row as it is recorded.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        windows: Windows,
        options: TuneOptions,
        progress: Callable[[Row], None] | None = None,
    ) -> None:
        self.path = Path(path)
        self.windows = windows
        self.options = options
        self.progress = progress
        self.rows: list[Row] = []
        cores = len(os.sched_getaffinity(0))
        self.devices = list(options.devices or device_options())
        self.threads = tuple(options.threads or thread_options(cores))
        self._start = 0.0
        self._slice = 1.0

    @property
    def planned_measurements(self) -> int:
        """How many measurements the search makes if nothing is refused."""
        per_candidate = 2 if self.options.objective == "throughput" else 1
        stage_b = len(set(self.options.batch_sizes) - {1, STAGE_A_BATCH})
        stage_b = stage_b if self.options.objective == "throughput" else 0
        stage_c = 3 if self.options.objective == "throughput" else 2
        return len(self.devices) * len(self.threads) * per_candidate + stage_b + stage_c

    # --------------------------------------------------------------- the search
    def run(self) -> tuple[TunePlan | None, list[Row]]:
        """Search; returns the plan (None when every candidate was refused) and the rows."""
        self._start = time.perf_counter()
        # Each measurement's timed pass gets half of its share of the budget; loading,
        # the self-check and the warm-up pass take the rest.
        self._slice = self.options.budget_s / (2 * (self.planned_measurements + 1))
        throughput = self.options.objective == "throughput"
        # A: every candidate at batch 1 first (so a tight budget still sees them all),
        # then, for throughput, each at STAGE_A_BATCH.
        opened: list[tuple[QAEngine, Row]] = []
        for device in self.devices:
            for threads in self.threads:
                if self._over_budget():
                    self._skip("A", device, threads, "over the budget")
                    continue
                engine = self._open(device, threads)
                if engine is not None:
                    buckets = engine.buckets is not None
                    single = self._measure("A", engine, device, threads, 1, buckets)
                    if single.status == "ok":
                        opened.append((engine, single))
        best: tuple[QAEngine, Row, Row] | None = None  # engine, its batch-1 row, its score row
        for engine, single in opened:
            score = single
            if throughput and not self._over_budget():
                row = self._measure(
                    "A", engine, single.device, single.threads, STAGE_A_BATCH, single.buckets
                )
                score = row if self._better(row, single) else single
            elif throughput:
                self._skip(
                    "A",
                    single.device,
                    single.threads,
                    "over the budget",
                    STAGE_A_BATCH,
                    single.buckets,
                )
            if best is None or self._better(score, best[2]):
                best = (engine, single, score)
        del opened
        if best is None:
            return None, self.rows
        engine, single, score = best
        device, threads, buckets = score.device, score.threads, score.buckets
        if throughput:
            for size in sorted(set(self.options.batch_sizes) - {1, STAGE_A_BATCH}):
                if self._over_budget():
                    self._skip("B", device, threads, "over the budget", size, buckets)
                    continue
                row = self._measure("B", engine, device, threads, size, buckets)
                score = row if self._better(row, score) else score
        tried = [
            r.batch_size
            for r in self.rows
            if r.status == "ok"
            and r.device == device
            and r.threads == threads
            and r.buckets == buckets
        ]
        sizes = [score.batch_size]
        if throughput:
            sizes.append(max(tried, default=score.batch_size))
        if OPENVINO in engine.providers:
            sizes.append(1)
        for size in dict.fromkeys(sizes):
            if self._over_budget():
                self._skip("C", device, threads, "over the budget", size, not buckets)
                continue
            row = self._measure("C", engine, device, threads, size, not buckets)
            if self._better(row, score):
                score = row
        winner_single = self._row(device, threads, 1, score.buckets) or single
        return self._plan(engine, score, winner_single), self.rows

    def _better(self, row: Row, than: Row) -> bool:
        if row.status != "ok":
            return False
        if self.options.objective == "latency":
            return row.p50_ms is not None and (than.p50_ms is None or row.p50_ms < than.p50_ms)
        return (row.windows_per_s or 0.0) > (than.windows_per_s or 0.0)

    def _row(self, device: str, threads: int, size: int, buckets: bool) -> Row | None:
        key = (device, threads, size, buckets)
        return next((r for r in self.rows if r.key() == key and r.status == "ok"), None)

    def _over_budget(self) -> bool:
        return time.perf_counter() - self._start > self.options.budget_s

    def _record(self, row: Row) -> Row:
        self.rows.append(row)
        if self.progress is not None:
            self.progress(row)
        return row

    def _skip(self, stage, device, threads, why, size=1, buckets=False) -> None:
        self._record(Row(stage, device, threads, size, buckets, status="skipped", note=why))

    def _open(self, device: str, threads: int) -> QAEngine | None:
        """The engine on one candidate, or None (a refused row) when it fails here."""
        try:
            return QAEngine(self.path, device=device, threads=threads, plan=False)
        except (RuntimeError, ValueError) as err:  # SelfCheckError is a RuntimeError
            reason = str(err).split("\n")[0]
            self._record(Row("A", device, threads, 1, False, status="refused", note=reason))
            return None

    # ------------------------------------------------------------ one measurement
    def _measure(
        self, stage: str, engine: QAEngine, device: str, threads: int, size: int, buckets: bool
    ) -> Row:
        """Warm up, then time batches of ``size`` windows of the timed set; a candidate that
        fails at this size (out of memory, a provider error) gets a ``failed`` row."""
        try:
            return self._record(self._time(stage, engine, device, threads, size, buckets))
        except (RuntimeError, ValueError, MemoryError) as err:
            note = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
            return self._record(
                Row(stage, device, threads, size, buckets, status="failed", note=note[:120])
            )

    def _time(
        self, stage: str, engine: QAEngine, device: str, threads: int, size: int, buckets: bool
    ) -> Row:
        on_openvino = OPENVINO in engine.providers
        engine.buckets = length_buckets(engine.manifest.max_seq_length) if buckets else None
        engine.pad_rows = on_openvino and buckets and engine.batch_invariant
        limits = engine.batch_limits(size)
        if buckets:  # what offline calls warm first (only the shapes these windows use)
            lengths = [len(w) for w in (*self.windows.warm, *self.windows.timed)]
            engine.warm_up(shapes={(b.padded_rows, b.width) for b in plan_batches(lengths, limits)})
        self._run(engine, self.windows.warm, limits, deadline=None)
        seconds, windows = self._run(
            engine,
            self.windows.timed,
            limits,
            deadline=time.perf_counter() + self._slice,
            min_calls=MIN_LATENCY_CALLS if size == 1 else MIN_BATCH_CALLS,
        )
        row = Row(stage, device, threads, size, buckets, calls=len(seconds))
        share = engine.session.openvino_share
        if share is not None and share < 1:  # a fused graph: OpenVINO and CPU provider hop
            row.note = f"OpenVINO runs {share:.0%} of the nodes"
        row.windows_per_s = windows / sum(seconds)
        if size == 1:
            row.p50_ms, row.p95_ms = (float(v) for v in np.percentile(seconds, [50, 95]) * 1e3)
        return row

    @staticmethod
    def _run(
        engine, windows, limits, deadline: float | None, min_calls: int = 1
    ) -> tuple[list[float], int]:
        """Run ``windows`` in planned batches (shuffled, fixed seed) until done or past the
        deadline (after at least ``min_calls`` calls); each call's seconds, windows run."""
        batches = plan_batches([len(w) for w in windows], limits)
        random.Random(0).shuffle(batches)
        seconds, done = [], 0
        for batch in batches:
            if deadline is not None and len(seconds) >= min_calls:
                if time.perf_counter() > deadline:
                    break
            chunk = [windows[i] for i in batch.indices]
            started = time.perf_counter()
            engine.run_batch(chunk, batch.width, batch.rows)
            seconds.append(time.perf_counter() - started)
            done += len(chunk)
        return seconds, done

    def _plan(self, engine: QAEngine, score: Row, single: Row) -> TunePlan:
        return TunePlan(
            device=score.device,
            threads=score.threads,
            batch_size=score.batch_size,
            buckets=length_buckets(engine.manifest.max_seq_length) if score.buckets else None,
            objective=self.options.objective,
            machine=Machine.current(),
            model_bytes=(self.path / MODEL_NAME).stat().st_size,
            precision=engine.manifest.precision,
            measured={
                "windows_per_s": score.windows_per_s,
                "batch_size": score.batch_size,
                "batch1_p50_ms": single.p50_ms,
                "batch1_p95_ms": single.p95_ms,
                "providers": engine.providers,
                # The machine's load when the search ended: a busy machine's plan differs.
                "loadavg_1m": os.getloadavg()[0],
            },
            candidates=[asdict(r) for r in self.rows],
            windows=self.windows.source,
            created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            budget_s=self.options.budget_s,
        )


def sample_windows(
    tokenizer, questions: Sequence[str], contexts: Sequence[str], count: int, seed: int = 0
) -> tuple[list[Window], list[Window]]:
    """Windows of shuffled questions: ``count`` timed, and a quarter as many for warm-up,
    from questions the timed set does not hold."""
    order = list(range(len(questions)))
    random.Random(seed).shuffle(order)
    warm_count = max(1, count // 4)
    taken: list[list[Window]] = [[], []]
    for i in order:
        target = taken[0] if len(taken[0]) < count else taken[1]
        target.extend(tokenizer.encode_batch([questions[i]], [contexts[i]])[0])
        if len(taken[0]) >= count and len(taken[1]) >= warm_count:
            break
    return taken[1][:warm_count], taken[0][:count]
