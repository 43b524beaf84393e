"""One fine-tuning run, start to finish: check inputs, train, keep the best, publish.

``load_inputs`` does every check that can fail on bad input (data format, answers,
model weights, lengths) before any model is built, so a typo costs seconds, not an
epoch. ``train`` then runs the Trainer (resuming when asked) and ``publish`` writes the
final model dir: best weights, ``tokenizer.json``, ``qa_config.json`` (written last).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qa_engine.data import QAExample, SquadData, load_squad
from qa_engine.finetune.checkpoints import (
    last_complete_checkpoint,
    publish_model_dir,
    read_best,
)
from qa_engine.finetune.options import FinetuneOptions

logger = logging.getLogger(__name__)

QA_CONFIG_NAME = "qa_config.json"
CHECKPOINTS_DIR = "checkpoints"
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


class FinetuneInputError(ValueError):
    """Bad input found before training: data, model or options."""


@dataclass
class Inputs:
    """Checked data and settings of a run."""

    train: list[QAExample]
    dev: list[QAExample]
    version_2: bool
    train_source: str
    dev_source: str


def _load(source: Any, split: str, version_2: bool | None, what: str) -> SquadData:
    try:
        return load_squad(source, split=split, version_2=version_2)
    except FileNotFoundError:
        raise
    except ValueError as err:
        raise FinetuneInputError(f"{what} is not usable SQuAD data: {err}") from err
    except Exception as err:  # hub datasets: offline, unknown id, ... (many exception types)
        if isinstance(source, str) and not Path(source).exists():
            raise FinetuneInputError(
                f"{what}: could not load hub dataset {source!r} ({type(err).__name__}: {err}); "
                "without network access pass --train-file and --validation-file"
            ) from err
        raise


def check_model_source(model: str) -> None:
    """A local model dir must hold config.json and weights; a hub id is checked later."""
    path = Path(model).expanduser()
    if not path.exists():
        if model.startswith((".", "/", "~")) or os.sep + os.sep in model:
            raise FileNotFoundError(f"model dir not found: {model}")
        return  # a hub id: from_pretrained will fetch or fail with its own message
    if not path.is_dir():
        raise FinetuneInputError(f"--model {model}: expected a checkpoint directory")
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path / 'config.json'} not found: {model} is not a model dir")
    if not any((path / name).is_file() for name in WEIGHT_FILES):
        raise FileNotFoundError(
            f"{model} has no weights: expected one of {', '.join(WEIGHT_FILES)}"
        )


def load_inputs(options: FinetuneOptions) -> Inputs:
    """Load and check the data and model source; raise before anything is trained."""
    check_model_source(options.model)
    out = options.output_dir
    if out.resolve() == Path(options.model).expanduser().resolve():
        raise FinetuneInputError("--output-dir must differ from --model (it would be overwritten)")
    if not options.resume and out.exists():
        if (out / QA_CONFIG_NAME).exists() or (out / CHECKPOINTS_DIR).exists():
            raise FinetuneInputError(
                f"{out} already holds a fine-tuning run; pass --resume to continue it "
                "or choose another --output-dir"
            )
    if options.resume and (out / QA_CONFIG_NAME).exists():
        if last_complete_checkpoint(out / CHECKPOINTS_DIR) is None:
            raise FinetuneInputError(
                f"{out} holds a finished model and no checkpoint to resume from; "
                "choose another --output-dir to train again"
            )
    if options.train_file is not None:
        train = _load(
            options.train_file, "train", options.version_2, f"--train-file {options.train_file}"
        )
        dev = _load(
            options.validation_file,
            "validation",
            options.version_2,
            f"--validation-file {options.validation_file}",
        )
    else:
        v2 = options.dataset == "squad_v2" if options.version_2 is None else options.version_2
        train = _load(options.dataset, "train", v2, f"--dataset {options.dataset}")
        dev = _load(options.dataset, "validation", v2, f"--dataset {options.dataset}")
    version_2 = (
        options.version_2 if options.version_2 is not None else train.version_2 or dev.version_2
    )

    train_examples = [ex for ex in train.examples if ex.is_impossible or ex.answers["text"]]
    if len(train_examples) < len(train.examples):
        logger.warning(
            "dropping %d training question(s) whose answers all had bad offsets",
            len(train.examples) - len(train_examples),
        )
    if options.max_train_samples is not None:
        train_examples = train_examples[: options.max_train_samples]
    if not train_examples:
        raise FinetuneInputError(f"{train.source}: no training questions")
    if not any(ex.answers["text"] for ex in train_examples):
        raise FinetuneInputError(f"{train.source}: no training question has an answer")
    if any(ex.is_impossible for ex in train_examples) and not version_2:
        raise FinetuneInputError(
            f"{train.source} has unanswerable questions (SQuAD 2.0); pass --version-2"
        )

    dev_examples = list(dev.examples)
    if options.max_eval_samples is not None:
        dev_examples = dev_examples[: options.max_eval_samples]
    if not dev_examples:
        raise FinetuneInputError(f"{dev.source}: no dev questions")
    if not any(ex.answers["text"] for ex in dev_examples):
        raise FinetuneInputError(
            f"{dev.source}: no dev question has a gold answer, so EM/F1 cannot be measured"
        )
    if not version_2:
        scorable = [ex for ex in dev_examples if ex.answers["text"]]
        if len(scorable) < len(dev_examples):
            logger.warning(
                "%d dev question(s) have no valid gold answer and are not scored",
                len(dev_examples) - len(scorable),
            )
    return Inputs(train_examples, dev_examples, version_2, train.source, dev.source)


def qa_config(options: FinetuneOptions, version_2: bool, metrics: dict[str, float]) -> dict:
    """The ``qa_config.json`` payload of CONTRACTS.md."""
    return {
        "max_seq_length": options.max_seq_length,
        "doc_stride": options.doc_stride,
        "max_answer_length": options.max_answer_length,
        "version_2": version_2,
        "null_threshold": metrics.get("null_threshold") if version_2 else None,
        "base_model": _model_reference(options.model),
        "metrics": metrics,
    }


def _model_reference(model: str) -> str:
    """A local model dir as an absolute path (the run may be started anywhere); hub ids as is."""
    path = Path(model).expanduser()
    return str(path.resolve()) if path.is_dir() else model


def publish(
    options: FinetuneOptions,
    inputs: Inputs,
    model: Any,
    tokenizer: Any,
    metrics: dict[str, float],
    extra_log: dict[str, Any],
) -> Path:
    """Write the final model dir atomically (``qa_config.json`` last)."""
    out = options.output_dir
    staged = out / ".final.tmp"
    if staged.exists():
        shutil.rmtree(staged)
    model.save_pretrained(staged, safe_serialization=True)
    tokenizer.save_pretrained(staged)
    if not (staged / "tokenizer.json").is_file():
        raise RuntimeError("the tokenizer did not write tokenizer.json (not a fast tokenizer?)")
    (staged / "finetune_log.json").write_text(
        json.dumps({"options": options.to_json(), **extra_log}, indent=2, default=str) + "\n"
    )
    config = qa_config(options, inputs.version_2, metrics)
    (staged / QA_CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
    publish_model_dir(staged, out, QA_CONFIG_NAME)
    if not options.keep_checkpoints:
        shutil.rmtree(out / CHECKPOINTS_DIR, ignore_errors=True)
    return out


def resume_point(options: FinetuneOptions, is_main: bool) -> str | None:
    """The checkpoint to resume from (``--resume``), or ``None`` to start fresh."""
    if not options.resume:
        return None
    root = options.output_dir / CHECKPOINTS_DIR
    checkpoint = last_complete_checkpoint(root, remove_incomplete=is_main)
    if checkpoint is None:
        logger.warning("--resume: no complete checkpoint in %s; starting from scratch", root)
        return None
    logger.info("resuming from %s", checkpoint)
    return str(checkpoint)


def best_metrics(options: FinetuneOptions) -> tuple[Path | None, dict[str, float] | None]:
    """The best model dir and its dev metrics, if one was saved."""
    root = options.output_dir / CHECKPOINTS_DIR
    best = read_best(root)
    if best is None:
        return None, None
    return root / best["dir"], best["metrics"]
