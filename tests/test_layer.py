"""convcalc.layer: PyTorch's shape rules, checked by hand on the known traps and against eager CPU torch."""

from __future__ import annotations

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from conftest import PARITY_EXAMPLES
from convcalc import ConvcalcError, Layer, ShapeError, output_size
from convcalc.layer import effective_kernel_size, pooled_size, resolve_dims, size_keeping_padding
from strategies import OPS, layer_configs


def ours(config: dict) -> tuple[int, ...] | None:
    try:
        return output_size(**config)
    except ShapeError:
        return None


def oracle(config: dict) -> tuple[int, ...] | None:
    torch_oracle = pytest.importorskip("torch_oracle", reason="parity needs torch (pip install torch)")
    return torch_oracle.torch_output_size(**config)


# -- the traps the issue names, each also run through torch ---------------------------------------

TRAPS = {
    # ceil_mode's last-window rule: ceil((5+2-2)/2)+1 = 4, but window 4 would start at 6 >= in + p.
    "ceil drops last window": (dict(op="max_pool", in_size=(5,), kernel_size=(2,), stride=(2,),
                                    padding=(1,), dilation=(1,), ceil_mode=True), (3,)),
    "ceil keeps last window": (dict(op="avg_pool", in_size=(6,), kernel_size=(3,), stride=(2,),
                                    padding=(0,), dilation=(1,), ceil_mode=True), (3,)),
    # pool padding is limited by the raw kernel: 2 > 2//2 although the effective kernel is 4.
    "pool pad vs raw kernel 1d": (dict(op="max_pool", in_size=(9,), kernel_size=(2,), stride=(1,),
                                       padding=(2,), dilation=(3,)), None),
    "pool pad vs raw kernel 2d": (dict(op="max_pool", in_size=(9, 9), kernel_size=(2, 2), stride=(1, 1),
                                       padding=(2, 2), dilation=(3, 3)), None),
    "pool pad at the limit": (dict(op="max_pool", in_size=(9, 9), kernel_size=(3, 3), stride=(1, 1),
                                   padding=(1, 1), dilation=(3, 3)), (5, 5)),
    # AvgPool3d checks the unpadded input against the kernel; 1-d and 2-d do not.
    "avg_pool 3d input < kernel": (dict(op="avg_pool", in_size=(2, 9, 9), kernel_size=(3, 3, 3),
                                        stride=(1, 1, 1), padding=(1, 1, 1), dilation=(1, 1, 1)), None),
    "avg_pool 2d input < kernel": (dict(op="avg_pool", in_size=(2, 9), kernel_size=(3, 3), stride=(1, 1),
                                        padding=(1, 1), dilation=(1, 1)), (2, 9)),
    # transposed output_padding must be below stride or dilation.
    "output_padding < dilation": (dict(op="conv_transpose", in_size=(4,), kernel_size=(3,), stride=(2,),
                                       padding=(0,), dilation=(3,), output_padding=(2,)), (15,)),
    "output_padding >= both": (dict(op="conv_transpose", in_size=(4,), kernel_size=(3,), stride=(2,),
                                    padding=(0,), dilation=(1,), output_padding=(2,)), None),
    "output_padding < stride": (dict(op="conv_transpose", in_size=(8, 8), kernel_size=(4, 4),
                                     stride=(2, 2), padding=(1, 1), dilation=(1, 1),
                                     output_padding=(1, 1)), (17, 17)),
    # 'same' with an even effective kernel puts the extra element on the right.
    "same even kernel": (dict(op="conv", in_size=(5, 7), kernel_size=(4, 2), stride=(1, 1),
                              padding="same", dilation=(1, 3)), (5, 7)),
    "same strided": (dict(op="conv", in_size=(8,), kernel_size=(3,), stride=(2,), padding="same",
                          dilation=(1,)), None),
    "kernel larger than padded input": (dict(op="conv", in_size=(3, 3), kernel_size=(3, 3), stride=(1, 1),
                                             padding=(0, 0), dilation=(2, 2)), None),
    "dilated 3x3 keeps 256": (dict(op="conv", in_size=(256, 256), kernel_size=(3, 3), stride=(1, 1),
                                   padding=(2, 2), dilation=(2, 2)), (256, 256)),
}


@pytest.mark.parametrize("name", TRAPS)
def test_known_trap(name):
    config, expected = TRAPS[name]
    assert ours(config) == expected


