"""int8-nncf: NNCF static int8 with uint8 activations, int8 on onnxruntime's CPU provider.

Batch = one by one for this variant is in tests/test_batch_invariance.py.
"""

from __future__ import annotations

import collections
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("nncf")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from qa_engine.export.fusion import BATCH_DEPENDENT_OPS, batch_invariant, op_counts  # noqa: E402
from qa_engine.export.nncf_cpu import nncf_int8_cpu  # noqa: E402
from qa_engine.tokenization import QATokenizer  # noqa: E402

pytestmark = pytest.mark.slow


def _feeds(export_dir: Path, count: int, seed: int) -> list[dict[str, np.ndarray]]:
    """Batch-1 windows of generated pairs in the tiny vocabulary."""
    from conftest import _WORDS

    rng = np.random.default_rng(seed)
    tokenizer = QATokenizer.from_file(export_dir / "tokenizer.json", 48, 16)
    questions = [" ".join(rng.choice(_WORDS, 5)) + "?" for _ in range(count)]
    contexts = [" ".join(rng.choice(_WORDS, int(rng.integers(8, 70)))) + "." for _ in range(count)]
    return [
        {
            "input_ids": w.input_ids[None],
            "attention_mask": np.ones_like(w.input_ids)[None],
            "token_type_ids": w.type_ids[None],
        }
        for windows in tokenizer.encode_batch(questions, contexts)
        for w in windows
    ]


@pytest.fixture(scope="module")
def graphs(tiny_onnx_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The fp32 graph, NNCF's own int8 graph and the uint8-activation one, same calibration."""
    from qa_engine.openvino.quantize import nncf_int8

    out = tmp_path_factory.mktemp("nncf-cpu")
    feeds = _feeds(tiny_onnx_dir, 24, seed=1)
    nncf_int8(tiny_onnx_dir / "model.onnx", out / "signed.onnx", feeds)
    settings = nncf_int8_cpu(tiny_onnx_dir / "model.onnx", out / "unsigned.onnx", feeds)
    (out / "settings.json").write_text(json.dumps(settings))
    return {
        "fp32": tiny_onnx_dir / "model.onnx",
        "signed": out / "signed.onnx",
        "unsigned": out / "unsigned.onnx",
        "settings": out / "settings.json",
    }


def _session(path: Path, optimized: Path | None = None) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    if optimized is not None:
        options.optimized_model_filepath = str(optimized)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _logits(path: Path, feeds: list[dict[str, np.ndarray]]) -> list[np.ndarray]:
    session = _session(path)
    names = [i.name for i in session.get_inputs()]
    return [
        np.stack(session.run(["start_logits", "end_logits"], {n: f[n] for n in names}))
        for f in feeds
    ]


def _weight_matmuls(path: Path) -> int:
    """MatMuls of the fp32 graph whose second input is a weight."""
    graph = onnx.load(str(path)).graph
    weights = {t.name for t in graph.initializer}
    return sum(1 for n in graph.node if n.op_type == "MatMul" and n.input[1] in weights)


def test_graph_is_static_int8_with_uint8_activations(graphs: dict[str, Path]) -> None:
    counts = op_counts(graphs["unsigned"])
    assert not any(counts.get(op) for op in BATCH_DEPENDENT_OPS)
    assert batch_invariant(graphs["unsigned"])
    assert counts["QuantizeLinear"] > 0 and counts["DequantizeLinear"] > counts["QuantizeLinear"]
    graph = onnx.load(str(graphs["unsigned"])).graph
    types = {t.name: t.data_type for t in graph.initializer}
    quantizers = [n for n in graph.node if n.op_type == "QuantizeLinear"]
    assert {types[n.input[2]] for n in quantizers} == {onnx.TensorProto.UINT8}
    settings = json.loads(graphs["settings"].read_text())
    assert settings["unsigned_activation_quantizers"] == counts["QuantizeLinear"]


def test_onnxruntime_runs_every_weight_matmul_in_int8(graphs: dict[str, Path], tmp_path) -> None:
    """What the uint8 rewrite is for: onnxruntime's CPU provider fuses every weight MatMul
    into MatMulIntegerToFloat; none stays a float MatMul over weights dequantized per call."""
    wanted = _weight_matmuls(graphs["fp32"])
    fused = {}
    for name in ("signed", "unsigned"):
        optimized = tmp_path / f"{name}-optimized.onnx"
        _session(graphs[name], optimized)
        graph = onnx.load(str(optimized)).graph
        producers = {o: n.op_type for n in graph.node for o in n.output}
        fused[name] = collections.Counter(n.op_type for n in graph.node)["MatMulIntegerToFloat"]
        float_over_dq = [
            n.name
            for n in graph.node
            if n.op_type in ("MatMul", "FusedMatMul")
            and any(producers.get(i) == "DequantizeLinear" for i in n.input)
        ]
        if name == "unsigned":
            assert float_over_dq == []
    assert fused["unsigned"] >= wanted
    # NNCF's own (int8-activation) graph leaves some of them in float on x86.
    assert fused["signed"] < fused["unsigned"]


def test_uint8_rewrite_keeps_the_function(graphs: dict[str, Path], tiny_onnx_dir: Path) -> None:
    feeds = _feeds(tiny_onnx_dir, 12, seed=7)  # not the calibration text
    signed = _logits(graphs["signed"], feeds)
    unsigned = _logits(graphs["unsigned"], feeds)
    fp32 = _logits(graphs["fp32"], feeds)
    spread = max(float(np.ptp(x)) for x in fp32)
    for a, b in zip(signed, unsigned, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-3 * spread)
    # and int8 stays close to fp32 (same answers on most windows)
    agree = [
        (a[0].argmax(), a[1].argmax()) == (b[0].argmax(), b[1].argmax())
        for a, b in zip(unsigned, fp32, strict=True)
    ]
    assert np.mean(agree) >= 0.75
