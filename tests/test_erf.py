"""convcalc/erf.py: exact effective fields of stacks (Luo et al. 2016), and the statistics shared with
measured maps: against Luo's analytic results, brute-force path counting, eager torch gradients and an
independent implementation of RepLKNet's area ratio."""

from __future__ import annotations

import importlib.util
import itertools
import math
import random
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convcalc.erf import MASSES, _counts_to, centred_squares, shortest_window, stack_erf
from convcalc.errors import ConvcalcError
from convcalc.layer import Layer


@pytest.mark.parametrize("n", range(1, 31))
def test_uniform_3x3_layers_have_luos_standard_deviation(n):
    """n uniform 3x3 layers: the variance of the contribution is exactly 2n/3 (Luo et al. 2016)."""
    profile = stack_erf(f"3x3*{n}").profiles[0]
    assert profile.variance == Fraction(2 * n, 3) == profile.formula_variance
    assert profile.receptive_field == 2 * n + 1 and profile.total == 3**n


def test_the_effective_share_of_the_field_shrinks_as_one_over_sqrt_n():
    """The 95% window over the theoretical field falls as n grows, and times sqrt(n) it settles: the
    ratio is O(1/sqrt(n)) (Luo et al., section 2.3)."""
    mass = Fraction(19, 20)
    ratios = {n: stack_erf(f"3x3*{n}").profiles[0].mass_window(mass) / (2 * n + 1) for n in (4, 16, 64, 256)}
    assert ratios[4] > ratios[16] > ratios[64] > ratios[256]
    scaled = [ratios[n] * math.sqrt(n) for n in (16, 64, 256)]
    assert max(scaled) / min(scaled) < 1.1
    # the Gaussian limit: 95% of N(0, 2n/3) lies within 1.96 std, a window of 2 * 1.96 * sqrt(2n/3)
    assert ratios[256] * 513 == pytest.approx(2 * 1.96 * math.sqrt(2 * 256 / 3), rel=0.05)


