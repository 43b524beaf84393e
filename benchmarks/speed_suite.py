"""Speed suite: every runner side by side on the SpanBERT-base architecture, no download.

The model is SpanBERT-base's architecture (BERT-base, cased 28,996-token vocabulary)
with random weights (seed 0) and a generated WordPiece vocabulary: speed does not
depend on the weight values. It is exported with qa-engine's own export stage to each
CPU variant (fp32 O3, int8 dynamic, int8 static), and all runners (transformers
pipeline fp32 and bf16 autocast, Optimum's pipeline, qa-engine on every variant) answer
generated question/context pairs of exactly 128, 256 and 384 tokens at batch 1 and 8,
interleaved. Accuracy figures are meaningless here (random weights); use
``qa-engine bench`` on SQuAD for those.

Usage::

    python benchmarks/speed_suite.py            # full: seq 128/256/384, 3 variants;
                                                #   ~5 min measuring on 2 idle cores, plus
                                                #   ~10 min exporting on the first run
    python benchmarks/speed_suite.py --quick    # smoke run: seq 128, 2 variants (~1-2 min
                                                #   once the exports are cached)
    python benchmarks/speed_suite.py --device cuda --batch-sizes 1,32
                                                # GPU: fp32 O3 and fp16 O4 on CUDA against
                                                #   the pipeline in fp32 and fp16 autocast
    python benchmarks/speed_suite.py --data dev-v1.1.json.gz --data-questions 256
                                                # also real SQuAD lengths (a "dev" run)

Every run also prints the host's share for the qa-engine runners: milliseconds per
question spent tokenizing, padding and decoding (the host pipeline's counters, which
overlap those stages with the model call), beside the model call's and the wall time.

Exports are cached under ``~/.cache/qa-engine/speed-suite/`` (``--cache-dir``), keyed
by architecture and library versions, so reruns start measuring at once; ``--rebuild``
exports again (the key cannot see changes to qa-engine's own export code). Results go
to ``benchmarks/results/speed/`` (``--out``): one ``seq<N>/`` dir per sequence length
with the ``qa-engine bench`` outputs (results.json, results.md, plots; ``dev/`` for
``--data``), plus ``speed.md`` and ``speed.json`` with the ratio tables, the host share
(``host``) and the issue's targets.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import shlex
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from qa_engine.bench.environment import cpu_has_bf16, usable_cores
from qa_engine.bench.harness import BenchOptions, run_benchmark
from qa_engine.bench.plan import plan_runners, resolve_settings
from qa_engine.bench.report import ratio_table, write_reports
from qa_engine.bench.synthetic import (
    SPANBERT_BASE,
    TINY,
    synthetic_examples,
    write_calibration_file,
    write_random_model,
)

ROOT = Path(__file__).resolve().parent
DEFAULT_OUT = ROOT / "results" / "speed"
DEFAULT_CACHE = Path.home() / ".cache" / "qa-engine" / "speed-suite"
# Variant name -> (optimize, quantize) for the export stage. All run on CPU.
VARIANTS = {
    "fp32-none": ("none", "none"),
    "fp32-O2": ("O2", "none"),
    "fp32-O3": ("O3", "none"),
    "int8-dynamic": ("O3", "int8-dynamic"),
    "int8-static": ("O3", "int8-static"),
    "fp16-O4": ("O4", "none"),  # CUDA only
}
# O4 (fp16) is for CUDA; int8 runs on CPU providers only.
CPU_VARIANTS = tuple(name for name, (optimize, _) in VARIANTS.items() if optimize != "O4")
CUDA_VARIANTS = ("fp32-none", "fp32-O3", "fp16-O4")
FULL = {
    "variants": ["fp32-O3", "int8-dynamic", "int8-static"],
    "seq_lengths": [128, 256, 384],
    "questions": 16,
    "latency_runs": 20,
    "warmup": 3,
}
QUICK = {
    "variants": ["fp32-O3", "int8-dynamic"],
    "seq_lengths": [128],
    "questions": 8,
    "latency_runs": 5,
    "warmup": 1,
}
MAX_SEQ_LENGTH, DOC_STRIDE = 384, 128
# Issue 6's targets at batch 1, seq 384 (best qa-engine CPU variant vs each peer).
TARGETS = (
    ("latency vs transformers fp32", 6.0),
    ("latency vs transformers bf16-autocast", 2.5),
    ("throughput vs Optimum, same ONNX file", 1.2),
)


def log(message: str) -> None:
    print(f"[speed-suite] {message}", file=sys.stderr, flush=True)


def cache_key(arch: dict[str, int]) -> str:
    """Exports depend on the architecture, the exporting libraries and qa-engine."""
    versions = {}
    for name in ("qa-engine", "onnxruntime", "optimum", "optimum-onnx", "torch", "transformers"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    raw = json.dumps({"arch": arch, "versions": versions, "seq": MAX_SEQ_LENGTH}, sort_keys=True)
    return hashlib.sha1(raw.encode()).hexdigest()[:12]


def prepare_models(
    arch_name: str,
    variants: list[str],
    cache_dir: Path,
    *,
    rebuild: bool = False,
    device: str = "cpu",
) -> tuple[Path, list[Path]]:
    """The random PyTorch checkpoint and one export dir per variant, built once, cached."""
    from qa_engine.export.options import ExportOptions
    from qa_engine.export.pipeline import run_export
    from qa_engine.manifest import MANIFEST_NAME

    arch = TINY if arch_name == "tiny" else SPANBERT_BASE
    root = cache_dir / f"{arch_name}-{cache_key(arch.to_dict())}"
    model_dir = root / "pytorch"
    if not (model_dir / "qa_config.json").is_file():
        log(f"writing the random {arch_name} checkpoint to {model_dir}")
        write_random_model(model_dir, arch, max_seq_length=MAX_SEQ_LENGTH, doc_stride=DOC_STRIDE)
    calibration = root / "calibration.json"
    if not calibration.is_file():
        write_calibration_file(model_dir / "tokenizer.json", calibration, [128, 256, 384], 16)
    export_dirs = []
    for name in variants:
        out = root / (name if device == "cpu" else f"{name}-{device}")
        if rebuild or not (out / MANIFEST_NAME).is_file():
            optimize, quantize = VARIANTS[name]
            log(f"exporting {name} (optimize {optimize}, quantize {quantize}) to {out}")
            start = time.perf_counter()
            run_export(
                ExportOptions(
                    model=str(model_dir),
                    out_dir=out,
                    optimize=optimize,
                    quantize=quantize,
                    calibration_file=calibration if quantize == "int8-static" else None,
                    calibration_samples=32,
                    parity_samples=8,
                    device=device,
                    force=True,
                ),
                log=lambda m: log(f"  {m}"),
            )
            log(f"  {name} exported in {time.perf_counter() - start:.0f} s")
        export_dirs.append(out)
    return model_dir, export_dirs


def target_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Where the issue's targets stand, from one sequence length's results."""
    runners = [r for r in results["runners"] if not r["error"] and r["latency_ms"]]
    engines = [r for r in runners if r["kind"] == "qa-engine"]
    if not engines:
        return []
    best = min(engines, key=lambda r: r["latency_ms"]["p50"])

    def speedup(peer_name: str) -> float | None:
        peer = next((r for r in runners if r["name"] == peer_name), None)
        return peer["latency_ms"]["p50"] / best["latency_ms"]["p50"] if peer else None

    same_file = None
    if results["comparisons"]:
        comparison = results["comparisons"][0]
        largest = str(max(results["config"]["batch_sizes"]))
        same_file = comparison["throughput_speedup"].get(largest)
    measured = [speedup("transformers fp32"), speedup("transformers bf16-autocast"), same_file]
    return [
        {
            "target": name,
            "goal": goal,
            "measured": value,
            "met": None if value is None else value >= goal,
            "runner": best["name"] if i < 2 else (results["comparisons"] or [{}])[0].get("runner"),
        }
        for i, ((name, goal), value) in enumerate(zip(TARGETS, measured, strict=True))
    ]


