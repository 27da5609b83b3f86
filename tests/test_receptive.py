"""convcalc.receptive: stacked fields against published networks, brute force, and torch's gradient."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from convcalc import ConvcalcError, ShapeError, receptive_field
from convcalc.gridding import Coverage
from convcalc.periodic import NO_FIELD, PeriodicField, Window
from convcalc.receptive import _Geometry, unit_box, unit_field
from convcalc.spec import parse_layers
from strategies import stack_layers

# -- brute force: every input index one output unit reaches, walked set by set ------------------------

def unit_inputs(geometries, unit: int) -> set[int]:
    """Every input index output ``unit`` of the stack reaches (unbounded input), the slow way."""
    reached = {unit}
    for g in reversed(geometries):
        k, s, d, p = g.kernel_size, g.stride, g.dilation, g.padding
        if g.transposed:
            reached = {(o + p - t * d) // s for o in reached for t in range(k) if (o + p - t * d) % s == 0}
        else:
            reached = {o * s - p + t * d for o in reached for t in range(k)}
    return reached


def coverage_of(inputs: set[int]) -> Coverage:
    if not inputs:
        return Coverage(0, 0, 0)
    ordered = sorted(inputs)
    gaps = [b - a - 1 for a, b in zip(ordered, ordered[1:])]
    return Coverage(ordered[-1] - ordered[0] + 1, len(ordered), max(gaps, default=0))


# -- published networks ------------------------------------------------------------------------------
# google-research/receptive_field README (TF-Slim models): receptive field, effective stride and
# effective padding, where effective padding = (rf - 1)/2 - start (the README's centre formula).
# TF 'SAME' with stride 2 on an even input pads (0, 1); only the left padding moves the field, so
# those layers are written with p0 here. 1x1 convolutions are written out where they are part of
# the network, though they do not change the field.


def resnet_v1_block(units: int, stride: int) -> str:
    """TF-Slim resnet_v1 bottleneck units: the stride sits in the last unit's 3x3 convolution."""
    plain = ["1x1,3x3p1,1x1"] * (units - 1)
    return ",".join(plain + [f"1x1,3x3s{stride}p1,1x1"])


PUBLISHED = {
    "vgg_16": ("3x3p1*2,max2,3x3p1*2,max2,3x3p1*3,max2,3x3p1*3,max2,3x3p1*3,max2", 212, 32, 90),
    "alexnet_v2": ("11x11s4,max3s2,5x5p2,max3s2,3x3p1*3,max3s2", 195, 32, 64),
    "mobilenet_v1": ("3x3s2," + ",".join(["3x3p1,1x1", "3x3s2,1x1"] * 3) + ",3x3p1,1x1" * 5
                     + ",3x3s2,1x1,3x3p1,1x1", 315, 32, 126),
    "resnet_v1_50": ("7x7s2p3,max3s2," + ",".join([resnet_v1_block(3, 2), resnet_v1_block(4, 2),
                                                   resnet_v1_block(6, 2), resnet_v1_block(3, 1)]),
                     483, 32, 239),
}


@pytest.mark.parametrize("name", PUBLISHED)
def test_published_networks(name):
    spec, rf, stride, effective_padding = PUBLISHED[name]
    field = receptive_field(spec)
    assert field.receptive_field == (rf, rf)
    assert field.jump == (stride, stride)
    assert field.start[0] == Fraction(rf - 1, 2) - effective_padding
    assert field.coverage[0].holes == 0


def test_vgg16_with_an_input_size():
    field = receptive_field(PUBLISHED["vgg_16"][0], 224)
    assert field.out == (7, 7)
    assert [f.out[0] for f in field.layers if f.layer.op == "max_pool"] == [112, 56, 28, 14, 7]
    assert field.rejected is None


def test_dilated_stack_from_the_design():
    field = receptive_field("3x3d1,3x3d2,3x3d5")
    assert [f.receptive_field[0] for f in field.layers] == [3, 7, 17]
    assert field.jump == (1, 1)
    assert field.start == (8, 8)
    assert field.coverage[0].holes == 0


def test_holes_of_a_gridding_stack():
    field = receptive_field("3x3d2*3")
    assert field.receptive_field == (13, 13)
    assert (field.coverage[0].covered, field.coverage[0].holes, field.coverage[0].largest_gap) == (7, 6, 1)


def test_thousand_layer_stack():
    field = receptive_field("3x3d2*1000")
    assert field.receptive_field == (4001, 4001)
    assert field.coverage[0].holes == 2000


