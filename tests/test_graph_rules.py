"""convcalc.graph's per-op field rules, with stand-in modules and nodes: no torch needed (or imported).

tests/test_inspect.py runs the same rules on real torch models and checks them by gradient.
"""

from __future__ import annotations

import sys
from fractions import Fraction
from types import SimpleNamespace

import pytest

from convcalc.graph.fields import FLAT, GLOBAL, UNKNOWN, FieldState, Flow, NodeKind, input_flow
from convcalc.graph.rules import through_function, through_module
from convcalc.periodic import PeriodicField
from convcalc.receptive import receptive_field


def source(size: int = 32, dims: int = 2, channels: int = 3) -> Flow:
    return input_flow((1, channels) + (size,) * dims, dims)


def conv(k, s=1, p=0, d=1, n=2):
    return SimpleNamespace(kernel_size=(k,) * n, stride=(s,) * n, padding=p if isinstance(p, str) else (p,) * n,
                           dilation=(d,) * n)


def node(*args, **kwargs):
    return SimpleNamespace(args=args, kwargs=kwargs, name="n", target=None, op="call_function", meta={})


def field_of(flow: Flow) -> PeriodicField:
    f = flow.fields[0]
    assert isinstance(f, PeriodicField)
    return f


def test_the_rules_need_no_torch():
    import subprocess

    code = "import sys, convcalc.graph.rules, convcalc.graph.fields; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


@pytest.mark.parametrize("spec, k, s, p, d", [("3x3s2p1", 3, 2, 1, 1), ("5x5d2p4", 5, 1, 4, 2), ("7x7s2p3", 7, 2, 3, 1),
                                              ("1x1", 1, 1, 0, 1)])
def test_conv_rule_matches_the_stack_recurrence(spec, k, s, p, d):
    kind, flow, note = through_module(conv(k, s, p, d), "Conv2d", [source()], (1, 4, 16, 16), None)
    expected = receptive_field(spec)
    f = field_of(flow)
    assert kind is NodeKind.CONV and note is None
    assert (f.receptive_field, f.jump, f.start) == (expected.receptive_field[0], expected.jump[0], expected.start[0])


def test_same_padding_puts_the_odd_element_right():
    f = field_of(through_module(conv(4, p="same"), "Conv2d", [source()], (1, 3, 32, 32), None)[1])
    assert f.start == Fraction(1, 2)  # taps -1..2: left pad 1, right pad 2


def test_pool_stride_defaults_to_the_kernel():
    pool = SimpleNamespace(kernel_size=2, stride=None, padding=0, dilation=1)
    kind, flow, _ = through_module(pool, "MaxPool2d", [source()], (1, 3, 16, 16), None)
    assert kind is NodeKind.POOL and field_of(flow).jump == 2


def test_transposed_conv_fields_vary_by_position():
    tconv = SimpleNamespace(kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), dilation=(1, 1))
    kind, flow, _ = through_module(tconv, "ConvTranspose2d", [source()], (1, 3, 63, 63), None)
    f = field_of(flow)
    assert kind is NodeKind.TCONV and f.varies and f.jump == Fraction(1, 2) and f.receptive_field == 2


def test_global_pooling_flatten_and_linear():
    pooled = through_module(SimpleNamespace(output_size=1), "AdaptiveAvgPool2d", [source()], (1, 3, 1, 1), None)
    assert pooled[0] is NodeKind.ADAPTIVE and pooled[1].fields == [GLOBAL, GLOBAL]
    flat = through_module(SimpleNamespace(start_dim=1), "Flatten", [source()], (1, 3 * 32 * 32), None)
    assert flat[0] is NodeKind.FLATTEN and flat[1].fields == [FLAT, FLAT]
    linear = through_module(SimpleNamespace(), "Linear", [flat[1]], (1, 10), None)
    assert linear[0] is NodeKind.LINEAR and linear[1].fields == [GLOBAL, GLOBAL]


def test_nearest_upsampling_by_two():
    up = SimpleNamespace(mode="nearest", align_corners=None)
    kind, flow, note = through_module(up, "Upsample", [source(16)], (1, 3, 32, 32), None)
    f = field_of(flow)
    assert kind is NodeKind.RESIZE and note is None and f.jump == Fraction(1, 2) and f.receptive_field == 1


def test_unfamiliar_module_that_changes_the_size_is_unknown_with_a_note():
    kind, flow, note = through_module(SimpleNamespace(), "Mystery", [source()], (1, 3, 7, 7), None)
    assert kind is None and flow.fields == [UNKNOWN, UNKNOWN] and "Mystery" in note
    kind, flow, note = through_module(SimpleNamespace(), "ReLU", [source()], (1, 3, 32, 32), None)
    assert flow.fields == source().fields and note is None


def test_add_takes_the_union_of_its_branches():
    wide = through_module(conv(5, p=2), "Conv2d", [source()], (1, 3, 32, 32), None)[1]
    narrow = through_module(conv(3, p=1), "Conv2d", [source()], (1, 3, 32, 32), None)[1]
    kind, flow, note = through_function("add", node(), [wide, narrow], {}, (1, 3, 32, 32))
    assert kind is NodeKind.MERGE and field_of(flow).receptive_field == 5 and note is None


def test_add_warns_when_branches_disagree_on_the_centre():
    left = through_module(conv(3, p=0), "Conv2d", [source()], (1, 3, 30, 30), None)[1]
    centred = through_module(conv(1), "Conv2d", [source()], (1, 3, 32, 32), None)[1]
    _, flow, note = through_function("add", node(), [left, centred], {}, (1, 3, 30, 30))
    assert "disagree on centre" in note


def test_cat_along_a_spatial_axis_is_unknown():
    a, b = source(), source()
    kind, flow, note = through_function("cat", node([a, b], 2), [a, b], {}, (1, 3, 64, 32))
    assert flow.fields[0] is FieldState.UNKNOWN and "spatial axis" in note


def test_mean_over_positions_is_global():
    kind, flow, _ = through_function("mean", node(None, (2, 3)), [source()], {}, (1, 3))
    assert kind is NodeKind.REDUCE and flow.fields == [GLOBAL, GLOBAL]


def test_a_padding_mode_is_noted_and_keeps_the_field():
    reflect = SimpleNamespace(**vars(conv(3, p=1)), padding_mode="reflect")
    kind, flow, note = through_module(reflect, "Conv2d", [source()], (1, 3, 32, 32), None)
    plain = through_module(conv(3, p=1), "Conv2d", [source()], (1, 3, 32, 32), None)[1]
    assert kind is NodeKind.CONV and "padding_mode='reflect'" in note and flow.fields == plain.fields
