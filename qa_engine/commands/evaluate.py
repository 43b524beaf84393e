"""``qa-engine eval``: official SQuAD EM/F1 (v1.1 or v2.0) of an export directory."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import click

from qa_engine.commands import batch_size_option, device_option, load_engine, threads_option


@click.command("eval")
@click.argument("export_dir", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--data",
    "data_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="SQuAD v1.1/v2.0 JSON file (.json or .json.gz).",
)
@click.option(
    "--samples", type=click.IntRange(min=1), default=None, help="Score only the first N questions."
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Write predictions JSON {id: answer} here.",
)
@click.option(
    "--null-threshold",
    type=float,
    default=None,
    help="SQuAD 2.0: answer '' when null - best span score exceeds this (default: manifest).",
)
@device_option
@threads_option
@batch_size_option
def evaluate(
    export_dir: str,
    data_path: str,
    samples: int | None,
    out: str | None,
    null_threshold: float | None,
    device: str,
    threads: int | None,
    batch_size: int | None,
) -> None:
    """Score EXPORT_DIR on a SQuAD file with the official EM/F1.

    Prints a JSON object: the metrics (v2.0 adds HasAns/NoAns and best_f1 with its
    threshold, in null-minus-best-score units), question count, seconds and questions/s.
    """
    from qa_engine.data import gold_answers, load_squad

    try:
        data = load_squad(data_path)
    except (FileNotFoundError, ValueError) as err:
        raise click.ClickException(str(err)) from err
    examples = data.examples[:samples] if samples else data.examples
    if not examples:
        raise click.ClickException(f"{data_path}: no questions")
    engine = load_engine(export_dir, device, threads)
    from qa_engine.metrics import squad_metrics, squad_v2_metrics

    version_2 = data.version_2
    engine.warm_up(batch_size)  # OpenVINO: every bucketed shape once, before the clock
    start = time.perf_counter()
    decoded = list(
        engine.decode(
            [ex.question for ex in examples],
            [ex.context for ex in examples],
            batch_size=batch_size,
            handle_impossible=version_2,
            null_threshold=null_threshold if version_2 else None,
        )
    )
    seconds = time.perf_counter() - start
    predictions = {ex.id: d.answers[0].text for ex, d in zip(examples, decoded, strict=True)}

    result: dict[str, object] = dict(squad_metrics(predictions, examples, version_2))
    if version_2:
        # The threshold search of evaluate-v2.0.py over null - best span scores (what
        # BERT's run_squad writes as null_odds). Passed raw, with an infinite cut-off so
        # they never override the predictions above (they are not probabilities).
        null_odds = {ex.id: d.null_minus_best for ex, d in zip(examples, decoded, strict=True)}
        references = {ex.id: g for ex in examples if (g := gold_answers(ex))}
        best = squad_v2_metrics(predictions, references, null_odds, na_prob_thresh=math.inf)
        result.update({k: v for k, v in best.items() if k.startswith("best_")})
    result.update(
        {
            "version_2": version_2,
            "questions": len(examples),
            "seconds": round(seconds, 3),
            "questions_per_second": round(len(examples) / seconds, 2),
            "providers": engine.providers,
            "batch_invariant": engine.batch_invariant,
            "batch_size": batch_size or engine.batch_size,
            "buckets": engine.buckets,
            "plan": engine.plan_note,
            "self_check": engine.self_check.to_dict(),
        }
    )
    if out is not None:
        Path(out).write_text(
            json.dumps(predictions, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
    click.echo(json.dumps(result, indent=2))
