"""device="tensorrt": the options it builds, and the errors naming what is missing where
TensorRT is absent; the `gpu` test runs it where onnxruntime offers the provider."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa_engine import QAEngine
from qa_engine.session import TENSORRT, available_providers, resolve_providers
from qa_engine.tensorrt import fallback_message, profile_shapes, tensorrt_options
from tests.test_engine import key, make_pairs

NAMES = ["input_ids", "attention_mask", "token_type_ids"]


def test_profiles_follow_the_length_buckets():
    shapes = profile_shapes(NAMES[:2], 384, max_windows=32, max_tokens=4096)
    mins = shapes["trt_profile_min_shapes"].split(",")
    opts = shapes["trt_profile_opt_shapes"].split(",")
    maxs = shapes["trt_profile_max_shapes"].split(",")
    # Buckets 32, 64, 128, 256, 384: one profile each, every input named in each.
    assert len(mins) == len(opts) == len(maxs) == 10
    assert mins[:4] == [
        "input_ids:1x1",
        "attention_mask:1x1",
        "input_ids:1x33",
        "attention_mask:1x33",
    ]
    assert maxs[0] == "input_ids:32x32" and maxs[-1] == "attention_mask:10x384"  # 4096 // 384
    assert opts == maxs


def test_options_keep_engine_and_timing_caches_in_the_cache_dir(tmp_path: Path):
    cache = tmp_path / "export" / "trt-cache"
    options = tensorrt_options(cache, NAMES, 48, device_id=1)
    assert cache.is_dir()
    assert options["trt_fp16_enable"] == "True" and options["device_id"] == "1"
    assert options["trt_engine_cache_enable"] == options["trt_timing_cache_enable"] == "True"
    assert options["trt_engine_cache_path"] == options["trt_timing_cache_path"] == str(cache)
    assert "token_type_ids:1x1" in options["trt_profile_min_shapes"]
    assert tensorrt_options(cache, NAMES, 48, fp16=False)["trt_fp16_enable"] == "False"
    a_file = tmp_path / "file"
    a_file.write_text("")
    with pytest.raises(ValueError, match="is a file, not a directory"):
        tensorrt_options(a_file, NAMES, 48)


def test_tensorrt_device_strings():
    with pytest.raises(ValueError, match="'tensorrt:N'"):
        resolve_providers("tensorrt:x")


def test_missing_tensorrt_names_the_provider_and_the_install(tiny_onnx_dir: Path):
    if TENSORRT in available_providers():
        pytest.skip("this onnxruntime build has the TensorRT provider")
    for device in ("tensorrt", "tensorrt:1"):
        with pytest.raises(ValueError, match=r"needs TensorrtExecutionProvider.*tensorrt-cu"):
            resolve_providers(device)
    with pytest.raises(ValueError, match=r"TensorrtExecutionProvider.*pip install"):
        QAEngine(tiny_onnx_dir, device="tensorrt")


def test_fallback_message_names_the_libraries():
    message = fallback_message(["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert "libnvinfer" in message and "tensorrt-cu" in message


@pytest.mark.gpu
@pytest.mark.slow
def test_tensorrt_answers_pass_the_self_check(tiny_onnx_dir: Path, tmp_path: Path):
    if TENSORRT not in available_providers():
        pytest.skip("needs onnxruntime-gpu with the TensorRT provider and TensorRT libraries")
    import shutil

    export = tmp_path / "export"
    shutil.copytree(tiny_onnx_dir, export)
    engine = QAEngine(export, device="tensorrt")
    assert engine.providers[0] == TENSORRT
    assert any((export / "trt-cache").iterdir())  # engine and timing cache written
    cpu = QAEngine(export, device="cpu")
    questions, contexts = make_pairs(12, seed=8)
    got = [key(a) for a in engine.predict(questions, contexts)]
    want = [key(a) for a in cpu.predict(questions, contexts)]
    assert sum(g == w for g, w in zip(got, want, strict=True)) >= 10  # fp16 near-ties
