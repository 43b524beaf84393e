"""The paired bootstrap behind --quantize auto's F1-drop decisions, and its sequential looks."""

from __future__ import annotations

import numpy as np
import pytest

from qa_engine.export.evidence import (
    f1_drop,
    look_alphas,
    look_schedule,
    missing_accuracy_evidence,
    relative_drop,
    sequential_f1_drop,
)


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


# ---------------------------------------------------------------- sequential looks

CAP = 1000


def _spread(n: int, every: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n questions at ~64 F1; the variant loses every ``every``-th right answer, spread
    evenly so every prefix shows the same drop."""
    rng = np.random.default_rng(seed)
    reference = (rng.random(n) < 0.64) * 100.0
    variant = reference.copy()
    right = np.flatnonzero(reference == 100.0)
    variant[right[::every]] = 0.0
    return reference, variant


def _lazy(reference: np.ndarray, variant: np.ndarray, calls: list[int]):
    def paired(n: int) -> tuple[np.ndarray, np.ndarray]:
        calls.append(n)
        return reference[:n], variant[:n]

    return paired


def test_look_schedule_doubles_to_the_cap_and_splits_alpha() -> None:
    assert look_schedule(1000) == [32, 64, 128, 256, 512, 1000]
    assert look_schedule(600) == [32, 64, 128, 256, 600]  # 512 would sit too near 600
    assert look_schedule(20) == [20]
    alphas = look_alphas(6, 0.05)
    assert sum(alphas) == pytest.approx(0.05) and alphas[-1] == pytest.approx(0.025)
    assert look_alphas(1, 0.05) == [0.05]


def test_a_variant_that_changed_nothing_yet_is_not_within_on_a_few_questions() -> None:
    """The pseudo-pairs: 32 unchanged answers are no evidence that changes are rare."""
    reference, _ = _spread(CAP, 7)
    calls: list[int] = []
    estimate = sequential_f1_drop(_lazy(reference, reference.copy(), calls), 1.0, CAP)
    assert estimate.decision == "within" and estimate.point == 0.0
    assert estimate.questions == CAP and calls == look_schedule(CAP)
    # Without them, the percentile bootstrap's [0, 0] decided at the first look.
    early = sequential_f1_drop(_lazy(reference, reference.copy(), []), 1.0, CAP, pseudo_pairs=False)
    assert early.questions == 32 and early.high == 0.0


def test_one_unseen_change_each_way_widens_a_small_sample_only() -> None:
    reference, _ = _spread(2000, 7)
    small = f1_drop(reference[:32], reference[:32], 1.0, pseudo_pairs=True)
    large = f1_drop(reference, reference.copy(), 1.0, pseudo_pairs=True)
    assert small.point == large.point == 0.0
    assert small.high > 5.0 and small.decision == "undecided"
    assert large.high < 1.0 and large.decision == "within"


def test_a_clearly_worse_variant_stops_early_as_over() -> None:
    reference, variant = _spread(CAP, 7)  # ~14% of right answers lost
    calls: list[int] = []
    estimate = sequential_f1_drop(_lazy(reference, variant, calls), 1.0, CAP)
    assert estimate.decision == "over" and estimate.low > 1.0
    assert estimate.questions <= 128 and calls[-1] == estimate.questions < CAP
    assert estimate.confidence > 0.95  # an early look is held to its share of alpha


def test_a_borderline_variant_runs_to_the_cap_as_undecided() -> None:
    rng = np.random.default_rng(3)
    reference = (rng.random(CAP) < 0.64) * 100.0
    variant = reference.copy()
    # Many answers change both ways, with a net loss right at the 1% budget.
    right, wrong = np.flatnonzero(reference == 100.0), np.flatnonzero(reference == 0.0)
    net = round(0.01 * right.size)
    variant[right[: 40 + net]] = 0.0
    variant[wrong[:40]] = 100.0
    calls: list[int] = []
    estimate = sequential_f1_drop(_lazy(reference, variant, calls), 1.0, CAP)
    assert estimate.point == pytest.approx(1.0, abs=0.2)
    assert estimate.decision == "undecided" and estimate.questions == CAP
    assert calls == look_schedule(CAP) and estimate.looks == tuple(look_schedule(CAP))
    assert estimate.confidence == pytest.approx(0.975)  # the last look's share


def test_f1_is_evidence_only_on_questions_the_model_can_answer() -> None:
    assert "generated" in missing_accuracy_evidence(None)
    no_skill = np.zeros(32)
    no_skill[0] = 100.0  # F1 ~3: a random-weight model
    assert "cannot answer" in missing_accuracy_evidence(no_skill)
    assert missing_accuracy_evidence(_spread(32, 7)[0]) is None
