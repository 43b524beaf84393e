"""Human-readable outputs of a results object: the Markdown table and the two plots."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from qa_engine.extras import require

DASH = "–"


def _fmt(value: float | None, digits: int = 1, suffix: str = "") -> str:
    if value is None:
        return DASH
    return f"{value:.{digits}f}{suffix}"


def _batch_sizes(results: dict[str, Any]) -> list[str]:
    return [str(b) for b in results["config"]["batch_sizes"]]


def ratio_table(results: dict[str, Any]) -> str:
    """The compact table the speed suite prints: latency, throughput and speed-ups."""
    sizes = _batch_sizes(results)
    head = ["runner", "p50 ms", "p95 ms", "p50 speedup"]
    head += [f"q/s @{b}" for b in sizes] + [f"speedup @{b}" for b in sizes]
    head += [f"host ms/q @{sizes[-1]}"]
    rows = [head, ["---"] + ["---:"] * (len(head) - 1)]
    for r in results["runners"]:
        lat, qps, ratios = r["latency_ms"] or {}, r["throughput_qps"] or {}, r["ratios"] or {}
        host = r.get("host_ms_per_question") or {}
        speedups = ratios.get("throughput_speedup") or {}
        row = [
            r["name"] + (" (baseline)" if r["name"] == results["baseline"] else ""),
            _fmt(lat.get("p50")),
            _fmt(lat.get("p95")),
            _fmt(ratios.get("latency_p50_speedup"), 2, "x"),
        ]
        row += [_fmt(qps.get(b), 2) for b in sizes]
        row += [_fmt(speedups.get(b), 2, "x") for b in sizes]
        row += [_fmt(host.get(sizes[-1]), 2)]
        if r["error"]:
            row[1] = f"failed: {r['error'][:60]}"
        rows.append(row)
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def _detail_table(results: dict[str, Any]) -> str:
    head = [
        "runner",
        "provider",
        "size MiB",
        "load s",
        "peak RSS MiB",
        "model RSS MiB",
        "EM",
        "F1",
        "F1 Δ",
        "agree w/ baseline",
    ]
    if results["config"]["version_2"]:
        head += ["HasAns F1", "NoAns F1", "best F1"]
    rows = [head, ["---", "---"] + ["---:"] * (len(head) - 2)]
    for r in results["runners"]:
        m, ratios = r["metrics"] or {}, r["ratios"] or {}
        agree = r["agreement_with_baseline"]
        row = [
            r["name"],
            r["provider"] or DASH,
            _fmt(r["model_size_mib"]),
            _fmt(r["load_s"], 2),
            _fmt(r["peak_rss_mib"], 0),
            _fmt(r["model_rss_mib"], 0),
            _fmt(m.get("exact"), 2),
            _fmt(m.get("f1"), 2),
            _fmt(ratios.get("f1_delta"), 2),
            _fmt(None if agree is None else 100 * agree, 1, "%"),
        ]
        if results["config"]["version_2"]:
            row += [_fmt(m.get(k), 2) for k in ("HasAns_f1", "NoAns_f1", "best_f1")]
        rows.append(row)
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def render_markdown(results: dict[str, Any]) -> str:
    """``results.md``: environment, settings, the speed table and the accuracy table."""
    env, cfg = results["environment"], results["config"]
    cpu = env["cpu"]
    libs = ", ".join(f"{k} {v}" for k, v in env["libraries"].items() if v)
    gpus = ", ".join(g["name"] for g in env["gpus"]) or "none"
    s = cfg["settings"]
    lines = [
        "# qa-engine benchmark",
        "",
        f"- created: {results['created']}"
        + (f" — `{results['command']}`" if results["command"] else ""),
        f"- CPU: {cpu['model']} ({', '.join(cpu['flags']) or 'no notable flags'}); "
        f"{env['usable_cores']} usable cores, threads: {cfg['threads'] or 'library default'}",
        f"- GPU: {gpus}; device: {cfg['device']}",
        f"- libraries: {libs}",
        f"- data: {cfg['data']} ({cfg['samples']} questions, "
        f"{'SQuAD 2.0' if cfg['version_2'] else 'SQuAD 1.1'} metric)",
        f"- settings (all runners): max_seq_length {s['max_seq_length']}, doc_stride "
        f"{s['doc_stride']}, max_answer_length {s['max_answer_length']}",
        f"- latency: batch 1, {cfg['latency_runs']} interleaved runs after {cfg['warmup']} "
        f"warm-up rounds; throughput end to end (tokenization + decoding included); "
        "host ms/q: tokenize + pad + decode per question at the largest batch size "
        "(qa-engine's pipeline counters; the rest is the model call)",
        f"- baseline: {results['baseline'] or 'none (ratios omitted)'}",
        "",
        "## Speed",
        "",
        ratio_table(results),
        "",
        "## Accuracy, size and memory",
        "",
        f"Metrics of the batch-{cfg['metrics_batch_size']} predictions; "
        + (
            "peak RSS from a fresh subprocess per runner (model RSS = peak minus the "
            "process after imports)."
            if cfg["memory"] == "subprocess"
            else "peak RSS not measured (memory probes off)."
        ),
        "",
        _detail_table(results),
    ]
    if results["comparisons"]:
        lines += ["", "## qa-engine vs Optimum on the same ONNX file", ""]
        for c in results["comparisons"]:
            tp = ", ".join(f"{_fmt(v, 2, 'x')} @{b}" for b, v in c["throughput_speedup"].items())
            lines.append(
                f"- {c['runner']} vs {c['peer']}: latency p50 "
                f"{_fmt(c['latency_p50_speedup'], 2, 'x')}, throughput {tp}"
            )
    failed = [r for r in results["runners"] if r["error"]]
    if failed:
        lines += ["", "## Failed runners", ""]
        lines += [f"- {r['name']}: {r['error']}" for r in failed]
    return "\n".join(lines) + "\n"


def plot_latency_vs_f1(results: dict[str, Any], path: str | os.PathLike) -> Path:
    """Scatter of batch-1 p50 latency (p50..p95 as a bar) against F1, one point per runner."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    markers = "osD^vP*Xhp<>"
    p50s = []
    for i, r in enumerate(results["runners"]):
        lat, m = r["latency_ms"], r["metrics"]
        if not lat or not m:
            continue
        xerr = [[0.0], [max(lat["p95"] - lat["p50"], 0.0)]]
        ax.errorbar(
            lat["p50"],
            m["f1"],
            xerr=xerr,
            fmt=markers[i % len(markers)],
            capsize=3,
            markersize=8,
            label=r["name"],
        )
        p50s.append(lat["p50"])
    if p50s and max(p50s) > 10 * min(p50s):
        ax.set_xscale("log")
    # A legend, not labels on the points: runners often tie on F1 and labels would overlap.
    ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize="small")
    ax.set_xlabel("batch-1 latency, ms (p50, bar to p95)")
    ax.set_ylabel("F1")
    ax.set_title("Latency vs F1")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_throughput(results: dict[str, Any], path: str | os.PathLike) -> Path:
    """Horizontal grouped bars: questions/s of each runner at each batch size."""
    np = require("numpy")
    plt = _pyplot()
    runners = [r for r in results["runners"] if r["throughput_qps"]]
    sizes = _batch_sizes(results)
    fig, ax = plt.subplots(figsize=(8, 1.0 + 0.5 * max(len(runners), 1) * len(sizes) / 2))
    y = np.arange(len(runners))
    height = 0.8 / max(len(sizes), 1)
    for i, b in enumerate(sizes):
        values = [r["throughput_qps"].get(b, 0.0) for r in runners]
        ax.barh(y + i * height, values, height, label=f"batch {b}")
    ax.set_yticks(y + height * (len(sizes) - 1) / 2, [r["name"] for r in runners])
    ax.invert_yaxis()
    ax.set_xlabel("questions / s (end to end)")
    ax.set_title("Throughput")
    ax.legend()
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


def _pyplot() -> Any:
    matplotlib = require("matplotlib", "bench")
    matplotlib.use("Agg")
    return require("matplotlib.pyplot", "bench")


def _save(fig: Any, path: str | os.PathLike) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    require("matplotlib.pyplot", "bench").close(fig)
    return Path(path)


def write_reports(results: dict[str, Any], out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``results.json``, ``results.md``, ``latency_vs_f1.png`` and ``throughput.png``."""
    from qa_engine.bench.results import save_results

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": save_results(results, out / "results.json")}
    paths["markdown"] = out / "results.md"
    paths["markdown"].write_text(render_markdown(results))
    paths["latency_vs_f1"] = plot_latency_vs_f1(results, out / "latency_vs_f1.png")
    paths["throughput"] = plot_throughput(results, out / "throughput.png")
    return paths
