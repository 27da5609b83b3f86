"""convcalc.gridding: the three verdicts, exact coverage against brute force, repairs, and speed."""

from __future__ import annotations

import itertools
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convcalc import ConvcalcError
from convcalc.gridding import (Coverage, covered_runs, gridding, hdc, is_hole_free, largest_hole_free_field,
                               nearest_hole_free, path_counts, sawtooth, tap_coverage)


def brute_offsets(rates, k):
    offsets = {0}
    for rate in rates:
        offsets = {x + t * rate for x in offsets for t in range(k)}
    return offsets


def brute_coverage(rates, k) -> Coverage:
    offsets = brute_offsets(rates, k)
    top = max(offsets)
    gap = run = 0
    for x in range(top + 1):
        run = 0 if x in offsets else run + 1
        gap = max(gap, run)
    return Coverage(top + 1, len(offsets), gap)


# -- the examples the issue names, brute-forced -----------------------------------------------------

@pytest.mark.parametrize("rates, k, grids, holes, m2, hdc_ok", [
    ((2, 2, 2), 3, True, 6, 2, True),      # passes M_2 <= 3, yet grids (gcd 2)
    ((1, 2, 5), 3, False, 0, 2, True),     # the paper's good example
    ((1, 2, 3), 3, False, 0, 2, True),
    ((1, 2, 9), 3, True, 4, 5, False),     # the paper's bad example, M_2 = 5 > 3
    ((2, 3), 3, True, 2, 3, True),         # passes M_2 = 3, yet has holes: HDC ignores r_1
    ((3, 5), 3, True, 8, 5, False),        # gcd 1, yet holes
    (tuple(2**i for i in range(10)), 2, False, 0, 2, True),  # covers 1024 offsets
])
def test_examples(rates, k, grids, holes, m2, hdc_ok):
    report = gridding(rates, k)
    assert report.gridding is grids
    assert report.coverage == brute_coverage(rates, k)
    assert report.coverage.holes == holes
    assert (report.hdc.M2, report.hdc.ok) == (m2, hdc_ok)


def test_binary_rates_cover_1024():
    report = gridding([2**i for i in range(10)], 2)
    assert (report.coverage.receptive_field, report.coverage.covered) == (1024, 1024)
    assert set(report.paths) == {1}  # every offset by exactly one path: binary digits


def test_common_factor():
    assert gridding((2, 2, 2)).gcd == 2
    assert gridding((6, 12, 18)).gcd == 6
    assert gridding((2, 3)).gcd == 1


def test_hdc_recursion_from_the_paper():
    assert hdc((1, 2, 5), 3).M == (1, 2, 5)
    assert hdc((1, 2, 9), 3).M == (3, 5, 9)
    assert hdc((7,), 3).M2 is None and hdc((7,), 3).ok is None


def test_path_counts_are_the_weighting():
    assert path_counts([(2, 3)] * 3) == [1, 0, 3, 0, 6, 0, 7, 0, 6, 0, 3, 0, 1]
    assert sum(path_counts([(1, 3), (2, 3), (5, 3)])) == 27


# -- exact coverage: brute force on random rate sets -------------------------------------------------

@settings(max_examples=600)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=6), st.integers(1, 6))
def test_coverage_equals_brute_force(rates, k):
    assert tap_coverage([(r, k) for r in rates]) == brute_coverage(rates, k)


@settings(max_examples=300)
@given(st.lists(st.tuples(st.integers(1, 30), st.integers(1, 5)), min_size=1, max_size=6), st.integers(1, 4))
def test_coverage_with_mixed_kernels_and_common_factors(terms, factor):
    terms = [(step * factor, taps) for step, taps in terms]
    offsets = {0}
    for step, taps in terms:
        offsets = {x + t * step for x in offsets for t in range(taps)}
    coverage = tap_coverage(terms)
    assert (coverage.receptive_field, coverage.covered) == (max(offsets) + 1, len(offsets))
    common, head, hidden, tail = covered_runs(terms, edge=10**6)
    assert hidden == 0
    assert {common * x for a, b in head for x in range(a, b + 1)} == offsets


@settings(max_examples=300)
@given(st.lists(st.integers(1, 30), min_size=1, max_size=6), st.integers(1, 5))
def test_hole_free_condition_is_exact(rates, k):
    assert is_hole_free(rates, k) == (tap_coverage([(r, k) for r in rates]).holes == 0)