@pytest.mark.parametrize("name", TRAPS)
def test_known_trap_against_torch(name):
    config, expected = TRAPS[name]
    assert oracle(config) == expected


def test_same_padding_puts_the_extra_element_right():
    layer = Layer.build((4, 2), padding="same", dilation=(1, 3))
    assert layer.pads == ((1, 2), (1, 2))
    assert Layer.build(5, padding="same", dilation=2).pads == ((4, 4), (4, 4))
    assert Layer.build(3, padding="valid").pads == ((0, 0), (0, 0))


# -- parity with eager CPU torch over random configurations ---------------------------------------

@pytest.mark.parametrize("op", OPS)
@settings(max_examples=PARITY_EXAMPLES)
@given(data=st.data())
def test_output_size_matches_eager_torch(op, data):
    config = data.draw(layer_configs(op))
    theirs = oracle(config)
    mine = ours(config)
    if theirs is not None and 0 in theirs and op == "conv_transpose":
        # Eager conv_transpose 2-d/3-d returns an empty tensor for one output dimension of 0;
        # convcalc rejects every size below 1 (docs/architecture.md).
        event("torch's empty-tensor quirk")
        assert mine is None
        return
    event("accepted" if mine is not None else "rejected")
    assert mine == theirs


# -- the formula itself ----------------------------------------------------------------------------

