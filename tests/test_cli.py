"""The CLI group: subcommands listed, stages imported lazily, missing extras explained."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from click.testing import CliRunner

from qa_engine.cli import COMMANDS, cli

# Runs the CLI with some top-level modules made unimportable, as on a machine without them.
_BLOCKING_RUNNER = textwrap.dedent(
    """
    import sys
    blocked = set(sys.argv[1].split(","))

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in blocked:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, Blocker())
    sys.argv = ["qa-engine", *sys.argv[2:]]
    from qa_engine.cli import main
    main()
    """
)


def run_cli_without(blocked: list[str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", _BLOCKING_RUNNER, ",".join(blocked), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_help_lists_the_seven_subcommands() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    names = {"finetune", "export", "bench", "eval", "predict", "serve", "tune"}
    for name in names:
        assert name in result.output
    assert set(COMMANDS) == names


def test_help_needs_no_torch() -> None:
    result = run_cli_without(["torch", "transformers", "optimum"], "--help")
    assert result.returncode == 0, result.stderr
    assert "export" in result.stdout


def test_export_help_without_torch() -> None:
    result = run_cli_without(["torch", "transformers", "optimum"], "export", "--help")
    assert result.returncode == 0, result.stderr
    assert "--quantize" in result.stdout


def test_finetune_help_without_torch() -> None:
    result = run_cli_without(["torch", "transformers", "datasets"], "finetune", "--help")
    assert result.returncode == 0, result.stderr
    assert "--learning-rate" in result.stdout


def test_missing_extra_is_one_line_with_pip_command(tmp_path) -> None:
    (tmp_path / "config.json").write_text("{}")
    result = run_cli_without(
        ["torch", "transformers", "optimum"], "export", str(tmp_path), str(tmp_path / "out")
    )
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert 'pip install "qa-engine[' in result.stderr


def test_runtime_commands_report_missing_onnxruntime(tmp_path) -> None:
    result = run_cli_without(
        ["onnxruntime"], "predict", str(tmp_path), "--question", "q", "--context", "c"
    )
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert 'pip install "qa-engine[cpu]"' in result.stderr


def test_unknown_command_fails() -> None:
    result = CliRunner().invoke(cli, ["nonsense"])
    assert result.exit_code != 0


def test_export_cli_choices_are_the_options_choices() -> None:
    """qa_engine/export/command.py keeps literal copies (for a fast --help): they must match."""
    from qa_engine.export import command, options

    assert command.OPTIMIZE_LEVELS == options.OPTIMIZE_LEVELS
    assert command.QUANTIZE_MODES == options.QUANTIZE_MODES
