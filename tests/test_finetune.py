"""Fine-tuning stage on the tiny model: real learning, crash safety, SpanBERT tokenizer, v2.

Everything runs offline on a tiny BERT (hidden 32, 2 layers) with small SQuAD files
written by the tests. Subprocess runs (SIGKILL/resume, torchrun) are marked slow.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from qa_engine.data import QAExample, save_squad_json

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("datasets")
pytest.importorskip("accelerate")

from click.testing import CliRunner  # noqa: E402

from qa_engine.finetune.command import finetune  # noqa: E402
from qa_engine.finetune.evaluation import decode_features, score_predictions  # noqa: E402
from qa_engine.finetune.features import examples_to_dataset, map_features  # noqa: E402
from qa_engine.finetune.tokenizer import load_tokenizer  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

# (context, question, answer): words from the tiny vocabulary, digits spelled per piece.
FACTS = [
    ("the king was born in 1821 in the city of paris .", "when was the king born ?", "1821"),
    (
        "the river nile is long and old . it is called the great river .",
        "what is called the great river ?",
        "the river nile",
    ),
    (
        "the museum was built in 1907 by the people of rome .",
        "who built the museum ?",
        "the people of rome",
    ),
    (
        "the capital city of france is paris , a great city .",
        "what is the capital city of france ?",
        "paris",
    ),
    ("his first war was in 1066 . he was king for two year .", "when was his first war ?", "1066"),
    (
        "three people did more than one war with the king .",
        "how many people did more than one war ?",
        "three",
    ),
    ("her name was anna and she was born in oslo in 1950 .", "where was anna born ?", "oslo"),
    (
        "the old city of york was built on the river ouse .",
        "what river was york built on ?",
        "the river ouse",
    ),
]


def make_examples(
    facts=FACTS, prefix: str = "q", impossible: tuple[int, ...] = ()
) -> list[QAExample]:
    out = []
    for i, (context, question, answer) in enumerate(facts):
        if i in impossible:
            out.append(
                QAExample(
                    f"{prefix}{i}", "t", context, question, {"text": [], "answer_start": []}, True
                )
            )
            continue
        start = context.index(answer)
        out.append(
            QAExample(
                f"{prefix}{i}", "t", context, question, {"text": [answer], "answer_start": [start]}
            )
        )
    return out


@pytest.fixture()
def squad_file(tmp_path: Path) -> Path:
    return save_squad_json(make_examples(), tmp_path / "mem.json")


def run_cli(args: list[str]) -> object:
    result = CliRunner().invoke(finetune, args, catch_exceptions=False)
    return result


def base_args(model: Path, train: Path, dev: Path, out: Path) -> list[str]:
    options = {
        "--model": model, "--train-file": train, "--validation-file": dev, "--output-dir": out,
        "--max-seq-length": 48, "--doc-stride": 16, "--batch-size": 4, "--logging-steps": 5,
        "--seed": 0,
    }  # fmt: skip
    return [str(x) for pair in options.items() for x in pair]


def dev_f1(model_dir: Path, examples: list[QAExample], tokenizer_dir: Path | None = None) -> float:
    """Independent scorer: plain forward pass (no Trainer) + decoder + official metric."""
    model = transformers.AutoModelForQuestionAnswering.from_pretrained(model_dir).eval()
    tokenizer = load_tokenizer(str(tokenizer_dir or model_dir))
    features = map_features(examples_to_dataset(examples), tokenizer, 48, 16, train=False)
    starts, ends = [], []
    with torch.no_grad():
        for row in features:
            out = model(
                input_ids=torch.tensor([row["input_ids"]]),
                attention_mask=torch.tensor([row["attention_mask"]]),
                token_type_ids=torch.tensor([row["token_type_ids"]]),
            )
            starts.append(out.start_logits[0].numpy())
            ends.append(out.end_logits[0].numpy())
    width = max(len(s) for s in starts)
    pad = lambda xs: np.stack([np.pad(x, (0, width - len(x)), constant_values=-100) for x in xs])  # noqa: E731
    preds = decode_features(examples, features, pad(starts), pad(ends))
    return score_predictions(preds, examples, version_2=False)["f1"]


# --- windows -------------------------------------------------------------------------


def test_train_windows_label_the_answer_or_cls(tiny_model_dir: Path) -> None:
    tokenizer = load_tokenizer(str(tiny_model_dir))
    long_context = "the king was born in the old city . " * 6 + "his war was in 1066 ."
    ex = QAExample(
        "x",
        "t",
        long_context,
        "   when was his war ?",
        {"text": ["1066"], "answer_start": [long_context.index("1066")]},
    )
    windows = map_features(examples_to_dataset([ex]), tokenizer, 32, 8, train=True)
    assert len(windows) > 1  # the context overflows into several windows
    cls = tokenizer.cls_token_id
    found = 0
    for w in windows:
        s, e = w["start_positions"], w["end_positions"]
        if s == 0 and e == 0:
            continue  # answer not in this window: labelled at [CLS]
        found += 1
        assert tokenizer.decode(w["input_ids"][s : e + 1]).replace(" ", "") == "1066"
        assert w["input_ids"][0] == cls
        assert len(w["input_ids"]) <= 32
    assert found >= 1
    # the question was left-stripped: no window starts with whitespace tokens
    assert tokenizer.decode(windows[0]["input_ids"][1:3]).startswith("when")


def test_dev_windows_carry_offsets_and_context_mask(tiny_model_dir: Path) -> None:
    tokenizer = load_tokenizer(str(tiny_model_dir))
    examples = make_examples()[:2]
    feats = map_features(examples_to_dataset(examples), tokenizer, 48, 16, train=False)
    assert set(feats["example_id"]) == {"q0", "q1"}
    for row in feats:
        assert len(row["context_mask"]) == len(row["input_ids"]) == len(row["offset_mapping"])
        assert row["context_mask"][0] == 0  # [CLS] is not context


# --- tokenizer -----------------------------------------------------------------------


def test_spanbert_style_dir_gets_a_cased_512_tokenizer(
    tiny_spanbert_style_dir: Path, tmp_path: Path
) -> None:
    naive = transformers.AutoTokenizer.from_pretrained(tiny_spanbert_style_dir)
    assert naive.model_max_length > 10**6  # the pitfall: unbounded (and lower-cases)
    tokenizer = load_tokenizer(str(tiny_spanbert_style_dir), model_max_positions=512)
    assert tokenizer.model_max_length == 512
    assert tokenizer.tokenize("Paris") == ["P", "##a", "##r", "##i", "##s"]
    tokenizer.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "tokenizer.json").read_text())
    assert saved["normalizer"]["lowercase"] is False
    from tokenizers import Tokenizer

    assert Tokenizer.from_file(str(tmp_path / "tokenizer.json")).encode("Paris").tokens[1] == "P"


def test_uncased_vocab_without_config_stays_uncased(tiny_model_dir: Path, tmp_path: Path) -> None:
    for name in ("vocab.txt", "config.json", "model.safetensors"):
        (tmp_path / name).write_bytes((tiny_model_dir / name).read_bytes())
    tokenizer = load_tokenizer(str(tmp_path))
    assert tokenizer.tokenize("Paris")[0] == "p"


# --- bad input -----------------------------------------------------------------------


def test_bad_inputs_fail_before_training(
    tiny_model_dir: Path, tmp_path: Path, squad_file: Path
) -> None:
    not_squad = tmp_path / "rows.json"
    not_squad.write_text(json.dumps([{"question": "q", "answer": "a"}]))
    out = tmp_path / "out"
    r = CliRunner().invoke(finetune, base_args(tiny_model_dir, not_squad, squad_file, out))
    assert r.exit_code != 0 and "not usable SQuAD data" in r.output and "--train-file" in r.output

    no_answers = [
        QAExample(ex.id, ex.title, ex.context, ex.question, {"text": [], "answer_start": []})
        for ex in make_examples()
    ]
    dev = save_squad_json(no_answers, tmp_path / "dev.json")
    r = CliRunner().invoke(finetune, base_args(tiny_model_dir, squad_file, dev, out))
    assert r.exit_code != 0 and "no dev question has a gold answer" in r.output

    no_weights = tmp_path / "empty-model"
    no_weights.mkdir()
    (no_weights / "config.json").write_text((tiny_model_dir / "config.json").read_text())
    r = CliRunner().invoke(finetune, base_args(no_weights, squad_file, squad_file, out))
    assert r.exit_code != 0 and "has no weights" in r.output

    r = CliRunner().invoke(
        finetune, base_args(tiny_model_dir, squad_file, squad_file, out) + ["--doc-stride", "48"]
    )
    assert r.exit_code != 0 and "doc_stride" in r.output
    r = CliRunner().invoke(
        finetune,
        base_args(tiny_model_dir, squad_file, squad_file, out) + ["--max-seq-length", "4096"],
    )
    assert r.exit_code != 0 and "exceeds" in r.output
    assert not (out / "checkpoints").exists()


def test_help_does_not_import_torch() -> None:
    code = (
        "import sys; import qa_engine.cli, qa_engine.finetune.command;"
        "print(sorted(m for m in ('torch', 'transformers', 'datasets') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- learning ------------------------------------------------------------------------


@pytest.mark.slow
def test_memorisation_loss_falls_and_f1_rises(
    tiny_model_dir: Path, squad_file: Path, tmp_path: Path
) -> None:
    examples = make_examples()
    before = dev_f1(tiny_model_dir, examples)
    out = tmp_path / "out"
    r = run_cli(
        base_args(tiny_model_dir, squad_file, squad_file, out)
        + [
            "--epochs",
            "40",
            "--learning-rate",
            "3e-3",
            "--warmup-ratio",
            "0.05",
            "--save-steps",
            "1000",
            "--eval-steps",
            "20",
            # Length-grouped batches must not reorder the dev windows against their
            # offsets (transformers applies group_by_length to evaluation too).
            "--group-by-length",
        ]
    )
    assert r.exit_code == 0, r.output
    config = json.loads((out / "qa_config.json").read_text())
    log = json.loads((out / "finetune_log.json").read_text())
    losses = [e["loss"] for e in log["log_history"] if "loss" in e]
    assert losses[-1] < 0.3 * losses[0], losses
    assert config["metrics"]["f1"] >= 90.0 and config["metrics"]["f1"] > before + 50, (
        before,
        config,
    )
    # The saved model scores the same through an independent forward pass.
    assert dev_f1(out, examples) == pytest.approx(config["metrics"]["f1"], abs=1e-6)
    assert set(config) == {
        "max_seq_length",
        "doc_stride",
        "max_answer_length",
        "version_2",
        "null_threshold",
        "base_model",
        "metrics",
    }
    assert (config["max_seq_length"], config["doc_stride"], config["version_2"]) == (48, 16, False)
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        assert (out / name).is_file()
    assert not list(out.glob("*.bin")) and not (out / ".final.tmp").exists()


@pytest.mark.slow
def test_freeze_encoder_trains_only_the_head(
    tiny_model_dir: Path, squad_file: Path, tmp_path: Path
) -> None:
    from safetensors.torch import load_file

    out = tmp_path / "out"
    r = run_cli(
        base_args(tiny_model_dir, squad_file, squad_file, out)
        + ["--epochs", "2", "--learning-rate", "1e-2", "--freeze-encoder", "--delete-checkpoints"]
    )
    assert r.exit_code == 0, r.output
    before = load_file(tiny_model_dir / "model.safetensors")
    after = load_file(out / "model.safetensors")
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"qa_outputs.weight", "qa_outputs.bias"}
    assert not (out / "checkpoints").exists()


@pytest.mark.slow
def test_v2_threshold_is_tuned_and_stored(tiny_model_dir: Path, tmp_path: Path) -> None:
    examples = make_examples(impossible=(1, 4, 6))
    data = save_squad_json(examples, tmp_path / "v2.json")
    out = tmp_path / "out"
    r = run_cli(
        base_args(tiny_model_dir, data, data, out) + ["--epochs", "3", "--learning-rate", "3e-3"]
    )
    assert r.exit_code == 0, r.output
    config = json.loads((out / "qa_config.json").read_text())
    assert config["version_2"] is True
    assert isinstance(config["null_threshold"], float)
    assert config["metrics"]["null_threshold"] == config["null_threshold"]
    assert {"HasAns_f1", "NoAns_f1", "f1", "exact_match"} <= set(config["metrics"])


# --- crash safety and distributed ------------------------------------------------------


def _cli_cmd(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "qa_engine.cli", "finetune", *args]


def _env() -> dict[str, str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


@pytest.mark.slow
def test_sigkill_then_resume_matches_an_uninterrupted_run(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    examples = [
        QAExample(f"{ex.id}-{k}", ex.title, ex.context, ex.question, ex.answers)
        for k in range(4)
        for ex in make_examples()
    ]
    data = save_squad_json(examples, tmp_path / "train.json")
    dev = save_squad_json(make_examples(), tmp_path / "dev.json")
    extra = ["--epochs", "6", "--learning-rate", "2e-3", "--save-steps", "8", "--eval-steps", "16"]

    reference = tmp_path / "reference"
    subprocess.run(
        _cli_cmd(base_args(tiny_model_dir, data, dev, reference) + extra),
        env=_env(),
        check=True,
        capture_output=True,
        timeout=300,
    )

    out = tmp_path / "killed"
    proc = subprocess.Popen(
        _cli_cmd(base_args(tiny_model_dir, data, dev, out) + extra),
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 240
    try:
        while time.time() < deadline and proc.poll() is None:
            if list((out / "checkpoints").glob("checkpoint-*/COMPLETE.json")):
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the run ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert not (out / "qa_config.json").exists()
    killed_at = sorted(
        int(p.name.split("-")[1]) for p in (out / "checkpoints").glob("checkpoint-*")
    )

    resumed = subprocess.run(
        _cli_cmd(base_args(tiny_model_dir, data, dev, out) + extra + ["--resume"]),
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from" in resumed.stderr
    ref = json.loads((reference / "qa_config.json").read_text())["metrics"]
    got = json.loads((out / "qa_config.json").read_text())["metrics"]
    # Same seed, same data order and RNG after resume: the same model up to float noise.
    assert got["step"] == ref["step"], (killed_at, got, ref)
    assert got["f1"] == pytest.approx(ref["f1"], abs=1e-6)
    assert got["exact_match"] == pytest.approx(ref["exact_match"], abs=1e-6)
    from safetensors.torch import load_file

    a = load_file(reference / "model.safetensors")
    b = load_file(out / "model.safetensors")
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-5


@pytest.mark.slow
def test_torchrun_two_cpu_processes(tiny_model_dir: Path, squad_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        "29517",
        "-m",
        "qa_engine.cli",
        "finetune",
        *base_args(tiny_model_dir, squad_file, squad_file, out),
        "--epochs",
        "2",
        "--save-steps",
        "2",
        "--eval-steps",
        "2",
    ]
    result = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    config = json.loads((out / "qa_config.json").read_text())
    assert 0.0 <= config["metrics"]["f1"] <= 100.0
    state = json.loads(
        sorted((out / "checkpoints").glob("checkpoint-*/trainer_state.json"))[-1].read_text()
    )
    # 8 questions -> 8 windows, batch 4 per process x 2 processes: 1 step per epoch.
    assert state["global_step"] == 2
    assert len(list((out / "checkpoints").glob("checkpoint-*/rng_state_*.pth"))) == 2
