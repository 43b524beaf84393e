"""The CUDA side of :mod:`qa_engine.graphs`: onnxruntime's CUDA provider with
``enable_cuda_graph``, one IO binding to preallocated device buffers per bucket.

onnxruntime captures a CUDA graph on a session's first runs and replays it afterwards;
with several shapes, each is told apart by the ``gpu_graph_id`` run option (onnxruntime
>= 1.17), each id with its own bound buffers. Older builds get one session per bucket.
A graph needs every node on the CUDA provider; a model with nodes left on the CPU is
refused by onnxruntime, and the error says so.

onnxruntime objects come from :mod:`qa_engine.session` (the one module importing it).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from qa_engine import session as sessions
from qa_engine.graphs import GraphBucket

ort = sessions.ort
_FLOAT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


def supports_graph_ids(version: str | None = None) -> bool:
    """Whether this onnxruntime takes the ``gpu_graph_id`` run option (>= 1.17)."""
    major, minor = (int(part) for part in (version or ort.__version__).split(".")[:2])
    return (major, minor) >= (1, 17)


class CudaGraphBinder:
    """Device buffers bound once per bucket, inputs copied in, the bucket's graph replayed.

    Args:
        model_path: ``model.onnx``.
        device_id: CUDA device.
        threads: Intra-op threads of the host side.

    Raises:
        ValueError: This onnxruntime has no CUDA provider (``pip install`` named), or it
            cannot build a graph session for the model (nodes outside CUDA).
        RuntimeError: onnxruntime fell back to the CPU.
    """

    def __init__(
        self, model_path: str | os.PathLike, device_id: int = 0, threads: int | None = None
    ) -> None:
        self.path = Path(model_path)
        available = sessions.available_providers()
        if sessions.CUDA not in available:
            raise ValueError(
                f"CUDA graphs need {sessions.CUDA}, but this onnxruntime build offers only "
                f'{available}; pip install "qa-engine[gpu]"'
            )
        self.device_id = device_id
        self.threads = threads
        self.per_bucket_sessions = not supports_graph_ids()
        self._shared = None if self.per_bucket_sessions else self._new_session()
        probe = self._shared or self._new_session()
        declared = {i.name: i.type for i in probe.get_inputs()}
        self.input_names = [name for name in sessions.MODEL_INPUTS if name in declared]
        self.input_types = {
            name: sessions._INT_TYPES.get(declared[name], np.int64) for name in self.input_names
        }
        outputs = {o.name: o.type for o in probe.get_outputs()}
        names = ["start_logits", "end_logits"]
        self.output_names = names if set(names) <= set(outputs) else list(outputs)[:2]
        self.output_types = {n: _FLOAT_TYPES.get(outputs[n], np.float32) for n in self.output_names}
        # graph id -> (session, binding, {name: OrtValue})
        self._bound: dict[int, tuple[Any, Any, dict[str, Any]]] = {}

    def _new_session(self):
        resolved = [(sessions.CUDA, {"device_id": self.device_id, "enable_cuda_graph": "1"})]
        try:
            session = sessions.create_session(self.path, resolved, self.threads, quiet=True)
        except ValueError as err:
            raise ValueError(
                f"{self.path}: onnxruntime cannot build a CUDA-graph session for this model "
                f"(every node must run on CUDA; an --optimize O4 export fuses the shape "
                f"arithmetic that otherwise stays on the CPU): {err}"
            ) from err
        if sessions.CUDA not in session.get_providers():
            raise RuntimeError(
                f"CUDA graphs requested but the session runs on {session.get_providers()}"
            )
        return session

    def allocate(self, bucket: GraphBucket) -> None:
        session = self._shared or self._new_session()
        shape = [bucket.rows, bucket.width]
        values = {}
        binding = session.io_binding()
        for name in self.input_names:
            values[name] = ort.OrtValue.ortvalue_from_shape_and_type(
                shape, self.input_types[name], "cuda", self.device_id
            )
            binding.bind_ortvalue_input(name, values[name])
        for name in self.output_names:
            values[name] = ort.OrtValue.ortvalue_from_shape_and_type(
                shape, self.output_types[name], "cuda", self.device_id
            )
            binding.bind_ortvalue_output(name, values[name])
        self._bound[bucket.graph_id] = (session, binding, values)

    def write(self, bucket: GraphBucket, name: str, array: np.ndarray) -> None:
        values = self._bound[bucket.graph_id][2]
        values[name].update_inplace(np.ascontiguousarray(array, dtype=self.input_types[name]))

    def replay(self, bucket: GraphBucket) -> tuple[np.ndarray, np.ndarray]:
        session, binding, values = self._bound[bucket.graph_id]
        options = ort.RunOptions()
        if not self.per_bucket_sessions:
            options.add_run_config_entry("gpu_graph_id", str(bucket.graph_id))
        session.run_with_iobinding(binding, options)
        start, end = (values[name].numpy() for name in self.output_names)
        return start.astype(np.float32, copy=False), end.astype(np.float32, copy=False)