@st.composite
def conv_stacks(draw, transposed: bool = False):
    layers = []
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["conv", "max_pool", "avg_pool"] + (["conv_transpose"] if transposed else [])))
        k = draw(st.integers(1, 5))
        s = draw(st.integers(1, 3))
        d = 1 if op == "avg_pool" else draw(st.integers(1, 3))
        p = draw(st.integers(0, k // 2)) if op != "conv_transpose" else draw(st.integers(0, d * (k - 1)))
        extra = draw(st.integers(0, max(s, d) - 1)) if op == "conv_transpose" else 0
        layers.append(Layer.build(k, s, p, d, op=op, output_padding=extra, dims=1))
    return layers


def brute_force(layers, unit):
    """Paths from each input position to output ``unit``, by enumerating every choice of one tap per layer
    backwards (positions a transposed tap cannot come from are skipped)."""
    reached = {unit: 1}
    for layer in reversed(layers):
        k, s, d, p = layer.kernel_size[0], layer.stride[0], layer.dilation[0], layer.pads[0][0]
        nxt = {}
        for o, count in reached.items():
            for t in range(k):
                if layer.op == "conv_transpose":
                    if (o + p - t * d) % s:
                        continue
                    i = (o + p - t * d) // s
                else:
                    i = o * s - p + t * d
                nxt[i] = nxt.get(i, 0) + count
        reached = nxt
    if not reached:
        return ()
    low, high = min(reached), max(reached)
    return tuple(reached.get(i, 0) for i in range(low, high + 1))


@settings(max_examples=400, deadline=None)
@given(conv_stacks())
def test_profiles_are_the_path_counts(layers):
    """The Kronecker product of the taps equals brute-force path counting for convolutions and pools, and
    its variance equals the formula sum J^2 d^2 (k^2 - 1) / 12."""
    profile = stack_erf(layers).profiles[0]
    assert profile.counts == brute_force(layers, 0) == _counts_to(layers, 0, 0)
    assert profile.variance == profile.formula_variance


@settings(max_examples=300, deadline=None)
@given(conv_stacks(transposed=True))
def test_transposed_stacks_take_the_widest_unit(layers):
    profile = stack_erf(layers).profiles[0]
    period = math.prod(layer.stride[0] for layer in layers if layer.op == "conv_transpose")
    candidates = [brute_force(layers, unit) for unit in range(period)]
    assert profile.counts == max(candidates, key=lambda c: (len(c), sum(c)))


def test_a_2d_stack_has_one_profile_per_dimension():
    erf = stack_erf("3x5,max2x3")
    assert [p.counts for p in erf.profiles] == [brute_force([Layer.build(3, dims=1), Layer.build(2, op="max_pool",
                                                                                                 dims=1)], 0),
                                               brute_force([Layer.build(5, dims=1), Layer.build(3, op="max_pool",
                                                                                                 dims=1)], 0)]
    assert stack_erf("3x3d2*3").profiles[0].holes == 6  # gridding: the holes of convcalc gridding 2,2,2


@settings(max_examples=500, deadline=None)
@given(st.lists(st.integers(0, 50), min_size=1, max_size=30), st.sampled_from(MASSES))
def test_shortest_window_is_the_shortest(values, mass):
    found = shortest_window(values, mass)
    total = sum(values)
    if total == 0:
        assert found is None
        return
    best = min(j - i for i, j in itertools.combinations(range(len(values) + 1), 2)
               if sum(values[i:j]) >= mass * total)
    assert found == best


def replknet_get_rectangle(data, thresh):
    """RepLKNet's erf/analyze_erf.py, as written there, on a numpy array already log-scaled."""
    import numpy as np

    h, w = data.shape
    all_sum = np.sum(data)
    for i in range(1, h // 2):
        selected_area = data[h // 2 - i:h // 2 + 1 + i, w // 2 - i:w // 2 + 1 + i]
        area_sum = np.sum(selected_area)
        if area_sum / all_sum > thresh:
            return i * 2 + 1, (i * 2 + 1) / h * (i * 2 + 1) / w
    return None


@pytest.mark.skipif(importlib.util.find_spec("numpy") is None, reason="needs numpy")
@pytest.mark.parametrize("seed", range(40))
def test_area_ratio_is_replknets(seed):
    import numpy as np

    rng = random.Random(seed)
    h, w = rng.randint(3, 40), rng.randint(3, 40)
    h = w if seed % 2 else h  # square maps, as the papers measure, and others
    spread = rng.uniform(0.5, 8)
    grid = [[rng.random() * 1000 * math.exp(-((y - h / 2) ** 2 + (x - w / 2) ** 2) / (2 * spread**2))
             for x in range(w)] for y in range(h)]
    ours = centred_squares(grid, (0.2, 0.3, 0.5, 0.99))
    data = np.log10(np.array(grid) + 1)
    data = data / np.max(data)
    for t in (0.2, 0.3, 0.5, 0.99):
        theirs = replknet_get_rectangle(data, t) if w >= h else ours[t]  # their slicing assumes W >= H
        if theirs is None:
            assert ours[t] is None
        else:
            assert ours[t][0] == theirs[0] and ours[t][1] == pytest.approx(theirs[1])
    raw = centred_squares(grid, (0.5,), log_scale=False)[0.5]
    theirs = replknet_get_rectangle(np.array(grid), 0.5) if w >= h else raw
    assert (raw is None) == (theirs is None) and (raw is None or raw[0] == theirs[0])


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs torch")
@settings(max_examples=60, deadline=None)
@given(conv_stacks())
def test_profiles_are_torchs_gradient(layers):
    """A 1-d stack built in torch with every weight 1 (average pools weigh 1/k: scaled back), run on a
    wide input: the input gradient of one output unit away from the borders is the profile."""
    import torch
    import torch.nn.functional as F

    field = stack_erf(layers).profiles[0]
    x = torch.zeros(1, 1, 4 * field.receptive_field + 64, dtype=torch.float64, requires_grad=True)
    y, scale = x, 1.0
    for layer in layers:
        k, s, d, p = layer.kernel_size[0], layer.stride[0], layer.dilation[0], layer.padding[0]
        if layer.op == "conv":
            y = F.conv1d(y, torch.ones(1, 1, k, dtype=torch.float64), stride=s, padding=p, dilation=d)
        elif layer.op == "avg_pool":
            y, scale = F.avg_pool1d(y, k, s, p), scale * k
        else:  # a max pool's windows, every tap weighing 1: a convolution of ones with its geometry
            y = F.conv1d(y, torch.ones(1, 1, k, dtype=torch.float64), stride=s, padding=p, dilation=d)
    unit = y.shape[-1] // 2
    y[0, 0, unit].backward()
    grad = (x.grad[0, 0] * scale).round().to(torch.int64).tolist()
    first = next(i for i, g in enumerate(grad) if g)
    last = max(i for i, g in enumerate(grad) if g)
    assert tuple(grad[first:last + 1]) == field.counts[next(i for i, c in enumerate(field.counts) if c):
                                                        max(i for i, c in enumerate(field.counts) if c) + 1]


def test_limits_are_refused_up_front():
    with pytest.raises(ConvcalcError, match="the receptive field spans"):
        stack_erf("3x3s4*12")
    with pytest.raises(ConvcalcError, match="beyond what answers in seconds"):
        stack_erf("3x3d7*3000")
    with pytest.raises(ConvcalcError, match="repeat their fields every"):
        stack_erf("tconv2s2*9")
    with pytest.raises(ConvcalcError, match="no layers given"):
        stack_erf([])
