"""The self-check: reference windows in every export, verified at load on the path that runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from qa_engine.cli import cli
from qa_engine.engine import QAEngine
from qa_engine.selfcheck import SELF_CHECK_NAME, SelfCheckError

pytestmark = pytest.mark.slow
WINDOW_ARGS = ["--max-seq-length", "64", "--doc-stride", "16", "--parity-samples", "12"]


def export(model_dir: Path, out: Path, *args: str) -> Path:
    result = CliRunner().invoke(
        cli, ["export", str(model_dir), str(out), *WINDOW_ARGS, *args], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def verified_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export(
        tiny_model_dir, tmp_path_factory.mktemp("verified") / "fp32", "--optimize", "none"
    )


def perturbed_copy(source: Path, target: Path, scale: float = 0.5) -> Path:
    """The same export with every weight matrix shaken: a graph that computes garbage."""
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    shutil.copytree(source, target)
    model = onnx.load(str(target / "model.onnx"))
    rng = np.random.default_rng(0)
    for init in model.graph.initializer:
        array = numpy_helper.to_array(init)
        if array.dtype == np.float32 and array.ndim == 2:
            noisy = array + rng.normal(0, scale * (array.std() + 1e-3), array.shape)
            init.CopyFrom(numpy_helper.from_array(noisy.astype(np.float32), init.name))
    onnx.save(model, str(target / "model.onnx"))
    return target


def test_export_stores_small_reference(verified_dir: Path) -> None:
    manifest = json.loads((verified_dir / "qa_manifest.json").read_text())
    summary = manifest["self_check"]
    assert summary["windows"] >= 6 and summary["file"] == SELF_CHECK_NAME
    assert (verified_dir / SELF_CHECK_NAME).stat().st_size < 64 * 1024
    assert summary["tolerance"]["min_answer_agreement"] == 1.0  # fp32: every answer kept
    assert summary["export"]["max_abs_logit_diff"] < 1e-3
    # Generated pairs: logits and agreement only, no F1 evidence for the runtime to judge.
    assert summary["export"]["f1_drop"] is None
    assert "generated" in summary["export"]["accuracy_evidence"]
    assert manifest["batch_invariant"] is True


def test_engine_passes_and_reports(verified_dir: Path) -> None:
    engine = QAEngine(verified_dir, device="cpu")
    verdict = engine.self_check
    assert verdict.passed and verdict.device == "cpu" and verdict.precision == "fp32"
    assert verdict.providers == ["CPUExecutionProvider"]
    assert verdict.max_abs_logit_diff < verdict.tolerance["max_abs_logit_diff"]
    assert verdict.answer_agreement == 1.0 and verdict.seconds > 0
    assert "passed" in verdict.summary()


def test_broken_graph_is_refused_with_the_numbers(verified_dir: Path, tmp_path: Path) -> None:
    broken = perturbed_copy(verified_dir, tmp_path / "broken")
    with pytest.raises(SelfCheckError) as info:
        QAEngine(broken, device="cpu")
    message = str(info.value)
    assert "refused cpu" in message and "fp32 on CPUExecutionProvider" in message
    assert "max|dlogit|" in message and "agreement" in message
    assert "No other device passes" in message  # the graph itself is broken
    # verify=False is the user's explicit way around it
    assert QAEngine(broken, device="cpu", verify=False).self_check.status == "skipped"


def test_auto_falls_through_a_broken_candidate(
    verified_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first candidate whose provider wrecks the logits (as OpenVINO's bf16 hint did to
    an unfused MiniLM) is refused, and auto settles on the next one that passes."""
    import qa_engine.verification as engine_module

    monkeypatch.setattr(engine_module, "candidate_devices", lambda device: ["cpu", "cpu"])
    original = QAEngine._build
    built = []

    def build(self, device, providers, *, whole=False):
        session = original(self, device, providers, whole=whole)
        if not built:  # the first candidate: a provider that computes garbage
            run = session.run

            def broken(*args):
                start, end = run(*args)
                rng = np.random.default_rng(1)
                return start + rng.normal(0, 5, start.shape), end + rng.normal(0, 5, end.shape)

            session.run = broken
        built.append(session)
        return session

    monkeypatch.setattr(QAEngine, "_build", build)
    engine = QAEngine(verified_dir, device="auto")
    assert len(built) == 2 and engine.session is built[1]
    assert engine.self_check.passed
    assert engine.self_check.tried[0]["status"] == "failed"
    assert engine.self_check.tried[0]["answer_agreement"] < 1.0
    q, c = "where is the bank?", "the bank is by the river in the old town."
    assert engine(q, c) == QAEngine(verified_dir, device="cpu")(q, c)


