"""``qa-engine predict``: answer questions with an export directory."""

from __future__ import annotations

import json
from pathlib import Path

import click

from qa_engine.commands import batch_size_option, device_option, load_engine, threads_option


@click.command("predict")
@click.argument("export_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--question", "-q", multiple=True, help="A question (repeatable).")
@click.option("--context", "-c", default=None, help="The context to answer from.")
@click.option(
    "--file",
    "squad_file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="A SQuAD JSON file (.json or .json.gz) to answer every question of.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="With --file: write predictions JSON {id: answer} here (default: stdout).",
)
@device_option
@threads_option
@click.option("--top-k", type=click.IntRange(min=1), default=1, show_default=True)
@batch_size_option
@click.option(
    "--max-answer-length",
    type=click.IntRange(min=1),
    default=None,
    help="Longest answer in tokens (default: the manifest's).",
)
def predict(
    export_dir: str,
    question: tuple[str, ...],
    context: str | None,
    squad_file: str | None,
    out: str | None,
    device: str,
    threads: int | None,
    top_k: int,
    batch_size: int,
    max_answer_length: int | None,
) -> None:
    """Answer questions with the torch-free runtime.

    \b
    qa-engine predict EXPORT_DIR -q "Who built it?" -c "It was built by Eiffel."
    qa-engine predict EXPORT_DIR --file dev-v1.1.json --out predictions.json
    """
    if squad_file is None and (not question or context is None):
        raise click.UsageError("give --question and --context, or --file")
    if squad_file is not None and (question or context is not None):
        raise click.UsageError("--file cannot be combined with --question/--context")
    if out is not None and squad_file is None:
        raise click.UsageError("--out needs --file")
    engine = load_engine(export_dir, device, threads)
    options = {"batch_size": batch_size, "top_k": top_k, "max_answer_length": max_answer_length}

    if squad_file is None:
        try:
            results = engine.predict(list(question), context, **options)
        except (TypeError, ValueError) as err:
            raise click.UsageError(str(err)) from err
        for asked, result in zip(question, results, strict=True):
            answers = result if isinstance(result, list) else [result]
            if len(question) > 1:
                click.echo(f"Q: {asked}")
            for rank, answer in enumerate(answers, 1):
                prefix = f"{rank}. " if top_k > 1 else ""
                click.echo(
                    f"{prefix}{answer.text!r}  score={answer.score:.4f} "
                    f"chars={answer.start}:{answer.end}"
                )
        return

    from qa_engine.data import load_squad

    try:
        data = load_squad(squad_file)
    except (FileNotFoundError, ValueError) as err:
        raise click.ClickException(str(err)) from err
    examples = data.examples
    results = engine.predict(
        [ex.question for ex in examples],
        [ex.context for ex in examples],
        handle_impossible=data.version_2 or None,
        **options,
    )
    predictions = {
        ex.id: [a.text for a in result] if isinstance(result, list) else result.text
        for ex, result in zip(examples, results, strict=True)
    }
    text = json.dumps(predictions, ensure_ascii=False, indent=2)
    if out is None:
        click.echo(text)
    else:
        Path(out).write_text(text + "\n", encoding="utf-8")
        click.echo(f"wrote {len(predictions)} predictions to {out}", err=True)
