"""The one batching rule: greedy filling, and splitting by length under a call-size floor."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qa_engine.batching import BatchLimits, plan_batches
from qa_engine.call_cost import measure_min_call_tokens


def _check_cover(batches, lengths, limits) -> None:
    seen = sorted(i for b in batches for i in b.indices)
    assert seen == list(range(len(lengths)))
    for b in batches:
        assert all(lengths[i] <= b.width for i in b.indices)
        assert len(b.indices) <= limits.max_windows
        if len(b.indices) > 1 and limits.max_tokens is not None:
            assert b.padded_tokens <= limits.max_tokens


def _cost(batches, floor: int) -> int:
    return sum(max(b.padded_tokens, floor) for b in batches)


def test_without_a_floor_batches_are_filled() -> None:
    limits = BatchLimits(max_windows=4, max_tokens=None)
    batches = plan_batches([10, 200, 12, 11, 13, 9], limits)
    assert [len(b.indices) for b in batches] == [4, 2]
    assert batches[0].width == 200


def test_a_small_floor_splits_unlike_lengths() -> None:
    lengths = [250, 40, 41, 42, 39]
    filled = plan_batches(lengths, BatchLimits(max_windows=8))
    split = plan_batches(lengths, BatchLimits(max_windows=8, min_call_tokens=100))
    assert len(filled) == 1 and filled[0].padded_tokens == 5 * 250
    assert [b.width for b in split] == [250, 42]
    assert sum(b.padded_tokens for b in split) == 250 + 4 * 42


def test_a_floor_above_every_batch_keeps_the_fewest_calls() -> None:
    lengths = [250, 40, 41, 42, 39, 100, 120]
    limits = BatchLimits(max_windows=4, max_tokens=2048)
    floored = plan_batches(lengths, BatchLimits(4, 2048, min_call_tokens=10_000))
    assert len(floored) == len(plan_batches(lengths, limits)) == 2


@settings(max_examples=200, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 300), min_size=1, max_size=9),
    max_windows=st.integers(1, 5),
    max_tokens=st.one_of(st.none(), st.integers(64, 1200)),
    floor=st.integers(1, 1500),
    buckets=st.sampled_from([None, (32, 64, 128, 256, 300)]),
)
def test_the_split_is_the_cheapest_run_partition(
    lengths, max_windows, max_tokens, floor, buckets
) -> None:
    """Against brute force over every way to cut the longest-first order into runs."""
    limits = BatchLimits(max_windows, max_tokens, buckets, min_call_tokens=floor)
    batches = plan_batches(lengths, limits)
    _check_cover(batches, lengths, limits)
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    best = None
    n = len(order)
    for cuts in itertools.product([False, True], repeat=n - 1):
        runs, start = [], 0
        for i, cut in enumerate(cuts, start=1):
            if cut:
                runs.append(order[start:i])
                start = i
        runs.append(order[start:])
        cost = 0
        for run in runs:
            width = limits.width_for(lengths[run[0]])
            if len(run) > limits.max_rows(width):
                break
            cost += max(len(run) * width, floor)
        else:
            best = cost if best is None else min(best, cost)
    assert _cost(batches, floor) == best


class FakeSession:
    """A session whose call takes max(rows x width, knee) time units on a fake clock."""

    def __init__(self, knee: int) -> None:
        self.knee, self.now, self.calls = knee, 0.0, 0

    def clock(self) -> float:
        return self.now

    def run_batch(self, windows, width) -> None:
        self.calls += 1
        self.now += max(len(windows) * width, self.knee)


@pytest.mark.parametrize(("knee", "expected"), [(1, 64), (256, 256), (1000, 1024), (9999, 2048)])
def test_measured_floor_is_where_the_time_per_token_stops_falling(knee, expected) -> None:
    session = FakeSession(knee)
    got = measure_min_call_tokens(session.run_batch, 0, 64, 32, timer=session.clock)
    assert got == expected
    assert session.calls == 6 * 4  # sizes 1..32, one untimed and three timed runs each


def test_measure_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        measure_min_call_tokens(lambda w, n: None, 0, 64, 4, slack=0.5)
