"""Export the SpanBERT-base architecture at O3 and int8 dynamic; print size, fusion, parity.

The checkpoint is built here, offline: ``BertConfig`` with SpanBERT-base's shape (vocab
28996, 12 layers, hidden 768, 12 heads, intermediate 3072), random weights (seed 0), and
a cased ``BertTokenizerFast`` over a generated 28,996-token vocabulary. Random weights
make the answers meaningless but the numbers that matter here real: graph size, which
operators ORT fused, how far each variant's logits are from PyTorch's, and latency.

    python benchmarks/export_spanbert_base.py [--out DIR] [--parity-samples 16]
"""

from __future__ import annotations

import argparse
import itertools
import json
import string
import sys
import time
from pathlib import Path

VOCAB_SIZE = 28996  # SpanBERT-base-cased
SEED = 0


def generated_vocab(size: int = VOCAB_SIZE) -> list[str]:
    """A cased WordPiece vocabulary: specials, characters, their ## forms, then made-up words."""
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = list(string.ascii_letters + string.digits + string.punctuation)
    vocab = specials + chars + ["##" + c for c in string.ascii_letters + string.digits]
    syllables = [c + v for c in "bcdfghjklmnprstvwz" for v in "aeiou"]
    words = ("".join(p) for n in (2, 3) for p in itertools.product(syllables, repeat=n))
    seen = set(vocab)
    for word in words:
        for form in (word, word.capitalize(), "##" + word):
            if len(vocab) == size:
                return vocab
            if form not in seen:
                seen.add(form)
                vocab.append(form)
    raise AssertionError("not enough generated words")


def build_checkpoint(directory: Path) -> Path:
    """Save a random-weight SpanBERT-base-shaped BertForQuestionAnswering with its tokenizer."""
    import torch
    import transformers

    directory.mkdir(parents=True, exist_ok=True)
    vocab_file = directory / "vocab.txt"
    vocab_file.write_text("\n".join(generated_vocab()) + "\n")
    config = transformers.BertConfig(
        vocab_size=VOCAB_SIZE,
        hidden_size=768,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=3072,
        max_position_embeddings=512,
    )
    torch.manual_seed(SEED)
    transformers.BertForQuestionAnswering(config).save_pretrained(directory)
    tokenizer = transformers.BertTokenizerFast(
        vocab_file=str(vocab_file), do_lower_case=False, model_max_length=512
    )
    tokenizer.save_pretrained(directory)
    return directory


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/qa-engine-spanbert-base"))
    parser.add_argument("--parity-samples", type=int, default=16)
    parser.add_argument("--json", type=Path, help="Also write the results here.")
    args = parser.parse_args()

    from qa_engine.export.options import ExportOptions
    from qa_engine.export.pipeline import run_export
    from qa_engine.export.variants import format_table

    def log(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    checkpoint = args.out / "checkpoint"
    if not (checkpoint / "model.safetensors").is_file():
        log(f"Building the SpanBERT-base architecture (random weights) in {checkpoint}")
        build_checkpoint(checkpoint)
    results = {}
    for name, quantize in (("O3", "none"), ("O3-int8-dynamic", "int8-dynamic")):
        t0 = time.perf_counter()
        options = ExportOptions(
            model=str(checkpoint),
            out_dir=args.out / name,
            optimize="O3",
            quantize=quantize,
            parity_samples=args.parity_samples,
            max_seq_length=384,
            doc_stride=128,
            force=True,
        )
        result = run_export(options, log=log)
        m = result.manifest
        results[name] = {
            "export_seconds": round(time.perf_counter() - t0, 1),
            "size_mb": round(result.chosen.size_mb, 1),
            "variant": result.chosen.name,
            "fused_ops": m.fused_ops,
            "parity": {
                k: m.parity[k]
                for k in (
                    "max_abs_logit_diff",
                    "answer_agreement",
                    "f1_vs_pytorch",
                    "questions",
                    "windows",
                )
            },
            "latency_ms_b1": m.parity["latency_ms_b1"],
            "table": result.table,
        }
        print(f"\n== {name}: {result.out_dir}")
        print(format_table(result.table))
        print(f"size {results[name]['size_mb']} MB, fused ops {m.fused_ops}")
        print(f"parity {results[name]['parity']}, latency {m.parity['latency_ms_b1']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
