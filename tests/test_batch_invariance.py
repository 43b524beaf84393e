"""A question gets the same answer whatever else is in its batch, for every variant export
can build (int8-openvino: tests/test_openvino.py, in the OpenVINO environment)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from qa_engine.cli import cli
from qa_engine.engine import QAEngine

pytestmark = pytest.mark.slow
WINDOW_ARGS = ["--max-seq-length", "64", "--doc-stride", "16", "--parity-samples", "12"]
VARIANTS = {
    "fp32-none": ["--optimize", "none"],
    "fp32-O2": ["--optimize", "O2"],
    "fp16": ["--optimize", "O2", "--quantize", "fp16"],
    "int8-dynamic": ["--optimize", "O2", "--quantize", "int8-dynamic"],
    "int8-static": ["--optimize", "O2", "--quantize", "int8-static"],
    "int8-nncf": ["--quantize", "int8-nncf"],  # NNCF static int8: batches (needs nncf)
}


@pytest.fixture(scope="module")
def pairs(tiny_model_dir: Path) -> tuple[list[str], list[str]]:
    from qa_engine.export.features import generated_examples
    from qa_engine.finetune.tokenizer import load_tokenizer

    examples = generated_examples(load_tokenizer(str(tiny_model_dir)), 40, seed=3)
    return [ex.question for ex in examples], [ex.context for ex in examples]


@pytest.fixture(scope="module")
def calibration_file(pairs, tmp_path_factory: pytest.TempPathFactory) -> Path:
    questions, contexts = pairs
    paragraphs = [
        {
            "context": c,
            "qas": [
                {
                    "id": f"q{i}",
                    "question": q,
                    "answers": [{"text": c.split()[0], "answer_start": 0}],
                }
            ],
        }
        for i, (q, c) in enumerate(zip(questions, contexts, strict=True))
    ]
    path = tmp_path_factory.mktemp("cal") / "cal.json"
    path.write_text(
        json.dumps({"version": "1.1", "data": [{"title": "t", "paragraphs": paragraphs}]})
    )
    return path


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def variant_dir(request, tiny_model_dir, calibration_file, tmp_path_factory) -> Path:
    if request.param == "int8-nncf":
        pytest.importorskip("nncf")
    out = tmp_path_factory.mktemp("variant") / request.param
    args = [*WINDOW_ARGS, *VARIANTS[request.param], "--calibration-file", str(calibration_file)]
    result = CliRunner().invoke(
        cli, ["export", str(tiny_model_dir), str(out), *args], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return out


def test_batch_equals_one_by_one(variant_dir: Path, pairs) -> None:
    questions, contexts = pairs
    engine = QAEngine(variant_dir, device="cpu")
    assert engine.self_check.passed, engine.self_check.summary()
    if engine.manifest.precision != "int8-dynamic":  # batched for real, not one by one
        assert engine.batch_invariant and engine.batch_limits(32, None).max_windows == 32
    batched = engine.predict(questions, contexts, batch_size=32)
    single = [engine(q, c) for q, c in zip(questions, contexts, strict=True)]
    assert [(a.text, a.start, a.end) for a in batched] == [(a.text, a.start, a.end) for a in single]
    np.testing.assert_allclose([a.score for a in batched], [a.score for a in single], rtol=1e-4)
    # the reversed order puts other neighbours in every batch
    reverse = engine.predict(questions[::-1], contexts[::-1], batch_size=32)[::-1]
    assert [(a.text, a.start, a.end) for a in reverse] == [
        (a.text, a.start) + (a.end,) for a in single
    ]


def test_dynamic_int8_runs_alone_because_batching_would_change_it(
    tiny_model_dir, calibration_file, tmp_path, pairs
) -> None:
    """Dynamic int8 takes its activation scale over the whole batch: the same window run
    beside another gives other logits. The export records it and the engine never does."""
    out = tmp_path / "int8"
    args = [*WINDOW_ARGS, *VARIANTS["int8-dynamic"], "--calibration-file", str(calibration_file)]
    CliRunner().invoke(
        cli, ["export", str(tiny_model_dir), str(out), *args], catch_exceptions=False
    )
    engine = QAEngine(out, device="cpu")
    assert engine.manifest.batch_invariant is False and not engine.batch_invariant
    assert engine.batch_limits(32, 4096).max_windows == 1
    questions, contexts = pairs
    windows = [w for ws in engine.tokenizer.encode_batch(questions[:8], contexts[:8]) for w in ws]
    with pytest.raises(ValueError, match="not batch-invariant"):
        engine.run_batch(windows[:2])
    # What the rule prevents: the raw session, one window alone vs padded beside others.
    from qa_engine.batching import pad_windows

    alone = engine.session.run(*pad_windows(windows[:1], len(windows[0]), engine.tokenizer.pad_id))
    width = max(len(w) for w in windows)
    together = engine.session.run(*pad_windows(windows, width, engine.tokenizer.pad_id))
    n = len(windows[0])
    assert np.max(np.abs(alone[0][0, :n] - together[0][0, :n])) > 0


@pytest.mark.parametrize("variant_dir", ["int8-nncf"], indirect=True)
def test_int8_nncf_export_records_a_batching_static_int8(variant_dir: Path) -> None:
    from qa_engine.export.fusion import op_counts
    from qa_engine.manifest import ExportManifest

    manifest = ExportManifest.load(variant_dir)
    assert manifest.precision == "int8-static" and manifest.batch_invariant is True
    assert manifest.extra["variant"] == "int8-nncf" and manifest.optimization == "none"
    assert manifest.extra["quantization"]["unsigned_activation_quantizers"] > 0
    counts = op_counts(variant_dir / "model.onnx")
    assert counts["QuantizeLinear"] > 0 and not counts.get("DynamicQuantizeLinear")
