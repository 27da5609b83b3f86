"""convcalc/memory.py: budgets as people write them, and the largest batch that fits, against brute force."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convcalc.errors import ConvcalcError
from convcalc.memory import largest_batch, parse_budget


@pytest.mark.parametrize("text, expected", [
    ("24GiB", 24 * 2**30), ("24 GiB", 24 * 2**30), ("16GB", 16 * 10**9), ("512MiB", 512 * 2**20),
    ("1.5GiB", 3 * 2**29), ("800kB", 800_000), ("64KiB", 65536), ("12345", 12345), ("7b", 7), ("2tib", 2 * 2**40),
    ("0.5MB", 500_000),
])
def test_budgets(text, expected):
    assert parse_budget(text) == expected


@pytest.mark.parametrize("text", ["", "GiB", "24 gigs", "-1GiB", "1e9", "0", "0.1"])
def test_bad_budgets(text):
    with pytest.raises(ConvcalcError, match="budget"):
        parse_budget(text)


@st.composite
def peak_functions(draw):
    """A peak as memory grows with the batch: a fixed part, a slope, and kinks where the peak moves to
    another moment of the step (convex, piecewise linear)."""
    fixed = draw(st.integers(0, 10**6))
    slope = draw(st.integers(1, 10**5))
    kinks = draw(st.lists(st.tuples(st.integers(1, 300), st.integers(1, 10**5)), max_size=3))
    return lambda b: fixed + slope * b + sum(extra * max(0, b - at) for at, extra in kinks), not kinks


@settings(max_examples=600, deadline=None)
@given(peak_functions(), st.integers(0, 3 * 10**7), st.sampled_from([1, 2, 8, 64, 1000]))
def test_largest_batch_is_exact(function, budget, start):
    peak, affine = function
    result = largest_batch(peak, budget, start, limit=10**6)
    if peak(1) > budget:
        assert result.largest_batch is None
        return
    low, high = 1, 10**6  # brute force by bisection: peak(low) fits, and the peak grows with the batch
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if peak(middle) <= budget else (low, middle - 1)
    best = low
    assert result.largest_batch == best
    if best == 10**6:  # the limit
        return
    assert result.per_sample_bytes == peak(best + 1) - peak(best)
    assert {best, best + 1} <= set(result.peaks)  # confirmed at B and B + 1
    if affine:
        assert result.simulations <= 4


def test_counts_simulations_and_reuses_the_start():
    calls = []

    def peak(batch):
        calls.append(batch)
        return 1000 + 100 * batch

    result = largest_batch(peak, 100_000, start=8)
    assert result.largest_batch == 990 and calls == [8, 16, 990, 991] and result.simulations == 4
    assert largest_batch(peak, 1000, start=8).largest_batch is None