def test_per_dimension_values():
    field = receptive_field("1x7,7x1s2x1,3x3d1x2")
    assert field.receptive_field == (1 + 6 + 2 * 2, 7 + 4)  # dim 1: 1, 7 (stride 2), 3; dim 2: 7, 1, 3d2
    assert field.jump == (2, 1)


def test_padding_moves_start_not_the_field():
    assert receptive_field("3p1,3p1", dims=1).start == (0,)
    assert receptive_field("3,3", dims=1).start == (2,)
    same_even = receptive_field("4psame", dims=1)  # pads (1, 2): the centre sits half a pixel right
    assert same_even.start == (Fraction(1, 2),)


# -- transposed convolutions -------------------------------------------------------------------------

def test_transposed_jump_is_fractional_and_field_exact():
    field = receptive_field("3s2,tconv3s2", dims=1)
    assert field.jump == (1,)
    assert field.layers[0].jump == (2,)
    assert field.receptive_field == (5,)
    assert field.varies  # even output units see 3 inputs, odd ones 5


def test_transposed_field_is_the_largest_over_output_positions():
    layers = parse_layers("tconv3s2,3", dims=1)
    geometries = [_Geometry.of(layer, 0) for layer in layers]
    spans = [coverage_of(unit_inputs(geometries, unit)).receptive_field for unit in range(2)]
    assert receptive_field(layers).receptive_field == (max(spans),)
    assert len(set(spans)) > 1 and receptive_field(layers).varies


def test_transposed_jump_halves():
    field = receptive_field("tconv4s2p1,tconv4s2p1", dims=1)
    assert field.jump == (Fraction(1, 4),)


def test_units_that_read_nothing():
    layers = parse_layers("tconv1s2", dims=1)
    field = receptive_field(layers, 4)
    assert unit_field(field, (1,)) == (NO_FIELD,)
    assert unit_box(field, (1,)) == (None,)
    assert unit_box(field, (2,))[0].first == 1


def test_huge_transposed_stacks_are_refused_not_hung():
    with pytest.raises(ConvcalcError, match="too large to analyse exactly"):
        receptive_field("tconv7s7*12", dims=1)


# -- brute force: every unit's set of inputs, computed the slow way ----------------------------------

@settings(max_examples=300)
@given(stack_layers(dims=1, max_layers=6), st.integers(0, 5))
def test_field_and_holes_equal_brute_force(layers, unit):
    field = receptive_field(layers)
    geometries = [_Geometry.of(layer, 0) for layer in layers]
    brute = coverage_of(unit_inputs(geometries, unit))
    computed = unit_field(field, (unit,))[0]
    if brute.receptive_field == 0:
        assert computed == NO_FIELD
        return
    assert computed.receptive_field == brute.receptive_field <= field.receptive_field[0]
    assert computed.holes == brute.holes
    if not field.varies:
        assert field.coverage[0] == brute


# -- input boxes --------------------------------------------------------------------------------------

def test_unit_box_is_clipped_and_counts_padding():
    field = receptive_field("7x7s2p3,max3s2p1", 224)
    box = unit_box(field, (0, 55))
    assert (box[0].first, box[0].last, box[0].clipped_first, box[0].clipped_last, box[0].padding) == \
        (-5, 5, 0, 5, 5)
    assert (box[1].first, box[1].last, box[1].clipped_first, box[1].clipped_last, box[1].padding) == \
        (215, 225, 215, 223, 2)


@pytest.mark.parametrize("unit, message", [
    ((56, 0), "^unit index 56 is outside the output"),
    ((0,), "^unit has 1 indices"),
])
def test_unit_box_errors(unit, message):
    field = receptive_field("7x7s2p3,max3s2p1", 224)
    with pytest.raises(ConvcalcError, match=message):
        unit_box(field, unit)


def test_unit_box_needs_an_input_size():
    with pytest.raises(ConvcalcError, match="^unit needs in_size"):
        unit_box(receptive_field("3x3"), (0, 0))


# -- where PyTorch stops the stack -------------------------------------------------------------------

def test_a_rejected_layer_stops_the_stack():
    field = receptive_field("3x3d2,3x3d2,3x3", 8)
    assert field.rejected[0] == 2
    assert "layer 2 (3x3d2) rejects input 4x4: dim 1: padded input 4 is smaller than the effective " \
           "kernel 5" in field.rejected[1]
    assert len(field.layers) == 1 and field.out is None