# -- repairs -------------------------------------------------------------------------------------------

def brute_nearest(rates, k, limit):
    """Every sorted list of the same length with values up to ``limit``: the closest hole-free ones."""
    target, need = sorted(rates), sum(rates)
    scored = []
    for candidate in itertools.combinations_with_replacement(range(1, limit + 1), len(rates)):
        if sum(candidate) >= need and is_hole_free(candidate, k):
            scored.append((sum(abs(a - b) for a, b in zip(candidate, target)), candidate))
    scored.sort()
    return scored


@pytest.mark.parametrize("rates, k", [((2, 2, 2), 3), ((1, 2, 9), 3), ((3, 3, 3), 3), ((2, 2, 2, 2), 3),
                                      ((4, 4, 4), 5), ((2, 4, 6), 3), ((3, 5), 3), ((2, 2, 2), 2)])
def test_suggestions_are_the_closest(rates, k):
    found = nearest_hole_free(rates, k)
    brute = brute_nearest(rates, k, limit=3 * max(rates) + 3)
    assert [cost for cost, _ in brute[:len(found)]] == \
        [sum(abs(a - b) for a, b in zip(s, sorted(rates))) for s in found]
    for suggestion in found:
        assert tap_coverage([(r, k) for r in suggestion]).holes == 0
        assert sum(suggestion) >= sum(rates)
    if not brute:
        assert found == ()


def test_suggestions_for_the_classic_case():
    report = gridding((2, 2, 2))
    assert report.suggestions[0] == (1, 2, 3)
    assert (1, 2, 5) not in report.suggestions or report.suggestions.index((1, 2, 5)) > 0


def test_no_repair_when_the_field_is_too_large():
    report = gridding((2, 3))
    assert report.suggestions == () and report.sawtooth is None
    assert largest_hole_free_field(2, 3) == 9 < report.coverage.receptive_field


def test_sawtooth_for_long_stacks():
    rates = sawtooth(12, 3, 24)
    assert rates == (1, 2, 3) * 4
    assert is_hole_free(rates, 3)
    report = gridding((2,) * 12)
    assert report.sawtooth == (1, 2, 3) * 4 and report.suggestions == ()
    assert gridding((2,) * 6).sawtooth is not None


@settings(max_examples=100)
@given(st.integers(3, 200), st.integers(2, 7), st.integers(1, 50))
def test_sawtooth_covers_and_keeps_the_field(length, k, mean_rate):
    need = length * mean_rate
    rates = sawtooth(length, k, need)
    if rates is not None:
        assert len(rates) == length and sum(rates) >= need
        assert tap_coverage([(r, k) for r in rates]).holes == 0


# -- bad input and speed -----------------------------------------------------------------------------------

@pytest.mark.parametrize("rates, k, message", [
    ((), 3, "no rates given"),
    ((0, 1), 3, "the first rate must be an integer from 1"),
    ((1, -2), 3, "the second rate must be an integer from 1"),
    ((1, 2.5), 3, "the second rate must be an integer"),
    ((1, 10**7), 3, "the second rate must be an integer from 1 to 1,000,000"),
    ((1,) * 10_001, 3, "10,001 rates given; at most 10,000"),
    ((1, 2), 0, "kernel_size must be an integer from 1 to 101"),
])
def test_bad_rates(rates, k, message):
    with pytest.raises(ConvcalcError, match=message):
        gridding(rates, k)


def test_thousand_layers_of_large_rates_are_fast():
    import random

    rng = random.Random(0)
    cases = [[(rng.randint(1, 1000), rng.randint(2, 7)) for _ in range(1000)],
             [(1000, 7)] * 999 + [(999, 7)],
             [(rng.choice([997, 991, 983, 977]), 7) for _ in range(1000)]]
    for terms in cases:
        start = time.process_time()
        tap_coverage(terms)
        # A loose guard against an exponential regression; benchmarks/gridding.py measures properly.
        assert time.process_time() - start < 2.0


def test_the_api_name_is_the_function_whatever_was_imported_first():
    import convcalc
    import convcalc.receptive  # noqa: F401  (imports the gridding module)

    assert callable(convcalc.gridding) and convcalc.gridding((1, 2, 5)).gridding is False
