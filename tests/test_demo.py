"""The demo's orchestration: what it runs on which data, and its output-dir guard.

The heavy steps (fine-tune, export, bench) are replaced by a recorder here; `make demo`
runs them for real (README).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from qa_engine import demo as demo_module
from qa_engine.demo_data import demo_data_path


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[list[str]]:
    """Stub the stages: record each `qa-engine` command; write what the next step reads."""
    calls: list[list[str]] = []

    def fake_run(args: list[str], what: str) -> None:
        calls.append(args)
        if args[0] == "bench":
            out = Path(args[args.index("--out") + 1])
            out.mkdir(parents=True)
            (out / "results.md").write_text("| runner | p50 ms |\n")

    monkeypatch.setattr(demo_module, "_run", fake_run)
    monkeypatch.setattr(demo_module, "_show_answers", lambda *a, **k: None)
    monkeypatch.setattr(demo_module, "base_model_dir", lambda: tmp_path / "minilm")
    monkeypatch.delenv(demo_module.TRAIN_ENV, raising=False)
    monkeypatch.delenv(demo_module.DEV_ENV, raising=False)
    return calls


def _value(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def test_embedded_set_by_default_and_every_stage_in_order(
    recorded: list[list[str]], tmp_path: Path
) -> None:
    out = tmp_path / "demo"
    result = CliRunner().invoke(demo_module.demo, ["--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert [c[0] for c in recorded] == ["finetune", "export", "export", "bench"]
    finetune, fp32, int8, bench = recorded
    assert _value(finetune, "--train-file") == str(demo_data_path("train"))
    assert _value(finetune, "--validation-file") == str(demo_data_path("dev"))
    assert _value(int8, "--quantize") == "int8-dynamic" and "--quantize" not in fp32
    assert _value(bench, "--data") == str(demo_data_path("dev"))
    assert "embedded demo set" in result.output and "MiniLM stands in for SpanBERT" in result.output
    # the embedded set is what the output says: original questions, held-out dev split
    train = json.loads(demo_data_path("train").read_text())
    dev = json.loads(demo_data_path("dev").read_text())
    train_ids = {q["id"] for a in train["data"] for p in a["paragraphs"] for q in p["qas"]}
    dev_ids = {q["id"] for a in dev["data"] for p in a["paragraphs"] for q in p["qas"]}
    assert len(train_ids) == 312 and len(dev_ids) == 84 and not train_ids & dev_ids


def test_given_files_replace_the_embedded_set(recorded: list[list[str]], tmp_path: Path) -> None:
    train, dev = tmp_path / "train.json", tmp_path / "dev.json"
    train.write_text("{}")
    dev.write_text("{}")
    args = ["--train-file", str(train), "--dev-file", str(dev), "--out", str(tmp_path / "d")]
    result = CliRunner().invoke(demo_module.demo, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert _value(recorded[0], "--train-file") == str(train)
    assert _value(recorded[0], "--max-train-samples") == "2000"
    assert str(train) in result.output
    half = CliRunner().invoke(demo_module.demo, ["--train-file", str(train)])
    assert half.exit_code != 0 and "both" in half.output


def test_a_rerun_replaces_its_own_output_but_never_a_foreign_dir(
    recorded: list[list[str]], tmp_path: Path
) -> None:
    out = tmp_path / "demo"
    runner = CliRunner()
    assert runner.invoke(demo_module.demo, ["--out", str(out)]).exit_code == 0
    (out / "stale.txt").write_text("from the first run")
    second = runner.invoke(demo_module.demo, ["--out", str(out)])
    assert second.exit_code == 0 and "replacing the earlier demo run" in second.output
    assert not (out / "stale.txt").exists()

    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    refused = runner.invoke(demo_module.demo, ["--out", str(foreign)])
    assert refused.exit_code != 0 and "not an earlier demo run" in refused.output
    assert (foreign / "notes.txt").read_text() == "keep me"