def test_without_input_layers_rejected_everywhere_raise():
    with pytest.raises(ShapeError, match=r"layer 2 \(max3x3p2\): dim 1: pad 2 should be at most half"):
        receptive_field("3,max3p2")


def test_input_size_fixes_dimensions():
    assert receptive_field("3", (10, 10, 10)).dims == 3
    with pytest.raises(ConvcalcError, match="input size has 3 dimensions, the layers have 2"):
        receptive_field(parse_layers("3"), (10, 10, 10))


# -- against torch's gradient -------------------------------------------------------------------------

@settings(max_examples=400)
@given(stack_layers())
def test_field_and_holes_equal_the_gradient_measurement(layers):
    torchcheck = pytest.importorskip("convcalc.torchmeasure")
    pytest.importorskip("torch")
    try:
        measured = torchcheck.measure_field(layers)
    except ConvcalcError as exc:  # nothing to measure, or a field too large to measure here
        assert "no output unit of this stack reads any input" in str(exc) or "too large to measure" in str(exc)
        event(str(exc).split(" (")[0])
        return
    event("holes" if any(f.holes for f in measured.measured) else "no holes")
    assert measured.measured == measured.predicted
    assert measured.measured_out == measured.predicted_out


@pytest.mark.parametrize("name", PUBLISHED)
def test_published_networks_measured(name):
    torchcheck = pytest.importorskip("convcalc.torchmeasure")
    pytest.importorskip("torch")
    layers = parse_layers(PUBLISHED[name][0])
    measured = torchcheck.measure_field(layers)
    assert measured.agrees
    assert measured.measured[0].receptive_field == PUBLISHED[name][1]


@settings(max_examples=300)
@given(stack_layers(dims=1, max_layers=6), st.integers(0, 40))
def test_periodic_field_equals_brute_force_for_every_unit(layers, unit):
    geometries = [_Geometry.of(layer, 0) for layer in layers]
    field = PeriodicField.input()
    for g in geometries:
        field = field.through(g.window())
    assert field.of(unit).values() == sorted(unit_inputs(geometries, unit))


def test_windows_of_interpolation_and_merges():
    up = PeriodicField.input().through(Window.from_function(2, 1, lambda r: [r // 2]))  # nearest x2
    assert [up.of(u).values() for u in range(4)] == [[0], [0], [1], [1]] and up.jump == Fraction(1, 2)
    a = PeriodicField.input().through(Window.convolution(3, 1, 1, 1))
    b = PeriodicField.input().through(Window.convolution(1, 1, 1, 0))
    merged, aligned = a.union(b)
    assert aligned and merged.of(5).values() == [4, 5, 6]
    strided = PeriodicField.input().through(Window.convolution(1, 2, 1, 0))
    _, aligned = a.union(strided)
    assert not aligned


UNIT_EXAMPLES = int(__import__("os").environ.get("CONVCALC_PARITY_EXAMPLES", "2000")) // 2


@settings(max_examples=UNIT_EXAMPLES)
@given(data=st.data())
def test_unit_box_is_exactly_what_the_gradient_reads(data):
    """Stacks with padding in the middle: the unit's first and last input and the holes between them are
    the positions torch's gradient from that unit reaches (positive stand-in weights, so nothing cancels)."""
    torch = pytest.importorskip("torch")
    from convcalc.torchmeasure import stand_in

    layers = data.draw(stack_layers(dims=1, min_layers=1, max_layers=5))
    n = data.draw(st.integers(4, 60))
    field = receptive_field(layers, n)
    if field.rejected is not None:
        return
    unit = data.draw(st.integers(0, field.out[0] - 1))
    box = unit_box(field, (unit,))[0]
    model = torch.nn.Sequential(*(stand_in(layer, torch.float64) for layer in layers))
    x = torch.ones(1, 1, n, dtype=torch.float64, requires_grad=True)
    model(x)[0, 0, unit].backward()
    read = torch.nonzero(x.grad[0, 0]).flatten().tolist()
    event("reads nothing" if not read else "holes" if box and box.holes else "solid")
    if not read:
        assert box is None
    else:
        assert (box.clipped_first, box.clipped_last, box.holes) == (read[0], read[-1], read[-1] - read[0] + 1 - len(read))


def test_unit_box_through_intermediate_padding():
    field = receptive_field(parse_layers("2s3p1,avg2s3p1,2s2d3p1", dims=1), 25)
    box = unit_box(field, (0,))[0]
    assert (box.first, box.last, box.clipped_first, box.clipped_last, box.holes, box.padding) == (-13, 18, 14, 18, 1, 13)
