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


def run_url_bench(ctx, urls, data, samples, concurrency, n_requests, api_key, out) -> dict:
    """Every endpoint, every concurrency level, on the first ``samples`` questions."""
    from qa_engine.bench.command import _command_line
    from qa_engine.bench.environment import collect_environment
    from qa_engine.bench.load import run_load, wait_ready
    from qa_engine.bench.load_report import SCHEMA, load_table, write_load_reports
    from qa_engine.data import load_squad

    endpoints = [parse_url(u) for u in urls]
    examples = load_squad(data).examples[: samples or n_requests]
    if not examples:
        raise click.ClickException(f"{data}: no questions")
    pairs = [(ex.question, ex.context) for ex in examples]
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
            )
            levels.append(level)
        results["endpoints"].append({"name": name, "url": url, "levels": levels})
    results["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    paths = write_load_reports(results, out)
    click.echo(load_table(results))
    for path in paths.values():
        click.echo(f"wrote {path}", err=True)
    return results
