"""Fold the trust run's check-*.json rows into trust.json and trust.md."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from qa_engine.cpu import cpu_model


def main(out: Path) -> None:
    rows = [json.loads(p.read_text()) for p in sorted(out.glob("check-*.json")) if p.stat().st_size]
    if not rows:
        sys.exit(f"{out}: no check-*.json rows")
    base = next(
        (r for r in rows if r["export"].endswith("fp32-none") and r["device"] == "cpu"), rows[0]
    )
    lines = [
        f"CPU: {cpu_model()}; first {base['questions']} SQuAD v1.1 dev questions; "
        "calibration and parity on train questions.",
        "",
        "| export | device | runs as | self-check | max abs dlogit (bound) | agree (floor) "
        "| F1 | % of fp32 | b32 vs b1 differ | check ms | load s |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        v = r["self_check"]
        tol = v.get("tolerance") or {}
        lines.append(
            f"| {Path(r['export']).name} | {r['device']} | {r['precision']} on "
            f"{r['providers'][0].replace('ExecutionProvider', '')} | **{v['status']}** "
            f"{'(refused)' if r['refused'] else ''} | {v['max_abs_logit_diff']:.3g} "
            f"({tol.get('max_abs_logit_diff', 0):.3g}) | {v['answer_agreement']:.0%} "
            f"({tol.get('min_answer_agreement', 0):.0%}) | {r['f1']:.2f} | "
            f"{100 * r['f1'] / base['f1']:.1f} | {r['batch32_vs_single_differ']}/"
            f"{r['invariance_questions']} | {1000 * v['seconds']:.0f} | {r['load_s']:.2f} |"
        )
    (out / "trust.json").write_text(json.dumps(rows, indent=2) + "\n")
    (out / "trust.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
