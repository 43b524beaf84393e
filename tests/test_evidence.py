"""The paired bootstrap behind --quantize auto's F1-drop decisions."""

from __future__ import annotations

import numpy as np
import pytest

from qa_engine.export.evidence import f1_drop, relative_drop


def _pair(n: int, changed: int, lost: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n questions at ~64 F1; ``changed`` of them flip between right and wrong, with
    ``lost`` more losses than gains among them."""
    rng = np.random.default_rng(seed)
    reference = (rng.random(n) < 0.64) * 100.0
    variant = reference.copy()
    flips = rng.choice(n, changed, replace=False)
    losses = [i for i in flips if reference[i] == 100.0][: (changed + lost) // 2]
    gains = [i for i in flips if reference[i] == 0.0][: (changed - lost) // 2]
    variant[losses] = 0.0
    variant[gains] = 100.0
    return reference, variant


def test_small_sample_cannot_decide_a_tight_budget() -> None:
    # 200 questions, a true-ish drop of ~0.8 %: the interval is several points wide.
    reference, variant = _pair(200, 12, 2)
    estimate = f1_drop(reference, variant, budget=0.5)
    assert estimate.low < 0.5 < estimate.high
    assert estimate.decision == "undecided"
    assert estimate.questions_needed is not None and estimate.questions_needed > 200
    assert "would decide" in estimate.describe()


def test_interval_contains_point_and_narrows_with_more_questions() -> None:
    small = f1_drop(*_pair(300, 20, 4), budget=1.0)
    large = f1_drop(*_pair(6000, 400, 80), budget=1.0)
    for est in (small, large):
        assert est.low <= est.point <= est.high
    assert (large.high - large.low) < (small.high - small.low) / 2


def test_clear_cases_are_decided() -> None:
    reference, same = _pair(2000, 0, 0)
    assert f1_drop(reference, same, budget=0.5).decision == "within"
    worse = reference.copy()
    worse[np.flatnonzero(reference == 100.0)[:200]] = 0.0  # ~15 % relative drop
    estimate = f1_drop(reference, worse, budget=1.0)
    assert estimate.decision == "over" and estimate.low > 1.0
    assert relative_drop(reference, worse) == pytest.approx(estimate.point)


def test_needs_paired_scores() -> None:
    with pytest.raises(ValueError, match="paired"):
        f1_drop(np.ones(3), np.ones(4), budget=1.0)
