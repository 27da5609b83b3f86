"""Padding beyond symmetric integers: TensorFlow's SAME, causal, explicit pairs, padding modes and
ConvTranspose's output_size, each against eager torch (an oracle written here, independent of
convcalc.torchcheck) and against published TensorFlow numbers."""

from __future__ import annotations

import math
import warnings

import pytest
from conftest import PARITY_EXAMPLES
from hypothesis import given, settings
from hypothesis import strategies as st

from convcalc import ConvcalcError, Layer
from convcalc.layer import output_padding_for
from convcalc.padding import tf_same_padding
from convcalc.receptive import receptive_field, unit_box


def dims_values(draw, n, low, high):
    return tuple(draw(st.integers(low, high)) for _ in range(n))


# -- TensorFlow SAME, without torch --------------------------------------------------------------------

@settings(max_examples=PARITY_EXAMPLES)
@given(n=st.integers(1, 300), k=st.integers(1, 9), s=st.integers(1, 5), d=st.integers(1, 4),
       op=st.sampled_from(["conv", "max_pool", "avg_pool"]))
def test_tf_same_gives_ceil_in_over_stride(n, k, s, d, op):
    d = 1 if op == "avg_pool" else d
    layer = Layer.build(k, s, "same", d, op=op, dims=1, convention="tf")
    left, right = layer.pads_on((n,))[0]
    total = max((math.ceil(n / s) - 1) * s + d * (k - 1) + 1 - n, 0)  # TensorFlow's get_pad_shape
    assert (left, right) == (total // 2, total - total // 2)
    assert layer.output_size((n,)) == (math.ceil(n / s),)


# TF-slim networks from google-research/receptive_field's RECEPTIVE_FIELD_TABLE.md: (RF, effective stride,
# effective padding) at an input resolution; start = (RF - 1)/2 - padding.
PUBLISHED = [
    ("inception_v2 Conv2d_1a_7x7", "7x7s2psame", 224, 7, 2, 2),
    ("inception_v2 MaxPool_2a_3x3", "7x7s2psame,max3s2psame", 224, 11, 4, 2),
    ("inception_v2 Conv2d_2c_3x3", "7x7s2psame,max3s2psame,1x1,3x3psame", 224, 19, 4, 6),
    ("inception_v2 MaxPool_3a_3x3", "7x7s2psame,max3s2psame,1x1,3x3psame,max3s2psame", 224, 27, 8, 6),
    ("inception_v2 Conv2d_1a_7x7", "7x7s2psame", 321, 7, 2, 3),
    ("inception_v2 MaxPool_2a_3x3", "7x7s2psame,max3s2psame", 321, 11, 4, 5),
    ("inception_v2 MaxPool_3a_3x3", "7x7s2psame,max3s2psame,1x1,3x3psame,max3s2psame", 321, 27, 8, 13),
    ("inception_v3 MaxPool_5a_3x3", "3x3s2pvalid,3x3pvalid,3x3psame,max3s2pvalid,1x1,3x3pvalid,max3s2pvalid", 224,
     31, 8, 2),
    ("vgg_16 pool5", "3x3psame*2,max2,3x3psame*2,max2,3x3psame*3,max2,3x3psame*3,max2,3x3psame*3,max2", 224,
     212, 32, 90),
]


@pytest.mark.parametrize("name, spec, size, rf, stride, padding", PUBLISHED, ids=[f"{p[0]}@{p[2]}" for p in PUBLISHED])
def test_published_tf_slim_fields(name, spec, size, rf, stride, padding):
    field = receptive_field(__import__("convcalc").parse_layers(spec, convention="tf"), size)
    assert field.receptive_field == (rf, rf) and field.jump == (stride, stride)
    assert field.start == ((rf - 1) / 2 - padding,) * 2


def test_tf_same_at_a_stride_needs_the_input_size():
    with pytest.raises(ConvcalcError, match="depends on the input size: give in_size"):
        receptive_field(__import__("convcalc").parse_layers("7x7s2psame", convention="tf"))


def test_causal_stack_keeps_the_length_and_sees_only_the_past():
    stack = __import__("convcalc").parse_layers("2pcausal,2d2pcausal,2d4pcausal,2d8pcausal", dims=1)
    field = receptive_field(stack, 100)
    assert field.out == (100,) and field.receptive_field == (16,)
    box = unit_box(field, (99,))[0]
    assert (box.first, box.last) == (84, 99)  # WaveNet: the newest 16 inputs, nothing later


# -- eager torch ------------------------------------------------------------------------------------------

def torch_shape(layer_kind, n_dims, size, k, s, d, pads, mode="zeros", pool=None):
    """Eager CPU: F.pad (with ``mode``) then the functional layer with padding 0; None if torch raises."""
    import torch
    import torch.nn.functional as F

    x = torch.zeros(1, 1, *size)
    flat = tuple(p for pair in reversed(pads) for p in pair)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            x = F.pad(x, flat, mode={"zeros": "constant"}.get(mode, mode))
            if pool == "max_pool":
                y = getattr(F, f"max_pool{n_dims}d")(x, k, s, 0, d)
            elif pool == "avg_pool":
                y = getattr(F, f"avg_pool{n_dims}d")(x, k, s, 0)
            else:
                y = getattr(F, f"conv{n_dims}d")(x, torch.zeros(1, 1, *k), stride=s, dilation=d)
    except (RuntimeError, ValueError):
        return None
    return tuple(y.shape[2:])


def ours(layer, size):
    try:
        return layer.output_size(size)
    except ConvcalcError:
        return None


@settings(max_examples=PARITY_EXAMPLES)
@given(data=st.data(), mode=st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
def test_padding_modes_match_eager_torch(data, mode):
    torch = pytest.importorskip("torch")
    n = data.draw(st.integers(1, 3))
    size, k = dims_values(data.draw, n, 1, 9), dims_values(data.draw, n, 1, 5)
    s, d = dims_values(data.draw, n, 1, 3), dims_values(data.draw, n, 1, 3)
    padding = data.draw(st.sampled_from(["ints", "ints", "same", "valid"]))
    padding = dims_values(data.draw, n, 0, 6) if padding == "ints" else padding
    if padding == "same":
        s = (1,) * n
    layer = Layer.build(k, s, padding, d, dims=n, padding_mode=mode)
    try:
        module = getattr(torch.nn, f"Conv{n}d")(1, 1, k, s, padding, d, padding_mode=mode, bias=False)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = tuple(module(torch.zeros(1, 1, *size)).shape[2:])
    except (RuntimeError, ValueError):
        theirs = None
    assert ours(layer, size) == theirs


@settings(max_examples=PARITY_EXAMPLES)
@given(data=st.data(), op=st.sampled_from(["conv", "max_pool", "avg_pool"]), kind=st.sampled_from(["tf", "causal",
                                                                                                     "explicit"]))
def test_tf_causal_and_explicit_pads_match_eager_torch(data, op, kind):
    pytest.importorskip("torch")
    n = data.draw(st.integers(1, 3))
    size, k = dims_values(data.draw, n, 1, 12), dims_values(data.draw, n, 1, 5)
    s = dims_values(data.draw, n, 1, 4)
    d = (1,) * n if op == "avg_pool" else dims_values(data.draw, n, 1, 3)
    if kind == "causal":
        op = "conv"
        layer = Layer.build(k, s, "causal", d, dims=n)
        pads = tuple((di * (ki - 1), 0) for ki, di in zip(k, d))
    elif kind == "tf":
        layer = Layer.build(k, s, "same", d, op=op, dims=n, convention="tf")
        pads = tuple(tf_same_padding(*args) for args in zip(size, k, s, d))
    else:
        pads = tuple((data.draw(st.integers(0, 4)), data.draw(st.integers(0, 4))) for _ in range(n))
        layer = Layer.build(k, s, pads, d, op=op, dims=n)
    assert layer.pads_on(size) == pads
    assert ours(layer, size) == torch_shape(op, n, size, k, s, d, pads, pool=op if op != "conv" else None)


@settings(max_examples=PARITY_EXAMPLES)
@given(data=st.data())
def test_output_size_picks_what_torch_picks(data):
    torch = pytest.importorskip("torch")
    n = data.draw(st.integers(1, 3))
    size, k = dims_values(data.draw, n, 1, 8), dims_values(data.draw, n, 1, 5)
    s, d, p = dims_values(data.draw, n, 1, 4), dims_values(data.draw, n, 1, 3), dims_values(data.draw, n, 0, 3)
    wanted = dims_values(data.draw, n, 1, 40)
    layer = Layer.build(k, s, p, d, op="conv_transpose", dims=n)
    module = getattr(torch.nn, f"ConvTranspose{n}d")(1, 1, k, s, p, dilation=d, bias=False)
    try:
        with torch.no_grad():
            theirs = tuple(module(torch.zeros(1, 1, *size), output_size=list(wanted)).shape[2:])
    except (RuntimeError, ValueError):
        theirs = None
    try:
        extra = output_padding_for(layer, size, wanted)
        mine = Layer.build(k, s, p, d, op="conv_transpose", output_padding=extra, dims=n).output_size(size)
    except ConvcalcError:
        mine = None
    assert mine == theirs


def test_output_size_range_message():
    layer = Layer.build(3, 2, 1, op="conv_transpose", dims=1)
    assert output_padding_for(layer, (5,), (10,)) == (1,) and output_padding_for(layer, (5,), (9,)) == (0,)
    with pytest.raises(ConvcalcError, match=r"requested an output size of 11, but valid sizes range from 9 to 10 "
                                            r"\(for an input of 5\)"):
        output_padding_for(layer, (5,), (11,))


@pytest.mark.parametrize("kwargs, needle", [
    (dict(op="conv_transpose", padding_mode="reflect"), 'Only "zeros" padding mode is supported for ConvTranspose2d'),
    (dict(op="max_pool", padding="same"), "supported by conv only, not max_pool (under convention 'tf'"),
    (dict(op="max_pool", padding="causal", convention="tf"), "supported by conv only"),
    (dict(padding_mode="mirror"), "padding_mode must be one of zeros, reflect, replicate, circular"),
    (dict(convention="keras"), "convention must be 'torch' or 'tf'"),
    (dict(op="max_pool", padding="same", convention="tf", ceil_mode=True), "ceil_mode does not combine"),
])
def test_bad_padding_arguments(kwargs, needle):
    with pytest.raises(ConvcalcError) as info:
        Layer.build(3, **kwargs)
    assert needle in str(info.value)
