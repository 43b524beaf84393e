"""Corpus files in and result files out, streamed in chunks (memory flat in corpus size).

Inputs, told apart by suffix:

- SQuAD JSON (``.json``, ``.json.gz``): the official nested layout. It is one JSON
  document, so it is parsed whole (the only input that is; the dev set is 35 MB) and
  then yielded in chunks.
- JSON Lines (``.jsonl``, ``.ndjson``, optionally ``.gz``): one object per line with
  ``id``, ``question``, ``context``; blank lines are skipped.
- Parquet (``.parquet``, ``.pq``): ``id``, ``question``, ``context`` columns, read in
  record batches.

Outputs: JSON Lines or Parquet (by suffix) with :data:`RESULT_FIELDS`. A row that cannot
be parsed (broken JSON, not an object) is still a row, carrying its error.
pyarrow is imported only for Parquet.
"""

from __future__ import annotations

import gzip
import io
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from qa_engine.corpus.answer import RESULT_FIELDS, ROW_ERROR

_GZIP_MAGIC = b"\x1f\x8b"
INPUT_COLUMNS = ("id", "question", "context")
_SUFFIXES = {
    ".json": "squad",
    ".json.gz": "squad",
    ".jsonl": "jsonl",
    ".jsonl.gz": "jsonl",
    ".ndjson": "jsonl",
    ".ndjson.gz": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}


