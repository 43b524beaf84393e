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
    help="Answer every question of a corpus: SQuAD JSON (.json, .json.gz), JSON Lines "
    "(.jsonl) or Parquet (.parquet) with id/question/context.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="With --file: .jsonl or .parquet streams one row per question (id, answer, score, "
    "start, end, error; a bad row carries its error); .json (or stdout, the default) "
    "writes predictions JSON {id: answer} of a SQuAD file.",
)
@click.option(
    "--ray",
    "use_ray",
    is_flag=True,
    help="Answer --file on Ray: Ray Data reads, a pool of engine actors answers "
    "(needs --out .jsonl/.parquet and the [ray] extra).",
)
@click.option(
    "--address",
    default=None,
    help="With --ray: the cluster to join (auto, HEAD:6379, ray://HEAD:10001); "
    "default: a local Ray for this run.",
)
@click.option(
    "--actors",
    type=click.IntRange(min=1),
    default=None,
    help="With --ray: engines in the pool (default: cluster CPUs / --cpus-per-actor).",
)
@click.option(
    "--cpus-per-actor",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="With --ray: CPUs per actor; also its onnxruntime threads.",
)
@click.option(
    "--gpus-per-actor",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="With --ray: GPUs per actor (use with --device cuda).",
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
    use_ray: bool,
    address: str | None,
    actors: int | None,
    cpus_per_actor: float,
    gpus_per_actor: float,
    device: str,
    threads: int | None,
    top_k: int,
    batch_size: int | None,
    max_answer_length: int | None,
) -> None:
    """Answer questions with the torch-free runtime.

    \b
    qa-engine predict EXPORT_DIR -q "Who built it?" -c "It was built by Eiffel."
    qa-engine predict EXPORT_DIR --file dev-v1.1.json --out predictions.json
    qa-engine predict EXPORT_DIR --file questions.parquet --out answers.parquet
    qa-engine predict EXPORT_DIR --file questions.jsonl --out answers.jsonl --ray
    """
    if squad_file is None and (not question or context is None):
        raise click.UsageError("give --question and --context, or --file")
    if squad_file is not None and (question or context is not None):
        raise click.UsageError("--file cannot be combined with --question/--context")
    if out is not None and squad_file is None:
        raise click.UsageError("--out needs --file")
    rows_out = out is not None and not out.lower().endswith(".json")
    if use_ray and not rows_out:
        raise click.UsageError("--ray needs --file and --out ending in .jsonl or .parquet")
    if not use_ray and (address is not None or actors is not None):
        raise click.UsageError("--address and --actors need --ray")
    if rows_out:
        if top_k > 1:
            raise click.UsageError("--top-k > 1 writes predictions JSON: use --out FILE.json")
        _answer_corpus(
            export_dir, squad_file, out, device, threads, batch_size, max_answer_length,
            ray_options=None if not use_ray else {
                "address": address, "actors": actors, "cpus_per_actor": cpus_per_actor,
                "gpus_per_actor": gpus_per_actor,
            },
        )  # fmt: skip
        return
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
    engine.warm_up(batch_size)  # OpenVINO: every bucketed shape once, before the work
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


def _answer_corpus(
    export_dir: str,
    source: str,
    out: str,
    device: str,
    threads: int | None,
    batch_size: int | None,
    max_answer_length: int | None,
    ray_options: dict | None,
) -> None:
    """Stream ``source`` to ``out`` one result row per question, here or on Ray."""
    from qa_engine.corpus import AnswerOptions, corpus_format

    try:
        corpus_format(source)
        corpus_format(out)
    except ValueError as err:
        raise click.UsageError(str(err)) from err
    try:
        if ray_options is None:
            from qa_engine.corpus.local import answer_file

            engine = load_engine(export_dir, device, threads)
            batch_size = batch_size or engine.batch_size  # the plan's when it has one
            engine.warm_up(batch_size)
            options = AnswerOptions(batch_size=batch_size, max_answer_length=max_answer_length)
            summary = answer_file(engine, source, out, options)
        else:
            from qa_engine.extras import require

            require("ray", "ray")
            from qa_engine.ray.batch import RayOptions, answer_file_ray

            if threads is not None:
                raise click.UsageError("with --ray, threads come from --cpus-per-actor")
            if device == "auto":  # per actor: its GPU if it asked for one, else CPU
                device = "cuda" if ray_options["gpus_per_actor"] > 0 else "cpu"
            options = AnswerOptions(
                batch_size=batch_size or 32, max_answer_length=max_answer_length
            )
            summary = answer_file_ray(
                export_dir, source, out, options, RayOptions(device=device, **ray_options)
            )
    except (FileNotFoundError, ValueError) as err:
        raise click.ClickException(str(err)) from err
    click.echo(
        f"wrote {summary.rows} rows ({summary.errors} with an error) to {summary.out}", err=True
    )
