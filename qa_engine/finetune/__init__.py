"""Fine-tuning stage (needs ``pip install "qa-engine[train]"``).

``qa-engine finetune`` (:mod:`qa_engine.finetune.command`) trains a BERT-family encoder
on SQuAD with the Hugging Face Trainer and writes a model dir with ``qa_config.json``.
Modules: ``options`` (validated settings), ``tokenizer`` (SpanBERT fix), ``features``
(run_qa windows), ``evaluation`` (decoder + official metrics), ``trainer`` (QA Trainer,
sealed checkpoints), ``checkpoints`` (crash-safe files), ``run`` (input checks,
publishing), ``training`` (wiring it all together).
"""

from qa_engine.finetune.options import FinetuneOptions

__all__ = ["FinetuneOptions"]
