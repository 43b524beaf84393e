"""onnxruntime's OpenVINO provider, NNCF int8 and the plain-OpenVINO peer on the tiny model.

Runs only where onnxruntime-openvino is installed (``make test-openvino`` builds that
environment: onnxruntime flavours cannot share one); elsewhere the module skips.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")
if "OpenVINOExecutionProvider" not in ort.get_available_providers():
    pytest.skip(
        "onnxruntime's OpenVINOExecutionProvider is not installed "
        '(pip install "qa-engine[openvino]" in its own environment)',
        allow_module_level=True,
    )

from conftest import _WORDS  # noqa: E402

from qa_engine.decoding import WindowLogits, decode_question  # noqa: E402
from qa_engine.openvino.cpu import has_amx, has_bf16, int8_unit  # noqa: E402
from qa_engine.openvino.options import (  # noqa: E402
    PROVIDER,
    RECORD_ASSIGNMENT,
    OpenVINOOptions,
    assignment_problem,
    summarize_assignment,
)
from qa_engine.tokenization import QATokenizer  # noqa: E402

CPU = "CPUExecutionProvider"


@pytest.fixture(autouse=True)
def _private_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Compiled-model blobs go to the test's tmp dir, not ~/.cache."""
    monkeypatch.setenv("QA_ENGINE_OPENVINO_CACHE", str(tmp_path / "openvino-cache"))


