"""``qa-engine bench --url``: the load benchmark behind the bench command."""

from __future__ import annotations

from datetime import datetime, timezone

import click


def parse_url(value: str) -> tuple[str, str]:
    """``NAME=URL`` or ``URL`` (named by its host and port)."""
    name, sep, url = value.partition("=")
    if not sep or name.startswith("http"):
        name, url = value.split("//", 1)[-1].rstrip("/"), value
    if not url.startswith(("http://", "https://")):
        raise click.BadParameter(f"expected NAME=URL or URL, got {value!r}", param_hint="--url")
    return name, url


def run_url_bench(
    ctx,
    urls,
    data,
    samples,
    concurrency,
    n_requests,
    api_key,
    out,
    long_fraction: float = 0.0,
    long_chars: int = 1_000_000,
) -> dict:
    """Every endpoint, every concurrency level, on the first ``samples`` questions.

    ``long_fraction``: that fraction of each level's requests asks about one document of
    ``long_chars`` characters (the data's contexts joined); the ordinary requests'
    figures are reported apart (see :mod:`qa_engine.bench.load`).
    """
    from qa_engine.bench.command import _command_line
    from qa_engine.bench.environment import collect_environment
    from qa_engine.bench.load import long_pair, run_load, wait_ready
    from qa_engine.bench.load_report import SCHEMA, load_table, write_load_reports
    from qa_engine.data import load_squad

    endpoints = [parse_url(u) for u in urls]
    everything = load_squad(data).examples
    examples = everything[: samples or n_requests]
    if not examples:
        raise click.ClickException(f"{data}: no questions")
    pairs = [(ex.question, ex.context) for ex in examples]
    long_pairs = []
    if long_fraction:
        long_pairs = [long_pair(examples[0].question, [e.context for e in everything], long_chars)]
    results = {
        "schema": SCHEMA,
        "created": None,
        "command": _command_line(ctx),
        "environment": collect_environment(),
        "config": {
            "data": str(data),
            "samples": len(examples),
            "requests": n_requests,
            "concurrency": list(concurrency),
            "long_fraction": long_fraction,
            "long_chars": long_chars if long_fraction else None,
        },
        "endpoints": [],
    }
    for name, url in endpoints:
        base = url.rstrip("/").removesuffix("/predict")
        try:
            wait_ready(base, timeout=60)
        except TimeoutError as err:
            raise click.ClickException(str(err)) from err
        levels = []
        for clients in concurrency:
            click.echo(f"{name}: {clients} client(s), {n_requests} requests", err=True)
            level = run_load(
                url,
                pairs,
                concurrency=clients,
                requests=n_requests,
                api_key=api_key,
                examples=examples,
                long_pairs=long_pairs,
                long_fraction=long_fraction,
            )
            levels.append(level)
        results["endpoints"].append({"name": name, "url": url, "levels": levels})
    results["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    paths = write_load_reports(results, out)
    click.echo(load_table(results))
    for path in paths.values():
        click.echo(f"wrote {path}", err=True)
    return results
