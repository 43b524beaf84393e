"""Corpora of questions: streaming readers and writers, and answering them row by row.

One path for local ``qa-engine predict --file`` and for the Ray Data actors of
``predict --ray``: the same readers turn SQuAD JSON, JSON Lines or Parquet into raw rows
(:mod:`qa_engine.corpus.formats`), the same function checks each row and answers the
good ones with one engine (:mod:`qa_engine.corpus.answer`), and the same writers stream
the results out. A bad row becomes a result with its error, never a failed job.
"""

from qa_engine.corpus.answer import RESULT_FIELDS, AnswerOptions, answer_rows, check_row
from qa_engine.corpus.formats import (
    corpus_format,
    count_rows,
    open_writer,
    parse_json_line,
    read_rows,
)

__all__ = [
    "RESULT_FIELDS",
    "AnswerOptions",
    "answer_rows",
    "check_row",
    "corpus_format",
    "count_rows",
    "open_writer",
    "parse_json_line",
    "read_rows",
]