def _pairs(count: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """Questions and contexts of the tiny vocabulary's words, one to several windows long."""
    rng = np.random.default_rng(seed)
    questions = [" ".join(rng.choice(_WORDS, 5)) + "?" for _ in range(count)]
    contexts = [" ".join(rng.choice(_WORDS, int(rng.integers(8, 70)))) + "." for _ in range(count)]
    return questions, contexts


def _session(model: Path, options: OpenVINOOptions | None) -> ort.InferenceSession:
    session_options = ort.SessionOptions()
    session_options.add_session_config_entry(*RECORD_ASSIGNMENT)
    if options is None:
        return ort.InferenceSession(str(model), session_options, providers=[CPU])
    return ort.InferenceSession(
        str(model),
        session_options,
        providers=[PROVIDER, CPU],
        provider_options=[options.provider_options(), {}],
    )


def _assignment(session: ort.InferenceSession):
    info = session.get_provider_graph_assignment_info()
    return summarize_assignment((a.ep_name, [n.op_type for n in a.get_nodes()]) for a in info)


def _answers(session: ort.InferenceSession, export_dir: Path, count: int = 24):
    """Logits of every window and the decoded answers of ``count`` generated questions."""
    tokenizer = QATokenizer.from_file(export_dir / "tokenizer.json", 48, 16)
    questions, contexts = _pairs(count)
    names = [i.name for i in session.get_inputs()]
    logits, answers = [], []
    for windows, context in zip(tokenizer.encode_batch(questions, contexts), contexts, strict=True):
        decoded = []
        for w in windows:
            arrays = {
                "input_ids": w.input_ids[None],
                "attention_mask": np.ones_like(w.input_ids)[None],
                "token_type_ids": w.type_ids[None],
            }
            start, end = session.run(["start_logits", "end_logits"], {n: arrays[n] for n in names})
            logits.append(np.stack([start[0], end[0]]))
            decoded.append(WindowLogits(start[0], end[0], w.offsets, w.context_mask))
        answers.append(decode_question(decoded, context).answers[0].text)
    return logits, answers


def _agreement(a: list[str], b: list[str]) -> float:
    return float(np.mean([x == y for x, y in zip(a, b, strict=True)]))


def test_openvino_session_runs_every_node(tiny_onnx_dir: Path) -> None:
    options = OpenVINOOptions(precision="f32", threads=1, use_cache=False)
    session = _session(tiny_onnx_dir / "model.onnx", options)
    assert session.get_providers()[0] == PROVIDER
    assignment = _assignment(session)
    assert assignment.openvino_share == 1.0
    assert assignment_problem(session.get_providers(), assignment) is None


@pytest.mark.parametrize(
    "bad",
    [
        {"load_config": "{not json"},
        {"device_type": "GPU.7"},
        {"precision": "BF16"},  # the provider-level precision takes no bf16 on CPU
    ],
)
def test_silent_fallback_is_detected(tiny_onnx_dir: Path, bad: dict) -> None:
    session_options = ort.SessionOptions()
    session_options.add_session_config_entry(*RECORD_ASSIGNMENT)
    options = {**OpenVINOOptions(use_cache=False).provider_options(), **bad}
    session = ort.InferenceSession(
        str(tiny_onnx_dir / "model.onnx"),
        session_options,
        providers=[PROVIDER, CPU],
        provider_options=[options, {}],
    )
    # onnxruntime drops the provider and carries on with the CPU one.
    assert session.get_providers() == [CPU]
    problem = assignment_problem(session.get_providers(), _assignment(session))
    assert problem is not None and problem.startswith("error:")


def test_cache_dir_is_filled_and_reused(tiny_onnx_dir: Path, tmp_path: Path) -> None:
    options = OpenVINOOptions(precision="f32", threads=1, cache_dir=tmp_path)
    first = _session(tiny_onnx_dir / "model.onnx", options)
    blobs = sorted(p.name for p in tmp_path.iterdir())
    assert blobs, "the provider wrote nothing to cache_dir"
    second = _session(tiny_onnx_dir / "model.onnx", options)
    assert sorted(p.name for p in tmp_path.iterdir()) == blobs  # same key: reused
    ids = np.ones((1, 12), dtype=np.int64)
    feeds = {"input_ids": ids, "attention_mask": ids, "token_type_ids": 0 * ids}
    np.testing.assert_allclose(first.run(None, feeds)[0], second.run(None, feeds)[0])


@pytest.mark.parametrize("precision", ["f32", "bf16"])
def test_parity_with_the_cpu_provider(tiny_onnx_dir: Path, precision: str) -> None:
    if precision == "bf16" and not has_bf16():
        pytest.skip("this CPU has no native bf16 (AMX or AVX512-BF16)")
    model = tiny_onnx_dir / "model.onnx"
    ref_logits, ref_answers = _answers(_session(model, None), tiny_onnx_dir)
    options = OpenVINOOptions(precision=precision, threads=1, use_cache=False)
    logits, answers = _answers(_session(model, options), tiny_onnx_dir)
    diff = max(float(np.abs(a - b).max()) for a, b in zip(logits, ref_logits, strict=True))
    # The tiny model's logits are ~0.3 in size; bf16 keeps 8 bits of mantissa.
    assert diff < (1e-4 if precision == "f32" else 2e-2)
    assert _agreement(answers, ref_answers) >= (1.0 if precision == "f32" else 0.9)


@pytest.fixture(scope="module")
def tiny_int8(tiny_onnx_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("nncf")
    from qa_engine.openvino.quantize import nncf_int8

    tokenizer = QATokenizer.from_file(tiny_onnx_dir / "tokenizer.json", 48, 16)
    questions, contexts = _pairs(32, seed=1)  # calibration text differs from the test text
    feeds = [
        {
            "input_ids": w.input_ids[None],
            "attention_mask": np.ones_like(w.input_ids)[None],
            "token_type_ids": w.type_ids[None],
        }
        for windows in tokenizer.encode_batch(questions, contexts)
        for w in windows
    ]
    out = tmp_path_factory.mktemp("tiny-int8")
    settings = nncf_int8(tiny_onnx_dir / "model.onnx", out / "model.onnx", feeds)
    assert settings["quantize_linear"] > 0 and settings["calibration_windows"] == len(feeds)
    (out / "settings.json").write_text(json.dumps(settings))
    for name in ("tokenizer.json", "config.json"):
        (out / name).write_bytes((tiny_onnx_dir / name).read_bytes())
    return out


@pytest.mark.slow
def test_nncf_int8_agrees_with_fp32(tiny_onnx_dir: Path, tiny_int8: Path) -> None:
    ref_logits, ref_answers = _answers(_session(tiny_onnx_dir / "model.onnx", None), tiny_onnx_dir)
    options = OpenVINOOptions(threads=1, use_cache=False)
    session = _session(tiny_int8 / "model.onnx", options)
    assert assignment_problem(session.get_providers(), _assignment(session)) is None
    logits, answers = _answers(session, tiny_int8)
    diff = max(float(np.abs(a - b).max()) for a, b in zip(logits, ref_logits, strict=True))
    assert diff < 0.05
    assert _agreement(answers, ref_answers) >= 0.8
    # The QDQ graph is plain ONNX: the CPU provider runs it too, to the same answers.
    _, cpu_answers = _answers(_session(tiny_int8 / "model.onnx", None), tiny_int8)
    assert _agreement(cpu_answers, ref_answers) >= 0.8


@pytest.mark.slow
def test_int8_kernels_run_in_int8(tiny_int8: Path, tiny_onnx_dir: Path) -> None:
    pytest.importorskip("openvino")
    from qa_engine.openvino.kernels import kernel_census

    if int8_unit() is None:
        pytest.skip("this CPU has no int8 matrix unit (VNNI or AMX)")
    properties = OpenVINOOptions(precision="f32", threads=1).core_properties()
    int8 = kernel_census(tiny_int8 / "model.onnx", properties, runs=1)
    fp32 = kernel_census(tiny_onnx_dir / "model.onnx", properties, runs=1)
    # Every matrix product, attention's two included, runs an int8 kernel.
    assert set(int8.matmul_dtypes) == {"int8"}
    assert sum(int8.matmul_dtypes.values()) == sum(fp32.matmul_dtypes.values())
    assert set(fp32.matmul_dtypes) == {"f32"}
    assert int8.ms_by_kernel


def test_peer_answers_like_the_cpu_provider(tiny_onnx_dir: Path) -> None:
    pytest.importorskip("openvino")
    from qa_engine.bench.openvino_peer import OpenVINORunner
    from qa_engine.bench.plan import QASettings, RunnerSpec

    spec = RunnerSpec(
        name="openvino",
        kind="qa-engine",  # the peer does not read kind; bench registers it as "openvino"
        model_dir=str(tiny_onnx_dir),
        settings=QASettings(max_seq_length=48, doc_stride=16),
        threads=1,
    )
    runner = OpenVINORunner(spec)
    runner.load()
    assert runner.provider_used.endswith("CPU-f32")
    _, ref_answers = _answers(_session(tiny_onnx_dir / "model.onnx", None), tiny_onnx_dir)
    questions, contexts = _pairs(24)
    batched = runner.answer_many(questions, contexts, batch_size=4)
    assert batched.no_answer_scores is None
    assert batched.texts == ref_answers
    assert runner.answer_one(questions[0], contexts[0]) == ref_answers[0]
    runner.close()


def test_engine_device_openvino(tiny_onnx_dir: Path) -> None:
    from qa_engine.engine import QAEngine

    questions, contexts = _pairs(12)
    reference = QAEngine(tiny_onnx_dir, device="cpu").predict(questions, contexts)
    engine = QAEngine(tiny_onnx_dir, device="openvino:f32", threads=1)
    assert engine.providers[0] == PROVIDER
    assert engine.session.openvino_share == 1.0
    answers = engine.predict(questions, contexts, batch_size=4)
    assert [a.text for a in answers] == [a.text for a in reference]


def test_auto_picks_openvino_on_bf16_cpus(tiny_onnx_dir: Path) -> None:
    from qa_engine.engine import QAEngine
    from qa_engine.session import resolve_providers

    resolved = resolve_providers("auto", threads=2)
    if not has_bf16():
        assert resolved == [(CPU, {})]
        return
    name, options = resolved[0]
    assert name == PROVIDER
    config = json.loads(options["load_config"])["CPU"]
    assert config["INFERENCE_PRECISION_HINT"] == ("bf16" if has_amx() else "f32")
    assert config["INFERENCE_NUM_THREADS"] == "2"
    assert QAEngine(tiny_onnx_dir).providers[0] == PROVIDER


def test_engine_fallback_is_an_error(tiny_onnx_dir: Path) -> None:
    from qa_engine.engine import QAEngine

    bad = {"device_type": "CPU", "load_config": "{not json"}
    with pytest.raises(RuntimeError, match="OpenVINOExecutionProvider"):
        QAEngine(tiny_onnx_dir, providers=[(PROVIDER, bad), CPU])
    with pytest.raises(ValueError, match="openvino:bf16"):
        QAEngine(tiny_onnx_dir, device="openvino:int8")


@pytest.mark.slow
def test_export_int8_openvino(tiny_model_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("nncf")
    pytest.importorskip("optimum.onnxruntime")
    from click.testing import CliRunner

    from qa_engine.cli import cli
    from qa_engine.engine import QAEngine
    from qa_engine.manifest import ExportManifest

    questions, contexts = _pairs(24, seed=3)
    squad = {
        "version": "1.1",
        "data": [
            {
                "title": "generated",
                "paragraphs": [
                    {
                        "context": context,
                        "qas": [
                            {
                                "id": f"q{i}",
                                "question": question,
                                "answers": [{"text": context[:12], "answer_start": 0}],
                            }
                        ],
                    }
                    for i, (question, context) in enumerate(zip(questions, contexts, strict=True))
                ],
            }
        ],
    }
    calibration = tmp_path / "squad.json"
    calibration.write_text(json.dumps(squad))
    out = tmp_path / "int8-openvino"
    args = ["export", str(tiny_model_dir), str(out), "--max-seq-length", "64", "--doc-stride"]
    args += ["16", "--parity-samples", "8", "--quantize", "int8-openvino"]
    args += ["--calibration-samples", "12", "--calibration-file", str(calibration)]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    manifest = ExportManifest.load(out)
    assert manifest.precision == "int8-openvino" and manifest.optimization == "none"
    assert manifest.extra["quantization"]["method"] == "nncf-ptq"
    assert manifest.parity["latency_ms_b1"]["provider"] == PROVIDER
    assert manifest.parity["answer_agreement"] >= 0.75
    engine = QAEngine(out, device="openvino")
    assert engine.providers[0] == PROVIDER and engine.session.openvino_share == 1.0
    assert engine(questions[0], contexts[0]).text
    # the self-check ran on the OpenVINO provider, and batching changes no answer
    assert engine.self_check.passed and engine.self_check.providers[0] == PROVIDER
    assert manifest.batch_invariant is True
    batched = engine.predict(questions, contexts, batch_size=32)
    single = [engine(q, c) for q, c in zip(questions, contexts, strict=True)]
    assert [(a.text, a.start, a.end) for a in batched] == [(a.text, a.start, a.end) for a in single]


@pytest.mark.slow
def test_plain_openvino_proves_bf16_or_takes_f32(tiny_model_dir: Path, tmp_path: Path) -> None:
    """A graph that is not int8 runs under bf16 only when the self-check passes there."""
    from click.testing import CliRunner

    from qa_engine.cli import cli
    from qa_engine.engine import QAEngine

    out = tmp_path / "fp32"
    args = ["export", str(tiny_model_dir), str(out), "--max-seq-length", "64", "--doc-stride"]
    args += ["16", "--parity-samples", "8", "--optimize", "none"]
    assert CliRunner().invoke(cli, args, catch_exceptions=False).exit_code == 0
    engine = QAEngine(out, device="openvino")
    verdict = engine.self_check
    assert verdict.passed and engine.providers[0] == PROVIDER
    if has_amx():  # bf16 is tried first, and kept only because it passed
        assert verdict.device == "openvino:bf16" or verdict.tried[0]["device"] == "openvino:bf16"
    else:
        assert verdict.device == "openvino:f32"
    # Unchecked, nothing proves bf16: the f32 hint.
    unchecked = QAEngine(out, device="openvino", verify=False)
    assert unchecked.session.inference_hint == "f32"


def test_fused_onnxruntime_graphs_stay_off_openvino(tiny_onnx_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("optimum.onnxruntime")
    from qa_engine.export.fusion import optimize_graph
    from qa_engine.session import OnnxQASession

    # O3 adds FastGelu, which onnxruntime-openvino 1.24 leaves to the CPU provider.
    fused = optimize_graph(tiny_onnx_dir, tmp_path / "O3", "O3")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        explicit = OnnxQASession(fused, device="openvino")
    if explicit.openvino_share == 1.0:
        pytest.skip("this onnxruntime-openvino runs every fused operator of the O3 graph")
    assert any("CPU provider runs the rest" in str(w.message) for w in caught)
    assert explicit.providers[0] == PROVIDER and 0 < explicit.openvino_share < 1
    if has_bf16():  # auto would pick OpenVINO here: it drops it for this graph
        with pytest.warns(UserWarning, match="uses the CPU provider alone"):
            auto = OnnxQASession(fused)
        assert auto.providers == [CPU] and auto.openvino_share is None