def host_share(results: dict[str, Any]) -> dict[str, dict[str, dict[str, float | None]]]:
    """Per qa-engine runner and batch size: host ms per question (tokenize + pad + decode),
    model-call ms per question and wall ms per question, from the pipeline's counters."""
    share: dict[str, dict[str, dict[str, float | None]]] = {}
    for runner in results["runners"]:
        for bs, t in (runner.get("stage_times") or {}).items():
            n = t["questions"] or None
            share.setdefault(runner["name"], {})[bs] = {
                "host_ms_per_question": t["host_ms_per_question"],
                "tokenize_ms_per_question": n and 1000 * t["tokenize_s"] / n,
                "pad_ms_per_question": n and 1000 * t["pad_s"] / n,
                "decode_ms_per_question": n and 1000 * t["decode_s"] / n,
                "run_ms_per_question": n and 1000 * t["run_s"] / n,
                "wall_ms_per_question": n and 1000 * t["wall_s"] / n,
            }
    return share


def format_host_share(share: dict[str, dict[str, dict[str, float | None]]], label: str) -> str:
    """The host's share as a Markdown table (ms per question, throughput calls)."""
    lines = [
        f"Host share, {label} (ms per question over the throughput calls; host = tokenize + "
        "pad + decode, overlapped with the model call by the pipeline):",
        "",
        "| runner | batch | host | tokenize | pad | decode | model call | wall |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    keys = ("host", "tokenize", "pad", "decode", "run", "wall")
    for name, by_batch in share.items():
        for bs, row in by_batch.items():
            cells = [row[f"{k}_ms_per_question"] for k in keys]
            lines.append(
                f"| {name} | {bs} | "
                + " | ".join("–" if v is None else f"{v:.3f}" for v in cells)
                + " |"
            )
    return "\n".join(lines)


def format_targets(rows: list[dict[str, Any]], seq_length: int) -> str:
    lines = [f"Targets (batch 1 latency / largest-batch throughput, seq {seq_length}):"]
    for row in rows:
        value = "n/a" if row["measured"] is None else f"{row['measured']:.2f}x"
        verdict = {True: "met", False: "MISSED", None: "not measured"}[row["met"]]
        lines.append(
            f"- {row['target']}: {value} (goal >= {row['goal']}x, {row['runner']}): {verdict}"
        )
    lines.append(
        "- throughput >= 8x transformers fp32 on real SQuAD dev lengths: not measured here "
        "(synthetic lengths); run `qa-engine bench --data dev-v1.1.json`"
    )
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: seq 128, 2 variants")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results directory")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help="export cache")
    parser.add_argument("--threads", type=int, default=None, help="default: usable cores")
    parser.add_argument("--variants", help=f"comma-separated subset of {', '.join(VARIANTS)}")
    parser.add_argument("--seq-lengths", help="comma-separated, e.g. 128,384")
    parser.add_argument(
        "--device",
        choices=["cpu", "cuda"],
        default="cpu",
        help="cuda: export and verify on the GPU, run every runner there (fp32 O3 and fp16 O4 "
        "against the pipeline in fp32 and fp16 autocast)",
    )
    parser.add_argument("--batch-sizes", default="1,8", help="comma-separated, e.g. 1,32")
    parser.add_argument(
        "--cuda-graphs",
        action="store_true",
        help="with --device cuda: also run every qa-engine variant on captured CUDA graphs "
        "(a second runner, '... graphs', interleaved with the plain one)",
    )
    parser.add_argument("--questions", type=int, help="questions per sequence length")
    parser.add_argument("--latency-runs", type=int)
    parser.add_argument("--memory", choices=["subprocess", "off"], help="peak RSS probes")
    parser.add_argument(
        "--rebuild", action="store_true", help="export again (after export-stage changes)"
    )
    parser.add_argument(
        "--data",
        type=Path,
        help="also run on this SQuAD file's first --data-questions questions (real lengths, "
        "e.g. dev-v1.1.json.gz): the host share at real lengths",
    )
    parser.add_argument("--data-questions", type=int, default=256)
    parser.add_argument("--no-progress", action="store_true")
    # Tests: a 2-layer, 32-wide model instead of SpanBERT-base.
    parser.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = dict(QUICK if args.quick else FULL)
    allowed = CUDA_VARIANTS if args.device == "cuda" else CPU_VARIANTS
    if args.device == "cuda":
        plan["variants"] = ["fp32-O3", "fp16-O4"]
    if args.variants:
        plan["variants"] = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in plan["variants"] if v not in allowed]
    if unknown:
        raise SystemExit(f"variant(s) {unknown} not for {args.device}; valid: {', '.join(allowed)}")
    batch_sizes = tuple(int(v) for v in args.batch_sizes.split(",") if v.strip())
    if not batch_sizes or min(batch_sizes) < 1:
        raise SystemExit("--batch-sizes: positive integers, e.g. 1,8")
    if args.seq_lengths:
        plan["seq_lengths"] = [int(v) for v in args.seq_lengths.split(",")]
    if any(not 16 <= n <= MAX_SEQ_LENGTH for n in plan["seq_lengths"]):
        raise SystemExit(f"sequence lengths must be in [16, {MAX_SEQ_LENGTH}]")
    for key in ("questions", "latency_runs"):
        if getattr(args, key):
            plan[key] = getattr(args, key)
    threads = args.threads or usable_cores()
    # Peak RSS: once, at the longest sequence (full runs only, unless asked).
    memory = args.memory or ("off" if args.quick else "subprocess")
    command = shlex.join(["python", "benchmarks/speed_suite.py", *(argv or sys.argv[1:])])
    started = time.perf_counter()

    arch_name = "tiny" if args.tiny else "spanbert-base"
    try:
        model_dir, export_dirs = prepare_models(
            arch_name, plan["variants"], args.cache_dir, rebuild=args.rebuild, device=args.device
        )
    except ValueError as err:  # e.g. --device cuda without onnxruntime-gpu
        raise SystemExit(f"speed suite: {err}") from err
    prepare_s = time.perf_counter() - started
    started = time.perf_counter()
    dirs = [str(model_dir), *map(str, export_dirs)]
    settings = resolve_settings(dirs, data_version_2=False)
    on_cuda = args.device == "cuda"
    specs = plan_runners(
        dirs,
        settings,
        threads=threads,
        device=args.device,
        bf16=cpu_has_bf16() and not on_cuda,
        fp16=on_cuda,
    )
    if args.cuda_graphs and on_cuda:
        specs += [
            dataclasses.replace(s, name=f"{s.name} graphs", cuda_graphs=True)
            for s in specs
            if s.kind == "qa-engine"
        ]
    log(f"runners: {', '.join(s.name for s in specs)}; threads {threads}")

    summary: dict[str, Any] = {
        "suite": "speed",
        "schema_version": 1,
        "command": command,
        "architecture": arch_name,
        "device": args.device,
        "batch_sizes": list(batch_sizes),
        "model_dir": str(model_dir),
        "variants": plan["variants"],
        "runs": {},
        "targets": [],
        "host": {},
    }
    sections = []
    longest = max(plan["seq_lengths"])
    runs: list[tuple[int | str, list, bool]] = [
        (n, synthetic_examples(model_dir / "tokenizer.json", n, plan["questions"], seed=n), False)
        for n in plan["seq_lengths"]
    ]
    if args.data is not None:
        from qa_engine.data import load_squad

        squad = load_squad(args.data)
        runs.append(("dev", squad.examples[: args.data_questions], squad.version_2))
    for seq_length, examples, version_2 in runs:
        log(f"sequence length {seq_length}: {len(examples)} questions")
        options = BenchOptions(
            batch_sizes=batch_sizes,
            latency_runs=plan["latency_runs"],
            warmup=plan["warmup"],
            memory=memory if seq_length == longest else "off",
            progress=not args.no_progress,
        )
        data = (
            f"{args.data}: first {len(examples)} questions (real lengths), random weights"
            if seq_length == "dev"
            else f"synthetic: {seq_length}-token pairs, random {arch_name} weights"
        )
        results = run_benchmark(
            specs,
            examples,
            version_2=version_2,
            options=options,
            config={
                "data": data,
                "peers": ["transformers", "optimum"],
                "seq_length": seq_length,
            },
            command=command,
        )
        run_name = "dev" if seq_length == "dev" else f"seq{seq_length}"
        write_reports(results, args.out / run_name)
        table = ratio_table(results)
        sizes = " and ".join(map(str, batch_sizes))
        print(f"\n## seq {seq_length} (batch 1 latency, throughput at batch {sizes})\n")
        print(table, flush=True)
        summary["runs"][str(seq_length)] = f"{run_name}/results.json"
        sections += [f"## Sequence length {seq_length}", "", table, ""]
        summary["host"][str(seq_length)] = share = host_share(results)
        label = "real SQuAD lengths" if seq_length == "dev" else f"seq {seq_length}"
        host_table = format_host_share(share, label)
        print("\n" + host_table, flush=True)
        sections += [host_table, ""]
        if seq_length == longest:
            summary["environment"] = results["environment"]
            if not on_cuda:  # issue 6's targets are CPU targets
                summary["targets"] = target_rows(results)
                targets = format_targets(summary["targets"], seq_length)
                print("\n" + targets)
                sections += [targets, ""]

    elapsed = time.perf_counter() - started
    summary["elapsed_s"] = elapsed
    summary["prepare_s"] = prepare_s  # model + exports (0 when cached)
    cpu = summary.get("environment", {}).get("cpu", {})
    gpus = summary.get("environment", {}).get("gpus", [])
    header = [
        "# qa-engine speed suite",
        "",
        f"`{command}` — measured in {elapsed / 60:.1f} min (+ {prepare_s / 60:.1f} min "
        f"building the cached exports); {arch_name} architecture, random weights; "
        f"CPU {cpu.get('model')} ({', '.join(cpu.get('flags', []))}), {threads} threads"
        + (f"; GPU {', '.join(g['name'] for g in gpus)}" if on_cuda else "")
        + f"; device {args.device}. Latency in ms (batch 1); throughput in questions/s, "
        "end to end.",
        "",
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "speed.md").write_text("\n".join(header + sections))
    (args.out / "speed.json").write_text(json.dumps(summary, indent=2) + "\n")
    log(f"done: {prepare_s:.0f} s preparing, {elapsed:.0f} s measuring; wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
