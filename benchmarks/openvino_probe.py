"""OpenVINO probe: fp32 on onnxruntime's CPU provider vs OpenVINO bf16 vs NNCF int8.

SpanBERT-base architecture (random weights, seed 0; built by ``export_spanbert_base.py``),
batch 1, seq 384, 2 threads. Two environments are involved, because onnxruntime
flavours cannot share one: the main ``.venv`` (torch, optimum, onnxruntime CPU) builds
the fp32 export and times the CPU provider; ``.venv-openvino`` (onnxruntime-openvino,
openvino, nncf) quantizes and times the OpenVINO paths. ``all`` drives both::

    .venv-openvino/bin/python benchmarks/openvino_probe.py all \\
        --main-python .venv/bin/python --workdir /tmp/qa-engine-openvino-probe

Each engine runs in its own process, one at a time, in ``--rounds`` short bursts
interleaved across engines (other work on a shared machine drifts; the best round's
median is reported, with the load average seen). Kernel counts come from OpenVINO's
execution graph after a run (:mod:`qa_engine.openvino.kernels`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ENGINES = {
    # label: (engine, precision hint, model variant)
    "torch fp32 (eager)": ("torch", "f32", "checkpoint"),
    "torch bf16 (autocast)": ("torch", "bf16", "checkpoint"),
    "ort-cpu fp32": ("ort-cpu", "f32", "fp32"),
    "ort-openvino bf16": ("ort-openvino", "bf16", "fp32"),
    "ort-openvino f32": ("ort-openvino", "f32", "fp32"),
    "openvino bf16 (peer)": ("openvino", "bf16", "fp32"),
    "ort-openvino int8 (nncf) bf16": ("ort-openvino", "bf16", "int8"),
    "ort-openvino int8 (nncf) f32": ("ort-openvino", "f32", "int8"),
    "openvino int8 (nncf) bf16": ("openvino", "bf16", "int8"),
}


def make_model(out: Path) -> None:
    """fp32 export dir of the SpanBERT-base architecture (main venv: torch + optimum)."""
    sys.path.insert(0, str(HERE))
    from export_spanbert_base import build_checkpoint
    from optimum.exporters.onnx import main_export

    checkpoint = build_checkpoint(out / "checkpoint")
    main_export(
        str(checkpoint), output=str(out / "fp32"), task="question-answering", no_post_process=True
    )


def quantize(fp32_dir: Path, out: Path, squad: Path, samples: int) -> dict:
    """NNCF int8 of ``fp32_dir/model.onnx``, calibrated on SQuAD windows."""
    import shutil

    from qa_engine.openvino.quantize import nncf_int8, squad_feeds

    feeds = squad_feeds(
        fp32_dir / "tokenizer.json", squad, max_seq_length=384, doc_stride=128, count=samples
    )
    out.mkdir(parents=True, exist_ok=True)
    for name in ("tokenizer.json", "config.json"):
        shutil.copy(fp32_dir / name, out / name)
    started = time.perf_counter()
    settings = nncf_int8(fp32_dir / "model.onnx", out / "model.onnx", feeds)
    settings["seconds"] = round(time.perf_counter() - started, 1)
    return settings


MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def _last_line(command: list[str]) -> str:
    """Run a probe subcommand; its last line of output (each prints its result last)."""
    out = subprocess.run(command, check=True, capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


def _feeds(names: list[str], batch: int, seq: int) -> dict:
    import numpy as np

    rng = np.random.default_rng(0)
    ids = rng.integers(1000, 28000, (batch, seq)).astype(np.int64)
    arrays = {
        "input_ids": ids,
        "attention_mask": np.ones_like(ids),
        "token_type_ids": np.zeros_like(ids),
    }
    return {name: arrays[name] for name in names}


def time_engine(
    model: Path, engine: str, precision: str, threads: int, runs: int, batch: int, seq: int
) -> dict:
    """Load ``model`` on ``engine``, warm up, time ``runs`` calls; one JSON-able dict."""
    import numpy as np

    from qa_engine.openvino.options import OpenVINOOptions, default_cache_dir

    options = OpenVINOOptions(precision=precision, threads=threads)
    started = time.perf_counter()
    if engine == "torch":
        # PyTorch eager on the random checkpoint: the model's forward alone, a lower bound
        # on the transformers pipeline (which adds tokenization and decoding).
        import contextlib

        import torch
        from transformers import AutoModelForQuestionAnswering

        torch.set_num_threads(threads)
        net = AutoModelForQuestionAnswering.from_pretrained(str(model)).eval()
        tensors = {
            k: torch.from_numpy(v) for k, v in _feeds(list(MODEL_INPUTS), batch, seq).items()
        }
        autocast = (
            torch.autocast("cpu", dtype=torch.bfloat16)
            if precision == "bf16"
            else contextlib.nullcontext()
        )
        providers = [
            f"torch-{torch.__version__}" + ("+bf16-autocast" if precision == "bf16" else "")
        ]

        def call() -> None:
            with torch.inference_mode(), autocast:
                net(**tensors)
    elif engine == "openvino":
        import openvino as ov

        properties = {**options.core_properties(), "CACHE_DIR": str(default_cache_dir())}
        compiled = ov.Core().compile_model(str(model), "CPU", properties)
        request = compiled.create_infer_request()
        feeds = _feeds([p.get_any_name() for p in compiled.inputs], batch, seq)
        providers = [f"openvino-{ov.get_version().split('-')[0]}"]

        def call() -> None:
            request.infer(feeds)
    else:
        import onnxruntime as ort

        session_options = ort.SessionOptions()
        session_options.intra_op_num_threads = threads
        if engine == "ort-cpu":
            providers, provider_options = ["CPUExecutionProvider"], [{}]
        else:
            providers = ["OpenVINOExecutionProvider"]
            provider_options = [options.provider_options()]
        session = ort.InferenceSession(
            str(model), session_options, providers=providers, provider_options=provider_options
        )
        if session.get_providers()[0] != providers[0]:
            raise RuntimeError(f"asked for {providers}, got {session.get_providers()}")
        providers = session.get_providers()
        feeds = _feeds([i.name for i in session.get_inputs()], batch, seq)

        def call() -> None:
            session.run(None, feeds)

    load_s = time.perf_counter() - started
    for _ in range(3):
        call()
    wall, cpu = [], []
    for _ in range(runs):
        c0, t0 = time.process_time(), time.perf_counter()
        call()
        wall.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
    return {
        "load_s": round(load_s, 2),
        "median_ms": round(float(np.median(wall)), 1),
        "min_ms": round(min(wall), 1),
        "cpu_ms": round(float(np.median(cpu)), 1),
        "loadavg": round(os.getloadavg()[0], 2),
        "providers": providers,
    }


def kernels(model: Path, precision: str, threads: int) -> dict:
    from qa_engine.openvino.kernels import kernel_census
    from qa_engine.openvino.options import OpenVINOOptions

    options = OpenVINOOptions(precision=precision, threads=threads)
    census = kernel_census(model, options.core_properties())
    top = dict(list(census.ms_by_kernel.items())[:6])
    return {
        "matmul_dtypes": census.matmul_dtypes,
        "amx_layers": census.amx_layers,
        "top_ms": {k: round(v, 1) for k, v in top.items()},
    }


def run_all(args: argparse.Namespace) -> None:
    work = args.workdir
    me = [sys.executable, str(Path(__file__).resolve())]
    main = [str(args.main_python), str(Path(__file__).resolve())]
    if not (work / "fp32" / "model.onnx").is_file():
        subprocess.run([*main, "make-model", "--out", str(work)], check=True)
    if not (work / "int8" / "model.onnx").is_file():
        quantized = _last_line(
            [
                *me,
                "quantize",
                "--model",
                str(work / "fp32"),
                "--out",
                str(work / "int8"),
                "--squad",
                str(args.squad),
                "--samples",
                str(args.samples),
            ]
        )
        print("quantize:", quantized)
    results: dict[str, list[dict]] = {label: [] for label in ENGINES}
    for round_index in range(args.rounds):
        for label, (engine, precision, variant) in ENGINES.items():
            python = main if engine in ("ort-cpu", "torch") else me
            model = work / variant if engine == "torch" else work / variant / "model.onnx"
            timing = _last_line(
                [
                    *python,
                    "time",
                    "--model",
                    str(model),
                    "--engine",
                    engine,
                    "--precision",
                    precision,
                    "--threads",
                    str(args.threads),
                    "--runs",
                    str(args.runs),
                ]
            )
            results[label].append(json.loads(timing))
            print(f"round {round_index} {label}: {results[label][-1]}", flush=True)
    print("\n| engine | best median ms | min ms | load s | loadavg |\n|---|---|---|---|---|")
    for label, rounds in results.items():
        best = min(rounds, key=lambda r: r["median_ms"])
        print(
            f"| {label} | {best['median_ms']} | {min(r['min_ms'] for r in rounds)} | "
            f"{rounds[-1]['load_s']} | {best['loadavg']} |"
        )
    for variant, precision in (("fp32", "bf16"), ("int8", "bf16"), ("fp32", "f32")):
        census = kernels(work / variant / "model.onnx", precision, args.threads)
        print(f"kernels {variant} hint={precision}: {json.dumps(census)}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("make-model")
    p.add_argument("--out", type=Path, required=True)
    p = sub.add_parser("quantize")
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--squad", type=Path, required=True)
    p.add_argument("--samples", type=int, default=64)
    p = sub.add_parser("time")
    p.add_argument("--model", type=Path, required=True)
    p.add_argument(
        "--engine", choices=("torch", "ort-cpu", "ort-openvino", "openvino"), required=True
    )
    p.add_argument("--precision", choices=("bf16", "f32"), default="bf16")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--seq", type=int, default=384)
    p = sub.add_parser("kernels")
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--precision", choices=("bf16", "f32"), default="bf16")
    p.add_argument("--threads", type=int, default=2)
    p = sub.add_parser("all")
    p.add_argument("--workdir", type=Path, default=Path("/tmp/qa-engine-openvino-probe"))
    p.add_argument("--main-python", type=Path, default=HERE.parent / ".venv/bin/python")
    p.add_argument(
        "--squad", type=Path, default=HERE.parent.parent / "shared/data/squad-v1.1/dev-v1.1.json.gz"
    )
    p.add_argument("--samples", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--json", type=Path)
    args = parser.parse_args()

    if args.command == "make-model":
        make_model(args.out)
    elif args.command == "quantize":
        print(json.dumps(quantize(args.model, args.out, args.squad, args.samples)))
    elif args.command == "time":
        print(
            json.dumps(
                time_engine(
                    args.model,
                    args.engine,
                    args.precision,
                    args.threads,
                    args.runs,
                    args.batch,
                    args.seq,
                )
            )
        )
    elif args.command == "kernels":
        print(json.dumps(kernels(args.model, args.precision, args.threads)))
    else:
        run_all(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