def test_auto_skips_an_unavailable_candidate(
    verified_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import qa_engine.verification as engine_module
    from qa_engine.session import available_providers

    if "CUDAExecutionProvider" in available_providers():
        pytest.skip("CUDA is available here")
    monkeypatch.setattr(engine_module, "candidate_devices", lambda device: ["cuda", "cpu"])
    engine = QAEngine(verified_dir, device="auto")
    assert engine.self_check.device == "cpu"
    assert engine.self_check.tried[0]["status"] == "unavailable"


def test_no_candidate_passes(
    verified_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import qa_engine.verification as engine_module

    broken = perturbed_copy(verified_dir, tmp_path / "broken")
    monkeypatch.setattr(engine_module, "candidate_devices", lambda device: ["cpu", "cpu"])
    with pytest.raises(SelfCheckError, match="no candidate of device='auto' passed"):
        QAEngine(broken, device="auto")


def test_old_export_loads_with_a_warning(tiny_onnx_dir: Path) -> None:
    with pytest.warns(UserWarning, match="no self-check reference windows"):
        engine = QAEngine(tiny_onnx_dir, device="cpu")
    assert engine.self_check.status == "unverified"


def test_corrupt_reference_file_is_named(verified_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(verified_dir, copy)
    (copy / SELF_CHECK_NAME).write_text("{not json")
    with pytest.raises(ValueError, match=SELF_CHECK_NAME):
        QAEngine(copy, device="cpu")


def test_eval_reports_the_verdict(verified_dir: Path, tmp_path: Path) -> None:
    data = {
        "version": "1.1",
        "data": [
            {
                "title": "t",
                "paragraphs": [
                    {
                        "context": "the bank is by the river in the old town.",
                        "qas": [
                            {
                                "id": "q1",
                                "question": "where is the bank?",
                                "answers": [{"text": "the river", "answer_start": 15}],
                            }
                        ],
                    }
                ],
            }
        ],
    }
    path = tmp_path / "dev.json"
    path.write_text(json.dumps(data))
    result = CliRunner().invoke(
        cli, ["eval", str(verified_dir), "--data", str(path), "--device", "cpu"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout[result.stdout.index("{") :])
    assert report["self_check"]["status"] == "passed"
    assert report["batch_invariant"] is True


def test_variant_the_export_measured_inaccurate_is_refused(
    verified_dir: Path, tmp_path: Path
) -> None:
    """Few windows cannot see a few points of F1; the export's paired evidence can."""
    copy = tmp_path / "inaccurate"
    shutil.copytree(verified_dir, copy)
    manifest = json.loads((copy / "qa_manifest.json").read_text())
    over = {"point": 9.4, "low": 8.1, "high": 10.8, "budget": 1.0, "decision": "over"}
    manifest["self_check"]["export"]["f1_drop"] = over
    (copy / "qa_manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(SelfCheckError, match="over the 1% accuracy budget"):
        QAEngine(copy, device="cpu")
    manifest["self_check"]["export"]["f1_drop"] = {**over, "decision": "undecided", "low": 0.5}
    (copy / "qa_manifest.json").write_text(json.dumps(manifest))
    assert QAEngine(copy, device="cpu").self_check.passed
