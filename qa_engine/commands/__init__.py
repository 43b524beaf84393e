"""Runtime CLI commands (``qa-engine predict``, ``qa-engine eval``).

Like every command module, these import only click and the standard library at module
level; the runtime is imported when a command runs.
"""

from __future__ import annotations

import click


def load_engine(export_dir: str, device: str, threads: int | None, *, spinning: bool = True):
    """Load a :class:`~qa_engine.engine.QAEngine`, turning load errors into clean CLI errors.

    ``spinning``: onnxruntime's idle threads spin between calls (see ``QAEngine``).
    """
    from qa_engine.extras import require

    require("onnxruntime", "cpu")
    import warnings

    from qa_engine.engine import QAEngine
    from qa_engine.plan import PlanIgnored

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PlanIgnored)  # said once, below
            engine = QAEngine.from_pretrained(
                export_dir, device=device, threads=threads, spinning=spinning
            )
    except (FileNotFoundError, ValueError, RuntimeError) as err:
        raise click.ClickException(str(err)) from err
    if engine.plan_note is not None:  # a plan used, set aside or ignored (and why)
        click.echo(engine.plan_note, err=True)
    click.echo(engine.self_check.summary(), err=True)  # the verdict, on stderr
    return engine


# Options shared by predict and eval.
device_option = click.option(
    "--device",
    default="auto",
    show_default=True,
    help="auto, cpu, cuda, cuda:N, tensorrt, tensorrt:N, openvino, openvino:bf16 or openvino:f32.",
)
threads_option = click.option(
    "--threads", type=click.IntRange(min=1), default=None, help="onnxruntime intra-op threads."
)
batch_size_option = click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=None,
    help="Windows per onnxruntime call [default: the plan's (qa-engine tune), else 32].",
)
