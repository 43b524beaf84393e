"""Corpus rows for the corpus and Ray tests: good questions with bad rows mixed in."""

from __future__ import annotations

import json
from pathlib import Path

CONTEXTS = [
    "the city of a river was built in 1200 by the king. the museum is old.",
    "the first king was born in the capital. his war was long and great.",
    "two people called it the new city, and the river is more than one mile.",
]
QUESTIONS = ["who built the city?", "when was it built?", "where was the king born?"]

# (raw JSON line, expected error) of every kind of bad row a JSON Lines corpus can hold.
BAD_LINES = [
    (json.dumps({"id": "bad-empty", "question": "who?", "context": ""}), "context: empty"),
    (json.dumps({"id": "bad-space", "question": "  \t", "context": "x"}), "question: empty"),
    (json.dumps({"id": "bad-type", "question": 7, "context": "x"}), "question: expected a str"),
    (json.dumps({"id": "bad-missing", "question": "who?"}), "context: missing"),
    (json.dumps({"question": "who?", "context": "the king"}), "id: missing"),
    (json.dumps({"id": "bad-null", "question": None, "context": "x"}), "question: missing"),
    ('{"id": "broken", "question": ', "row: not valid JSON"),
    ("[1, 2, 3]", "row: expected an object"),
]


def good_rows(n: int) -> list[dict]:
    return [
        {
            "id": f"q{i}",
            "question": QUESTIONS[i % len(QUESTIONS)],
            "context": CONTEXTS[(i // len(QUESTIONS)) % len(CONTEXTS)] * (1 + i % 4),
        }
        for i in range(n)
    ]


def write_jsonl(path: Path, n_good: int, bad_every: int = 0) -> tuple[int, int]:
    """Write ``n_good`` rows with a bad line after every ``bad_every``; (rows, bad rows)."""
    lines, bad = [], 0
    for i, row in enumerate(good_rows(n_good)):
        lines.append(json.dumps(row))
        if bad_every and i % bad_every == 0:
            lines.append(BAD_LINES[bad % len(BAD_LINES)][0])
            bad += 1
    path.write_text("\n".join(lines) + "\n\n", encoding="utf-8")  # a trailing blank line
    return len(lines), bad


def write_parquet(path: Path, rows: list[dict]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("id", pa.string()), ("question", pa.string()), ("context", pa.string())])
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path, row_group_size=64)
    return path


def read_results(path: Path) -> list[dict]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