def corpus_format(path: str | os.PathLike) -> str:
    """``"squad"``, ``"jsonl"`` or ``"parquet"``, by the file name's suffix.

    Raises:
        ValueError: An unknown suffix (the message lists the known ones).
    """
    name = Path(path).name.lower()
    for suffix in sorted(_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return _SUFFIXES[suffix]
    raise ValueError(f"{path}: unknown corpus format; use one of {', '.join(_SUFFIXES)}")


# --------------------------------------------------------------------------- reading
def parse_json_line(line: str | bytes) -> dict[str, Any]:
    """One JSON Lines row; a line that is not a JSON object gives ``{ROW_ERROR: message}``."""
    try:
        value = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        return {ROW_ERROR: f"row: not valid JSON ({err})"}
    if not isinstance(value, dict):
        return {ROW_ERROR: f"row: expected an object, got {type(value).__name__}"}
    return value


def squad_rows(doc: Any, name: str) -> Iterator[Any]:
    """Raw rows (id, question, context) of a parsed SQuAD document, in file order.

    A malformed question or paragraph gives rows that fail their check; only a document
    that is not SQuAD at all (no ``data`` list of articles) raises ValueError.
    """
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise ValueError(f"{name}: no top-level 'data' list (not SQuAD format)")
    for i, article in enumerate(doc["data"]):
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            raise ValueError(f"{name}: data[{i}] has no 'paragraphs' list (not SQuAD format)")
        for paragraph in paragraphs:
            qas = paragraph.get("qas") if isinstance(paragraph, dict) else None
            for qa in qas if isinstance(qas, list) else []:
                if not isinstance(qa, dict):
                    yield qa  # fails its check as "not an object"
                    continue
                context = paragraph.get("context")
                yield {"id": qa.get("id"), "question": qa.get("question"), "context": context}


def read_rows(path: str | os.PathLike, chunk_rows: int = 1024) -> Iterator[list[Any]]:
    """Raw rows of a corpus file in chunks of at most ``chunk_rows``.

    Raises:
        FileNotFoundError: No such file.
        ValueError: Unknown suffix, not SQuAD format, or Parquet without the columns.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"corpus file not found: {path}")
    kind = corpus_format(path)
    if kind == "parquet":
        yield from _parquet_chunks(path, chunk_rows)
        return
    rows = squad_rows(read_squad(path), str(path)) if kind == "squad" else _jsonl_rows(path)
    chunk: list[Any] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == chunk_rows:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def count_rows(path: str | os.PathLike) -> int | None:
    """Rows of a corpus without parsing them (for progress and Ray's block sizes).

    Parquet: from its footer; JSON Lines: non-blank lines, one streaming pass (a bad
    line is still a row); SQuAD: None (only parsing the document tells).
    """
    kind = corpus_format(path)
    if kind == "parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    if kind == "jsonl":
        with _open_text(Path(path)) as lines:
            return sum(1 for line in lines if line.strip())
    return None


def parquet_columns_check(path: str | os.PathLike) -> None:
    """Raise ValueError naming the input columns a Parquet file lacks."""
    import pyarrow.parquet as pq

    names = set(pq.read_schema(path).names)
    missing = [c for c in INPUT_COLUMNS if c not in names]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}; has {sorted(names)}")


def _open_text(path: Path) -> io.TextIOBase:
    with open(path, "rb") as f:
        gzipped = f.read(2) == _GZIP_MAGIC  # by content: a .jsonl may well be gzipped
    raw = gzip.open(path, "rb") if gzipped else open(path, "rb")  # noqa: SIM115
    return io.TextIOWrapper(raw, encoding="utf-8", errors="surrogateescape")


def _jsonl_rows(path: Path) -> Iterator[dict[str, Any]]:
    with _open_text(path) as lines:
        for line in lines:
            if line := line.strip():  # as Ray's read_text gives it: no newline, no blanks
                yield parse_json_line(line)


def read_squad(path: Path) -> Any:
    """The parsed SQuAD document (plain or gzip JSON); ValueError if it is not JSON."""
    with _open_text(path) as f:
        try:
            return json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{path}: not valid JSON ({err})") from err


def _parquet_chunks(path: Path, chunk_rows: int) -> Iterator[list[dict[str, Any]]]:
    import pyarrow.parquet as pq

    parquet_columns_check(path)
    for batch in pq.ParquetFile(path).iter_batches(
        batch_size=chunk_rows, columns=list(INPUT_COLUMNS)
    ):
        yield batch.to_pylist()


# --------------------------------------------------------------------------- writing
class ResultWriter(Protocol):
    """Streams result rows (dicts with :data:`RESULT_FIELDS`) to a file."""

    rows: int

    def write(self, results: Sequence[dict[str, Any]]) -> None: ...

    def close(self) -> None: ...


def result_schema():
    """The pyarrow schema of result rows (typed, so all-null columns keep their type)."""
    import pyarrow as pa

    return pa.schema(
        [
            ("id", pa.string()),
            ("answer", pa.string()),
            ("score", pa.float64()),
            ("start", pa.int64()),
            ("end", pa.int64()),
            ("error", pa.string()),
        ]
    )


def results_table(results: Sequence[dict[str, Any]]):
    """Result rows as a pyarrow Table of :func:`result_schema`."""
    import pyarrow as pa

    columns = {f: [r[f] for r in results] for f in RESULT_FIELDS}
    return pa.table(columns, schema=result_schema())


class _JsonlWriter:
    def __init__(self, path: Path) -> None:
        opener = gzip.open if path.suffix == ".gz" else open
        self._file = opener(path, "wt", encoding="utf-8")
        self.rows = 0

    def write(self, results: Sequence[dict[str, Any]]) -> None:
        for result in results:
            row = {f: result[f] for f in RESULT_FIELDS}
            self._file.write(json.dumps(row, ensure_ascii=False) + "\n")
        self.rows += len(results)

    def close(self) -> None:
        self._file.close()


class _ParquetWriter:
    def __init__(self, path: Path) -> None:
        import pyarrow.parquet as pq

        self._writer = pq.ParquetWriter(path, result_schema())
        self.rows = 0

    def write(self, results: Sequence[dict[str, Any]]) -> None:
        if results:
            self._writer.write_table(results_table(results))
        self.rows += len(results)

    def close(self) -> None:
        self._writer.close()


def open_writer(path: str | os.PathLike) -> ResultWriter:
    """A writer for ``path``: JSON Lines (``.jsonl``, ``.jsonl.gz``) or Parquet.

    Raises:
        ValueError: Another suffix (SQuAD ``.json`` is an input format only here).
    """
    path = Path(path)
    kind = corpus_format(path)
    if kind == "squad":
        raise ValueError(f"{path}: results are written as .jsonl or .parquet")
    return _JsonlWriter(path) if kind == "jsonl" else _ParquetWriter(path)
