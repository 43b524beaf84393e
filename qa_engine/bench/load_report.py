"""Outputs of a load benchmark: ``load.json``, ``load.md`` and ``load.png``.

Schema of ``load.json`` (``schema`` "qa-engine-load/1"): ``created``, ``command``,
``environment`` (:func:`qa_engine.bench.environment.collect_environment`), ``config``
{data, samples, requests, concurrency}, ``endpoints`` [{name, url, levels:
[:func:`qa_engine.bench.load.run_load` results]}], and optional sections a script adds
(``offline``, ``burst``, ``soak``, ``targets``), rendered when present.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from qa_engine.bench.report import DASH, _fmt, _pyplot, _save

SCHEMA = "qa-engine-load/1"


def load_table(results: dict[str, Any]) -> str:
    """One row per endpoint and concurrency level."""
    head = ["endpoint", "clients", "q/s", "p50 ms", "p95 ms", "p99 ms", "statuses", "lost", "F1"]
    rows = [head, ["---", "---:"] + ["---:"] * 4 + ["---", "---:", "---:"]]
    for endpoint in results["endpoints"]:
        for level in endpoint["levels"]:
            lat = level["latency_ms"] or {}
            statuses = ", ".join(f"{k}: {v}" for k, v in level["statuses"].items()) or DASH
            rows.append(
                [
                    endpoint["name"],
                    str(level["concurrency"]),
                    _fmt(level["throughput_qps"], 1),
                    _fmt(lat.get("p50")),
                    _fmt(lat.get("p95")),
                    _fmt(lat.get("p99")),
                    statuses,
                    str(level["lost"]),
                    _fmt(level.get("f1"), 2),
                ]
            )
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def render_load_markdown(results: dict[str, Any]) -> str:
    env, cfg = results["environment"], results["config"]
    lines = [
        "# qa-engine load benchmark",
        "",
        f"- created: {results['created']}"
        + (f" — `{results['command']}`" if results.get("command") else ""),
        f"- CPU: {env['cpu']['model']} ({', '.join(env['cpu']['flags']) or 'no notable flags'}); "
        f"{env['usable_cores']} usable cores",
        f"- data: {cfg['data']} (first {cfg['samples']} questions, one per request); "
        f"{cfg['requests']} requests per level, closed-loop clients",
        "- lost = sent - answered (2xx) - rejected (429/503)",
        "",
        "## Load",
        "",
        load_table(results),
    ]
    mixed = [
        (endpoint["name"], level)
        for endpoint in results["endpoints"]
        for level in endpoint["levels"]
        if level.get("long")
    ]
    if mixed:
        lines += ["", "Mixed levels: the row is the ordinary requests alone; beside them:", ""]
        for name, level in mixed:
            long = level["long"]
            seconds = ", ".join(f"{s:.1f} s" for s in long["seconds"])
            lines.append(
                f"- {name}, {level['concurrency']} clients: {long['sent']} long request(s) of "
                f"{max(long['chars']):,} characters, statuses {long['statuses']}, {seconds}; "
                f"in flight throughout: {long['in_flight_throughout']}"
            )
    for section in ("offline", "burst", "soak", "targets"):
        if results.get(section) is not None:
            lines += ["", f"## {section.capitalize()}", "", "```json"]
            lines += [json.dumps(results[section], indent=2), "```"]
    return "\n".join(lines) + "\n"


def plot_load(results: dict[str, Any], path: str | os.PathLike) -> Path:
    """Throughput and p50/p99 latency against concurrency, one line per endpoint."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for endpoint in results["endpoints"]:
        levels = [lv for lv in endpoint["levels"] if lv["latency_ms"]]
        clients = [lv["concurrency"] for lv in levels]
        left.plot(clients, [lv["throughput_qps"] for lv in levels], "o-", label=endpoint["name"])
        p50 = [lv["latency_ms"]["p50"] for lv in levels]
        p99 = [lv["latency_ms"]["p99"] for lv in levels]
        (line,) = right.plot(clients, p50, "o-", label=f"{endpoint['name']} p50")
        right.plot(clients, p99, "--", color=line.get_color(), label=f"{endpoint['name']} p99")
    for ax in (left, right):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("concurrent clients")
        ax.grid(alpha=0.3)
    left.set_ylabel("answered requests / s")
    left.set_title("Throughput")
    left.legend(fontsize="small")
    right.set_ylabel("ms")
    right.set_yscale("log")
    right.set_title("Latency (answered requests)")
    right.legend(fontsize="small")
    return _save(fig, path)


def write_load_reports(results: dict[str, Any], out_dir: str | os.PathLike) -> dict[str, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "load.json", "markdown": out / "load.md"}
    paths["json"].write_text(json.dumps(results, indent=2) + "\n")
    paths["markdown"].write_text(render_load_markdown(results))
    paths["plot"] = plot_load(results, out / "load.png")
    return paths
