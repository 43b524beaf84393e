"""Crash-safe files: complete-or-absent checkpoints, the best model, the final model dir.

A SIGKILL can land anywhere, so nothing is trusted unless it was finished:

- Trainer checkpoints (``checkpoints/checkpoint-N``) are written by the Trainer, then
  sealed with ``COMPLETE.json`` listing every file and its size (written to a temp file,
  fsynced, renamed). Resume takes the newest sealed checkpoint whose files all still have
  their sizes; unsealed or damaged ones (killed mid-write or mid-rotation) are removed.
- The best model (``checkpoints/best-N``) is saved to a temp dir and renamed, then
  ``checkpoints/best.json`` (atomic) points at it.
- The final model dir gets ``qa_config.json`` last: a model dir without it is unfinished.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

SEAL_NAME = "COMPLETE.json"
BEST_POINTER = "best.json"
CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
# Files a resumable checkpoint cannot do without.
REQUIRED = ("model.safetensors", "optimizer.pt", "scheduler.pt", "trainer_state.json")


def fsync_dir(directory: Path) -> None:
    """Flush a directory entry (new or renamed files) to disk where the OS allows it."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write JSON to ``path`` via a fsynced temp file and a rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=2, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def _fsync_tree(directory: Path) -> None:
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            with open(path, "rb") as f:
                os.fsync(f.fileno())
    fsync_dir(directory)


def seal_checkpoint(directory: Path) -> None:
    """Mark a fully written checkpoint as complete (file list and sizes)."""
    _fsync_tree(directory)
    files = {
        str(p.relative_to(directory)): p.stat().st_size
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.name != SEAL_NAME
    }
    write_json_atomic(directory / SEAL_NAME, {"files": files})


def is_complete(directory: Path) -> bool:
    """Whether a checkpoint was sealed and all of its files are still there, whole."""
    seal = directory / SEAL_NAME
    if not seal.is_file():
        return False
    try:
        files = json.loads(seal.read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    if any(name not in files for name in REQUIRED):
        return False
    for name, size in files.items():
        path = directory / name
        if not path.is_file() or path.stat().st_size != size:
            return False
    return True


def checkpoint_dirs(root: Path) -> list[tuple[int, Path]]:
    """``(step, path)`` of every ``checkpoint-N`` dir under ``root``, oldest first."""
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        match = CHECKPOINT_RE.match(path.name)
        if match and path.is_dir():
            found.append((int(match.group(1)), path))
    return sorted(found)


def last_complete_checkpoint(root: Path, *, remove_incomplete: bool = False) -> Path | None:
    """The newest complete checkpoint under ``root``; optionally delete broken ones."""
    best: Path | None = None
    for _, path in checkpoint_dirs(root):
        if is_complete(path):
            best = path
        elif remove_incomplete:
            logger.warning("removing incomplete checkpoint %s (interrupted while written)", path)
            shutil.rmtree(path, ignore_errors=True)
    return best


def read_best(root: Path) -> dict[str, Any] | None:
    """The best-model pointer ``{"step", "dir", "metrics"}``, if a complete one exists."""
    pointer = root / BEST_POINTER
    if not pointer.is_file():
        return None
    try:
        best = json.loads(pointer.read_text())
    except (OSError, ValueError):
        return None
    if not (root / best.get("dir", "")).is_dir():
        return None
    return best


def publish_best(root: Path, staged: Path, step: int, metrics: dict[str, float]) -> Path:
    """Rename a fully saved ``staged`` model dir to ``best-<step>`` and point at it."""
    _fsync_tree(staged)
    final = root / f"best-{step}"
    if final.exists():
        shutil.rmtree(final)
    os.replace(staged, final)
    fsync_dir(root)
    previous = read_best(root)
    write_json_atomic(root / BEST_POINTER, {"step": step, "dir": final.name, "metrics": metrics})
    if previous is not None and previous["dir"] != final.name:
        shutil.rmtree(root / previous["dir"], ignore_errors=True)
    for stale in root.glob(".best-*.tmp"):  # from an earlier killed save
        shutil.rmtree(stale, ignore_errors=True)
    return final


def publish_model_dir(staged: Path, output_dir: Path, marker: str) -> None:
    """Move every file of ``staged`` into ``output_dir``, the ``marker`` file last.

    Each move is an atomic rename on the same filesystem, and the marker
    (``qa_config.json``) only appears once everything else is in place.
    """
    _fsync_tree(staged)
    output_dir.mkdir(parents=True, exist_ok=True)
    stale_marker = output_dir / marker
    if stale_marker.exists():  # a previous finished model is being replaced
        stale_marker.unlink()
    names = sorted(p.name for p in staged.iterdir() if p.name != marker)
    for name in [*names, marker]:
        target = output_dir / name
        if target.is_dir():
            shutil.rmtree(target)
        os.replace(staged / name, target)
    fsync_dir(output_dir)
    shutil.rmtree(staged, ignore_errors=True)
