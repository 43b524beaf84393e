"""Answer a corpus file on this machine: read in chunks, answer, stream results out."""

from __future__ import annotations

import os
from contextlib import closing
from dataclasses import dataclass

from qa_engine.corpus.answer import AnswerOptions, answer_rows
from qa_engine.corpus.formats import count_rows, open_writer, read_rows

# Rows answered per engine call: enough to batch windows by length, few enough that
# memory stays flat whatever the corpus size.
CHUNK_ROWS = 512


@dataclass(frozen=True)
class CorpusSummary:
    """What a corpus run wrote.

    Attributes:
        rows: Result rows written (= rows read).
        errors: Rows that carry an error instead of an answer.
        out: The result file.
    """

    rows: int
    errors: int
    out: str


def answer_file(
    engine,
    source: str | os.PathLike,
    out: str | os.PathLike,
    options: AnswerOptions,
    *,
    chunk_rows: int = CHUNK_ROWS,
    progress: bool = True,
) -> CorpusSummary:
    """Answer every row of ``source`` with ``engine`` and write one result per row to ``out``.

    Raises:
        FileNotFoundError, ValueError: From the reader and writer (file-level problems
            only; a bad row is written with its error).
    """
    from tqdm.auto import tqdm

    errors = 0
    with (
        closing(open_writer(out)) as writer,
        tqdm(total=count_rows(source), unit="q", disable=not progress) as bar,
    ):
        for chunk in read_rows(source, chunk_rows):
            results = answer_rows(engine, chunk, options)
            errors += sum(r["error"] is not None for r in results)
            writer.write(results)
            bar.update(len(chunk))
    return CorpusSummary(rows=writer.rows, errors=errors, out=str(out))
