"""Crash-safe files of the fine-tuning stage (no torch needed): seals, best pointer, options."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qa_engine.finetune.checkpoints import (
    SEAL_NAME,
    is_complete,
    last_complete_checkpoint,
    publish_best,
    publish_model_dir,
    read_best,
    seal_checkpoint,
)
from qa_engine.finetune.options import FinetuneOptions

FILES = ("model.safetensors", "optimizer.pt", "scheduler.pt", "trainer_state.json", "rng_state.pth")


def fake_checkpoint(root: Path, step: int, *, seal: bool = True) -> Path:
    path = root / f"checkpoint-{step}"
    path.mkdir(parents=True)
    for name in FILES:
        (path / name).write_bytes(b"x" * 64)
    if seal:
        seal_checkpoint(path)
    return path


def test_only_sealed_whole_checkpoints_are_complete(tmp_path: Path) -> None:
    good = fake_checkpoint(tmp_path, 10)
    assert is_complete(good)
    assert json.loads((good / SEAL_NAME).read_text())["files"]["optimizer.pt"] == 64
    unsealed = fake_checkpoint(tmp_path, 20, seal=False)
    assert not is_complete(unsealed)  # killed while the Trainer was writing it
    truncated = fake_checkpoint(tmp_path, 30)
    (truncated / "optimizer.pt").write_bytes(b"x")
    assert not is_complete(truncated)
    half_deleted = fake_checkpoint(tmp_path, 40)
    (half_deleted / "scheduler.pt").unlink()  # killed mid-rotation
    assert not is_complete(half_deleted)


def test_resume_takes_the_newest_complete_and_clears_broken_ones(tmp_path: Path) -> None:
    fake_checkpoint(tmp_path, 10)
    fake_checkpoint(tmp_path, 20)
    fake_checkpoint(tmp_path, 30, seal=False)
    assert last_complete_checkpoint(tmp_path) == tmp_path / "checkpoint-20"
    assert (tmp_path / "checkpoint-30").exists()
    assert last_complete_checkpoint(tmp_path, remove_incomplete=True) == tmp_path / "checkpoint-20"
    assert not (tmp_path / "checkpoint-30").exists()
    assert last_complete_checkpoint(tmp_path / "missing") is None


def test_best_pointer_moves_atomically(tmp_path: Path) -> None:
    assert read_best(tmp_path) is None
    for step, f1 in ((5, 40.0), (10, 60.0)):
        staged = tmp_path / f".best-{step}.tmp"
        staged.mkdir()
        (staged / "model.safetensors").write_bytes(b"w")
        publish_best(tmp_path, staged, step, {"f1": f1, "step": step})
    best = read_best(tmp_path)
    assert best["dir"] == "best-10" and best["metrics"]["f1"] == 60.0
    assert not (tmp_path / "best-5").exists() and not list(tmp_path.glob(".best-*"))


def test_model_dir_marker_is_written_last(tmp_path: Path) -> None:
    staged = tmp_path / "out" / ".final.tmp"
    staged.mkdir(parents=True)
    for name in ("model.safetensors", "tokenizer.json", "qa_config.json"):
        (staged / name).write_text(name)
    publish_model_dir(staged, tmp_path / "out", "qa_config.json")
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["model.safetensors", "qa_config.json", "tokenizer.json"]


def test_options_validate_with_clear_messages(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="doc_stride"):
        FinetuneOptions(tmp_path, max_seq_length=64, doc_stride=64)
    with pytest.raises(ValueError, match="both --train-file and --validation-file"):
        FinetuneOptions(tmp_path, train_file=tmp_path / "t.json")
    with pytest.raises(ValueError, match="dataset must be one of"):
        FinetuneOptions(tmp_path, dataset="nq")
    with pytest.raises(ValueError, match="precision"):
        FinetuneOptions(tmp_path, precision="int8")
    options = FinetuneOptions(tmp_path, train_file="a.json", validation_file="b.json")
    assert options.dataset is None and options.to_json()["train_file"] == "a.json"
