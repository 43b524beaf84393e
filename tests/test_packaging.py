"""Extras: only the flavour extras pull an onnxruntime build, and the install the README
leads with gives the path the docs promise.

The flavours (onnxruntime, onnxruntime-gpu, onnxruntime-openvino) install into the same
folder; an extra that pinned one of them would put two in one environment as soon as it
is combined with another flavour (e.g. `[gpu,export]`). ``pip install "qa-engine[cpu]"``
gives onnxruntime's OpenVINO build on x86-64 Linux (the CPU and OpenVINO providers in one
wheel) and plain onnxruntime elsewhere.
"""

from __future__ import annotations

import platform
import re
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from qa_engine import session
from qa_engine.extras import MissingExtraError
from qa_engine.openvino.cpu import has_amx, has_bf16

tomllib = pytest.importorskip("tomllib")
PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
FLAVOURS = ("onnxruntime", "onnxruntime-openvino", "onnxruntime-gpu")

LINUX_X86 = {"sys_platform": "linux", "platform_machine": "x86_64", "platform_system": "Linux"}
ELSEWHERE = [
    {"sys_platform": "linux", "platform_machine": "aarch64", "platform_system": "Linux"},
    {"sys_platform": "darwin", "platform_machine": "arm64", "platform_system": "Darwin"},
    {"sys_platform": "win32", "platform_machine": "AMD64", "platform_system": "Windows"},
]


def _extra(name: str) -> list[Requirement]:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    return [Requirement(spec) for spec in project["optional-dependencies"][name]]


def _resolved(name: str, environment: dict[str, str]) -> set[str]:
    """The onnxruntime distributions an extra installs on a platform."""
    return {
        req.name
        for req in _extra(name)
        if req.name in FLAVOURS and (req.marker is None or req.marker.evaluate(environment))
    }


def test_readme_leads_with_the_cpu_extra():
    readme = (PYPROJECT.parent / "README.md").read_text()
    install = readme.split("## Install", 1)[1]
    first = re.search(r'pip install "qa-engine\[([\w,-]+)\]"', install)
    assert first is not None and first.group(1) == "cpu"


def test_cpu_extra_is_the_openvino_build_on_x86_64_linux():
    assert _resolved("cpu", LINUX_X86) == {"onnxruntime-openvino"}


@pytest.mark.parametrize("environment", ELSEWHERE, ids=lambda e: e["sys_platform"])
def test_cpu_extra_is_plain_onnxruntime_elsewhere(environment):
    assert _resolved("cpu", environment) == {"onnxruntime"}


@pytest.mark.parametrize("extra", ["cpu-plain", "gpu", "openvino"])
def test_every_flavour_extra_installs_exactly_one_flavour(extra):
    for environment in [LINUX_X86, *ELSEWHERE]:
        assert len(_resolved(extra, environment)) == 1, (extra, environment)


FLAVOUR_EXTRAS = ("cpu", "cpu-plain", "gpu", "openvino")


def test_only_the_flavour_extras_pull_onnxruntime() -> None:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    for extra in project["optional-dependencies"]:
        if extra not in FLAVOUR_EXTRAS:
            names = {req.name for req in _extra(extra)}
            assert not {n for n in names if n.startswith("onnxruntime")}, (extra, names)


def _installed_flavours() -> list[str]:
    found = []
    for name in FLAVOURS:
        try:
            metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        found.append(name)
    return found


def test_this_environment_holds_exactly_one_flavour():
    assert len(_installed_flavours()) == 1, _installed_flavours()


def test_the_installed_flavour_offers_what_auto_walks():
    """What device="auto" tries follows from the flavour and the CPU, as the docs say."""
    (flavour,) = _installed_flavours()
    available = session.available_providers()
    candidates = session.candidate_devices("auto")
    assert candidates[-1] == "cpu"
    if flavour == "onnxruntime-openvino":
        assert session.OPENVINO in available
        if has_bf16():
            expected = ["openvino:bf16", "openvino:f32"] if has_amx() else ["openvino:f32"]
            assert candidates[: len(expected)] == expected
    elif flavour == "onnxruntime":
        assert session.OPENVINO not in available and candidates == ["cpu"]


@pytest.mark.skipif(
    not (sys.platform == "linux" and platform.machine() == "x86_64"),
    reason="the [cpu] extra is plain onnxruntime off x86-64 Linux",
)
def test_cpu_install_here_is_the_openvino_build_when_installed_from_cpu():
    """On x86-64 Linux an environment made from [cpu] (as `make test` does) has OpenVINO."""
    (flavour,) = _installed_flavours()
    if flavour == "onnxruntime":
        pytest.skip("this environment was made from [cpu-plain] (make test-plain)")
    assert flavour == "onnxruntime-openvino"
    assert session.OPENVINO in session.available_providers()


def test_a_missing_onnxruntime_names_every_flavour() -> None:
    message = MissingExtraError("onnxruntime", "cpu").message
    assert 'pip install "qa-engine[cpu]"' in message and "[gpu]" in message
    assert "[openvino]" in message and "one onnxruntime flavour" in message


@pytest.mark.parametrize(
    "module",
    ["qa_engine", "qa_engine.openvino", "qa_engine.serve.app", "qa_engine.corpus.local"],
)
def test_runtime_and_adapters_never_import_the_bench(module: str) -> None:
    """The bench reaches the runtime and its peers, never the reverse."""
    import subprocess
    import sys

    code = (
        f"import sys, {module}\n"
        "print(sorted(m for m in sys.modules if m.startswith('qa_engine.bench')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
