"""``--quantize auto`` ranks speed at the batch size the model will run at."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qa_engine.export.evidence import f1_drop
from qa_engine.export.parity import ParityReport
from qa_engine.export.variants import Variant, format_table, select_fastest, speed_key


def _variant(tmp_path: Path, name: str, precision: str, p50: float, batched: float | None):
    """A verified-looking variant within any budget: batch-1 p50 ``p50`` ms and
    ``batched`` windows/s at batch 32 (None: not measured)."""
    reference = np.full(400, 80.0)
    path = tmp_path / f"{name}.onnx"
    path.write_bytes(b"x")
    latency = {"p50": p50}
    if batched is not None:
        latency["batched"] = {"batch_size": 32, "windows_per_call": 32, "windows_per_s": batched}
    parity = ParityReport(0.0, 0.0, 1.0, 100.0, 80.0, 80.0, 0.0, 400, 400, "squad")
    drop = f1_drop(reference, reference.copy(), 1.0)
    return Variant(name, path, precision, "O2", parity=parity, latency=latency, drop=drop)


def test_auto_ranks_speed_at_the_batch_size(tmp_path: Path) -> None:
    # dynamic int8 runs one window per call: fastest alone, no gain from batching;
    # the static int8 batches: slower alone, faster at batch 32.
    candidates = [
        _variant(tmp_path, "fp32", "fp32", 20.0, 60.0),
        _variant(tmp_path, "int8-dynamic", "int8-dynamic", 8.0, 125.0),
        _variant(tmp_path, "int8-nncf", "int8-static", 9.0, 180.0),
    ]
    assert select_fastest(candidates, 1.0, batch_size=1)[0].name == "int8-dynamic"
    chosen, rows = select_fastest(candidates, 1.0, batch_size=32)
    assert chosen.name == "int8-nncf" and [r["selected"] for r in rows] == [False, False, True]
    assert "win/s batched" in format_table(rows)
    # measured at another batch size, or not at all: batch-1 latency decides
    assert speed_key(candidates[2], 8) == 9.0
    assert speed_key(_variant(tmp_path, "x", "fp32", 5.0, None), 32) == 5.0


@pytest.mark.parametrize("invariant, per_call", [(True, 4), (False, 1)])
def test_batched_throughput_runs_as_the_runtime_would(invariant: bool, per_call: int) -> None:
    from qa_engine.export.features import Windows
    from qa_engine.export.parity import batched_throughput

    class Session:
        calls: list[tuple[int, ...]] = []

        def get_inputs(self):
            return [type("I", (), {"name": "input_ids"})()]

        def run(self, _outputs, feed):
            self.calls.append(feed["input_ids"].shape)

    lengths = [5, 9, 7, 3, 8, 6]
    ids = [np.arange(n, dtype=np.int64) + 1 for n in lengths]
    windows = Windows(
        inputs={"input_ids": ids},
        context_mask=[np.ones(n, bool) for n in lengths],
        offsets=[np.zeros((n, 2), np.int64) for n in lengths],
        example_index=list(range(len(lengths))),
        pad_token_id=0,
    )
    session = Session()
    result = batched_throughput(session, windows, batch_size=4, batch_invariant=invariant)
    assert result["windows_per_call"] == per_call and result["windows"] == len(lengths)
    timed = session.calls[1:]  # after the warm-up call
    assert sum(shape[0] for shape in timed) == 2 * len(lengths)
    assert max(shape[0] for shape in timed) == per_call
    assert timed[0][1] == max(lengths)  # longest first
