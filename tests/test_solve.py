"""convcalc.solve: the solution set equals brute force through Layer.output_size (nothing missing, nothing
extra), and every solution runs in eager torch (F.pad first where given) to the size asked for."""

from __future__ import annotations

import itertools
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convcalc.errors import ConvcalcError
from convcalc.layer import Layer
from convcalc.solve import OPS, Bounds, solve

EXAMPLES = int(os.environ.get("CONVCALC_SEARCH_EXAMPLES", "400"))


def brute_force(n, m, op, bounds, convention="torch"):
    """Every layer of the bounds (pads 0..e-1 per side; pools and tconv symmetric; output_padding
    0..max(s, d)-1; ceil_mode both ways) that Layer accepts and that maps n to m."""
    found = set()
    ops = [op] if op else [o for o in OPS if convention == "torch" or o != "conv_transpose"]
    for o, k, s, d in itertools.product(ops, range(1, bounds.kernel_size + 1), range(1, bounds.stride + 1),
                                        range(1, bounds.dilation + 1)):
        if o == "avg_pool" and d != 1:
            continue
        e = d * (k - 1) + 1
        candidates = []
        if convention == "tf":
            candidates = [dict(padding=word, convention="tf") for word in ("same", "valid")]
        elif o == "conv":
            candidates = [dict(padding=((left, right),)) if left != right else dict(padding=left)
                          for left in range(e) for right in range(e)]
        elif o == "conv_transpose":
            candidates = [dict(padding=p, output_padding=x) for p in range(e) for x in range(max(s, d))]
        else:
            candidates = [dict(padding=p, ceil_mode=c) for p in range(e) for c in (False, True)]
        for values in candidates:
            try:
                layer = Layer.build(k, s, dilation=d, op=o, dims=1, **values)
                if layer.output_size((n,)) == (m,):
                    found.add((o, k, s, d, layer.pads_on((n,))[0], layer.output_padding[0], layer.ceil_mode))
            except ConvcalcError:
                continue
    return found


def solved(result):
    return {(s.layer.op, s.layer.kernel_size[0], s.layer.stride[0], s.layer.dilation[0],
             s.layer.pads_on(result.in_size)[0], s.layer.output_padding[0], s.layer.ceil_mode)
            for s in result.solutions}


@settings(max_examples=EXAMPLES)
@given(n=st.integers(1, 24), m=st.integers(1, 24), op=st.none() | st.sampled_from(OPS),
       k=st.integers(1, 5), s=st.integers(1, 3), d=st.integers(1, 3), tf=st.booleans())
def test_solutions_equal_brute_force(n, m, op, k, s, d, tf):
    convention = "tf" if tf and op != "conv_transpose" else "torch"
    bounds = Bounds(k, s, d)
    result = solve((n,), (m,), op, bounds=bounds, convention=convention)
    expected = brute_force(n, m, op, bounds, convention)
    assert solved(result) == expected
    assert result.count == len(expected) == len(result.solutions)
    assert (result.reason is None) == bool(expected)


