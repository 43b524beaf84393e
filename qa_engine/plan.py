"""The per-machine plan: how to run one export fastest on one machine, measured there.

Like a TensorRT engine, a plan is built once on the machine it is for (``qa-engine
tune``) and stored beside the export (``qa_plan.json``). It records the winner of the
search (device string, threads, batch size, length buckets), the table of candidates,
and the machine it was measured on: the CPU's model name and the ISA flags that change
which kernels run, the onnxruntime version, and the providers of the build (its flavour).
``QAEngine`` uses a plan only when all of that matches the machine it loads on; a plan
made elsewhere is ignored with a warning that says what differs, never silently used.

No onnxruntime import here: the machine's library facts come from :mod:`qa_engine.session`.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from qa_engine.cpu import cpu_flags, cpu_model

PLAN_NAME = "qa_plan.json"
FORMAT = 1
OBJECTIVES = ("throughput", "latency")
# Device strings a plan may name (what ``session.candidate_devices`` tries on a CPU host).
PLAN_DEVICES = ("cpu", "cuda", "openvino:f32", "openvino:bf16")
# The ISA flags that decide which kernels onnxruntime and OpenVINO pick: a plan measured
# with one set is not evidence for another (a VM may hide some of the host's flags).
ISA_FLAGS = (
    "avx2",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "avx_vnni",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
)


class PlanIgnored(UserWarning):
    """A plan beside the export does not apply here (another machine, build or model)."""


@dataclass(frozen=True)
class Machine:
    """What a plan is keyed by.

    Attributes:
        cpu: The CPU's model name.
        flags: The :data:`ISA_FLAGS` this CPU has, sorted.
        onnxruntime: onnxruntime's version.
        providers: The execution providers of this onnxruntime build (its flavour).
        cores: CPUs this process may run on when measured (threads were chosen for them).
    """

    cpu: str
    flags: tuple[str, ...]
    onnxruntime: str
    providers: tuple[str, ...]
    cores: int

    @classmethod
    def current(cls) -> Machine:
        """The machine this process runs on."""
        from qa_engine.session import available_providers, onnxruntime_version

        return cls(
            cpu=cpu_model(),
            flags=tuple(sorted(f for f in cpu_flags() if f in ISA_FLAGS)),
            onnxruntime=onnxruntime_version(),
            providers=tuple(available_providers()),
            cores=len(os.sched_getaffinity(0)),
        )

    def differences(self, other: Machine) -> list[str]:
        """What differs from ``other`` (empty: the same machine, as far as a plan cares)."""
        found = []
        for name in ("cpu", "flags", "onnxruntime", "providers", "cores"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine != theirs:
                found.append(f"{name} {_show(mine)} (plan) vs {_show(theirs)} (here)")
        return found

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Machine:
        return cls(
            cpu=str(raw["cpu"]),
            flags=tuple(raw["flags"]),
            onnxruntime=str(raw["onnxruntime"]),
            providers=tuple(raw["providers"]),
            cores=int(raw["cores"]),
        )


def _show(value: object) -> str:
    return ",".join(value) if isinstance(value, tuple) else str(value)


@dataclass
class TunePlan:
    """The winner of ``qa-engine tune`` on one machine, and how it was chosen.

    Attributes:
        device: Device string the engine opens (one of :data:`PLAN_DEVICES`).
        threads: Inference threads.
        batch_size: Windows per onnxruntime call for offline work and the server's
            ``max_batch_windows``.
        buckets: Padded widths (``batching.length_buckets``), or None: pad each batch
            only to its longest window.
        objective: What won: ``throughput`` (windows/s) or ``latency`` (batch-1 p50).
        machine: Where it was measured.
        model_bytes: Size of the ``model.onnx`` it was measured with (a plan copied to
            another export is ignored).
        precision: The export's precision then.
        measured: The winner's numbers (windows/s, batch-1 p50/p95 ms, ...).
        candidates: Every candidate measured, one dict per row of the printed table.
        windows: Where the timed windows came from, and how many.
        created: UTC time of the measurement.
        budget_s: The search's time budget.
    """

    device: str
    threads: int
    batch_size: int
    buckets: tuple[int, ...] | None
    objective: str
    machine: Machine
    model_bytes: int
    precision: str
    measured: dict[str, Any] = field(default_factory=dict)
    candidates: list[dict[str, Any]] = field(default_factory=list)
    windows: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    budget_s: float = 0.0

    def __post_init__(self) -> None:
        if self.device not in PLAN_DEVICES:
            raise ValueError(f"device must be one of {PLAN_DEVICES}, got {self.device!r}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")
        for name in ("threads", "batch_size", "model_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.buckets is not None:
            self.buckets = tuple(int(b) for b in self.buckets)
            if not self.buckets or list(self.buckets) != sorted(set(self.buckets)):
                raise ValueError(f"buckets must be ascending widths, got {self.buckets}")
        if not isinstance(self.machine, Machine):
            raise TypeError(f"machine must be a Machine, got {type(self.machine).__name__}")

    # ---------------------------------------------------------------- JSON
    def to_dict(self) -> dict[str, Any]:
        body = asdict(self)
        body["buckets"] = list(self.buckets) if self.buckets is not None else None
        return {"format": FORMAT, **body}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TunePlan:
        """Raises: ValueError for another format or a bad field (named)."""
        if raw.get("format") != FORMAT:
            raise ValueError(f"plan format {raw.get('format')!r}, this qa-engine reads {FORMAT}")
        try:
            values = {k: v for k, v in raw.items() if k != "format"}
            values["machine"] = Machine.from_dict(values["machine"])
            if values.get("buckets") is not None:
                values["buckets"] = tuple(values["buckets"])
            return cls(**values)
        except (KeyError, TypeError) as err:
            raise ValueError(f"not a valid plan ({err})") from err

    def save(self, path: str | os.PathLike) -> Path:
        """Write the plan (a directory gets ``qa_plan.json`` inside); returns the file."""
        path = Path(path)
        if path.is_dir():
            path = path / PLAN_NAME
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> TunePlan:
        """Read a plan file (or ``qa_plan.json`` in a directory).

        Raises:
            FileNotFoundError: No such file.
            ValueError: Not a valid plan (the file is named).
        """
        path = Path(path)
        if path.is_dir():
            path = path / PLAN_NAME
        if not path.is_file():
            raise FileNotFoundError(f"{path}: plan file not found")
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (json.JSONDecodeError, ValueError) as err:
            raise ValueError(f"{path}: {err}") from err

    def describe(self) -> str:
        """``device cpu, threads 2, batch 32, buckets none``."""
        buckets = "none" if self.buckets is None else ",".join(map(str, self.buckets))
        return (
            f"device {self.device}, threads {self.threads}, batch {self.batch_size}, "
            f"buckets {buckets}"
        )

    def mismatch(self, machine: Machine, model_bytes: int) -> str | None:
        """Why this plan does not apply to ``machine`` and this model, or None if it does."""
        reasons = self.machine.differences(machine)
        if model_bytes != self.model_bytes:
            reasons.append(f"model.onnx {self.model_bytes} bytes (plan) vs {model_bytes} (here)")
        return "; ".join(reasons) or None


def find_plan(
    export_dir: Path, plan: bool | str | os.PathLike, model_bytes: int
) -> tuple[TunePlan | None, str | None]:
    """The plan an engine should use, and the line that says so (or why not).

    Args:
        export_dir: The export directory (its ``qa_plan.json`` when ``plan`` is True).
        plan: True (the export's plan, if any), False (none), or a plan file's path.
        model_bytes: Size of the export's ``model.onnx``.

    Returns:
        ``(plan, note)``: the plan when it matches this machine (else None, with a
        :class:`PlanIgnored` warning), and a one-line note (None: no plan at all).

    Raises:
        FileNotFoundError: ``plan`` names a file that does not exist.
        ValueError: The file ``plan`` names is not a valid plan (the export's own
            ``qa_plan.json`` is ignored with a warning instead).
    """
    if plan is False:
        return None, None
    if plan is True:
        path = export_dir / PLAN_NAME
        if not path.is_file():
            return None, None
    else:
        path = Path(plan)
    try:
        loaded = TunePlan.load(path)
    except ValueError as err:
        if plan is not True:  # a file the caller named must be right
            raise
        note = f"plan ignored: {err}"
        warnings.warn(note, PlanIgnored, stacklevel=4)
        return None, note
    reason = loaded.mismatch(Machine.current(), model_bytes)
    if reason is not None:
        note = f"plan {path} ignored: made for another machine or model ({reason})"
        warnings.warn(note, PlanIgnored, stacklevel=4)
        return None, note
    return loaded, f"plan {path}: {loaded.describe()} (measured {loaded.created})"
