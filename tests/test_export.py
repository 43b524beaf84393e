"""The export stage on the tiny model: every CPU variant, fusion, parity gate, atomic write."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from qa_engine.cli import cli
from qa_engine.export import publish
from qa_engine.export.options import ExportOptions
from qa_engine.export.quantize import cpu_preset
from qa_engine.manifest import ExportManifest

WINDOW_ARGS = ["--max-seq-length", "64", "--doc-stride", "16", "--parity-samples", "6"]
EXPORT_FILES = ("model.onnx", "tokenizer.json", "config.json", "qa_manifest.json")


def run_export(model_dir: Path, out_dir: Path, *args: str):
    """Invoke ``qa-engine export`` in-process; returns the click result."""
    return CliRunner().invoke(
        cli, ["export", str(model_dir), str(out_dir), *WINDOW_ARGS, *args], catch_exceptions=False
    )


def leftovers(parent: Path) -> list[Path]:
    """Staging or backup dirs an export left behind."""
    return [p for p in parent.iterdir() if p.name.startswith(".") and p.is_dir()]


@pytest.fixture(scope="module")
def self_labelled_squad(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small SQuAD v1.1 file whose gold answers are the tiny model's own answers.

    So PyTorch scores F1 100 and any variant that changes an answer loses F1: the
    ``auto`` budget then has something to bite on.
    """
    pytest.importorskip("torch")
    from qa_engine.data import QAExample
    from qa_engine.export.features import build_windows, generated_examples
    from qa_engine.export.onnx_export import load_torch_model
    from qa_engine.export.parity import DecodeSettings, decode_answers, torch_logits
    from qa_engine.finetune.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(str(tiny_model_dir))
    examples = generated_examples(tokenizer, 16, seed=7)
    windows = build_windows(tokenizer, examples, 64, 16)
    logits = torch_logits(load_torch_model(str(tiny_model_dir)), windows)
    answers = decode_answers(windows, logits, examples, DecodeSettings())
    paragraphs = []
    for ex, answer in zip(examples, answers, strict=True):
        start = ex.context.find(answer)
        assert answer and start >= 0
        qa = {"id": ex.id, "question": ex.question}
        qa["answers"] = [{"text": answer, "answer_start": start}]
        paragraphs.append({"context": ex.context, "qas": [qa]})
    path = tmp_path_factory.mktemp("squad") / "dev.json"
    doc = {"version": "1.1", "data": [{"title": "generated", "paragraphs": paragraphs}]}
    path.write_text(json.dumps(doc))
    assert isinstance(examples[0], QAExample)
    return path


# ---------------------------------------------------------------- fast: no export


