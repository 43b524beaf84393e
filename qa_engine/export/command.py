"""``qa-engine export``: only click at module level, so ``--help`` needs no torch."""

from __future__ import annotations

from pathlib import Path

import click

# Literal copies of qa_engine.export.options (importing it is cheap, but keeping the CLI
# module free of package imports keeps `--help` fast and dependency-free).
OPTIMIZE_LEVELS = ("none", "O1", "O2", "O3", "O4")
QUANTIZE_MODES = (
    "none",
    "int8-dynamic",
    "int8-static",
    "int8-nncf",
    "int8-openvino",
    "fp16",
    "auto",
)

PARITY_EXIT_CODE = 3


class ParityFailed(click.ClickException):
    """The fp32 export disagrees with PyTorch (exit code 3)."""

    exit_code = PARITY_EXIT_CODE


@click.command("export")
@click.argument("model_dir")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--optimize",
    type=click.Choice(OPTIMIZE_LEVELS),
    default="O2",
    show_default=True,
    help="ORT graph optimisation: O1 basic, O2 transformer fusions, O3 + fast GELU, "
    "O4 = O3 in fp16 (CUDA).",
)
@click.option(
    "--quantize",
    type=click.Choice(QUANTIZE_MODES),
    default="none",
    show_default=True,
    help="int8-dynamic (CPU preset auto-detected), int8-static (QDQ, needs "
    "--calibration-file), int8-nncf (NNCF static int8, batch-invariant: batches on the CPU and "
    "OpenVINO providers; needs --calibration-file and nncf), int8-openvino (NNCF QDQ for "
    "OpenVINO's int8 kernels, needs --calibration-file and nncf), fp16 (GPU), or auto: "
    "fastest variant within --max-f1-drop.",
)
@click.option(
    "--calibration-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="SQuAD JSON: real parity questions, static calibration, F1 for auto.",
)
@click.option(
    "--calibration-samples",
    type=click.IntRange(min=1),
    default=128,
    show_default=True,
    help="Questions used for static calibration (one window each).",
)
@click.option(
    "--parity-samples",
    type=click.IntRange(min=1),
    default=None,
    help="At most this many questions are compared with PyTorch and scored for F1, the "
    "evidence behind --max-f1-drop decisions (paired bootstrap, looked at after 32, 64, 128, "
    "... questions: a variant stops once decided). Default: 1000 questions of "
    "--calibration-file (calibrate on train questions, score on dev), else 64 generated "
    "pairs (logit parity and agreement only, never F1).",
)
@click.option(
    "--device",
    type=click.Choice(("cpu", "cuda")),
    default="cpu",
    show_default=True,
    help="Where the variants are verified and timed.",
)
@click.option(
    "--max-f1-drop",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="auto / int8-dynamic: largest relative F1 drop (%) a variant may cost. A variant "
    "is kept only when the top of its 95% bootstrap interval is within it; an undecided "
    "one is reported with the number of questions that would decide.",
)
@click.option("--max-seq-length", type=click.IntRange(min=8), help="Default: qa_config or 384.")
@click.option("--doc-stride", type=click.IntRange(min=0), help="Default: qa_config or 128.")
@click.option("--opset", type=click.IntRange(min=11), help="ONNX opset (default: optimum's).")
@click.option(
    "--atol",
    type=click.FloatRange(min=0, min_open=True),
    default=1e-3,
    show_default=True,
    help="fp32 parity gate on max |logit difference| vs PyTorch.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=32,
    show_default=True,
    help="The batch size the model will run at: auto ranks variants by windows/s there "
    "(a variant that is not batch-invariant runs one window per call); 1: batch-1 latency.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Replace an existing export at OUT_DIR, and write a variant whose F1 evidence is "
    "over --max-f1-drop (refused otherwise; QAEngine then loads it with a warning).",
)
@click.option(
    "--tune",
    is_flag=True,
    help="Then run qa-engine tune on OUT_DIR (questions of --calibration-file, else the "
    "self-check windows) and write its per-machine plan there.",
)
def export(
    model_dir: str,
    out_dir: Path,
    optimize: str,
    quantize: str,
    calibration_file: Path | None,
    calibration_samples: int,
    parity_samples: int | None,
    device: str,
    max_f1_drop: float,
    max_seq_length: int | None,
    doc_stride: int | None,
    opset: int | None,
    atol: float,
    batch_size: int,
    force: bool,
    tune: bool,
) -> None:
    """Export MODEL_DIR (fine-tuned dir or hub id) to a verified ONNX dir OUT_DIR.

    \b
    OUT_DIR gets model.onnx, tokenizer.json, config.json and qa_manifest.json,
    written atomically. Every variant is compared with the PyTorch model; an fp32
    graph off by more than --atol fails the export (exit code 3).
    """
    from qa_engine.export.options import ExportOptions
    from qa_engine.export.parity import ParityError
    from qa_engine.export.pipeline import run_export
    from qa_engine.export.variants import format_table

    try:
        options = ExportOptions(
            model=model_dir,
            out_dir=out_dir,
            optimize=optimize,
            quantize=quantize,
            calibration_file=calibration_file,
            calibration_samples=calibration_samples,
            parity_samples=parity_samples,
            device=device,
            max_f1_drop=max_f1_drop,
            max_seq_length=max_seq_length,
            doc_stride=doc_stride,
            opset=opset,
            force=force,
            atol=atol,
            batch_size=batch_size,
        )
    except (ValueError, FileNotFoundError) as err:
        raise click.UsageError(str(err)) from err

    def log(message: str) -> None:
        click.echo(message, err=True)

    try:
        result = run_export(options, log=log)
    except ParityError as err:
        raise ParityFailed(str(err)) from err
    except (ValueError, OSError) as err:
        # Bad settings, an unsafe OUT_DIR, a checkpoint that cannot be read (OSError
        # from transformers covers a missing dir or an unreachable hub id).
        raise click.ClickException(str(err)) from err

    m = result.manifest
    click.echo(format_table(result.table))
    fused = ", ".join(f"{k} {v}" for k, v in m.fused_ops.items()) or "none"
    click.echo(
        f"\nWrote {result.out_dir}: {result.chosen.name} ({m.precision}, {m.optimization}), "
        f"{result.chosen.size_mb:.1f} MB, max_seq_length {m.max_seq_length}, "
        f"doc_stride {m.doc_stride}, opset {m.opset}, onnxruntime {m.onnxruntime_version}"
    )
    click.echo(f"Fused ops: {fused}")
    p = m.parity
    evidence = m.extra.get("evidence", {}).get("accuracy", True)
    click.echo(
        f"Parity vs PyTorch ({p['questions']} {p['pairs']} questions, {p['windows']} windows): "
        f"max|dlogit| {p['max_abs_logit_diff']:.2e}, answers agree "
        f"{p['answer_agreement']:.1%}"
        + ("" if evidence else " (no accuracy evidence)")
        + (f", F1 delta {p['f1_delta']:+.2f}" if evidence and p.get("f1_delta") is not None else "")
    )
    if tune:
        from qa_engine.tune.command import run_tune
        from qa_engine.tune.search import TuneOptions

        run_tune(Path(result.out_dir), TuneOptions(), data_path=calibration_file)
