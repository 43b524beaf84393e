"""Small original extractive-QA dataset (SQuAD v1.1 JSON) shipped for the offline demo.

The paragraphs and questions were written for qa-engine (see README.md in this
folder); ``_build_demo_data.py`` regenerates ``train.json`` and ``dev.json``.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["SPLITS", "demo_data_path"]

_DIR = Path(__file__).resolve().parent

#: Splits shipped with the package, in a stable order.
SPLITS: tuple[str, ...] = ("train", "dev")


def demo_data_path(split: str) -> Path:
    """Return the path of the demo dataset file for ``split`` ("train" or "dev").

    Raises:
        ValueError: if ``split`` is not one of :data:`SPLITS`.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown demo data split {split!r}; valid splits: {', '.join(SPLITS)}")
    return _DIR / f"{split}.json"
