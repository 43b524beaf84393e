"""``qa-engine tune EXPORT_DIR``: measure the candidates here, print them, write the plan.

Only click and the standard library at module level; the runtime is imported when the
command runs.
"""

from __future__ import annotations

from pathlib import Path

import click

OBJECTIVES = ("throughput", "latency")  # literal copy of qa_engine.plan.OBJECTIVES


@click.command("tune")
@click.argument("export_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--data",
    "data_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="SQuAD JSON (.json, .json.gz) whose questions are timed: use a train file, never "
    "the one you evaluate on. Default: the export's self-check reference windows.",
)
@click.option(
    "--windows",
    type=click.IntRange(min=8),
    default=128,
    show_default=True,
    help="Timed windows (plus a quarter as many, from other questions, for warm-up).",
)
@click.option(
    "--objective",
    type=click.Choice(OBJECTIVES),
    default="throughput",
    show_default=True,
    help="throughput: most windows/s at the best batch size; latency: lowest batch-1 p50.",
)
@click.option(
    "--budget",
    "budget_s",
    type=click.FloatRange(min=1),
    default=120.0,
    show_default=True,
    help="Seconds the search may take; what is left then is recorded as skipped.",
)
@click.option(
    "--device",
    "devices",
    multiple=True,
    help="Only these device strings (repeatable; default: every one this machine offers).",
)
@click.option(
    "--threads",
    "threads",
    type=click.IntRange(min=1),
    multiple=True,
    help="Only these thread counts (repeatable; default: 1, half and all cores).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the plan here instead of EXPORT_DIR/qa_plan.json.",
)
def tune(
    export_dir: Path,
    data_path: Path | None,
    windows: int,
    objective: str,
    budget_s: float,
    devices: tuple[str, ...],
    threads: tuple[int, ...],
    out: Path | None,
) -> None:
    """Measure how to run EXPORT_DIR fastest on this machine and write the plan.

    \b
    Candidates: every device that passes the export's self-check here (CPU provider,
    OpenVINO f32, OpenVINO bf16 on AMX) x threads, then batch sizes, then length
    buckets on/off. QAEngine, predict, eval and serve use the plan on a machine like
    this one (same CPU, ISA flags, onnxruntime build) and ignore it, with a warning,
    anywhere else.
    """
    from qa_engine.extras import require

    require("onnxruntime", "cpu")
    from qa_engine.tune.search import TuneOptions

    try:
        options = TuneOptions(
            objective=objective,
            budget_s=budget_s,
            threads=threads or None,
            devices=devices or None,
        )
    except ValueError as err:
        raise click.UsageError(str(err)) from err
    run_tune(export_dir, options, data_path=data_path, windows=windows, out=out)


def run_tune(
    export_dir: Path,
    options,
    *,
    data_path: Path | None = None,
    windows: int = 128,
    out: Path | None = None,
) -> Path:
    """Search, print the table on stdout (progress on stderr), write the plan; its path.

    Also what ``export --tune`` runs on the export it just wrote.
    """
    from qa_engine.tune.report import format_table, load_windows
    from qa_engine.tune.search import Tuner

    try:
        sample = load_windows(export_dir, data_path, windows)
    except (FileNotFoundError, ValueError) as err:
        raise click.ClickException(str(err)) from err
    tuner = Tuner(export_dir, sample, options)
    with click.progressbar(
        length=tuner.planned_measurements,
        label=f"tuning {export_dir.name} ({options.objective}, budget {options.budget_s:g} s)",
        file=click.get_text_stream("stderr"),
    ) as bar:
        tuner.progress = lambda row: bar.update(1)
        plan, rows = tuner.run()
    click.echo(format_table(rows, plan))
    if plan is None:
        raise click.ClickException(f"{export_dir}: no candidate passed the self-check here")
    path = plan.save(out or export_dir)
    click.echo(f"wrote {path}: {plan.describe()} ({plan.machine.cpu})", err=True)
    load = plan.measured.get("loadavg_1m", 0.0)
    if load > plan.machine.cores:
        click.echo(
            f"warning: the machine was busy (load average {load:.1f} on {plan.machine.cores} "
            "cores): the timings, and so the plan, reflect that; re-run tune when it is quiet",
            err=True,
        )
    return path
