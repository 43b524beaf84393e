"""What ``qa-engine tune`` reads (question windows) and prints (the table of candidates)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from qa_engine.manifest import TOKENIZER_NAME, ExportManifest
from qa_engine.plan import TunePlan
from qa_engine.selfcheck import SelfCheck
from qa_engine.tokenization import QATokenizer
from qa_engine.tune.search import Row, Windows, sample_windows


def load_windows(export_dir: Path, data_path: Path | None, count: int) -> Windows:
    """Timed and warm-up windows: questions of ``data_path`` (SQuAD JSON), or, without
    one, the export's self-check reference windows (both sets then: no held-out shapes).

    Raises:
        FileNotFoundError, ValueError: A missing or bad file; no data and no reference.
    """
    manifest = ExportManifest.load(export_dir)
    if data_path is None:
        if manifest.self_check is None:
            raise ValueError(
                f"{export_dir}: no self-check reference windows to time; pass --data FILE"
            )
        reference = [w.as_window() for w in SelfCheck.load(export_dir, manifest.self_check).windows]
        source = {"source": "self-check reference windows", "timed": len(reference)}
        return Windows(reference, reference, {**source, "held_out_warmup": False})
    from qa_engine.data import load_squad

    examples = load_squad(data_path).examples
    tokenizer = QATokenizer.from_file(
        export_dir / TOKENIZER_NAME,
        manifest.max_seq_length,
        manifest.doc_stride,
        manifest.max_question_len,
    )
    warm, timed = sample_windows(
        tokenizer, [e.question for e in examples], [e.context for e in examples], count
    )
    if not timed:
        raise ValueError(f"{data_path}: no questions")
    lengths = [len(w) for w in timed]
    source = {
        "source": str(data_path),
        "timed": len(timed),
        "warmup": len(warm),
        "held_out_warmup": True,
        "mean_tokens": round(sum(lengths) / len(lengths), 1),
    }
    return Windows(warm, timed, source)


def format_table(rows: Sequence[Row], plan: TunePlan | None) -> str:
    """The candidates, one per line, the winner marked with ``*``."""
    header = (
        f"{'stage':<5} {'device':<14} {'thr':>3} {'batch':>5} {'buckets':<7} "
        f"{'windows/s':>9} {'b1 p50 ms':>9} {'b1 p95 ms':>9}  status"
    )
    lines = [header, "-" * len(header)]
    winner = None if plan is None else (plan.device, plan.threads, plan.batch_size)
    for row in rows:
        chosen = (
            winner == (row.device, row.threads, row.batch_size)
            and plan is not None
            and row.buckets == (plan.buckets is not None)
            and row.status == "ok"
        )
        status = row.status + (f" ({row.note})" if row.note else "")
        lines.append(
            f"{row.stage:<5} {row.device:<14} {row.threads:>3} {row.batch_size:>5} "
            f"{'on' if row.buckets else 'off':<7} {_num(row.windows_per_s):>9} "
            f"{_num(row.p50_ms):>9} {_num(row.p95_ms):>9}  {status}{' *' if chosen else ''}"
        )
    if plan is not None:
        lines.append(f"\nwinner ({plan.objective}): {plan.describe()}")
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"
