"""Corpus readers and writers, row checks, and local `predict --file` to JSONL/Parquet."""

from __future__ import annotations

import gzip
import json
import tracemalloc

import pytest
from click.testing import CliRunner
from corpus_rows import BAD_LINES, good_rows, read_results, write_jsonl, write_parquet

from qa_engine.cli import cli
from qa_engine.corpus import AnswerOptions, answer_rows, check_row, corpus_format, read_rows
from qa_engine.corpus.formats import count_rows, open_writer

pytest.importorskip("pyarrow")


def test_format_by_suffix():
    assert corpus_format("a/dev-v1.1.json.gz") == "squad"
    assert corpus_format("x.JSONL") == "jsonl"
    assert corpus_format("x.jsonl.gz") == "jsonl"
    assert corpus_format("x.parquet") == "parquet"
    with pytest.raises(ValueError, match=r"\.jsonl"):
        corpus_format("x.csv")


@pytest.mark.parametrize(("line", "error"), BAD_LINES)
def test_bad_rows_carry_their_error(tmp_path, line, error):
    path = tmp_path / "one.jsonl"
    path.write_text(line + "\n")
    [[raw]] = list(read_rows(path))
    _, _, _, message = check_row(raw)
    assert message is not None and message.startswith(error), message


def test_check_row_accepts_integer_ids():
    assert check_row({"id": 12, "question": "q", "context": "c"}) == ("12", "q", "c", None)
    assert check_row({"id": True, "question": "q", "context": "c"})[3].startswith("id:")


def test_jsonl_and_gzip_stream_in_chunks(tmp_path):
    plain = tmp_path / "c.jsonl"
    n, bad = write_jsonl(plain, 25, bad_every=5)
    zipped = tmp_path / "c.jsonl.gz"
    zipped.write_bytes(gzip.compress(plain.read_bytes()))
    for path in (plain, zipped):
        chunks = list(read_rows(path, chunk_rows=7))
        assert [len(c) for c in chunks[:-1]] == [7] * (len(chunks) - 1)
        assert sum(map(len, chunks)) == n  # the blank line is not a row
        assert count_rows(path) == n  # progress total and Ray's block count agree
    assert bad == 5


def test_squad_rows_keep_malformed_questions(tmp_path):
    doc = {
        "data": [
            {
                "paragraphs": [
                    {"context": "the king built it.", "qas": [{"id": "a", "question": "who?"}]},
                    {"context": 3, "qas": [{"id": "b", "question": "who?"}, "junk"]},
                ]
            }
        ]
    }
    path = tmp_path / "s.json"
    path.write_text(json.dumps(doc))
    [rows] = list(read_rows(path))
    errors = [check_row(r)[3] for r in rows]
    assert errors[0] is None
    assert errors[1].startswith("context: expected a string")
    assert errors[2].startswith("row: expected an object")
    path.write_text(json.dumps({"data": 1}))
    with pytest.raises(ValueError, match="not SQuAD"):
        list(read_rows(path))


def test_parquet_missing_column_is_a_file_error(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "c.parquet"
    pq.write_table(pa.table({"id": ["a"], "question": ["q"]}), path)
    with pytest.raises(ValueError, match="missing column.*context"):
        list(read_rows(path))


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_memory_stays_flat_in_corpus_size(tmp_path, suffix):
    """Reading and writing 20,000 rows in chunks holds about one chunk at a time."""
    rows = good_rows(20_000)
    source = tmp_path / f"big{suffix}"
    if suffix == ".parquet":
        write_parquet(source, rows)
    else:
        source.write_text("\n".join(json.dumps(r) for r in rows))
    size = sum(len(json.dumps(r)) for r in rows)  # the corpus as text (Parquet compresses)
    result = {"answer": "x", "score": 0.5, "start": 0, "end": 1, "error": None}
    tracemalloc.start()
    writer = open_writer(tmp_path / f"out{suffix}")
    for chunk in read_rows(source, chunk_rows=200):
        writer.write([dict(result, id=r["id"]) for r in chunk])
    writer.close()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert writer.rows == len(rows)
    assert peak < size / 4, f"peak {peak} bytes for a {size}-byte corpus"


class _FailingEngine:
    """Fails any call that holds the poisoned question, like an engine bug on one row."""

    def predict(self, questions, contexts, **options):
        if "poison" in questions:
            raise RuntimeError("boom")
        from qa_engine.decoding import Answer

        return [Answer(c[:3], 0.5, 0, 3) for c in contexts]


def test_one_failing_row_costs_only_its_own_result():
    rows = [{"id": str(i), "question": q, "context": "abcdef"} for i, q in enumerate("ab")]
    rows.insert(1, {"id": "p", "question": "poison", "context": "abcdef"})
    results = answer_rows(_FailingEngine(), rows, AnswerOptions())
    assert [r["answer"] for r in results] == ["abc", None, "abc"]
    assert results[1]["error"] == "RuntimeError: boom"


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_predict_file_writes_one_row_per_question(tiny_onnx_dir, tmp_path, suffix):
    from qa_engine import QAEngine

    source = tmp_path / "in.jsonl"
    n, bad = write_jsonl(source, 40, bad_every=6)
    out = tmp_path / f"out{suffix}"
    args = ["predict", str(tiny_onnx_dir), "--file", str(source), "--out", str(out)]
    result = CliRunner().invoke(cli, [*args, "--device", "cpu", "--threads", "1"])
    assert result.exit_code == 0, result.output
    got = read_results(out)
    assert len(got) == n
    assert sum(r["error"] is not None for r in got) == bad
    engine = QAEngine(tiny_onnx_dir, device="cpu", threads=1)
    for row, want in zip(good_rows(40), [r for r in got if r["error"] is None], strict=True):
        answer = engine(row["question"], row["context"])
        assert (want["id"], want["answer"], want["start"]) == (row["id"], answer.text, answer.start)
        assert want["score"] == pytest.approx(answer.score, abs=1e-5)


def test_predict_rows_out_rejects_bad_combinations(tiny_onnx_dir, tmp_path):
    source = tmp_path / "in.jsonl"
    write_jsonl(source, 2)
    base = ["predict", str(tiny_onnx_dir), "--file", str(source)]
    result = CliRunner().invoke(cli, [*base, "--out", str(tmp_path / "o.jsonl"), "--top-k", "2"])
    assert result.exit_code == 2 and "--top-k" in result.output
    result = CliRunner().invoke(cli, [*base, "--ray"])
    assert result.exit_code == 2 and "--ray needs" in result.output
    result = CliRunner().invoke(cli, [*base, "--out", str(tmp_path / "o.csv")])
    assert result.exit_code == 2 and "unknown corpus format" in result.output