@given(st.integers(1, 10**6), st.integers(1, 50), st.integers(1, 20), st.integers(0, 60), st.integers(1, 20))
def test_conv_formula_is_floor_division(n, k, s, p, d):
    e = d * (k - 1) + 1
    config = dict(in_size=(n,), kernel_size=k, stride=s, padding=p, dilation=d)
    if n + 2 * p < e:
        with pytest.raises(ShapeError, match="smaller than the effective kernel"):
            output_size(**config)
    else:
        assert output_size(**config) == ((n + 2 * p - e) // s + 1,)


@given(st.integers(1, 10**6), st.integers(1, 9), st.integers(1, 9), st.integers(0, 4), st.integers(1, 9))
def test_ceil_mode_never_gives_less_and_at_most_one_more(n, k, s, p, d):
    p = min(p, k // 2)
    floor_out = pooled_size(n, k, p, s, d, False)
    ceil_out = pooled_size(n, k, p, s, d, True)
    assert floor_out <= ceil_out <= floor_out + 1
    # The last window starts inside the input or the left padding.
    assert ceil_out < 1 or (ceil_out - 1) * s < n + p


def test_huge_sizes_compute_with_python_ints():
    n = 10**30
    assert output_size((n, n), 3, padding=2, dilation=2) == (n, n)
    assert output_size((n,), 4, 2, 1, op="conv_transpose") == (2 * n,)


def test_effective_kernel_size():
    assert effective_kernel_size(3, 1) == 3
    assert effective_kernel_size(3, 2) == 5
    assert effective_kernel_size(3, 6) == 13
    assert Layer.build((3, 1), dilation=(2, 5)).effective_kernel_size == (5, 1)


# -- the API and its broadcasting ------------------------------------------------------------------

def test_scalars_broadcast_to_two_dimensions_by_default():
    assert output_size(32, 3) == (30, 30)
    assert output_size((32,), 3) == (30,)
    assert output_size(32, (3, 3, 3)) == (30, 30, 30)


def test_pool_stride_defaults_to_kernel():
    assert Layer.build(3, op="max_pool").stride == (3, 3)
    assert Layer.build(3, op="conv").stride == (1, 1)
    assert output_size(12, 3, op="avg_pool") == (4, 4)


@pytest.mark.parametrize("kwargs, message", [
    (dict(in_size=(8, 8), kernel_size=(3, 3, 3)), "disagree on the number of dimensions"),
    (dict(in_size=0, kernel_size=3), "input size must be positive"),
    (dict(in_size=8, kernel_size=0), "kernel_size must be positive"),
    (dict(in_size=8, kernel_size=3, stride=0), "stride must be positive"),
    (dict(in_size=8, kernel_size=3, dilation=(1, 0)), "dilation must be positive, got 0 in dim 2"),
    (dict(in_size=8, kernel_size=3, padding=-1), "padding must be >= 0"),
    (dict(in_size=8, kernel_size=2.5), "kernel_size must be an integer"),
    (dict(in_size=8, kernel_size=True), "kernel_size must be an integer"),
    (dict(in_size=8, kernel_size=3, op="deconv"), "unknown op 'deconv'"),
    (dict(in_size=8, kernel_size=3, ceil_mode=True), "ceil_mode applies only to pooling"),
    (dict(in_size=8, kernel_size=3, output_padding=1), "output_padding applies only to conv_transpose"),
    (dict(in_size=8, kernel_size=3, dilation=2, op="avg_pool"), "avg_pool has no dilation"),
    (dict(in_size=8, kernel_size=3, padding="same", op="max_pool"), "supported by conv only"),
    (dict(in_size=8, kernel_size=3, padding="full"), "'same', 'valid' or 'causal'"),
    (dict(in_size=(8, 8, 8, 8), kernel_size=3), "PyTorch layers have 1, 2 or 3"),
])
def test_bad_arguments_say_which_and_why(kwargs, message):
    with pytest.raises(ConvcalcError, match=message):
        output_size(**kwargs)


@pytest.mark.parametrize("kwargs, message", [
    (dict(in_size=8, kernel_size=3, stride=2, padding="same"),
     "padding='same' is not supported for strided convolutions"),
    (dict(in_size=8, kernel_size=3, padding=2, op="max_pool"), "dim 1: pad 2 should be at most half"),
    (dict(in_size=8, kernel_size=3, output_padding=(0, 1), op="conv_transpose"),
     "dim 2: output_padding 1 must be smaller than either stride 1 or dilation 1"),
    (dict(in_size=(9, 3), kernel_size=3, dilation=2), "dim 2: padded input 3 is smaller than the effective "
                                                      r"kernel 5 \(kernel 3, dilation 2\)"),
    (dict(in_size=2, kernel_size=1, padding=1, op="conv_transpose"), "output size 0 is too small"),
    (dict(in_size=(2, 2, 2), kernel_size=3, padding=1, op="avg_pool"), "input 2 is smaller than the kernel 3"),
    (dict(in_size=1, kernel_size=3, stride=1, op="max_pool"), "output size -1 is too small"),
])
def test_rejections_name_dimension_rule_and_numbers(kwargs, message):
    with pytest.raises(ShapeError, match=message):
        output_size(**kwargs)


def test_layer_rejects_what_torch_rejects_on_every_input_only_when_used():
    layer = Layer.build(3, op="max_pool", padding=2)  # constructible, as torch.nn.MaxPool2d is
    with pytest.raises(ShapeError):
        layer.check()
    with pytest.raises(ShapeError):
        layer.output_size(100)


def test_layer_fields_are_validated_when_built_directly():
    with pytest.raises(ConvcalcError, match="must be a tuple"):
        Layer("conv", 3, (1,), (0,), (1,), (0,))
    with pytest.raises(ConvcalcError, match="disagree"):
        Layer("conv", (3, 3), (1,), (0,), (1,), (0,))


def test_resolve_dims():
    assert resolve_dims({"a": 3, "b": 5}) == 2
    assert resolve_dims({"a": 3}, 3) == 3
    assert resolve_dims({"a": (3,), "b": 5}) == 1
    with pytest.raises(ConvcalcError, match="a has 2 dimensions but dims is 3"):
        resolve_dims({"a": (3, 3)}, 3)
    with pytest.raises(ConvcalcError, match="dims must be 1, 2 or 3"):
        resolve_dims({"a": 3}, 4)


@pytest.mark.parametrize("kwargs, expected", [
    (dict(kernel_size=3, dilation=2), (2, 2)),
    (dict(kernel_size=(1, 7)), (0, 3)),
    (dict(kernel_size=4), (None, None)),          # odd total: only 'same' (asymmetric) keeps it
    (dict(kernel_size=3, stride=2), (None, None)),
    (dict(kernel_size=4, op="conv_transpose", output_padding=1, dilation=2), (None, None)),
    (dict(kernel_size=3, op="conv_transpose"), (1, 1)),
    (dict(kernel_size=3, stride=1, op="max_pool"), (1, 1)),
    (dict(kernel_size=3, stride=1, dilation=2, op="max_pool"), (None, None)),  # 2 > 3 // 2
])
def test_size_keeping_padding(kwargs, expected):
    layer = Layer.build(**kwargs)
    assert size_keeping_padding(layer) == expected
    if None not in expected:
        for n in (17, 18):  # every size is kept, odd and even
            assert Layer.build(**{**kwargs, "padding": expected}).output_size(n) == (n, n)
