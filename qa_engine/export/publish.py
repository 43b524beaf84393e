"""Where an export may be written, and writing it atomically.

An export is built in a hidden staging dir beside ``OUT_DIR`` (same filesystem) and
renamed into place at the very end, so a crash leaves either nothing at ``OUT_DIR`` or
the previous export, never a half-written dir that looks whole.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

from qa_engine.manifest import MANIFEST_NAME, MODEL_NAME

STAGING_MARK = ".partial-"


def _is_within(path: Path, parent: Path) -> bool:
    return path == parent or parent in path.parents


def looks_like_export(directory: Path) -> bool:
    """A dir a previous export wrote (it has a manifest or a model.onnx)."""
    return (directory / MANIFEST_NAME).is_file() or (directory / MODEL_NAME).is_file()


def check_destination(model: str, out_dir: Path, *, force: bool) -> None:
    """Refuse destinations that would lose data.

    Raises:
        ValueError: ``out_dir`` is the input dir, contains it, or is a file.
        FileExistsError: ``out_dir`` holds files and ``force`` is off, or holds files that
            are not an export (never replaced, even with ``force``).
    """
    out = out_dir.expanduser().resolve()
    source = Path(model).expanduser()
    if source.exists():
        source = source.resolve()
        if _is_within(source, out):
            raise ValueError(
                f"refusing to write the export to {out_dir}: it is (or contains) the input "
                f"model dir {model}; choose another OUT_DIR"
            )
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out_dir} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        if not looks_like_export(out):
            raise FileExistsError(
                f"{out_dir} exists and is not an export dir (no {MANIFEST_NAME} or "
                f"{MODEL_NAME}); refusing to replace it, even with --force"
            )
        if not force:
            raise FileExistsError(f"{out_dir} already holds an export; pass --force to replace it")


def make_staging(out_dir: Path) -> Path:
    """A fresh hidden dir beside ``out_dir`` to build the export in."""
    out = out_dir.expanduser().resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}{STAGING_MARK}", dir=out.parent))
    # mkdtemp makes it private (0700); the published export gets ordinary permissions.
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)
    return staging


def publish(staging: Path, out_dir: Path) -> Path:
    """Move a finished staging dir to ``out_dir``, replacing what is there.

    Two renames within one filesystem: the old export is moved aside, the new one into
    place, then the old one is deleted.
    """
    out = out_dir.expanduser().resolve()
    backup = None
    if out.exists():
        backup = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
        os.rename(out, backup)
    try:
        os.rename(staging, out)
    except OSError:
        if backup is not None:
            os.rename(backup, out)  # put the previous export back
        raise
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)
    return out


def discard(staging: Path) -> None:
    """Delete a staging dir after a failure."""
    shutil.rmtree(staging, ignore_errors=True)
