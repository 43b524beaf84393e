"""Build the model, windows and Trainer for a run, train it, and publish the best model."""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from qa_engine.finetune.features import examples_to_dataset, map_features
from qa_engine.finetune.options import FinetuneOptions
from qa_engine.finetune.run import (
    CHECKPOINTS_DIR,
    FinetuneInputError,
    Inputs,
    best_metrics,
    publish,
    resume_point,
)
from qa_engine.finetune.tokenizer import load_tokenizer

logger = logging.getLogger(__name__)

# Columns the decoder needs but the model must not see.
EVAL_ONLY_COLUMNS = ("example_id", "offset_mapping", "context_mask")


def load_model(options: FinetuneOptions) -> tuple[Any, Any, float | None]:
    """The QA model (fresh ``qa_outputs`` head if the checkpoint has none) and tokenizer.

    Returns:
        ``(model, tokenizer, original_attention_dropout)``; the original dropout is put
        back into the saved config, so the override only affects this training run.
    """
    import transformers

    config = transformers.AutoConfig.from_pretrained(options.model)
    original_dropout = getattr(config, "attention_probs_dropout_prob", None)
    if options.attention_dropout is not None:
        if original_dropout is None:
            raise FinetuneInputError(
                f"{options.model}: config has no attention_probs_dropout_prob to override"
            )
        config.attention_probs_dropout_prob = options.attention_dropout
    max_positions = getattr(config, "max_position_embeddings", None)
    tokenizer = load_tokenizer(
        options.tokenizer or options.model, model_max_positions=max_positions
    )
    if options.max_seq_length > tokenizer.model_max_length:
        raise FinetuneInputError(
            f"--max-seq-length {options.max_seq_length} exceeds what the model supports "
            f"({tokenizer.model_max_length})"
        )
    if tokenizer.padding_side != "right":
        raise FinetuneInputError("only right-padding tokenizers ([CLS] first) are supported")
    transformers.set_seed(options.seed)  # the fresh span head's initialisation
    model = transformers.AutoModelForQuestionAnswering.from_pretrained(options.model, config=config)
    if options.freeze_encoder:
        head = getattr(model, "qa_outputs", None)
        if head is None:
            raise FinetuneInputError(f"{type(model).__name__} has no qa_outputs head to train")
        for param in model.parameters():
            param.requires_grad = False
        for param in head.parameters():
            param.requires_grad = True
        trainable = sum(p.numel() for p in head.parameters())
        logger.info("--freeze-encoder: training only qa_outputs (%d parameters)", trainable)
    return model, tokenizer, original_dropout


def training_arguments(options: FinetuneOptions, n_train_windows: int) -> Any:
    """TrainingArguments for the run (checkpoints under ``output_dir/checkpoints``)."""
    import torch
    import transformers

    if options.precision == "fp16" and not torch.cuda.is_available():
        raise FinetuneInputError("--fp16 needs a CUDA GPU; on CPU use --bf16")
    eval_strategy = "steps" if options.eval_steps else "epoch"
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1  # torchrun / accelerate launch
    return transformers.TrainingArguments(
        output_dir=str(options.output_dir / CHECKPOINTS_DIR),
        per_device_train_batch_size=options.batch_size,
        per_device_eval_batch_size=options.batch_size,
        gradient_accumulation_steps=options.grad_accum,
        learning_rate=options.learning_rate,
        num_train_epochs=options.epochs,
        warmup_ratio=options.warmup_ratio,
        weight_decay=options.weight_decay,
        lr_scheduler_type="linear",
        optim="adamw_torch",
        bf16=options.precision == "bf16",
        fp16=options.precision == "fp16",
        seed=options.seed,
        data_seed=options.seed,
        eval_strategy=eval_strategy,
        eval_steps=options.eval_steps,
        save_strategy="steps",
        save_steps=options.save_steps,
        save_total_limit=None,  # rotation happens after sealing (QuestionAnsweringTrainer)
        save_safetensors=True,
        logging_strategy="steps",
        logging_steps=options.logging_steps,
        logging_first_step=True,
        report_to=[],
        dataloader_num_workers=options.num_workers,
        group_by_length=options.group_by_length,
        remove_unused_columns=True,
        use_cpu=not torch.cuda.is_available(),  # also what lets bf16 autocast run on CPU
        ddp_backend="gloo" if distributed and not torch.cuda.is_available() else None,
        ddp_find_unused_parameters=False,
        disable_tqdm=False,
    )