@settings(max_examples=max(EXAMPLES // 4, 50))
@given(n=st.integers(1, 16), m=st.integers(1, 16), k=st.integers(1, 4), s=st.integers(1, 3), p=st.integers(0, 3))
def test_fixed_values_restrict_the_search(n, m, k, s, p):
    result = solve((n,), (m,), "conv", kernel_size=k, stride=s, padding=p, bounds=Bounds(4, 3, 2))
    expected = set()
    for d in (1, 2):  # a fixed padding is taken as given, beyond the search's e - 1
        try:
            if Layer.build(k, s, p, d, dims=1).output_size((n,)) == (m,):
                expected.add(("conv", k, s, d, (p, p), 0, False))
        except ConvcalcError:
            pass
    assert solved(result) == expected


def test_ranking_and_the_issue_questions():
    best = solve((224,), (112,), "conv", kernel_size=3, stride=2).solutions
    assert best[0].torch == "nn.Conv1d(C_in, C_out, kernel_size=3, stride=2, padding=1)"
    unequal = [s for s in best if not s.symmetric]
    assert unequal[0].pad == "F.pad(x, (0, 1))"  # the odd pixel on the right, as TensorFlow pads
    assert all(s.symmetric for s in best[:len(best) - len(unequal)])  # symmetric first
    doubling = solve((7, 7), (14, 14), "conv_transpose").solutions
    assert "nn.ConvTranspose2d(C_in, C_out, kernel_size=4, stride=2, padding=1)" in [s.torch for s in doubling]
    tf = solve((224,), (112,), "conv", kernel_size=3, stride=2, dilation=1, convention="tf").solutions
    assert [s.pad for s in tf] == ["F.pad(x, (0, 1))"]


def test_nothing_fits_says_why():
    pooled = solve((7,), (14,), "max_pool")
    assert pooled.count == 0 and "pooling grows a size by at most 1: use tconv" in pooled.reason
    conv = solve((3,), (20,), "conv", kernel_size=3)
    assert conv.count == 0 and conv.reason.startswith("no conv with kernel 3 within the bounds")


def test_per_dimension_sizes_share_the_kernel():
    result = solve((224, 320), (112, 160), "conv")
    assert result.count == len(result.solutions) > 0
    for s in result.solutions[:200]:
        assert s.layer.output_size((224, 320)) == (112, 160)
        assert len(set(s.layer.kernel_size)) == 1 and len(set(s.layer.stride)) == 1
    non_square = solve((224, 320), (112, 160), "conv", kernel_size=(1, 7))
    assert all(s.layer.kernel_size == (1, 7) for s in non_square.solutions)


@pytest.mark.parametrize("kwargs, needle", [
    (dict(in_size=(8,), out_size=(4, 4)), "in_size has 1 dimensions, out_size has 2"),
    (dict(in_size=(0,), out_size=(4,)), "in_size must be from 1"),
    (dict(in_size=(8,), out_size=(4,), op="conv_transpose", convention="tf"), "tf convention solves conv"),
    (dict(in_size=(8,), out_size=(4,), kernel_size=0), "kernel_size must be from 1 to 16"),
    (dict(in_size=(500, 400), out_size=(250, 200), kernel_size=16, bounds=Bounds(16, 16, 16)), "more than 50,000"),
])
def test_bad_arguments(kwargs, needle):
    with pytest.raises(ConvcalcError, match=needle):
        solve(**kwargs)


def test_every_solution_runs_in_eager_torch():
    torch = pytest.importorskip("torch")
    from convcalc.torchcheck import run_layer

    checked = 0
    for n, m, op in [(224, 112, None), (7, 14, "conv_transpose"), (9, 5, None), (13, 13, "conv"), (5, 3, None)]:
        for dims in (1, 2):
            result = solve((n,) * dims, (m,) * dims, op, bounds=Bounds(5, 3, 2))
            for s in result.solutions:
                answer = run_layer(s.layer, (n,) * dims)
                assert answer.out == (m,) * dims, (s.torch, answer)
                checked += 1
    assert checked > 500
    del torch


def test_tf_same_and_valid_mix_across_dimensions():
    """224x225 -> 112x113 with a 2x2 stride-2 conv: SAME pads nothing along the first dimension (it is VALID
    there) and one element along the second; the layer is TensorFlow's SAME and must be listed."""
    result = solve((224, 225), (112, 113), "conv", kernel_size=2, stride=2, dilation=1, convention="tf")
    assert [s.torch for s in result.solutions] == ["F.pad(x, (0, 1, 0, 0)) -> nn.Conv2d(C_in, C_out, kernel_size=2, stride=2)"]
    pools = solve((9,), (4,), "max_pool", kernel_size=3, stride=2, convention="tf").solutions
    assert pools and all("padding=" not in s.torch for s in pools if s.options[0].tf == "valid")


def test_op_order_and_transposed_convs_that_scale():
    """Without an op, convolutions come first when shrinking and transposed ones when enlarging; among
    transposed convolutions those with out = stride x in for every input come first, then those whose
    taps reach every output position."""
    shrink = solve((224,), (112,), None, kernel_size=3, stride=2).solutions
    assert shrink[0].torch == "nn.Conv1d(C_in, C_out, kernel_size=3, stride=2, padding=1)"
    ops = [s.options[0].op for s in shrink]
    assert ops == sorted(ops, key=("conv", "conv_transpose", "max_pool", "avg_pool").index)
    grow = solve((7,), (14,)).solutions
    assert grow[0].options[0].op == "conv_transpose" and grow[0].scales and not grow[0].leaves_gaps
    for s in grow:
        if s.options[0].op == "conv_transpose":  # scales means exactly that, checked on other sizes
            stride = s.layer.stride[0]
            assert s.scales == all(s.layer.output_size((n,)) == (stride * n,) for n in (1000, 1001))
    flags = [(not s.scales, s.leaves_gaps) for s in grow if s.options[0].op == "conv_transpose"]
    assert flags == sorted(flags)
    assert any(s.leaves_gaps for s in grow) and solve((7,), (14,), "conv_transpose", kernel_size=1).solutions[0].leaves_gaps
