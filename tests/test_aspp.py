"""convcalc.aspp: valid-tap shares in closed form, against counting and against torch."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convcalc import ConvcalcError
from convcalc.aspp import aspp, branch


def counted(rate, in_size, k):
    """Count every output position's taps on the map, one by one."""
    import itertools

    c = (k - 1) // 2
    positions = list(itertools.product(*(range(n) for n in in_size)))
    all_valid = only_centre = weights = 0
    for o in positions:
        valid = [all(0 <= o[d] + (t[d] - c) * rate < in_size[d] for d in range(len(in_size)))
                 for t in itertools.product(range(k), repeat=len(in_size))]
        all_valid += all(valid)
        only_centre += sum(valid) == 1
        weights += sum(valid)
    n = len(positions)
    return Fraction(all_valid, n), Fraction(only_centre, n), Fraction(weights, n * k ** len(in_size))


@pytest.mark.parametrize("rate, share", [(1, 93.9), (6, 66.5), (12, 39.8), (18, 19.9), (24, 6.8)])
def test_deeplab_figure_numbers_on_65x65(rate, share):
    b = branch(rate, (65, 65))
    assert round(float(b.all_taps_valid) * 100, 1) == share
    assert b.out == (65, 65) and b.padding == rate and b.receptive_field == 2 * rate + 1
    assert not b.degenerate


def test_degenerates_when_the_rate_reaches_the_map():
    assert not branch(64, (65, 65)).degenerate
    assert branch(65, (65, 65)).degenerate and branch(65, (65, 65)).only_center_valid == 1
    assert branch(1000, (65, 65)).degenerate


@settings(max_examples=150)
@given(st.integers(1, 12), st.lists(st.integers(1, 9), min_size=1, max_size=2), st.sampled_from([1, 3, 5]))
def test_closed_form_equals_counting(rate, in_size, k):
    b = branch(rate, in_size, k)
    assert (b.all_taps_valid, b.only_center_valid, b.valid_weights) == counted(rate, in_size, k)


def test_torch_counts_agree():
    torchcheck = pytest.importorskip("convcalc.torchmeasure")
    pytest.importorskip("torch")
    for b in aspp((65, 65), [1, 6, 12, 18, 24, 65]) + aspp((7, 9, 4), [1, 2, 5], 5):
        t = torchcheck.count_valid_taps(b.rate, b.in_size, b.kernel_size)
        assert (t.all_taps_valid, t.only_center_valid, t.out) == (b.all_taps_valid, b.only_center_valid, b.out)
    big = torchcheck.count_valid_taps(6, (3000, 3000), 3)
    assert big.how == "one dimension at a time" and big.all_taps_valid == branch(6, (3000, 3000)).all_taps_valid


def test_huge_maps_compute_exactly():
    b = branch(6, (10**30, 10**30))
    assert b.all_taps_valid == Fraction(10**30 - 12, 10**30) ** 2


@pytest.mark.parametrize("kwargs, message", [
    (dict(in_size=(65, 65), rates=[6], kernel_size=4), "odd kernels"),
    (dict(in_size=(65, 65), rates=[]), "no rates given"),
    (dict(in_size=(65, 65), rates=[0]), "the first rate must be an integer"),
    (dict(in_size=(0, 65), rates=[6]), "must be positive"),
    (dict(in_size=(65, 65), rates=list(range(1, 100))), "at most 64"),
])
def test_bad_input(kwargs, message):
    with pytest.raises(ConvcalcError, match=message):
        aspp(**kwargs)
