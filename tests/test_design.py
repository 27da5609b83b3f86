"""convcalc.design: the search is complete and optimal, proved against brute force on small cases.

Brute force: every sorted rate list of 1 to 4 layers with rates up to 40, kernels of 2 to 5 taps; the
coverage of each is the set of offsets its taps reach, built as a bitmask (no use of the covering rule
the search relies on). Order does not matter (checked on every permutation of small lists), so sorted
lists stand for all rate lists.
"""

from __future__ import annotations

import functools
import itertools
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convcalc.design import MAX_LAYERS, design
from convcalc.errors import ConvcalcError
from convcalc.gridding import hdc, is_hole_free

RATES = 40
LAYERS = 4
EXAMPLES = int(os.environ.get("CONVCALC_SEARCH_EXAMPLES", "400"))  # raise it locally to dig deeper


def offsets(rates, k) -> int:
    mask = 1
    for r in rates:
        mask = functools.reduce(lambda acc, t: acc | (mask << (t * r)), range(k), 0)
    return mask


@functools.lru_cache(maxsize=None)
def valid_lists(k: int) -> tuple[tuple[int, ...], ...]:
    """Every hole-free sorted list of 1..4 rates <= 40, by exact coverage."""
    found = []
    for n in range(1, LAYERS + 1):
        for rates in itertools.combinations_with_replacement(range(1, RATES + 1), n):
            field = 1 + (k - 1) * sum(rates)
            if offsets(rates, k) == (1 << field) - 1:
                found.append(rates)
    return tuple(found)


def order(rates):
    return max(rates), sum(rates), rates


def allowed(rates, k, max_rate, map_size, hdc_rule):
    return (max(rates) <= max_rate and (map_size is None or max(rates) < map_size)
            and (not hdc_rule or len(rates) < 2 or hdc(rates, k).ok))


@pytest.mark.parametrize("k", [2, 3, 4, 5])
def test_covering_rule_is_exact_and_order_free(k):
    valid = set(valid_lists(k))
    for n in range(1, 4):
        for rates in itertools.combinations_with_replacement(range(1, 16), n):
            assert is_hole_free(rates, k) == (rates in valid), rates
            masks = {offsets(p, k) for p in itertools.permutations(rates)}
            assert len(masks) == 1, rates  # the coverage does not depend on the order of the layers


def expected_with_target(k, target, max_rate, map_size, hdc_rule, layers=None):
    candidates = [r for r in valid_lists(k) if allowed(r, k, max_rate, map_size, hdc_rule)
                  and 1 + (k - 1) * sum(r) >= target and (layers is None or len(r) == layers)]
    if not candidates:
        return None, []
    fewest = min(len(r) for r in candidates)
    return fewest, sorted((r for r in candidates if len(r) == fewest), key=order)


@settings(max_examples=EXAMPLES)
@given(k=st.integers(2, 5), target=st.integers(1, 700), max_rate=st.integers(1, RATES),
       map_size=st.none() | st.integers(2, 60), hdc_rule=st.booleans(), layers=st.none() | st.integers(1, LAYERS))
def test_design_with_a_target_equals_brute_force(k, target, max_rate, map_size, hdc_rule, layers):
    fewest, expected = expected_with_target(k, target, max_rate, map_size, hdc_rule, layers)
    result = design(k, target, layers, map_size, max_rate, hdc_rule, top=10)
    assert result.optimal
    if expected:
        assert result.layers == fewest
        assert [s.rates for s in result.schedules] == expected[:10]
        assert all(s.receptive_field >= target and s.holes == 0 for s in result.schedules)
    elif layers is not None:  # nothing of that many layers: the answer says so, and how far it gets
        assert result.schedules == ()
        best = [r for r in valid_lists(k) if len(r) == layers and allowed(r, k, max_rate, map_size, hdc_rule)]
        assert result.largest_field == (max(1 + (k - 1) * sum(r) for r in best) if best else None)
    else:  # more than 4 layers are needed: brute force cannot say; the answer must use more
        assert result.layers is None or result.layers > LAYERS or not result.schedules


@settings(max_examples=EXAMPLES)
@given(k=st.integers(2, 5), layers=st.integers(1, LAYERS), max_rate=st.integers(1, RATES),
       map_size=st.none() | st.integers(2, 60), hdc_rule=st.booleans())
def test_design_without_a_target_reaches_the_largest_field(k, layers, max_rate, map_size, hdc_rule):
    pool = [r for r in valid_lists(k) if len(r) == layers and allowed(r, k, max_rate, map_size, hdc_rule)]
    result = design(k, None, layers, map_size, max_rate, hdc_rule, top=10)
    assert result.optimal
    if not pool:
        assert result.schedules == () and result.largest_field is None
        return
    best = max(sum(r) for r in pool)
    assert result.largest_field == 1 + (k - 1) * best
    assert [s.rates for s in result.schedules] == sorted((r for r in pool if sum(r) == best), key=order)[:10]


def test_the_classic_answers():
    assert design(3, None, 4).schedules[0].rates == (1, 3, 9, 27)  # 3^N via 1, 3, 9, ...
    assert design(3, None, 4).largest_field == 81
    first = design(3, 17).schedules[0]
    assert first.rates == (1, 3, 4) and first.receptive_field == 17
    assert design(3, 1000).layers == 7 and design(3, 1000).schedules[0].receptive_field >= 1000
    on_map = design(3, None, 8, map_size=65)
    assert on_map.schedules[0].rates == (1, 3, 9, 27, 64, 64, 64, 64) and on_map.largest_field == 593


def test_references_are_judged_by_the_same_rules():
    refs = {r.name.split(" ")[0]: r for r in design(3, 17, map_size=16).references}
    assert refs["HDC"].schedule.rates == (1, 2, 5) and refs["HDC"].problems == ()
    assert "has holes" in refs["powers"].problems or refs["powers"].schedule.hole_free
    assert any("degenerate" in p for p in refs["DeepLabv3"].problems)  # 18 >= 16


def test_none_within_the_layer_limit():
    result = design(3, 10**9, max_rate=1)
    assert result.schedules == () and result.layers is None
    assert result.largest_field == 1 + 2 * MAX_LAYERS


@pytest.mark.parametrize("kwargs, needle", [
    ({"kernel_size": 1, "depth": 3}, "kernel_size must be an integer from 2"),
    ({"depth": 0}, "depth must be an integer from 1"),
    ({"target_rf": 0}, "target_rf must be an integer from 1"),
    ({"depth": 3, "map_size": 1}, "map_size must be an integer from 2"),
    ({}, "give target_rf"),
])
def test_bad_arguments(kwargs, needle):
    with pytest.raises(ConvcalcError, match=needle):
        design(**kwargs)
