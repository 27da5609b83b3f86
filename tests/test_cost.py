"""convcalc.cost: parameters against torch modules, MACs against a brute-force count, torchinfo and fvcore."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convcalc import ConvcalcError, Layer, ShapeError
from convcalc.cost import check_groups, describe_groups, layer_cost


def brute_force_macs(layer: Layer, shape, out_channels, groups) -> int:
    """Walk a naive convolution and count its multiplications (padding taps included, as the tools do)."""
    n, c_in = shape[0], shape[1]
    out = layer.output_size(shape[2:])
    per_group_in, per_group_out = c_in // groups, out_channels // groups
    taps = math.prod(layer.kernel_size)
    count = 0
    if layer.op == "conv":  # every output position multiplies every tap of its group's input channels
        for _ in itertools.product(range(n), range(out_channels), *(range(o) for o in out)):
            count += per_group_in * taps
    else:  # transposed: every input element is scattered through every tap to its group's outputs
        for _ in itertools.product(range(n), range(c_in), *(range(i) for i in shape[2:])):
            count += per_group_out * taps
    return count


@st.composite
def conv_cases(draw):
    dims = draw(st.integers(1, 2))
    groups = draw(st.integers(1, 3))
    c_in, c_out = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    op = draw(st.sampled_from(["conv", "conv_transpose"]))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(dims))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(dims))
    layer = Layer.build(kernel, stride, 0, 1, op=op, dims=dims)
    spatial = tuple(draw(st.integers(k, 6)) for k in kernel)
    return layer, (draw(st.integers(1, 2)), c_in, *spatial), c_out, groups, draw(st.booleans())


@settings(max_examples=300)
@given(conv_cases())
def test_params_equal_the_torch_module(case):
    torch = pytest.importorskip("torch")
    from convcalc.torchcheck import Channels, build_module

    layer, shape, c_out, groups, bias = case
    cost = layer_cost(layer, shape, c_out, groups, bias)
    module = build_module(layer, Channels(shape[0], shape[1], c_out, groups, bias))
    assert cost.params == sum(p.numel() for p in module.parameters())
    with torch.no_grad():
        assert cost.out_shape == tuple(module(torch.zeros(*shape)).shape)


@settings(max_examples=300)
@given(conv_cases())
def test_macs_equal_a_brute_force_count(case):
    layer, shape, c_out, groups, bias = case
    assert layer_cost(layer, shape, c_out, groups, bias).macs == brute_force_macs(layer, shape, c_out, groups)


@settings(max_examples=60)
@given(conv_cases())
def test_macs_match_fvcore_and_torchinfo(case):
    torch = pytest.importorskip("torch")
    torchinfo = pytest.importorskip("torchinfo")
    fvcore_nn = pytest.importorskip("fvcore.nn")
    from convcalc.torchcheck import Channels, build_module

    layer, shape, c_out, groups, bias = case
    cost = layer_cost(layer, shape, c_out, groups, bias)
    module = build_module(layer, Channels(shape[0], shape[1], c_out, groups, bias))
    x = torch.zeros(*shape)
    counter = fvcore_nn.FlopCountAnalysis(module, x)
    counter.unsupported_ops_warnings(False)
    counter.uncalled_modules_warnings(False)
    assert cost.macs == counter.total()
    assert cost.torchinfo_mult_adds == torchinfo.summary(module, input_data=x, verbose=0).total_mult_adds


def test_a_known_layer():
    cost = layer_cost(Layer.build(3, padding=2, dilation=2), (1, 3, 256, 256), 64)
    assert cost.out_shape == (1, 64, 256, 256)
    assert cost.params == 64 * 3 * 9 + 64
    assert cost.macs == 256 * 256 * 64 * 27
    assert cost.out_bytes == 64 * 256 * 256 * 4
    assert layer_cost(Layer.build(3), (2, 3, 8, 8), dtype="bfloat16").out_bytes == 2 * 3 * 36 * 2


def test_pools_keep_channels_and_cost_nothing():
    cost = layer_cost(Layer.build(3, 2, 1, op="max_pool"), (4, 16, 32, 32))
    assert cost.out_shape == (4, 16, 16, 16) and (cost.params, cost.macs) == (0, 0)
    with pytest.raises(ConvcalcError, match="pooling keeps the channels"):
        layer_cost(Layer.build(2, op="avg_pool"), (1, 3, 8, 8), out_channels=4)
    with pytest.raises(ConvcalcError, match="pooling has no groups"):
        layer_cost(Layer.build(2, op="avg_pool"), (1, 3, 8, 8), groups=3)


@pytest.mark.parametrize("c_in, c_out, groups, message", [
    (10, 20, 3, "in_channels must be divisible by groups"),
    (12, 20, 3, "out_channels must be divisible by groups"),
])
def test_group_checks_match_torch(c_in, c_out, groups, message):
    with pytest.raises(ShapeError, match=message):
        check_groups(c_in, c_out, groups)
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match=message):
        torch.nn.Conv2d(c_in, c_out, 3, groups=groups)


@pytest.mark.parametrize("c_in, c_out, groups, text", [
    (10, 20, 2, "groups=2 on 10 -> 20 channels: 2 groups of 5 input channels, each producing 10"),
    (32, 32, 32, "groups=32 on 32 -> 32 channels: 32 groups of 1 input channel, each producing 1; depthwise"),
    (32, 64, 32, "depthwise, depth multiplier 2"),
    (3, 64, 1, "groups=1 on 3 -> 64 channels: 1 group of 3 input channels, each producing 64"),
])
def test_describe_groups(c_in, c_out, groups, text):
    assert text in describe_groups(c_in, c_out, groups)


@pytest.mark.parametrize("shape, kwargs, message", [
    ((1, 3, 8), {}, "has rank 3; a 2-d layer takes N x C x 2 spatial sizes"),
    ((1, 0, 8, 8), {}, "channels C must be a positive integer"),
    ((0, 3, 8, 8), {}, "batch size N must be a positive integer"),
    ((1, 3, 8, 8), {"out_channels": 0}, "out_channels must be a positive integer"),
    ((1, 3, 8, 8), {"groups": 0}, "groups must be a positive integer"),
    ((1, 3, 8, 8), {"dtype": "int8"}, "unknown dtype 'int8'"),
])
def test_bad_input(shape, kwargs, message):
    with pytest.raises(ConvcalcError, match=message):
        layer_cost(Layer.build(3), shape, **kwargs)
