"""The ``qa-engine`` command line: one click group, each stage loaded only when used.

Each subcommand lives in its stage's own ``command`` module, which imports nothing
heavy at module level, so ``qa-engine --help`` and ``qa-engine export --help`` work
without torch; a missing optional dependency ends with the pip command to run.
"""

from __future__ import annotations

import importlib

import click

from qa_engine.extras import missing_extra_from

# name -> "module:attribute" of the click command, imported on first use.
COMMANDS = {
    "finetune": (
        "qa_engine.finetune.command:finetune",
        "Fine-tune a BERT-family encoder on SQuAD.",
    ),
    "export": ("qa_engine.export.command:export", "Export a QA checkpoint to verified ONNX."),
    "predict": ("qa_engine.commands.predict:predict", "Answer questions with an export dir."),
    "eval": ("qa_engine.commands.evaluate:evaluate", "Score an export dir on a SQuAD file."),
    "bench": ("qa_engine.bench.command:bench", "Benchmark variants against peer runtimes."),
    "serve": ("qa_engine.serve.command:serve", "Serve an export dir over HTTP, batched."),
    "tune": ("qa_engine.tune.command:tune", "Measure how to run an export fastest here."),
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported only when invoked."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        target, _ = COMMANDS[cmd_name]
        module_name, attribute = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as err:
            missing = missing_extra_from(err)
            if missing is None:
                raise
            raise missing from err
        return getattr(module, attribute)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help without importing every stage.
        rows = [(name, help_text) for name, (_, help_text) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="qa-engine")
def cli() -> None:
    """qa-engine: from a span-extraction QA checkpoint to fast, verified inference.

    \b
    finetune  SpanBERT (any BERT-family encoder) on SQuAD v1.1/v2.0
    export    ONNX via optimum, ORT fusion O1-O4, int8/fp16, parity-checked
    predict   answer questions with the torch-free runtime
    eval      official SQuAD EM/F1 of an exported model
    bench     latency/throughput/F1 side by side with transformers and optimum
    serve     an HTTP answer service with cross-request dynamic batching
    tune      measure the fastest provider/threads/batch/buckets here, write the plan
    """


def main() -> None:
    """Console-script entry point."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        raise SystemExit(1) from None
    except click.ClickException as err:
        err.show()
        raise SystemExit(err.exit_code) from None
    except ImportError as err:
        missing = missing_extra_from(err)
        if missing is None:
            raise
        missing.show()
        raise SystemExit(missing.exit_code) from None
    except SystemExit:
        raise


if __name__ == "__main__":
    main()
