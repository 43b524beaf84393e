"""qa-engine: fast, verified extractive question answering for BERT-family encoders.

``from qa_engine import QAEngine`` loads the torch-free runtime (numpy, tokenizers,
onnxruntime). Fine-tuning, export and benchmarking live in subpackages behind extras.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qa_engine.decoding import Answer

__version__ = "0.1.0"
__all__ = ["Answer", "QAEngine", "__version__"]

if TYPE_CHECKING:
    from qa_engine.engine import QAEngine


def __getattr__(name: str) -> Any:
    # Lazy so that `import qa_engine` (and the CLI's --help) never needs onnxruntime.
    if name == "QAEngine":
        from qa_engine.engine import QAEngine

        return QAEngine
    raise AttributeError(f"module 'qa_engine' has no attribute {name!r}")
