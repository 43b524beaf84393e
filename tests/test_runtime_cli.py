"""`qa-engine predict` and `qa-engine eval` on the tiny exported model."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from qa_engine.cli import cli

REPO_ROOT = Path(__file__).resolve().parents[1]
CONTEXT = "the city of a river was built in 1200 by the king. the museum is old."


def squad_file(path: Path, version_2: bool = False) -> Path:
    qas = [
        {
            "id": "q1",
            "question": "who built the city?",
            "answers": [{"text": "the king", "answer_start": CONTEXT.index("the king")}],
        },
        {
            "id": "q2",
            "question": "when was it built?",
            "answers": [{"text": "1200", "answer_start": CONTEXT.index("1200")}],
        },
    ]
    if version_2:
        for qa in qas:
            qa["is_impossible"] = False
        qas.append(
            {"id": "q3", "question": "who is the queen?", "answers": [], "is_impossible": True}
        )
    doc = {
        "version": "v2.0" if version_2 else "1.1",
        "data": [{"title": "t", "paragraphs": [{"context": CONTEXT, "qas": qas}]}],
    }
    raw = json.dumps(doc).encode()
    path.write_bytes(gzip.compress(raw) if path.name.endswith(".gz") else raw)
    return path


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


# ---------------------------------------------------------------------- predict
def test_predict_question_and_context(tiny_onnx_dir):
    from qa_engine import QAEngine

    expected = QAEngine(tiny_onnx_dir, device="cpu")("who built the city?", CONTEXT)
    result = invoke(
        "predict",
        str(tiny_onnx_dir),
        "-q",
        "who built the city?",
        "-c",
        CONTEXT,
        "--device",
        "cpu",
        "--threads",
        "1",
    )
    assert result.exit_code == 0, result.output
    assert repr(expected.text) in result.output
    assert f"chars={expected.start}:{expected.end}" in result.output

    result = invoke(
        "predict",
        str(tiny_onnx_dir),
        "-q",
        "who?",
        "-q",
        "when?",
        "-c",
        CONTEXT,
        "--top-k",
        "2",
        "--batch-size",
        "4",
    )
    assert result.exit_code == 0, result.output
    assert "Q: who?" in result.output and "Q: when?" in result.output
    assert result.output.count("2. ") == 2


def test_predict_file_writes_predictions(tiny_onnx_dir, tmp_path):
    data = squad_file(tmp_path / "dev.json.gz")
    out = tmp_path / "predictions.json"
    result = invoke("predict", str(tiny_onnx_dir), "--file", str(data), "--out", str(out))
    assert result.exit_code == 0, result.output
    predictions = json.loads(out.read_text())
    assert set(predictions) == {"q1", "q2"}
    assert all(isinstance(text, str) and text in CONTEXT for text in predictions.values())
    stdout = invoke("predict", str(tiny_onnx_dir), "--file", str(data))
    assert json.loads(stdout.stdout) == predictions


@pytest.mark.parametrize(
    "args",
    [
        [],  # neither --question/--context nor --file
        ["-q", "who?"],  # no context
        ["--file", "DATA", "-q", "who?"],
        ["-q", "who?", "-c", CONTEXT, "--out", "x.json"],
        ["-q", "   ", "-c", CONTEXT],  # whitespace-only question
        ["-q", "who?", "-c", CONTEXT, "--top-k", "0"],
    ],
)
def test_predict_usage_errors(tiny_onnx_dir, tmp_path, args):
    data = squad_file(tmp_path / "dev.json")
    args = [str(data) if a == "DATA" else a for a in args]
    result = CliRunner().invoke(cli, ["predict", str(tiny_onnx_dir), *args])
    assert result.exit_code == 2, result.output


def test_predict_bad_export_dir_names_the_file(tmp_path):
    result = CliRunner().invoke(cli, ["predict", str(tmp_path), "-q", "who?", "-c", CONTEXT])
    assert result.exit_code == 1
    assert "qa_manifest.json" in result.output


# ------------------------------------------------------------------------- eval
def test_eval_squad_v1(tiny_onnx_dir, tmp_path):
    from qa_engine import QAEngine
    from qa_engine.data import load_squad
    from qa_engine.metrics import squad_metrics

    data = squad_file(tmp_path / "dev.json")
    out = tmp_path / "predictions.json"
    result = invoke(
        "eval", str(tiny_onnx_dir), "--data", str(data), "--out", str(out), "--device", "cpu"
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["questions"] == 2 and report["version_2"] is False
    assert report["questions_per_second"] > 0
    # The same numbers as scoring the engine's answers directly.
    examples = load_squad(data).examples
    engine = QAEngine(tiny_onnx_dir, device="cpu")
    predictions = {ex.id: engine(ex.question, ex.context).text for ex in examples}
    assert json.loads(out.read_text()) == predictions
    expected = squad_metrics(predictions, examples, version_2=False)
    for name, value in expected.items():
        assert report[name] == pytest.approx(value)

    one = json.loads(
        invoke("eval", str(tiny_onnx_dir), "--data", str(data), "--samples", "1").stdout
    )
    assert one["questions"] == 1


def test_eval_squad_v2_reports_best_threshold(tiny_onnx_dir, tmp_path):
    data = squad_file(tmp_path / "dev-v2.json", version_2=True)
    result = invoke("eval", str(tiny_onnx_dir), "--data", str(data), "--null-threshold", "-1e9")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["version_2"] is True and report["questions"] == 3
    # A threshold below every score difference answers "" everywhere: only q3 is right.
    assert report["exact"] == pytest.approx(100 / 3)
    for name in ("HasAns_f1", "NoAns_f1", "best_f1", "best_f1_thresh", "best_exact"):
        assert name in report
    assert report["best_f1"] >= report["f1"]


def test_eval_errors(tiny_onnx_dir, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    result = CliRunner().invoke(cli, ["eval", str(tiny_onnx_dir), "--data", str(bad)])
    assert result.exit_code == 1 and "bad.json" in result.output
    result = CliRunner().invoke(cli, ["eval", str(tiny_onnx_dir)])
    assert result.exit_code == 2  # --data is required


@pytest.mark.data
def test_eval_on_real_squad_sample(tiny_onnx_dir, shared_data):
    data = shared_data / "squad-v1.1" / "dev-v1.1.json.gz"
    if not data.exists():
        pytest.skip(f"{data} not found")
    result = invoke(
        "eval", str(tiny_onnx_dir), "--data", str(data), "--samples", "3", "--device", "cpu"
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["questions"] == 3 and "exact_match" in report


# ------------------------------------------------------------------ hygiene
def test_cli_predict_never_imports_torch(tiny_onnx_dir):
    code = (
        "import sys\n"
        "from qa_engine.cli import cli\n"
        f"cli.main(['predict', {str(tiny_onnx_dir)!r}, '-q', 'who?', '-c', 'the king'],"
        " standalone_mode=False)\n"
        "heavy = [m for m in ('torch', 'transformers', 'optimum') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "score=" in done.stdout


def test_command_modules_import_nothing_heavy_at_top_level():
    code = (
        "import sys\n"
        "import qa_engine.commands.predict, qa_engine.commands.evaluate\n"
        "heavy = ('onnxruntime', 'tokenizers', 'torch', 'transformers', 'optimum')\n"
        "loaded = [m for m in heavy if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
