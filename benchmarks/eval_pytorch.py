"""Official SQuAD EM/F1 of a fine-tuned PyTorch checkpoint (fp32 eager), for the accuracy run.

The same window preparation (run_qa's) and the same decoder as the fine-tune evaluation
and the runtime, so "PyTorch fp32" and "ONNX fp32" differ only in the engine. Prints a
JSON object like ``qa-engine eval``.

    python benchmarks/eval_pytorch.py runs/accuracy/model --data dev-v1.1.json.gz
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
import numpy as np
import torch
from transformers import AutoModelForQuestionAnswering

from qa_engine.data import load_squad
from qa_engine.finetune.evaluation import decode_features, score_predictions
from qa_engine.finetune.features import examples_to_dataset, map_features
from qa_engine.finetune.tokenizer import load_tokenizer


@click.command()
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--data", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--samples", type=int, default=None)
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--threads", type=int, default=None)
def main(model_dir: Path, data: str, samples: int | None, batch_size: int, threads: int | None):
    if threads:
        torch.set_num_threads(threads)
    qa_config = json.loads((model_dir / "qa_config.json").read_text())
    squad = load_squad(data)
    examples = squad.examples[:samples] if samples else squad.examples
    tokenizer = load_tokenizer(str(model_dir))
    features = map_features(
        examples_to_dataset(examples),
        tokenizer,
        qa_config["max_seq_length"],
        qa_config["doc_stride"],
        train=False,
    )
    model = AutoModelForQuestionAnswering.from_pretrained(model_dir).eval()
    started = time.perf_counter()
    width = qa_config["max_seq_length"]
    starts = np.full((len(features), width), -1e4, dtype=np.float32)
    ends = np.full((len(features), width), -1e4, dtype=np.float32)
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in features[0]]
    with torch.inference_mode():
        for lo in range(0, len(features), batch_size):
            rows = features[lo : lo + batch_size]
            longest = max(len(ids) for ids in rows["input_ids"])
            batch = {
                n: torch.tensor([r + [0] * (longest - len(r)) for r in rows[n]]) for n in names
            }
            out = model(**batch)
            starts[lo : lo + len(rows["input_ids"]), :longest] = out.start_logits.numpy()
            ends[lo : lo + len(rows["input_ids"]), :longest] = out.end_logits.numpy()
    predictions = decode_features(
        examples, features, starts, ends, max_answer_length=qa_config["max_answer_length"]
    )
    seconds = time.perf_counter() - started
    metrics = score_predictions(predictions, examples, squad.version_2)
    result = {
        "model": str(model_dir),
        "engine": "PyTorch fp32 eager",
        "data": data,
        "metrics": metrics,
        "questions": len(examples),
        "windows": len(features),
        "seconds": round(seconds, 2),
        "questions_per_s": round(len(examples) / seconds, 2),
        "threads": torch.get_num_threads(),
    }
    click.echo(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
