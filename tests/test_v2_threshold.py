"""SQuAD 2.0: every variant gets the null threshold that fits its own logits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from qa_engine.cli import cli
from qa_engine.data import QAExample
from qa_engine.export.features import Windows
from qa_engine.export.parity import DecodeSettings, tune_null_threshold


def test_threshold_is_the_best_f1_cut() -> None:
    context = "a b c"
    offsets = np.array([[0, 0], [0, 1], [2, 3], [4, 5]])
    mask = np.array([False, True, True, True])
    windows = Windows({}, [0, 1], [offsets, offsets], [mask, mask], 0)
    logits = [
        (np.array([0, 5, 0, 0.0]), np.array([0, 0, 5, 0.0])),  # "a b", null - best = -10
        (np.array([3, 1, 0, 0.0]), np.array([3, 0, 1, 0.0])),  # null - best = +4
    ]
    examples = [
        QAExample("q0", "", context, "?", {"text": ["a b"], "answer_start": [0]}),
        QAExample("q1", "", context, "?", {"text": [], "answer_start": []}, is_impossible=True),
    ]
    settings = DecodeSettings(version_2=True)
    threshold = tune_null_threshold(windows, logits, examples, settings)
    # answer q0 (-10 is not above the cut), abstain on q1 (+4 is): F1 100
    assert threshold == pytest.approx(-10.0)
    no_gold = [QAExample("g", "", context, "?", {"text": [], "answer_start": []})] * 2
    assert tune_null_threshold(windows, logits, no_gold, settings) is None


@pytest.mark.slow
def test_export_retunes_each_variant_on_a_v2_file(tiny_model_dir: Path, tmp_path: Path) -> None:
    from qa_engine.export.features import generated_examples
    from qa_engine.finetune.tokenizer import load_tokenizer

    examples = generated_examples(load_tokenizer(str(tiny_model_dir)), 24, seed=5)
    paragraphs = []
    for i, ex in enumerate(examples):
        impossible = i % 2 == 1
        answer = ex.context.split()[1]
        qa = {"id": f"q{i}", "question": ex.question, "is_impossible": impossible, "answers": []}
        if not impossible:
            qa["answers"] = [{"text": answer, "answer_start": ex.context.index(answer)}]
        paragraphs.append({"context": ex.context, "qas": [qa]})
    data = tmp_path / "v2.json"
    data.write_text(
        json.dumps({"version": "v2.0", "data": [{"title": "t", "paragraphs": paragraphs}]})
    )
    out = tmp_path / "int8"
    args = ["--max-seq-length", "64", "--doc-stride", "16", "--parity-samples", "24"]
    args += ["--optimize", "O2", "--quantize", "int8-dynamic", "--calibration-file", str(data)]
    result = CliRunner().invoke(cli, ["export", str(tiny_model_dir), str(out), *args])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "qa_manifest.json").read_text())
    assert manifest["version_2"] is True
    rows = manifest["extra"]["variants"]
    assert all(row["null_threshold"] is not None for row in rows)
    chosen = next(row for row in rows if row["selected"])
    assert manifest["null_threshold"] == pytest.approx(chosen["null_threshold"])
    assert "null threshold" in result.output
