"""OpenVINO provider options, CPU detection and fallback checks: pure Python, any environment."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from qa_engine.openvino.cpu import cpu_flags, describe, has_amx, has_bf16, int8_unit
from qa_engine.openvino.options import (
    PROVIDER,
    OpenVINOOptions,
    assignment_problem,
    default_cache_dir,
    prefers_openvino,
    summarize_assignment,
)

SAPPHIRE_RAPIDS = "flags\t\t: fpu avx512f avx512_bf16 avx512_vnni amx_bf16 amx_tile amx_int8\n"
ZEN4 = "processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 avx512_vnni\n"
SKYLAKE = "flags\t\t: fpu avx2 avx512f avx512bw\n"
AVAILABLE = [PROVIDER, "CPUExecutionProvider"]


def test_cpu_flags_read_the_first_flags_line() -> None:
    assert cpu_flags(ZEN4 + SKYLAKE) == {"fpu", "avx2", "avx512f", "avx512_bf16", "avx512_vnni"}
    assert cpu_flags("model name: none\n") == frozenset()


@pytest.mark.parametrize(
    ("cpuinfo", "amx", "bf16", "int8"),
    [
        (SAPPHIRE_RAPIDS, True, True, "amx"),
        (ZEN4, False, True, "avx512_vnni"),
        (SKYLAKE, False, False, None),
    ],
)
def test_matrix_units(cpuinfo: str, amx: bool, bf16: bool, int8: str | None) -> None:
    flags = cpu_flags(cpuinfo)
    assert has_amx(flags) is amx
    assert has_bf16(flags) is bf16
    assert int8_unit(flags) == int8
    assert describe(flags)["amx"] is amx


def test_auto_prefers_openvino_only_with_native_bf16() -> None:
    assert prefers_openvino(AVAILABLE, cpu_flags(SAPPHIRE_RAPIDS))
    assert prefers_openvino(AVAILABLE, cpu_flags(ZEN4))
    assert not prefers_openvino(AVAILABLE, cpu_flags(SKYLAKE))
    assert not prefers_openvino(["CPUExecutionProvider"], cpu_flags(SAPPHIRE_RAPIDS))


def test_provider_options_carry_a_load_config_json_string(tmp_path) -> None:
    options = OpenVINOOptions(precision="bf16", threads=2, cache_dir=tmp_path)
    built = options.provider_options()
    assert built["device_type"] == "CPU"
    assert built["cache_dir"] == str(tmp_path)
    assert json.loads(built["load_config"]) == {
        "CPU": {
            "INFERENCE_PRECISION_HINT": "bf16",
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": "2",
        }
    }
    assert all(isinstance(v, str) for v in built.values())


def test_auto_precision_is_bf16_on_amx_only() -> None:
    assert OpenVINOOptions().resolved_precision(cpu_flags(SAPPHIRE_RAPIDS)) == "bf16"
    assert OpenVINOOptions().resolved_precision(cpu_flags(ZEN4)) == "f32"
    assert OpenVINOOptions().resolved_precision(cpu_flags(SKYLAKE)) == "f32"
    assert OpenVINOOptions(precision="bf16").resolved_precision(cpu_flags(ZEN4)) == "bf16"
    assert OpenVINOOptions(precision="f32").resolved_precision(cpu_flags(ZEN4)) == "f32"


def test_cache_is_opt_in(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("QA_ENGINE_OPENVINO_CACHE", raising=False)
    assert "cache_dir" not in OpenVINOOptions().provider_options()
    assert (
        "cache_dir" not in OpenVINOOptions(cache_dir=tmp_path, use_cache=False).provider_options()
    )
    monkeypatch.setenv("QA_ENGINE_OPENVINO_CACHE", "off")
    assert default_cache_dir() is None
    assert "cache_dir" not in OpenVINOOptions().provider_options()
    monkeypatch.setenv("QA_ENGINE_OPENVINO_CACHE", str(tmp_path / "ov"))
    assert OpenVINOOptions().provider_options()["cache_dir"] == str(tmp_path / "ov")
    monkeypatch.delenv("QA_ENGINE_OPENVINO_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "qa-engine" / "openvino"


@pytest.mark.parametrize(
    ("device", "precision"),
    [("openvino", "auto"), ("openvino:bf16", "bf16"), ("openvino:f32", "f32")],
)
def test_from_device(device: str, precision: str) -> None:
    options = OpenVINOOptions.from_device(device, threads=3)
    assert options.precision == precision
    assert options.threads == 3


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"precision": "BF16"}, ValueError),
        ({"performance_hint": "fast"}, ValueError),
        ({"device_type": "GPU"}, ValueError),
        ({"threads": 0}, ValueError),
        ({"threads": 1.5}, TypeError),
    ],
)
def test_bad_options_raise(kwargs: dict, error: type) -> None:
    with pytest.raises(error):
        OpenVINOOptions(**kwargs)


@pytest.mark.parametrize("device", ["openvino:fp16", "cuda", "openvino:"])
def test_bad_device_strings_raise(device: str) -> None:
    with pytest.raises(ValueError, match="openvino"):
        OpenVINOOptions.from_device(device)


def test_assignment_problems() -> None:
    full = summarize_assignment([(PROVIDER, ["MatMul", "Add"])])
    assert full.openvino_share == 1.0
    assert assignment_problem(AVAILABLE, full) is None
    assert assignment_problem(AVAILABLE, None) is None
    dropped = assignment_problem(["CPUExecutionProvider"], None)
    assert dropped is not None and dropped.startswith("error:")
    nothing = summarize_assignment([("CPUExecutionProvider", ["MatMul"])])
    assert assignment_problem(AVAILABLE, nothing).startswith("error:")
    partial = summarize_assignment(
        [(PROVIDER, ["MatMul"] * 3), ("CPUExecutionProvider", ["Attention"])]
    )
    message = assignment_problem(AVAILABLE, partial)
    assert message.startswith("warning:") and "Attention x1" in message and "75%" in message


def test_importing_the_package_loads_no_engine() -> None:
    code = (
        "import sys, qa_engine.openvino, qa_engine.openvino.quantize, "
        "qa_engine.openvino.kernels; "
        "print(sorted(m for m in ('torch', 'onnxruntime', 'openvino', 'nncf', 'transformers') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_bench_plans_the_openvino_peer_on_the_plainest_export(tmp_path) -> None:
    from qa_engine.bench.openvino_peer import OpenVINORunner
    from qa_engine.bench.plan import QASettings, plan_runners
    from qa_engine.bench.runners import runner_class
    from qa_engine.manifest import ExportManifest

    dirs = []
    for name, precision, level in (("int8", "int8-openvino", "none"), ("fp32", "fp32", "none")):
        d = tmp_path / name
        d.mkdir()
        ExportManifest(
            max_seq_length=48, doc_stride=16, precision=precision, optimization=level
        ).save(d)
        dirs.append(str(d))
    settings = QASettings(max_seq_length=48, doc_stride=16)
    specs = plan_runners(dirs, settings, peers=("openvino",), device="openvino", bf16=True)
    peer = next(s for s in specs if s.kind == "openvino")
    assert peer.model_dir == dirs[1] and peer.autocast == "bf16"
    assert peer.name == "openvino bf16 fp32 none" and peer.same_file_as == "qa-engine fp32 none"
    assert {s.device for s in specs} == {"openvino"}
    assert runner_class("openvino") is OpenVINORunner
    assert "openvino" not in {s.kind for s in plan_runners(dirs, settings)}  # opt-in peer


def test_export_options_for_int8_openvino(tmp_path) -> None:
    from qa_engine.export.options import ExportOptions

    squad = tmp_path / "squad.json"
    squad.write_text('{"version": "1.1", "data": []}')
    with pytest.raises(ValueError, match="needs --calibration-file"):
        ExportOptions("m", tmp_path / "out", quantize="int8-openvino")
    with pytest.raises(ValueError, match="O4"):
        ExportOptions("m", tmp_path / "out", optimize="O4", quantize="int8-openvino")
    with pytest.raises(ValueError, match="CPU variants"):
        ExportOptions("m", tmp_path / "o", device="cuda", quantize="int8-openvino")
    options = ExportOptions("m", tmp_path / "out", quantize="int8-openvino", calibration_file=squad)
    assert options.quantize == "int8-openvino"
