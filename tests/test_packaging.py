"""Extras: exactly the three flavour extras pull an onnxruntime build.

The flavours (onnxruntime, onnxruntime-gpu, onnxruntime-openvino) install into the same
folder; an extra that pinned one of them would put two in one environment as soon as it
is combined with another flavour (e.g. `[gpu,export]`).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from qa_engine.extras import MissingExtraError

tomllib = pytest.importorskip("tomllib")
PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
FLAVOURS = {"cpu": "onnxruntime", "gpu": "onnxruntime-gpu", "openvino": "onnxruntime-openvino"}


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower()


def test_only_the_flavour_extras_pull_onnxruntime() -> None:
    extras = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]
    for extra, requirements in extras.items():
        runtimes = {_name(r) for r in requirements if _name(r).startswith("onnxruntime")}
        assert runtimes == ({FLAVOURS[extra]} if extra in FLAVOURS else set()), extra


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
