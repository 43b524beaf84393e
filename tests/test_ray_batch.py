"""`qa-engine predict --ray`: Ray Data with an actor pool of engines, on one local Ray.

One Ray start for the module (2 CPUs, a 100 MB object store, no dashboard), shut down
at the end; the answers are compared row by row with local `predict --file`.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from corpus_rows import good_rows, read_results, write_jsonl, write_parquet
from ray_kit import init_local_ray

from qa_engine.cli import cli

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow  # a Ray start and actor pools: seconds, not milliseconds


@pytest.fixture(scope="module")
def local_ray():
    init_local_ray()
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


def predict(export_dir, source, out, *extra: str) -> list[dict]:
    args = ["predict", str(export_dir), "--file", str(source), "--out", str(out), *extra]
    result = CliRunner().invoke(cli, [*args, "--device", "cpu"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return read_results(out)


def by_row(results: list[dict]) -> list[tuple]:
    """Results as comparable tuples in a fixed order (Ray writes in completion order)."""
    rows = [
        (r["id"] or "", r["error"] or "", r["answer"], r["start"], r["end"], r["score"])
        for r in results
    ]
    return sorted(rows, key=lambda r: r[:2])


def assert_same_answers(local: list[dict], remote: list[dict]) -> None:
    assert len(remote) == len(local)
    for want, got in zip(by_row(local), by_row(remote), strict=True):
        assert got[:5] == want[:5]
        assert got[5] == pytest.approx(want[5], abs=1e-5)  # None == None too


def test_jsonl_rows_in_equal_rows_out_with_bad_rows(local_ray, tiny_onnx_dir, tmp_path):
    source = tmp_path / "in.jsonl"
    n, bad = write_jsonl(source, 300, bad_every=15)
    local = predict(tiny_onnx_dir, source, tmp_path / "local.jsonl", "--threads", "1")
    remote = predict(tiny_onnx_dir, source, tmp_path / "ray.jsonl", "--ray", "--actors", "2")
    assert len(remote) == n and n > 300
    assert sum(r["error"] is not None for r in remote) == bad
    assert {r["error"].split(" (")[0] for r in remote if r["error"]} >= {
        "context: empty or whitespace only",
        "question: expected a string, got int",
        "id: missing",
        "row: not valid JSON",
    }
    assert_same_answers(local, remote)


def test_parquet_and_squad_inputs(local_ray, tiny_onnx_dir, tmp_path):
    rows = good_rows(120)
    rows[7]["context"] = ""
    rows[9]["question"] = None
    source = write_parquet(tmp_path / "in.parquet", rows)
    local = predict(tiny_onnx_dir, source, tmp_path / "local.parquet")
    remote = predict(tiny_onnx_dir, source, tmp_path / "ray.parquet", "--ray")
    assert len(remote) == 120 and sum(r["error"] is not None for r in remote) == 2
    assert_same_answers(local, remote)

    qas = [{"id": r["id"], "question": r["question"], "answers": []} for r in rows[:30]]
    qas.append({"id": "no-question", "answers": []})
    doc = {"data": [{"paragraphs": [{"context": rows[0]["context"], "qas": qas}]}]}
    squad = tmp_path / "squad.json"
    squad.write_text(json.dumps(doc))
    local = predict(tiny_onnx_dir, squad, tmp_path / "local-squad.jsonl")
    remote = predict(tiny_onnx_dir, squad, tmp_path / "ray-squad.jsonl", "--ray")
    assert len(remote) == 31 and [r["error"] for r in remote if r["error"]] == [
        "question: missing",
        "question: missing",  # rows[9]'s question is None
    ]
    assert_same_answers(local, remote)
