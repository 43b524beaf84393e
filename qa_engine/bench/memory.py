"""Peak RSS per runner, each measured in a fresh Python subprocess.

All runners share one process during timing (that is what makes interleaving possible),
so an in-process RSS delta would charge torch's import to whichever runner loaded first
and hide allocator reuse between runners. Instead, for each runner a subprocess
(``python -m qa_engine.bench.memory``) imports the runner's libraries, notes its RSS
(``baseline``), loads the model (timed: the *cold* load time), answers a few questions
at the largest batch size, and reports its peak RSS (``VmHWM``, the kernel's high-water
mark for the process). ``model_rss_mib = peak - baseline`` is what the model itself costs;
``peak_rss_mib`` is what a fresh server process running only this stack would need.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from qa_engine.bench.plan import RunnerSpec

_MARKER = "QA_ENGINE_MEMORY "
_MIB = 1024 * 1024


def _rss_bytes() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def _peak_rss_bytes() -> int:
    # VmHWM is this process image's own high-water mark. ru_maxrss is not: Linux carries
    # the parent's peak over fork + exec, so every probe would report the harness's.
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # kB
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def measure_memory(
    spec: RunnerSpec,
    questions: Sequence[str],
    contexts: Sequence[str],
    batch_size: int,
    timeout_s: float = 900,
) -> dict[str, Any]:
    """Run one runner in a subprocess and return its memory figures.

    Returns:
        ``peak_rss_mib``, ``baseline_rss_mib``, ``model_rss_mib`` and ``cold_load_s``.

    Raises:
        RuntimeError: The subprocess failed; the message carries the end of its stderr.
    """
    payload = {
        "spec": spec.to_dict(),
        "questions": list(questions),
        "contexts": list(contexts),
        "batch_size": batch_size,
    }
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false")
    proc = subprocess.run(
        [sys.executable, "-m", "qa_engine.bench.memory"],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=env,
    )
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(_MARKER):
            return json.loads(line[len(_MARKER) :])
    tail = "\n".join(proc.stderr.strip().splitlines()[-8:])
    raise RuntimeError(f"memory probe of {spec.name!r} failed (exit {proc.returncode}):\n{tail}")


def _child() -> None:
    from qa_engine.bench.runners import make_runner

    payload = json.load(sys.stdin)
    runner = make_runner(RunnerSpec.from_dict(payload["spec"]))
    runner.import_libraries()
    baseline = _rss_bytes()
    start = time.perf_counter()
    runner.load()
    load_s = time.perf_counter() - start
    runner.answer_many(payload["questions"], payload["contexts"], payload["batch_size"])
    peak = max(_peak_rss_bytes(), _rss_bytes())
    result = {
        "peak_rss_mib": peak / _MIB,
        "baseline_rss_mib": baseline / _MIB,
        "model_rss_mib": (peak - baseline) / _MIB,
        "cold_load_s": load_s,
    }
    print(_MARKER + json.dumps(result), flush=True)


if __name__ == "__main__":
    _child()