def test_export_help_needs_no_torch() -> None:
    code = textwrap.dedent(
        """
        import sys
        from click.testing import CliRunner
        from qa_engine.cli import cli
        result = CliRunner().invoke(cli, ["export", "--help"])
        assert result.exit_code == 0, result.output
        assert "--quantize" in result.output and "int8-static" in result.output
        heavy = {"torch", "transformers", "optimum", "onnx", "onnxruntime"} & set(sys.modules)
        assert not heavy, heavy
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"optimize": "O5"}, "optimize must be one of"),
        ({"quantize": "int4"}, "quantize must be one of"),
        ({"optimize": "O4", "quantize": "int8-dynamic"}, "O4 already converts to fp16"),
        ({"quantize": "int8-static"}, "needs --calibration-file"),
        ({"quantize": "auto"}, "needs --calibration-file"),
        ({"device": "cuda", "quantize": "int8-dynamic"}, "CPU variants"),
        ({"max_f1_drop": -1}, "max_f1_drop"),
    ],
)
def test_options_are_validated(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ExportOptions(model="m", out_dir=tmp_path / "out", **kwargs)


def test_cpu_preset_detection() -> None:
    assert cpu_preset("", "aarch64") == "arm64"
    assert cpu_preset("flags\t: fpu avx2 avx512f avx512bw avx512_vnni\n", "x86_64") == "avx512_vnni"
    assert cpu_preset("flags\t: fpu avx2 avx512f avx512bw\n", "x86_64") == "avx512"
    assert cpu_preset("flags\t: fpu sse4_2 avx2\n", "x86_64") == "avx2"


def _fake_variant(tmp_path: Path, name: str, precision: str, lost: int, ms: float, budget: float):
    """A verified-looking variant: 2,000 questions at F1 80 (PyTorch), ``lost`` of them
    answered wrong by the variant."""
    from qa_engine.export.evidence import f1_drop
    from qa_engine.export.parity import ParityReport
    from qa_engine.export.variants import Variant

    reference = np.zeros(2000)
    reference[:1600] = 100.0
    variant = reference.copy()
    variant[:lost] = 0.0
    f1 = float(variant.mean())
    path = tmp_path / f"{name}.onnx"
    path.write_bytes(b"x" * 1024)
    parity = ParityReport(0.0, 0.0, 1.0, 100.0, f1, 80.0, f1 - 80.0, 2000, 2400, "squad")
    drop = f1_drop(reference, variant, budget)
    return Variant(name, path, precision, "O2", parity=parity, latency={"p50": ms}, drop=drop)


def test_auto_selection_rule(tmp_path: Path) -> None:
    from qa_engine.export.variants import format_table, select_fastest

    def candidates(budget: float):
        return [
            _fake_variant(tmp_path, "fp32-O2", "fp32", 0, 10.0, budget),
            _fake_variant(tmp_path, "int8-a", "int8-dynamic", 2, 4.0, budget),  # 0.125 % drop
            _fake_variant(tmp_path, "int8-b", "int8-static", 40, 3.0, budget),  # 2.5 % drop
            _fake_variant(tmp_path, "fp16", "fp16", 0, 12.0, budget),
        ]

    chosen, rows = select_fastest(candidates(1.0), max_f1_drop=1.0)
    assert chosen.name == "int8-a"
    assert [r["eligible"] for r in rows] == [True, True, False, True]
    assert [r["f1_drop_pct"] for r in rows] == [0.0, 0.125, 2.5, 0.0]
    assert rows[2]["decision"] == "over" and rows[2]["f1_drop_ci"][0] > 1.0
    assert select_fastest(candidates(5.0), max_f1_drop=5.0)[0].name == "int8-b"
    # A 2.5 % point drop against a 2.5 % budget: the interval straddles it -> not kept.
    picked, rows = select_fastest(candidates(2.5), max_f1_drop=2.5)
    assert picked.name == "int8-a" and rows[2]["decision"] == "undecided"
    no_int8_a = [c for c in candidates(0.0) if c.name != "int8-a"]
    assert select_fastest(no_int8_a, max_f1_drop=0.0)[0].name == "fp32-O2"
    table = format_table(rows)
    assert "int8-b" in table and "F1 drop %" in table and "undecided" in table


def test_destination_checks(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="input model dir"):
        publish.check_destination(str(model), model, force=True)
    with pytest.raises(ValueError, match="input model dir"):
        publish.check_destination(str(model), tmp_path, force=True)  # contains the input
    other = tmp_path / "notes"
    other.mkdir()
    (other / "todo.txt").write_text("x")
    with pytest.raises(FileExistsError, match="not an export dir"):
        publish.check_destination(str(model), other, force=True)
    previous = tmp_path / "previous"
    previous.mkdir()
    (previous / "qa_manifest.json").write_text("{}")
    with pytest.raises(FileExistsError, match="--force"):
        publish.check_destination(str(model), previous, force=False)
    publish.check_destination(str(model), previous, force=True)
    publish.check_destination(str(model), tmp_path / "new", force=False)


def test_refuses_to_overwrite_without_force(tiny_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "model.onnx").write_bytes(b"previous export")
    result = run_export(tiny_model_dir, out)
    assert result.exit_code != 0
    assert "--force" in result.output
    assert (out / "model.onnx").read_bytes() == b"previous export"
    result = run_export(tiny_model_dir, tiny_model_dir, "--force")
    assert result.exit_code != 0 and "input model dir" in result.output


def test_cuda_without_cuda_provider_is_an_error(tiny_model_dir: Path, tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has CUDA")
    result = run_export(tiny_model_dir, tmp_path / "out", "--device", "cuda")
    assert result.exit_code != 0 and "onnxruntime-gpu" in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.gpu
@pytest.mark.slow
def test_fp16_export_on_cuda_runs_on_the_gpu_and_agrees_with_cpu(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("needs onnxruntime-gpu and a CUDA device")
    from qa_engine import QAEngine

    out = tmp_path / "fp16"
    result = run_export(tiny_model_dir, out, "--device", "cuda", "--optimize", "O4")
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "qa_manifest.json").read_text())
    assert manifest["precision"] == "fp16" and manifest["optimization"] == "O4"
    gpu = QAEngine(out, device="cuda")
    cpu = QAEngine(out, device="cpu")
    assert gpu.session.uses_cuda and gpu.providers[0] == "CUDAExecutionProvider"
    question = "Where does the river run?"
    context = "The river runs through the old town and then out to the sea. " * 6
    windows_gpu, windows_cpu = gpu.logits(question, context), cpu.logits(question, context)
    assert len(windows_gpu) == len(windows_cpu) > 1  # several windows: batched on the GPU
    for on_gpu, on_cpu in zip(windows_gpu, windows_cpu, strict=True):
        assert np.abs(on_gpu.start_logits - on_cpu.start_logits).max() < 0.05
        assert np.abs(on_gpu.end_logits - on_cpu.end_logits).max() < 0.05


# ---------------------------------------------------------------- slow: real exports


@pytest.mark.slow
@pytest.mark.parametrize(
    ("optimize", "quantize", "precision"),
    [
        ("none", "none", "fp32"),
        ("O1", "int8-dynamic", "int8-dynamic"),
        ("O2", "none", "fp32"),
        ("O3", "fp16", "fp16"),
        ("O4", "none", "fp16"),
    ],
)
def test_every_cpu_variant_exports_and_runs(
    tiny_model_dir: Path, tmp_path: Path, optimize: str, quantize: str, precision: str
) -> None:
    import onnxruntime as ort

    out = tmp_path / "out"
    result = run_export(tiny_model_dir, out, "--optimize", optimize, "--quantize", quantize)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir() if p.name in EXPORT_FILES) == sorted(EXPORT_FILES)
    assert not leftovers(tmp_path)
    m = ExportManifest.load(out)
    assert (m.precision, m.optimization) == (precision, optimize)
    assert (m.max_seq_length, m.doc_stride) == (64, 16)
    assert m.opset and m.onnxruntime_version == ort.__version__
    assert m.source_model == str(tiny_model_dir.resolve())
    assert m.parity["questions"] == 6 and m.parity["pairs"] == "generated"
    assert m.parity["fp32_max_abs_logit_diff"] <= 1e-3
    if precision == "fp32":
        assert m.parity["max_abs_logit_diff"] <= 1e-3
        assert m.parity["answer_agreement"] == 1.0
    else:
        assert np.isfinite(m.parity["max_abs_logit_diff"]) and "f1_delta" in m.parity
        assert m.extra["quantization"]["method"]
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    feeds = {i.name: np.ones((2, 9), dtype=np.int64) for i in session.get_inputs()}
    start, end = session.run(["start_logits", "end_logits"], feeds)
    assert start.shape == end.shape == (2, 9)
    assert "Fused ops" in result.output and "Parity vs PyTorch" in result.output


@pytest.mark.slow
@pytest.mark.parametrize("level", ["O2", "O3"])
def test_o2_o3_really_fuse(tiny_model_dir: Path, tmp_path: Path, level: str) -> None:
    from qa_engine.export.fusion import op_counts

    out = tmp_path / level
    assert run_export(tiny_model_dir, out, "--optimize", level).exit_code == 0
    counts = op_counts(out / "model.onnx")  # counted afresh, not trusting the manifest
    assert counts["Attention"] == 2  # one per layer
    assert counts["SkipLayerNormalization"] == 4  # two per layer
    assert counts["EmbedLayerNormalization"] == 1
    assert counts["FastGelu" if level == "O3" else "BiasGelu"] == 2
    assert "Softmax" not in counts  # no unfused attention left
    fused = ExportManifest.load(out).fused_ops
    assert fused["Attention"] == 2 and fused["SkipLayerNormalization"] == 4
    assert ExportManifest.load(out).extra["fusion_warnings"] == []


@pytest.mark.slow
def test_int8_static_is_calibrated_on_squad(
    tiny_model_dir: Path, self_labelled_squad: Path, tmp_path: Path
) -> None:
    out = tmp_path / "static"
    args = "--quantize int8-static --calibration-samples 8 --calibration-file".split()
    result = run_export(tiny_model_dir, out, *args, str(self_labelled_squad))
    assert result.exit_code == 0, result.output
    m = ExportManifest.load(out)
    assert m.precision == "int8-static"
    assert m.extra["quantization"]["method"] == "static-qdq"
    assert m.extra["quantization"]["calibration_windows"] == 8  # one per question
    assert m.parity["pairs"] == "squad" and m.parity["f1_pytorch"] == pytest.approx(100.0)
    assert m.parity["f1_delta"] == pytest.approx(m.parity["f1"] - 100.0)
    names = {row["name"] for row in m.extra["variants"]}
    assert {"int8-static-per-tensor", "int8-static-per-channel"} <= names


@pytest.mark.slow
@pytest.mark.parametrize("budget", ["0", "100"])
def test_auto_picks_the_fastest_within_the_f1_budget(
    tiny_model_dir: Path, self_labelled_squad: Path, tmp_path: Path, budget: str
) -> None:
    out = tmp_path / "auto"
    args = f"--quantize auto --calibration-samples 6 --max-f1-drop {budget}".split()
    result = run_export(tiny_model_dir, out, *args, "--calibration-file", str(self_labelled_squad))
    assert result.exit_code == 0, result.output
    m = ExportManifest.load(out)
    table = m.extra["variants"]
    # On CPU: no fp16 candidate; with nncf, int8-nncf stands for the ORT static pair.
    static = (
        ["int8-nncf", "int8-openvino"]
        if importlib.util.find_spec("nncf")
        else ["int8-static-per-tensor", "int8-static-per-channel"]
    )
    assert [row["name"] for row in table] == [
        "fp32-O2",
        "int8-dynamic-per-tensor",
        "int8-dynamic-per-channel",
        "int8-dynamic-mixed",
        *static,
    ]
    assert "no fp16 candidate" in result.output
    eligible = [r for r in table if r["precision"] == "fp32" or r["f1_drop_pct"] <= float(budget)]
    assert all(r["eligible"] == (r in eligible) for r in table)
    (chosen,) = [r for r in table if r["selected"]]
    # ranked at the default --batch-size 32: windows/s in batches
    assert chosen == max(eligible, key=lambda r: r["batched_windows_per_s"])
    assert chosen["f1_drop_pct"] <= float(budget)
    assert m.extra["auto"]["selected"] == chosen["name"] == m.extra["variant"]
    for row in table:  # the whole table is printed
        assert row["name"] in result.output
    assert "F1 drop %" in result.output


@pytest.mark.slow
def test_a_broken_model_fails_the_parity_gate(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import onnx
    from onnx import numpy_helper

    from qa_engine.export import pipeline

    real_export = pipeline.export_onnx

    def export_then_break(*args, **kwargs):
        path = real_export(*args, **kwargs)
        model = onnx.load(str(path))
        # The QA head's weight (hidden, 2): noise of 0.01, a subtle but real bug.
        (head,) = [i for i in model.graph.initializer if list(i.dims) == [32, 2]]
        noise = np.random.default_rng(0).normal(0, 0.01, (32, 2)).astype(np.float32)
        head.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(head) + noise, head.name))
        onnx.save(model, str(path))
        return path

    monkeypatch.setattr(pipeline, "export_onnx", export_then_break)
    out = tmp_path / "out"
    result = run_export(tiny_model_dir, out)
    assert result.exit_code == 3, result.output
    assert "parity check failed" in result.output and "nothing was written" in result.output
    assert not out.exists() and not leftovers(tmp_path)


@pytest.mark.slow
def test_a_failure_mid_export_leaves_nothing_or_the_old_export(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qa_engine.export import pipeline

    out = tmp_path / "out"
    assert run_export(tiny_model_dir, out, "--optimize", "O1").exit_code == 0
    before = (out / "model.onnx").read_bytes()

    def crash(ctx):
        raise RuntimeError("simulated crash while quantizing")

    monkeypatch.setattr(pipeline, "build_variants", crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_export(tiny_model_dir, out, "--force")
    assert (out / "model.onnx").read_bytes() == before  # the old export is untouched
    assert ExportManifest.load(out).optimization == "O1"
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_export(tiny_model_dir, tmp_path / "fresh")
    assert not (tmp_path / "fresh").exists() and not leftovers(tmp_path)


@pytest.mark.slow
def test_a_killed_export_never_leaves_a_whole_looking_out_dir(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    script = textwrap.dedent(
        f"""
        import os
        from qa_engine.export import pipeline
        from qa_engine.export.options import ExportOptions

        def die(ctx):
            os._exit(9)  # as if killed: no cleanup runs

        pipeline.build_variants = die
        pipeline.run_export(ExportOptions(model={str(tiny_model_dir)!r}, out_dir={str(out)!r},
                            max_seq_length=64, doc_stride=16, parity_samples=4), log=print)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=300)
    assert proc.returncode == 9, proc.stderr.decode()[-2000:]
    assert not out.exists()
    (partial,) = leftovers(tmp_path)
    assert publish.STAGING_MARK in partial.name
    assert not (partial / "qa_manifest.json").exists() and not (partial / "model.onnx").exists()