def train(options: FinetuneOptions, inputs: Inputs) -> dict[str, Any]:
    """Train, evaluate, and publish the best model; returns its dev metrics and speed."""
    import safetensors.torch
    import transformers

    from qa_engine.finetune.trainer import QuestionAnsweringTrainer, ThroughputCallback

    model, tokenizer, original_dropout = load_model(options)
    train_windows = map_features(
        examples_to_dataset(inputs.train),
        tokenizer,
        options.max_seq_length,
        options.doc_stride,
        train=True,
    )
    eval_features = map_features(
        examples_to_dataset(inputs.dev),
        tokenizer,
        options.max_seq_length,
        options.doc_stride,
        train=False,
    )
    eval_inputs = eval_features.remove_columns(list(EVAL_ONLY_COLUMNS))
    logger.info(
        "%d training questions -> %d windows; %d dev questions -> %d windows (%s)",
        len(inputs.train),
        len(train_windows),
        len(inputs.dev),
        len(eval_features),
        "SQuAD 2.0" if inputs.version_2 else "SQuAD 1.1",
    )
    args = training_arguments(options, len(train_windows))
    collator = transformers.DataCollatorWithPadding(
        tokenizer, pad_to_multiple_of=8 if options.precision != "fp32" else None
    )
    trainer = QuestionAnsweringTrainer(
        model=model,
        args=args,
        train_dataset=train_windows,
        eval_dataset=eval_inputs,
        data_collator=collator,
        processing_class=tokenizer,
        eval_examples=inputs.dev,
        eval_features=eval_features,
        version_2=inputs.version_2,
        max_answer_length=options.max_answer_length,
    )
    windows_per_step = options.batch_size * options.grad_accum * args.world_size
    throughput = ThroughputCallback(windows_per_step)
    trainer.add_callback(throughput)

    checkpoint = resume_point(options, trainer.is_world_process_zero())
    start = time.time()
    result = trainer.train(resume_from_checkpoint=checkpoint)
    train_seconds = time.time() - start
    # The last steps may not have been evaluated (--eval-steps not dividing them); the
    # decision must be the same on every rank, as evaluation gathers across ranks.
    if trainer.last_eval_step != trainer.state.global_step:
        trainer.is_in_train = True  # so this evaluation can become the best model
        trainer.evaluate()
        trainer.is_in_train = False
    trainer.accelerator.wait_for_everyone()  # rank 0 has written best.json
    best_dir, metrics = best_metrics(options)
    if metrics is None:  # cannot happen unless every evaluation raised
        raise RuntimeError("no evaluation result; nothing to publish")
    if not trainer.is_world_process_zero():
        return {"metrics": metrics}

    unwrapped = trainer.accelerator.unwrap_model(trainer.model)
    if best_dir is not None and metrics["step"] != trainer.state.global_step:
        logger.info("loading the best model (step %d, dev F1 %.2f)", metrics["step"], metrics["f1"])
        state = safetensors.torch.load_file(str(best_dir / "model.safetensors"))
        unwrapped.load_state_dict(state, strict=True)
    if original_dropout is not None:
        unwrapped.config.attention_probs_dropout_prob = original_dropout
    speed = {
        "train_seconds": round(train_seconds, 1),
        # Trainer's figure includes evaluation and checkpointing time; ours does not.
        "train_samples_per_second": result.metrics.get("train_samples_per_second"),
        "train_windows_per_second": _round(throughput.windows_per_second),
        "train_windows": len(train_windows),
        "global_step": trainer.state.global_step,
    }
    publish(
        options,
        inputs,
        unwrapped,
        tokenizer,
        metrics,
        {"speed": speed, "log_history": trainer.state.log_history},
    )
    logger.info("saved %s: dev %s", options.output_dir, _summary(metrics))
    return {"metrics": metrics, "speed": speed}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _summary(metrics: dict[str, float]) -> str:
    keys = ("exact_match", "f1", "null_threshold")
    return ", ".join(f"{k} {metrics[k]:.4g}" for k in keys if k in metrics)
