"""``qa-engine predict --ray``: Ray Data streams a corpus through an actor pool of engines.

Read (Ray Data, on the workers) -> ``map_batches`` over a pool of :class:`EngineActor`,
each holding one :class:`~qa_engine.engine.QAEngine` and answering its chunk through
:func:`qa_engine.corpus.answer_rows` (the row path of local ``predict --file``, so both
give the same result per row) -> results stream back to the driver, which writes them
with the local writers. Rows come out in completion order; join on ``id``.

Inputs as Ray reads them: Parquet with ``read_parquet``; JSON Lines with ``read_text``
(one row per line, parsed in the actor, so a broken line is a row with its error, not a
failed read task); SQuAD JSON is one document, parsed on the driver into JSON lines.
"""

from __future__ import annotations

import json
import os
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray

from qa_engine.corpus.answer import AnswerOptions, answer_rows
from qa_engine.corpus.formats import (
    INPUT_COLUMNS,
    corpus_format,
    count_rows,
    open_writer,
    parquet_columns_check,
    parse_json_line,
    read_squad,
    results_table,
    squad_rows,
)
from qa_engine.corpus.local import CorpusSummary

# Rows per actor call (and per block): the chunk one engine.predict call groups by length.
# Measured on 1,000 SQuAD questions, 2 threads: 28.0 s in chunks of 512 rows, 29.3 s of
# 256, 35.6 s of 64 (less length grouping, more padding); smaller blocks only balance
# the actors better at the very end of a run.
ROWS_PER_BATCH = 256
# Read tasks do light I/O. The actor pool starts first and may hold every CPU (2 actors
# on 2 CPUs); a read task asking for any CPU then waits forever, so they ask for none.
_READ_CPUS = 0


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide ``predict --ray`` runs.

    Attributes:
        address: Ray cluster to join (``"auto"``, ``"ray://head:10001"``, ``"head:6379"``);
            None starts a local Ray for this run (or uses one already initialised).
        actors: Engines in the pool; None: the cluster's CPUs (GPUs with
            ``gpus_per_actor``) divided by what one actor asks for.
        cpus_per_actor: CPUs Ray reserves for each actor; its onnxruntime threads.
        gpus_per_actor: GPUs per actor (0: CPU inference); with GPUs use ``device="cuda"``.
        rows_per_batch: Rows per actor call.
        device: Engine device (``"cpu"``, ``"cuda"``, ...), as for ``QAEngine``.
    """

    address: str | None = None
    actors: int | None = None
    cpus_per_actor: float = 1.0
    gpus_per_actor: float = 0.0
    rows_per_batch: int = ROWS_PER_BATCH
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.actors is not None and self.actors < 1:
            raise ValueError(f"actors must be >= 1, got {self.actors}")
        if self.cpus_per_actor <= 0:
            raise ValueError(f"cpus_per_actor must be > 0, got {self.cpus_per_actor}")
        if self.gpus_per_actor < 0:
            raise ValueError(f"gpus_per_actor must be >= 0, got {self.gpus_per_actor}")
        if self.rows_per_batch < 1:
            raise ValueError(f"rows_per_batch must be >= 1, got {self.rows_per_batch}")


def actor_threads() -> int:
    """onnxruntime threads for this actor: the CPUs Ray assigned it (at least one).

    Ray sets ``OMP_NUM_THREADS`` from ``num_cpus``, which onnxruntime ignores (it sizes
    its pool by the cores it sees), so the count is passed to the engine explicitly.
    """
    assigned = ray.get_runtime_context().get_assigned_resources()
    return max(1, int(assigned.get("CPU", 1)))


class EngineActor:
    """One engine in the Ray Data actor pool; answers a batch of raw rows per call."""

    def __init__(self, export_dir: str, device: str, options: AnswerOptions, kind: str) -> None:
        from qa_engine.engine import QAEngine

        # spinning=False: read tasks, other actors and the object store share the node.
        self.engine = QAEngine(export_dir, device=device, threads=actor_threads(), spinning=False)
        self.options = options
        self.kind = kind

    def __call__(self, batch):  # pyarrow.Table -> pyarrow.Table
        if self.kind == "text":
            rows: list[Any] = [
                parse_json_line(t.strip()) for t in batch.column("text").to_pylist() if t.strip()
            ]
        else:
            rows = batch.to_pylist()
        return results_table(answer_rows(self.engine, rows, self.options))


def _dataset(source: Path, rows_per_batch: int):
    """(dataset, kind, rows): ``kind`` is ``"text"`` (JSON lines to parse) or ``"rows"``.

    Blocks of about ``rows_per_batch`` rows: Ray's default for a small file is a few
    large blocks, and an actor finishing its last one while the others idle costs up to
    a block's time at the end of the run (measured: 4 blocks of 500 rows for 2,000
    questions on 2 actors).
    """
    kind = corpus_format(source)
    if kind == "squad":
        doc = read_squad(source)  # one document, parsed here, shipped as JSON lines
        rows = [{"text": json.dumps(r, ensure_ascii=False)} for r in squad_rows(doc, str(source))]
        blocks = _blocks(len(rows), rows_per_batch)
        return ray.data.from_items(rows, override_num_blocks=blocks), "text", len(rows)
    total = count_rows(source)
    read_args = {"num_cpus": _READ_CPUS, "override_num_blocks": _blocks(total, rows_per_batch)}
    if kind == "parquet":
        parquet_columns_check(source)
        dataset = ray.data.read_parquet(str(source), columns=list(INPUT_COLUMNS), **read_args)
        return dataset, "rows", total
    return ray.data.read_text(str(source), **read_args), "text", total


def _blocks(rows: int | None, rows_per_batch: int) -> int:
    return max(1, -(-(rows or 0) // rows_per_batch))


def _pool_strategy(pool: int, *, grow: bool):
    """The actor pool: ``pool`` engines, each given one block at a time.

    A fixed pool, so every actor works from the first block to the last: Ray Data's
    autoscaling pool dropped a still-starting actor when the input was all handed out
    (measured: 500 rows on 2 one-CPU actors ran on one, 34 s against 15 s locally).
    But a Parquet read lists its files in a one-CPU task (Ray Data's ListFiles takes no
    resource arguments) that a pool holding every CPU would starve forever: there
    (``grow``) the pool starts at one actor and grows once the read is under way.
    One block in flight per actor: with Ray's default of two, the first actor up can
    take two blocks while another idles.
    """
    if grow:
        return ray.data.ActorPoolStrategy(
            min_size=1, max_size=pool, max_tasks_in_flight_per_actor=1
        )
    return ray.data.ActorPoolStrategy(size=pool, max_tasks_in_flight_per_actor=1)


def _pool_size(options: RayOptions) -> int:
    if options.actors is not None:
        return options.actors
    resources = ray.cluster_resources()
    if options.gpus_per_actor > 0:
        return max(1, int(resources.get("GPU", 0) // options.gpus_per_actor))
    return max(1, int(resources.get("CPU", 1) // options.cpus_per_actor))


def answer_file_ray(
    export_dir: str | os.PathLike,
    source: str | os.PathLike,
    out: str | os.PathLike,
    options: AnswerOptions,
    ray_options: RayOptions = RayOptions(),  # noqa: B008 (frozen dataclass)
    *,
    progress: bool = True,
) -> CorpusSummary:
    """Answer every row of ``source`` on Ray and write one result per row to ``out``.

    The export directory (and, on a real cluster, the source file) must be readable at
    the same path on every node that runs an actor (a shared file system or a copy).
    ``progress`` shows the rows written, as local ``predict --file`` does, in place of
    Ray Data's per-operator bars.
    """
    from tqdm.auto import tqdm

    source, export_dir = Path(source), Path(export_dir).resolve()
    if not source.is_file():
        raise FileNotFoundError(f"corpus file not found: {source}")
    started = not ray.is_initialized()
    if started:
        ray.init(address=ray_options.address, include_dashboard=False, log_to_driver=False)
    context = ray.data.DataContext.get_current()
    ray_bars = context.enable_progress_bars
    try:
        context.enable_progress_bars = ray_bars and not progress
        dataset, kind, total = _dataset(source.resolve(), ray_options.rows_per_batch)
        pool = _pool_size(ray_options)
        answered = dataset.map_batches(
            EngineActor,
            fn_constructor_kwargs={
                "export_dir": str(export_dir),
                "device": ray_options.device,
                "options": options,
                "kind": kind,
            },
            # A whole block per call (blocks hold ~rows_per_batch rows, see _dataset):
            # a batch_size would bundle blocks smaller than it into one task, and 2
            # blocks of 250 rows then ran on one actor while the other idled.
            batch_size=None,
            batch_format="pyarrow",
            zero_copy_batch=True,
            compute=_pool_strategy(pool, grow=kind == "rows"),
            num_cpus=ray_options.cpus_per_actor,
            num_gpus=ray_options.gpus_per_actor or None,
        )
        errors = 0
        with (
            closing(open_writer(out)) as writer,
            tqdm(total=total, unit="q", disable=not progress) as bar,
        ):
            for batch in answered.iter_batches(batch_format="pyarrow", batch_size=None):
                results = batch.to_pylist()
                errors += sum(r["error"] is not None for r in results)
                writer.write(results)
                bar.update(len(results))
        return CorpusSummary(rows=writer.rows, errors=errors, out=str(out))
    finally:
        context.enable_progress_bars = ray_bars
        if started:
            ray.shutdown()
