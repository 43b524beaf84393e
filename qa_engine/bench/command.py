"""``qa-engine bench``: every variant and peer on the same questions, one table.

Only click and the standard library are imported here; the harness and its heavy
dependencies are imported when the command runs.
"""

from __future__ import annotations

import shlex

import click


def _int_list(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}") from None
    if not sizes or any(s < 1 for s in sizes):
        raise click.BadParameter(f"expected positive integers, got {value!r}")
    return sizes


def _peer_list(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, ...]:
    from qa_engine.bench.plan import PEERS

    peers = tuple(p.strip() for p in value.split(",") if p.strip() and p.strip() != "none")
    unknown = [p for p in peers if p not in PEERS]
    if unknown:
        raise click.BadParameter(f"unknown peer(s) {unknown}; valid: {', '.join(PEERS)}, none")
    return peers


def _command_line(ctx: click.Context) -> str:
    """The command as it could be retyped, rebuilt from the parsed options."""
    words = ["qa-engine", "bench"]
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        flag = param.opts[0]
        if value is None or param.name in ("progress", "api_key"):
            continue
        if param.name in ("models", "urls"):
            for model in value:
                words += [flag, model]
        elif isinstance(value, tuple):
            words += [flag, ",".join(str(v) for v in value) or "none"]
        else:
            words += [flag, str(value)]
    return shlex.join(words)


