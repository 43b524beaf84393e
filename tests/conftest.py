"""Offline test kit: a tiny BERT QA model and WordPiece tokenizer built on the fly.

Nothing downloads: ``HF_HUB_OFFLINE=1`` is set for the whole session. Fixtures that
need torch/transformers/optimum import them lazily and skip when they are missing, so
the torch-free runtime tests still run in a runtime-only environment.
"""

from __future__ import annotations

import os
import shutil
import string
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

_WORDS = (
    "the a an of in on at to is was who what when where which how many year city river "
    "born first built name called capital people more than one two three by and for with "
    "from it its as his her their did does long old new great king war museum"
).split()


def tiny_vocab() -> list[str]:
    """About 130 WordPiece tokens: specials, letters, digits, punctuation, common words."""
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = list(string.ascii_lowercase) + list(string.digits)
    pieces = ["##" + c for c in string.ascii_lowercase + string.digits]
    punct = list(".,;:!?'\"()-")
    vocab = specials + chars + pieces + punct + _WORDS
    return list(dict.fromkeys(vocab))


def write_tiny_model(
    directory: Path,
    *,
    seed: int = 0,
    with_tokenizer_config: bool = True,
    lowercase: bool = True,
    max_position_embeddings: int = 512,
) -> Path:
    """Save a tiny BertForQuestionAnswering (hidden 32, 2 layers, 4 heads) and tokenizer."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    directory.mkdir(parents=True, exist_ok=True)
    vocab_file = directory / "vocab.txt"
    vocab = tiny_vocab()
    if not lowercase:  # a "cased" vocabulary: upper-case letters too
        vocab += list(string.ascii_uppercase) + ["##" + c for c in string.ascii_uppercase]
    vocab_file.write_text("\n".join(vocab) + "\n")
    config = transformers.BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=max_position_embeddings,
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
    )
    torch.manual_seed(seed)
    model = transformers.BertForQuestionAnswering(config)
    model.save_pretrained(directory, safe_serialization=True)
    if with_tokenizer_config:
        tokenizer = transformers.BertTokenizerFast(
            vocab_file=str(vocab_file), do_lower_case=lowercase, model_max_length=512
        )
        tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny QA checkpoint with vocab.txt, tokenizer.json and safetensors weights."""
    return write_tiny_model(tmp_path_factory.mktemp("tiny-bert-qa"))


@pytest.fixture(scope="session")
def tiny_spanbert_style_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Like SpanBERT's release: a cased vocab.txt, config and weights, no tokenizer config."""
    return write_tiny_model(
        tmp_path_factory.mktemp("tiny-spanbert"), with_tokenizer_config=False, lowercase=False
    )


def export_tiny_onnx(model_dir: Path, out_dir: Path, **manifest_fields) -> Path:
    """Plain fp32 ONNX export through optimum plus a manifest (no qa-engine export code)."""
    pytest.importorskip("optimum.exporters.onnx")
    from optimum.exporters.onnx import main_export

    from qa_engine.manifest import ExportManifest

    main_export(
        str(model_dir), output=str(out_dir), task="question-answering", no_post_process=True
    )
    for name in ("tokenizer.json", "config.json"):
        if not (out_dir / name).exists():
            shutil.copy(model_dir / name, out_dir / name)
    fields = {"max_seq_length": 48, "doc_stride": 16, "source_model": str(model_dir)}
    fields.update(manifest_fields)
    ExportManifest(**fields).save(out_dir)
    return out_dir


@pytest.fixture(scope="session")
def tiny_onnx_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model exported to ONNX fp32 (max_seq_length 48, doc_stride 16)."""
    return export_tiny_onnx(tiny_model_dir, tmp_path_factory.mktemp("tiny-onnx"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real SQuAD files beside the repo; tests using it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA


def serve_each(batcher, questions, contexts) -> list:
    """Start the serve ``batcher``, submit every (question, context) as a request of its
    own, all at once, then close it: each request's decoded results, in order."""
    import asyncio

    async def main():
        await batcher.start()
        try:
            return await asyncio.gather(
                *(batcher.submit([q], [c]) for q, c in zip(questions, contexts, strict=True))
            )
        finally:
            await batcher.close()

    return asyncio.run(main())
