"""convcalc.spec: sizes (and, with the rf issue, layer specs) parse exactly; errors point at the character."""

from __future__ import annotations

import pytest
from hypothesis import given
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
