"""convcalc.spec: sizes (and, with the rf issue, layer specs) parse exactly; errors point at the character."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convcalc import SpecError
from convcalc.spec import MAX_DIGITS, parse_size


@pytest.mark.parametrize("text, expected", [
    ("256", 256),
    ("256x128", (256, 128)),
    ("256X128", (256, 128)),
    ("224,224", (224, 224)),
    (" 7 x 7 x 7 ", (7, 7, 7)),
    ("0", 0),
    ("10**30", 10**30),
    ("2**10x3", (1024, 3)),
])
def test_sizes(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text, position, message", [
    ("3.5", 1, "expected a whole number, got '3.5'"),
    ("-3", 0, "negative numbers are not allowed"),
    ("x", 0, "expected a number, got 'x'"),
    ("256x", 4, "expected a number at the end"),
    ("3a", 1, "expected 'x' or ',' between numbers, got 'a'"),
    ("3x3;3", 3, "expected 'x' or ','"),
    ("2**", 3, "expected an exponent"),
    ("2**99999", 0, f"limited to {MAX_DIGITS} digits"),
    ("1e6", 1, "expected a whole number, got '1e6'"),
])
def test_bad_sizes_point_at_the_character(text, position, message):
    with pytest.raises(SpecError, match=message) as info:
        parse_size(text)
    assert info.value.position == position
    assert info.value.text == text
    caret_line = info.value.pointer().splitlines()[1]
    assert caret_line.index("^") - 2 == position


def test_empty_size():
    with pytest.raises(SpecError, match="--in is empty"):
        parse_size("  ", "--in")


def test_pointer_keeps_long_text_readable():
    text = "1" * 200 + "y" + "1" * 200
    with pytest.raises(SpecError) as info:
        parse_size(text)
    quoted, caret = info.value.pointer().splitlines()
    assert len(quoted) < 90
    assert quoted[caret.index("^")] == "y"


@given(st.lists(st.integers(0, 10**40), min_size=1, max_size=3), st.sampled_from(["x", ",", " x "]))
def test_sizes_round_trip(values, separator):
    text = separator.join(map(str, values))
    assert parse_size(text) == (tuple(values) if len(values) > 1 else values[0])


@given(st.text(max_size=20))
def test_garbage_raises_only_spec_error(text):
    try:
        value = parse_size(text)
    except SpecError:
        return
    assert isinstance(value, (int, tuple))


# -- the layer-spec language -----------------------------------------------------------------------

from convcalc import Layer  # noqa: E402
from convcalc.spec import format_layer, format_layers, parse_layers  # noqa: E402
from strategies import layers_of_every_kind  # noqa: E402


def test_layer_examples_from_the_design():
    assert parse_layers("3x3d2") == [Layer.build(3, dilation=2)]
    assert parse_layers("3x3d2p2") == [Layer.build(3, padding=2, dilation=2)]
    assert parse_layers("7x7s2p3,max3s2p1") == [Layer.build(7, 2, 3), Layer.build(3, 2, 1, op="max_pool")]
    assert parse_layers("tconv4x4s2p1") == [Layer.build(4, 2, 1, op="conv_transpose")]
    assert parse_layers("max3s2c") == [Layer.build(3, 2, op="max_pool", ceil_mode=True)]
    assert parse_layers("3x3p1*13") == [Layer.build(3, padding=1)] * 13


def test_options_sizes_case_and_spaces():
    assert parse_layers(" Conv 1 X 7 , AVG 2 S 1 ") == [Layer.build((1, 7)), Layer.build(2, 1, op="avg_pool")]
    assert parse_layers("3psame,3pvalid") == [Layer.build(3, padding="same"), Layer.build(3, padding="valid")]
    assert parse_layers("tconv3s2p1o1") == [Layer.build(3, 2, 1, op="conv_transpose", output_padding=1)]
    assert parse_layers("3x3x3s1x2x2") == [Layer.build((3, 3, 3), (1, 2, 2))]
    assert parse_layers("3", dims=1) == [Layer.build(3, dims=1)]
    assert parse_layers("3,1x7") == [Layer.build(3), Layer.build((1, 7))]  # scalars follow the stack's dims
    assert parse_layers("3", dims=3)[0].dims == 3


def test_default_padding_applies_to_conv_layers_that_give_none():
    layers = parse_layers("3,3p0,max3,tconv3", default_padding="same")
    assert [layer.padding for layer in layers] == ["same", (0, 0), (0, 0), (0, 0)]


@pytest.mark.parametrize("text, position, message", [
    ("3x3,", 4, "expected a layer such as 3x3d2 or max2, got the end"),
    (",3", 0, "expected a layer"),
    ("3x3q", 3, "expected an option (s, d, p, o, c), '*count', ',' or the end, got 'q'"),
    ("max3o1", 4, "'o' (output_padding) applies only to tconv, not max"),
    ("conv3c", 5, "'c' (ceil_mode) applies only to max and avg pools, not conv"),
    ("avg3d2", 4, "'d' (dilation): avg pooling has no dilation"),
    ("max3psame", 4, "padding 'same' is supported by conv only, not max"),
    ("3x3,3x3x3", 4, "kernel_size has 3 dimensions where the stack has 2"),
    ("3x3s1x1x1", 3, "stride has 3 dimensions where the stack has 2"),
    ("3*0", 2, "the repeat count must be at least 1"),
    ("3x0", 2, "a kernel size must be positive, got 0"),
    ("3d0", 2, "a dilation must be positive, got 0"),
    ("x3", 0, "expected a kernel size, got 'x'"),
    ("conv", 4, "expected a kernel size, got the end"),
    ("3s2s2", 3, "stride (s) is given twice in this layer"),
    ("3*2x", 3, "expected ',' or the end after the repeat count"),
    ("3x3d2p", 6, "expected a padding (a size, 'same', 'valid' or 'causal'), got the end"),
    ("3p-1", 2, "expected a padding"),
    ("3 x 3 d 2 , 3 q", 14, "got 'q'"),
    ("3*200000", 0, "at most 100,000 layers"),
])
def test_bad_specs_point_at_the_character(text, position, message):
    with pytest.raises(SpecError) as info:
        parse_layers(text)
    assert message in info.value.reason
    assert info.value.position == position
    assert info.value.pointer().splitlines() == [f"  {text}", "  " + " " * position + "^"]


def test_empty_spec():
    with pytest.raises(SpecError, match="the layer spec is empty"):
        parse_layers("   ")


def test_dims_argument_must_match_the_sizes():
    with pytest.raises(SpecError, match="kernel_size has 2 dimensions where the stack has 3"):
        parse_layers("3x3", dims=3)


@given(layers_of_every_kind())
def test_format_then_parse_round_trips(layer):
    assert parse_layers(format_layer(layer), dims=layer.dims) == [layer]


@given(st.lists(layers_of_every_kind(), min_size=1, max_size=5))
def test_stacks_round_trip(layers):
    n = layers[0].dims
    layers = [layer for layer in layers if layer.dims == n]
    assert parse_layers(format_layers(layers), dims=n) == layers


def test_format_writes_repeats_once():
    assert format_layers(parse_layers("3x3p1*3,max2,max2")) == "3x3p1*3,max2x2*2"


SPEC_ALPHABET = "0123456789xXsdpocSDPOC*, maxvgtconsamevalid-.;"


@given(st.text(alphabet=SPEC_ALPHABET, max_size=30) | st.text(max_size=15))
def test_garbage_specs_raise_only_spec_error(text):
    try:
        layers = parse_layers(text)
    except SpecError as exc:
        assert exc.text == text and 0 <= exc.position <= len(text)
        return
    assert layers and all(isinstance(layer, Layer) for layer in layers)


SIZES = st.sampled_from(["1", "3", "7", "12", "3x3", "1x7", "2x2x2", "3x3x3x3"])
ZERO_OR_MORE = st.sampled_from(["0", "1", "2", "0x1", "1x2x1"])
OPTIONS = {  # the options each op takes, as the careful parser has them
    "": "sdp", "conv": "sdp", "tconv": "sdpo", "max": "sdpc", "avg": "spc",
}


@st.composite
def quick_layers(draw):
    """Layer texts the quick path reads: an op word (any case) or none, a kernel, the op's own options in
    any order, a count. Sizes of every length, so that the dimensions decide, with the careful parser."""
    word = draw(st.sampled_from(["", "conv", "tconv", "max", "avg", "Max", "TCONV"]))
    letters = draw(st.lists(st.sampled_from(OPTIONS[word.lower()]), unique=True, max_size=3))
    options = []
    for letter in letters:
        if letter == "c":
            options.append("c")
        elif letter == "p":
            choices = ZERO_OR_MORE | (st.sampled_from(["same", "valid", "causal"]) if word.lower() in ("", "conv")
                                      else st.nothing())
            options.append("p" + draw(choices))
        else:
            options.append(letter + draw(ZERO_OR_MORE if letter == "o" else SIZES))
    count = draw(st.sampled_from(["", "*1", "*3"]))
    return word + draw(SIZES) + "".join(options) + count


MIXED_PIECES = st.sampled_from(["3", "3x3", "1x7", "tconv", "max", "avg", "conv", "s2", "d3", "p1", "psame",
                                "pvalid", "o1", "c", "*2", "*0", "x", "0", "2x2x2", ",", " ", "S", "P", "q"])


def _outcome(build):
    try:
        return build()
    except ValueError:
        return "rejected"


@settings(max_examples=1000)
@given(st.lists(quick_layers(), min_size=1, max_size=5).map(", ".join), st.sampled_from([None, 1, 2, 3]))
def test_quick_path_agrees_with_the_careful_parser(text, dims):
    from convcalc import spec

    quick = spec._quick_raws(text)
    assert quick is not None, text  # every drawn text reaches the comparison
    source = spec._Text(text)
    careful = _outcome(lambda: spec._build_layers(spec._careful_raws(source), dims, None, source))
    assert _outcome(lambda: spec._build_layers(quick, dims, None, None)) == careful


@settings(max_examples=300)
@given(st.lists(MIXED_PIECES, min_size=1, max_size=10).map("".join), st.sampled_from([None, 1, 2, 3]))
def test_the_quick_path_declines_only_what_the_careful_parser_rejects(text, dims):
    from convcalc import spec

    if spec._quick_raws(text) is None:
        with pytest.raises(SpecError):
            spec._build_layers(spec._careful_raws(spec._Text(text)), dims, None, spec._Text(text))


def test_default_padding_is_not_mixed_up_with_the_cache():
    assert parse_layers("5", default_padding=1)[0].padding == (1, 1)
    with pytest.raises(SpecError, match="padding must be an integer"):
        parse_layers("5", default_padding=True)
    assert parse_layers("5", default_padding=[1, 2])[0].padding == (1, 2)