@click.command()
@click.option(
    "--model",
    "models",
    multiple=True,
    help="Fine-tuned PyTorch dir or export dir (DIR@DEVICE: that export on DEVICE); repeat "
    "for each variant.",
)
@click.option(
    "--url",
    "urls",
    multiple=True,
    help="Load-test an HTTP endpoint of the Inference API QA contract instead (NAME=URL or "
    "URL; repeat to compare endpoints side by side, e.g. qa-engine serve and a peer).",
)
@click.option(
    "--concurrency",
    default="1,8,32",
    show_default=True,
    callback=_int_list,
    help="With --url: concurrent closed-loop clients, one level after another.",
)
@click.option(
    "--requests",
    "n_requests",
    type=click.IntRange(min=1),
    default=500,
    show_default=True,
    help="With --url: requests per concurrency level.",
)
@click.option(
    "--long-fraction",
    type=click.FloatRange(0, 1, max_open=True),
    default=0.0,
    show_default=True,
    help="With --url: this fraction of the requests (at least one) asks about one long "
    "document, sent by one more client from the start, the others a second later; the "
    "ordinary requests' latency is reported apart.",
)
@click.option(
    "--long-chars",
    type=click.IntRange(min=1),
    default=1_000_000,
    show_default=True,
    help="With --url and --long-fraction: characters of the long document (the data's "
    "contexts joined).",
)
@click.option("--api-key", envvar="QA_ENGINE_API_KEY", default=None, help="With --url: bearer key.")
@click.option(
    "--data",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="SQuAD v1.1/v2.0 JSON file (plain or .gz).",
)
@click.option("--samples", type=click.IntRange(min=1), help="Use the first N questions.")
@click.option(
    "--batch-sizes",
    default="1,8,32",
    show_default=True,
    callback=_int_list,
    help="Throughput batch sizes (the first one's predictions are scored).",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    help="Intra-op threads for every runner (default: the usable cores).",
)
@click.option(
    "--device",
    type=click.Choice(["cpu", "cuda", "openvino", "auto"]),
    default="cpu",
    show_default=True,
    help="Where qa-engine runs (openvino: onnxruntime's OpenVINO provider; auto: what "
    "QAEngine's default takes after its self-check). On cuda the peers run on the GPU too, "
    "and the transformers pipeline also runs under fp16 autocast. One export can also be "
    "given as --model DIR@DEVICE (e.g. DIR@openvino:f32) to run it there.",
)
@click.option(
    "--peers",
    default="transformers,optimum",
    show_default=True,
    callback=_peer_list,
    help="Peer stacks to compare with: transformers, optimum, openvino (plain OpenVINO, "
    "needs the openvino package), or none.",
)
@click.option(
    "--bf16",
    type=click.Choice(["auto", "on", "off"]),
    default="auto",
    show_default=True,
    help="Add the transformers pipeline under bf16 autocast (auto: CPU has AMX/AVX512-BF16).",
)
@click.option(
    "--latency-runs",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="Timed batch-1 questions per runner.",
)
@click.option(
    "--warmup",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    help="Untimed batch-1 rounds first.",
)
@click.option(
    "--memory",
    type=click.Choice(["subprocess", "off"]),
    default="subprocess",
    show_default=True,
    help="Peak RSS: one fresh subprocess per runner, or skip.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default="bench-results",
    show_default=True,
    help="Where results.json, results.md and the PNG plots go.",
)
@click.option("--progress/--no-progress", default=True, help="tqdm progress bars.")
def bench(
    models: tuple[str, ...],
    urls: tuple[str, ...],
    concurrency: tuple[int, ...],
    n_requests: int,
    long_fraction: float,
    long_chars: int,
    api_key: str | None,
    data: str,
    samples: int | None,
    batch_sizes: tuple[int, ...],
    threads: int | None,
    device: str,
    peers: tuple[str, ...],
    bf16: str,
    latency_runs: int,
    warmup: int,
    memory: str,
    out: str,
    progress: bool,
) -> None:
    """Benchmark export dirs against the transformers and Optimum pipelines.

    Every runner answers the same questions with the same window settings; latency
    and throughput are measured interleaved (A B A B ...) so machine drift cancels.

    With --url instead of --model: concurrent clients against HTTP endpoints
    (throughput, p50/p95/p99, status counts, lost requests).
    """
    if urls:
        if models:
            raise click.UsageError("give --model or --url, not both")
        from qa_engine.bench.load_command import run_url_bench

        run_url_bench(
            click.get_current_context(),
            urls,
            data,
            samples,
            concurrency,
            n_requests,
            api_key,
            out,
            long_fraction=long_fraction,
            long_chars=long_chars,
        )
        return
    if not models:
        raise click.UsageError("give --model (one or more) or --url")
    from qa_engine.bench.environment import cpu_has_bf16, usable_cores
    from qa_engine.bench.harness import BenchOptions, run_benchmark
    from qa_engine.bench.plan import plan_runners, resolve_settings, split_model_arg
    from qa_engine.bench.report import ratio_table, write_reports
    from qa_engine.data import load_squad

    # The same explicit thread count for every stack: library defaults differ.
    threads = threads or usable_cores()
    squad = load_squad(data)
    examples = squad.examples[:samples] if samples else squad.examples
    if not examples:
        raise click.ClickException(f"{data}: no questions")
    try:
        settings = resolve_settings([split_model_arg(m)[0] for m in models], squad.version_2)
        specs = plan_runners(
            list(models),
            settings,
            peers=peers,
            device=device,
            threads=threads,
            bf16=bf16 == "on" or (bf16 == "auto" and cpu_has_bf16()),
            fp16=device == "cuda",
        )
    except (ValueError, FileNotFoundError) as err:
        raise click.ClickException(str(err)) from err
    options = BenchOptions(
        batch_sizes=batch_sizes,
        latency_runs=latency_runs,
        warmup=warmup,
        memory=memory,
        progress=progress,
    )
    click.echo(f"benchmarking {len(specs)} runners on {len(examples)} questions:", err=True)
    for spec in specs:
        click.echo(f"  {spec.name}: {spec.model_dir}", err=True)
    results = run_benchmark(
        specs,
        examples,
        version_2=squad.version_2,
        options=options,
        config={"data": str(data), "peers": list(peers)},
        command=_command_line(click.get_current_context()),
    )
    paths = write_reports(results, out)
    click.echo(ratio_table(results))
    for path in paths.values():
        click.echo(f"wrote {path}", err=True)
    failed = [r["name"] for r in results["runners"] if r["error"]]
    if failed:
        click.echo(f"failed runners (see results.md): {', '.join(failed)}", err=True)
