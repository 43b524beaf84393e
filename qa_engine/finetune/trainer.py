"""The Hugging Face Trainer, taught to score QA and to keep its files crash-safe.

``QuestionAnsweringTrainer`` (after run_qa's ``trainer_qa.py``) evaluates by decoding the
dev windows with the project's decoder and scoring with the official metrics; while
training, each new best dev F1 is saved as ``checkpoints/best-N`` (see ``checkpoints``).
Resumable checkpoints are sealed once complete and rotated only after sealing, so a kill
at any moment leaves at least one complete checkpoint behind.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from transformers import Trainer, TrainerCallback

from qa_engine.data import QAExample
from qa_engine.finetune.checkpoints import (
    checkpoint_dirs,
    is_complete,
    publish_best,
    read_best,
    seal_checkpoint,
)
from qa_engine.finetune.evaluation import decode_features, score_predictions

logger = logging.getLogger(__name__)

# Complete checkpoints to keep for resuming (the best model is kept separately).
KEEP_CHECKPOINTS = 1


class QuestionAnsweringTrainer(Trainer):
    """A Trainer whose ``evaluate`` returns official SQuAD EM/F1 and tracks the best model.

    Args:
        eval_examples: The dev questions.
        eval_features: Their windows with ``example_id``, ``offset_mapping`` and
            ``context_mask`` (the trainer's ``eval_dataset`` holds model inputs only).
        version_2: Score with SQuAD 2.0 rules and tune the null threshold.
        max_answer_length: Longest answer in tokens when decoding.
        **kwargs: Passed to ``transformers.Trainer``.
    """

    def __init__(
        self,
        *args: Any,
        eval_examples: Sequence[QAExample],
        eval_features: Any,
        version_2: bool,
        max_answer_length: int,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.eval_examples = eval_examples
        self.eval_features = eval_features
        self.version_2 = version_2
        self.max_answer_length = max_answer_length
        self.last_eval_step: int | None = None
        self.last_metrics: dict[str, float] | None = None

    def _get_eval_sampler(self, eval_dataset: Any) -> Any:
        """Keep the dev windows in order: the decoder maps logits to windows by position.

        transformers >= 4.5x applies ``group_by_length`` to evaluation too, which would
        shuffle the logits against ``eval_features`` and score garbage.
        """
        if self.args.world_size <= 1:
            from torch.utils.data import SequentialSampler

            return SequentialSampler(eval_dataset)
        return None  # distributed: accelerate shards in order and gathers in order

    @property
    def checkpoint_root(self) -> Path:
        return Path(self.args.output_dir)

    def evaluate(
        self,
        eval_dataset: Any = None,
        ignore_keys: list[str] | None = None,
        metric_key_prefix: str = "eval",
    ) -> dict[str, float]:
        """Decode and score the dev set; keep the model if its F1 is the best so far."""
        dataloader = self.get_eval_dataloader(self.eval_dataset)
        start = time.time()
        output = self.evaluation_loop(
            dataloader,
            description="Evaluation",
            prediction_loss_only=False,
            ignore_keys=ignore_keys,
            metric_key_prefix=metric_key_prefix,
        )
        start_logits, end_logits = (np.asarray(p, dtype=np.float32) for p in output.predictions)
        infer_s = time.time() - start
        predictions = decode_features(
            self.eval_examples,
            self.eval_features,
            start_logits,
            end_logits,
            max_answer_length=self.max_answer_length,
        )
        scores = score_predictions(predictions, self.eval_examples, self.version_2)
        elapsed = time.time() - start
        metrics = {f"{metric_key_prefix}_{k}": v for k, v in scores.items()}
        metrics[f"{metric_key_prefix}_runtime"] = round(elapsed, 3)
        metrics[f"{metric_key_prefix}_windows_per_second"] = round(
            len(self.eval_features) / max(infer_s, 1e-9), 2
        )
        metrics[f"{metric_key_prefix}_questions_per_second"] = round(
            len(self.eval_examples) / max(elapsed, 1e-9), 2
        )
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(
            self.args, self.state, self.control, metrics
        )
        self.last_eval_step = self.state.global_step
        self.last_metrics = scores
        if self.is_in_train:
            self._maybe_save_best(scores)
        return metrics

    def _maybe_save_best(self, scores: dict[str, float]) -> None:
        """Save the model as ``best-<step>`` when its dev F1 beats the stored best."""
        root = self.checkpoint_root
        best = read_best(root)
        if best is not None and scores["f1"] <= best["metrics"]["f1"]:
            return
        step = self.state.global_step
        staged = root / f".best-{step}.tmp"
        self.save_model(str(staged), _internal_call=True)  # rank 0 writes; others no-op
        if self.args.should_save:
            publish_best(root, staged, step, {**scores, "step": step})
            logger.info("new best dev F1 %.2f at step %d", scores["f1"], step)

    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        super()._save_checkpoint(model, trial)
        # Every rank has written its share (e.g. rng_state_<rank>.pth) before sealing.
        self.accelerator.wait_for_everyone()
        if self.args.should_save:
            directory = self.checkpoint_root / f"checkpoint-{self.state.global_step}"
            seal_checkpoint(directory)
            self._rotate_sealed()
        self.accelerator.wait_for_everyone()

    def _rotate_checkpoints(self, use_mtime: bool = False, output_dir: str | None = None) -> None:
        # Trainer's rotation would run before our seal; see _rotate_sealed.
        return

    def _rotate_sealed(self) -> None:
        """Delete all but the newest KEEP_CHECKPOINTS complete checkpoints (and broken ones)."""
        import shutil

        found = checkpoint_dirs(self.checkpoint_root)
        complete = [path for _, path in found if is_complete(path)]
        keep = set(complete[-KEEP_CHECKPOINTS:])
        newest_step = found[-1][0] if found else -1
        for step, path in found:
            if path in keep or step == newest_step:
                continue
            shutil.rmtree(path, ignore_errors=True)


class ThroughputCallback(TrainerCallback):
    """Measures training windows/second, optimizer steps only (no evaluation or saving).

    Logs the rate of each logging interval on the main process; ``windows_per_second``
    is the whole run's rate.
    """

    def __init__(self, windows_per_step: int) -> None:
        self.windows_per_step = windows_per_step
        self.step_seconds = 0.0
        self.steps = 0
        self._interval_seconds = 0.0
        self._interval_steps = 0
        self._step_start: float | None = None

    @property
    def windows_per_second(self) -> float | None:
        if self.steps == 0 or self.step_seconds <= 0:
            return None
        return self.steps * self.windows_per_step / self.step_seconds

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._step_start = time.perf_counter()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._step_start is None:
            return
        elapsed = time.perf_counter() - self._step_start
        self._step_start = None
        self.step_seconds += elapsed
        self.steps += 1
        self._interval_seconds += elapsed
        self._interval_steps += 1

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
        if logs is None or "loss" not in logs or self._interval_steps == 0:
            return
        rate = self._interval_steps * self.windows_per_step / max(self._interval_seconds, 1e-9)
        if state.is_world_process_zero and math.isfinite(rate):
            logger.info(
                "step %d/%d  loss %.4f  %.2f train windows/s",
                state.global_step,
                state.max_steps,
                logs["loss"],
                rate,
            )
        self._interval_seconds = 0.0
        self._interval_steps = 0
