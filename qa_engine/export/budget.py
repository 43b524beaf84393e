"""What an export says about accuracy, and the budget export and runtime share.

``QAEngine`` refuses a variant whose F1 drop the export measured over its budget
(``--max-f1-drop``) unless the export was written with ``--force``; so the export
refuses to write one (:func:`check_budget`), and nothing it writes is refused at load.
The manifest's ``extra.evidence`` (:func:`evidence_summary`) says whether there was any
accuracy evidence at all, and why not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qa_engine.export.evidence import look_schedule
from qa_engine.export.options import ExportOptions
from qa_engine.export.variants import Variant
from qa_engine.export.verifier import Verifier

Log = Callable[[str], None]


class OverBudgetError(ValueError):
    """The chosen variant's F1 evidence is over ``--max-f1-drop``: the runtime would refuse
    it, so nothing is written (``--force`` writes it anyway)."""


def check_budget(chosen: Variant, options: ExportOptions, log: Log) -> None:
    """Refuse (or, with ``force``, warn about) a chosen variant whose F1 evidence is over
    the budget: ``QAEngine`` refuses such an export at load unless it was forced.

    Raises:
        OverBudgetError: Over budget and not ``options.force``.
    """
    drop = chosen.drop
    if chosen.precision == "fp32" or drop is None or drop.decision != "over":
        return
    message = (
        f"{chosen.name}: {drop.describe()}: its F1 is measurably more than "
        f"--max-f1-drop {options.max_f1_drop:g}% below PyTorch's"
    )
    if not options.force:
        raise OverBudgetError(
            f"{message}. Nothing was written (QAEngine would refuse this export). Choose "
            "another --quantize (auto keeps the fastest variant within the budget), raise "
            "--max-f1-drop, or pass --force to write it anyway (it then loads with a warning)."
        )
    log(f"WARNING: {message}; written because of --force (QAEngine loads it with a warning)")


def evidence_summary(verifier: Verifier, options: ExportOptions) -> dict[str, Any]:
    """What the manifest says about the accuracy evidence behind the variants."""
    missing = verifier.missing_accuracy_evidence()
    return {
        "accuracy": missing is None,
        "reason": missing,
        "pairs": verifier.pairs,
        "max_f1_drop_pct": options.max_f1_drop,
        "method": (
            "sequential paired bootstrap (Bonferroni-split looks)"
            if missing is None
            else "none: logit parity and answer agreement only"
        ),
        "looks": look_schedule(verifier.cap) if missing is None else None,
        "cap": verifier.cap,
    }