@pytest.mark.slow
def test_spanbert_style_checkpoint_gets_a_cased_tokenizer(
    tiny_spanbert_style_dir: Path, tmp_path: Path
) -> None:
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    assert not (tiny_spanbert_style_dir / "tokenizer_config.json").exists()
    out = tmp_path / "spanbert"
    assert run_export(tiny_spanbert_style_dir, out).exit_code == 0
    raw = Tokenizer.from_file(str(out / "tokenizer.json"))  # what the runtime loads
    assert raw.encode("The", add_special_tokens=False).tokens[0] == "T"
    assert json.loads((out / "tokenizer_config.json").read_text())["model_max_length"] == 512
    loaded = AutoTokenizer.from_pretrained(out)
    assert loaded.model_max_length == 512 and loaded.do_lower_case is False
    assert ExportManifest.load(out).do_lower_case is False


@pytest.mark.slow
def test_export_loads_in_optimum(tiny_model_dir: Path, tmp_path: Path) -> None:
    import torch
    from optimum.onnxruntime import ORTModelForQuestionAnswering
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    out = tmp_path / "out"
    assert run_export(tiny_model_dir, out, "--optimize", "O3").exit_code == 0
    ort_model = ORTModelForQuestionAnswering.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    inputs = tokenizer("who was king", "the king was born in the city", return_tensors="pt")
    with torch.inference_mode():
        expected = AutoModelForQuestionAnswering.from_pretrained(tiny_model_dir)(**inputs)
    got = ort_model(**inputs)
    np.testing.assert_allclose(got.start_logits, expected.start_logits, atol=1e-4)
    np.testing.assert_allclose(got.end_logits, expected.end_logits, atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("version_2, threshold", [(False, None), (True, -1.25)])
def test_settings_of_a_finetuned_dir_reach_the_manifest(
    tiny_model_dir: Path, tmp_path: Path, version_2: bool, threshold: float | None
) -> None:
    """A `qa-engine finetune` output dir carries qa_config.json (null threshold null on 1.1)."""
    import json
    import shutil

    model = tmp_path / "finetuned"
    shutil.copytree(tiny_model_dir, model)
    (model / "qa_config.json").write_text(
        json.dumps(
            {
                "max_seq_length": 64,
                "doc_stride": 24,
                "max_answer_length": 12,
                "version_2": version_2,
                "null_threshold": threshold,
                "base_model": "tiny",
                "metrics": {"f1": 50.0},
            }
        )
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli, ["export", str(model), str(out), "--parity-samples", "4"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "qa_manifest.json").read_text())
    assert (manifest["max_seq_length"], manifest["doc_stride"]) == (64, 24)
    assert manifest["max_answer_length"] == 12
    assert manifest["version_2"] is version_2
    assert manifest["null_threshold"] == (threshold if threshold is not None else 0.0)


def test_fp32_gate_is_exact_unless_the_graph_approximates_gelu() -> None:
    from qa_engine.export.parity import (
        APPROXIMATE_ATOL,
        ParityError,
        ParityReport,
        check_fp32,
        fp32_gate,
    )

    exact = fp32_gate({"Attention": 2, "BiasGelu": 2}, atol=1e-3)
    assert exact["kind"] == "exact" and exact["atol"] == 1e-3
    approx = fp32_gate({"Attention": 2, "FastGelu": 2}, atol=1e-3)
    assert approx["kind"].startswith("approximate") and approx["atol"] == APPROXIMATE_ATOL

    def report(diff: float, agreement: float) -> ParityReport:
        fields = {f: None for f in ParityReport.__dataclass_fields__}
        fields.update(max_abs_logit_diff=diff, answer_agreement=agreement, questions=64)
        return ParityReport(**fields)

    # What O3 did on MiniLM fine-tuned on SQuAD: fails the exact gate, passes its own.
    with pytest.raises(ParityError):
        check_fp32("fp32-O3", report(0.0116, 0.984), exact["atol"], exact["min_agreement"])
    check_fp32("fp32-O3", report(0.0116, 0.984), approx["atol"], approx["min_agreement"])
    with pytest.raises(ParityError):  # approximate graphs still need the answers to agree
        check_fp32("fp32-O3", report(0.0116, 0.90), approx["atol"], approx["min_agreement"])
    with pytest.raises(ParityError):
        check_fp32("fp32-O2", report(float("nan"), 1.0), exact["atol"])


@pytest.mark.slow
def test_int8_dynamic_builds_the_accuracy_aware_mixed_candidate(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    import json

    import onnx

    from qa_engine.export.quantize import mixed_int8

    out = tmp_path / "out"
    result = run_export(tiny_model_dir, out, "--optimize", "O2", "--quantize", "int8-dynamic")
    assert result.exit_code == 0, result.output
    variants = json.loads((out / "qa_manifest.json").read_text())["extra"]["variants"]
    assert {"int8-dynamic-per-tensor", "int8-dynamic-per-channel", "int8-dynamic-mixed"} <= {
        row["name"] for row in variants
    }
    # The mixed graph itself: FFN outputs block-wise (MatMulNBits), the rest dynamic int8.
    mixed = tmp_path / "mixed.onnx"
    settings = mixed_int8(_fp32_graph(tiny_model_dir, tmp_path), mixed, preset="avx2")
    ops = [n.op_type for n in onnx.load(str(mixed)).graph.node]
    assert ops.count("MatMulNBits") == len(settings["blockwise_nodes"]) == 2  # 2 layers
    assert "MatMulInteger" in ops or "DynamicQuantizeMatMul" in ops


def _fp32_graph(model_dir: Path, tmp_path: Path) -> Path:
    out = tmp_path / "fp32"
    assert run_export(model_dir, out, "--optimize", "O2").exit_code == 0
    return out / "model.onnx"


def test_int8_selection_prefers_fast_within_budget(tmp_path: Path) -> None:
    from qa_engine.export.variants import select_int8

    def pair(budget: float):
        # 2,000 questions: plain loses 40 (2.5 %), mixed 2 (0.125 %).
        plain = _fake_variant(
            tmp_path, "int8-dynamic-per-channel", "int8-dynamic", 40, 10.0, budget
        )
        mixed = _fake_variant(tmp_path, "int8-dynamic-mixed", "int8-dynamic", 2, 11.0, budget)
        return plain, mixed

    assert select_int8(*pair(5.0), max_f1_drop=5.0).name == "int8-dynamic-per-channel"  # faster
    assert select_int8(*pair(1.0), max_f1_drop=1.0).name == "int8-dynamic-mixed"  # only mixed
    assert select_int8(*pair(0.01), max_f1_drop=0.01).name == "int8-dynamic-mixed"  # accurate


def test_without_accuracy_evidence_auto_keeps_fp32_and_int8_follows_the_logits(
    tmp_path: Path,
) -> None:
    from dataclasses import replace

    from qa_engine.export.variants import select_fastest, select_int8

    def no_evidence(name: str, precision: str, ms: float, mean_diff: float):
        variant = _fake_variant(tmp_path, name, precision, 0, ms, 1.0)
        variant.drop = None  # generated pairs, or a model that cannot answer the questions
        variant.parity = replace(variant.parity, mean_abs_logit_diff=mean_diff)
        return variant

    fp32 = no_evidence("fp32-O2", "fp32", 10.0, 0.0)
    plain = no_evidence("int8-dynamic-per-channel", "int8-dynamic", 4.0, 0.08)
    mixed = no_evidence("int8-dynamic-mixed", "int8-dynamic", 5.0, 0.02)
    chosen, rows = select_fastest([fp32, plain, mixed], max_f1_drop=1.0)
    assert chosen.name == "fp32-O2"  # nothing lossy is shown within the budget
    assert [r["decision"] for r in rows][1:] == ["no accuracy evidence"] * 2
    assert select_int8(plain, mixed, max_f1_drop=1.0).name == "int8-dynamic-mixed"  # closer
    assert (
        select_int8(
            replace(plain, parity=replace(plain.parity, mean_abs_logit_diff=0.01)),
            mixed,
            max_f1_drop=1.0,
        ).name
        == "int8-dynamic-per-channel"
    )


def test_a_variant_over_budget_is_refused_at_export_unless_forced(tmp_path: Path) -> None:
    from qa_engine.export.budget import OverBudgetError, check_budget

    model = tmp_path / "model"
    model.mkdir()
    over = _fake_variant(tmp_path, "int8-dynamic-per-channel", "int8-dynamic", 200, 4.0, 1.0)
    within = _fake_variant(tmp_path, "int8-dynamic-mixed", "int8-dynamic", 2, 5.0, 1.0)
    assert over.drop.decision == "over" and within.drop.decision == "within"
    options = ExportOptions(model=str(model), out_dir=tmp_path / "out", max_f1_drop=1.0)
    logged: list[str] = []
    with pytest.raises(OverBudgetError, match=r"over against 1%.*--force"):
        check_budget(over, options, logged.append)
    check_budget(within, options, logged.append)
    assert logged == []
    options.force = True
    check_budget(over, options, logged.append)
    assert len(logged) == 1 and "--force" in logged[0] and "+12.50%" in logged[0]


@pytest.mark.slow
def test_generated_pairs_are_logit_evidence_only(tiny_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "int8"
    result = run_export(tiny_model_dir, out, "--quantize", "int8-dynamic")
    assert result.exit_code == 0, result.output
    m = ExportManifest.load(out)
    assert m.extra["evidence"]["accuracy"] is False
    assert "generated" in m.extra["evidence"]["reason"]
    assert m.self_check["export"]["f1_drop"] is None
    assert "generated" in m.self_check["export"]["accuracy_evidence"]
    assert m.parity["f1"] is None and m.parity["f1_delta"] is None
    assert all(row["f1_drop"] is None for row in m.extra["variants"])
    assert "No accuracy evidence" in result.output and "F1 delta" not in result.output
    # Every variant ran on every generated pair (6) and the reference once for all.
    assert {row["questions"] for row in m.extra["variants"]} == {6}
    assert m.extra["timings"]["reference_windows"] == m.parity["windows"]


@pytest.mark.slow
def test_export_and_runtime_agree_on_an_over_budget_variant(
    tiny_model_dir: Path, self_labelled_squad: Path, tmp_path: Path, monkeypatch
) -> None:
    """The verifier's decision is forced to ``over``: the export refuses to write it, and
    with --force writes it so that QAEngine loads it with a warning naming that choice."""
    from dataclasses import replace

    from qa_engine.engine import QAEngine
    from qa_engine.export import verifier

    def always_over(paired, budget, cap, **kwargs):
        estimate = verifier.f1_drop(*paired(cap), budget)
        return replace(estimate, decision="over", low=budget + 1.0, looks=(cap,), cap=cap)

    monkeypatch.setattr(verifier, "sequential_f1_drop", always_over)
    out = tmp_path / "int8"
    args = ["--quantize", "int8-dynamic", "--calibration-file", str(self_labelled_squad)]
    result = CliRunner().invoke(cli, ["export", str(tiny_model_dir), str(out), *WINDOW_ARGS, *args])
    assert result.exit_code == 1 and "--force" in result.output and "over" in result.output
    assert not out.exists() and not leftovers(tmp_path)
    result = run_export(tiny_model_dir, out, *args, "--force")
    assert result.exit_code == 0, result.output
    m = ExportManifest.load(out)
    assert m.self_check["export"]["written_with_force"] is True
    assert m.self_check["export"]["f1_drop"]["decision"] == "over"
    with pytest.warns(UserWarning, match="--force"):
        engine = QAEngine(out, device="cpu")
    assert engine.self_check.passed and engine.self_check.forced_over_budget


@pytest.mark.slow
def test_the_reference_runs_each_window_once_in_any_order(tiny_model_dir: Path) -> None:
    """A reference extended in steps holds the logits of one full run, in window order;
    the progress callback sees every window."""
    pytest.importorskip("torch")
    from qa_engine.export.features import build_windows, generated_examples
    from qa_engine.export.onnx_export import load_torch_model
    from qa_engine.export.parity import length_batches, torch_logits
    from qa_engine.export.verifier import TorchReference
    from qa_engine.finetune.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(str(tiny_model_dir))
    windows = build_windows(tokenizer, generated_examples(tokenizer, 12, seed=1), 64, 16)
    batches = length_batches(windows, range(len(windows)), 4)
    assert sorted(i for b in batches for i in b) == list(range(len(windows)))
    assert all(windows.length(b[0]) <= windows.length(b[-1]) for b in batches)
    net = load_torch_model(str(tiny_model_dir))
    seen: list[int] = []
    whole = torch_logits(net, windows, progress=seen.append)
    assert sum(seen) == len(windows)
    reference = TorchReference(net, windows)
    first = windows.windows_of(5)
    assert 5 <= first < len(windows) and len(windows.head(5)) == first
    assert len(reference.extend(first, print)) == first
    assert len(reference.extend(len(windows), print)) == len(windows)
    for (start, end), (s, e) in zip(whole, reference.logits, strict=True):
        np.testing.assert_allclose(start, s, atol=1e-5)
        np.testing.assert_allclose(end, e, atol=1e-5)
    reference.release()
    assert len(reference.extend(first, print)) == first  # computed logits stay
    with pytest.raises(RuntimeError, match="released"):
        reference.extend(len(windows) + 1, print)


def test_calibration_takes_one_window_per_question_first() -> None:
    from qa_engine.export.features import Windows, calibration_feeds

    question_of = [0, 0, 0, 1, 2, 2]  # 3 questions, 6 windows; window i holds token i
    ids = [np.array([i, i]) for i in range(6)]
    windows = Windows({"input_ids": ids}, question_of, [np.zeros((2, 2))] * 6, [], 0)
    picked = [int(f["input_ids"][0, 0]) for f in calibration_feeds(windows, ["input_ids"], 3)]
    assert picked == [0, 3, 4]
    picked = [int(f["input_ids"][0, 0]) for f in calibration_feeds(windows, ["input_ids"], 5)]
    assert picked == [0, 3, 4, 1, 2]
    assert windows.windows_of(2) == 4 and len(windows.head(1)) == 3
