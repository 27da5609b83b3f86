"""convcalc.sizes: the accepted sizes of a spec stack, equal to eager torch; the rule, exact where it is given."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convcalc import ConvcalcError, Layer
from convcalc.sizes import parse_range, size_rule, stack_sizes
from convcalc.spec import parse_layers


def sizes_of(rule: str, low: int, high: int) -> set[int]:
    """The sizes a rule names, read back from its words (the test's own reading of size_rule's grammar)."""
    if rule == "none":
        return set()
    found: set[int] = set()
    if match := re.fullmatch(r"all of (\d+)\.\.(\d+)", rule):
        return set(range(int(match[1]), int(match[2]) + 1))
    head, _, rest = rule.partition(", and ")
    if match := re.fullmatch(r"multiples of (\d+) from (\d+)", head):
        period, start = int(match[1]), int(match[2])
        found |= {n for n in range(start, high + 1) if n % period == 0}
    elif match := re.fullmatch(r"sizes = ([\d, ]+) mod (\d+) from (\d+)", head):
        residues, period, start = {int(r) for r in match[1].split(", ")}, int(match[2]), int(match[3])
        found |= {n for n in range(start, high + 1) if n % period in residues}
    else:
        rest = rule
    for part in filter(None, rest.split(", ")):
        first, _, last = part.partition("..")
        found |= set(range(int(first), int(last or first) + 1))
    return found


@pytest.mark.parametrize("sizes, low, high, rule", [
    ([], 1, 10, "none"),
    (list(range(1, 11)), 1, 10, "all of 1..10"),
    ([32, 33, 34, 35], 1, 512, "32..35"),
    (list(range(16, 513, 16)), 1, 512, "multiples of 16 from 16"),
    ([n for n in range(9, 100) if n % 8 in (1, 2)], 1, 99, "sizes = 1, 2 mod 8 from 9"),
    ([1, 2] + [n for n in range(7, 81) if n % 8 in (7, 0)], 1, 80, "sizes = 0, 7 mod 8 from 7, and 1..2"),
    ([5, 9, 100], 1, 512, "5, 9, 100"),
])
def test_rules_in_words(sizes, low, high, rule):
    assert size_rule(sizes, low, high) == rule
    assert sizes_of(rule, low, high) == set(sizes)


@settings(max_examples=400, deadline=None)
@given(st.integers(1, 60), st.integers(2, 12), st.data())
def test_a_rule_names_exactly_the_accepted_sizes(span, period, data):
    """Periodic sets (with a few exceptions first) and arbitrary ones: whatever rule is given reads back
    to the same set, unless it says it lists only some runs."""
    low, high = 1, span + period * 3
    if data.draw(st.booleans()):
        residues = data.draw(st.sets(st.integers(0, period - 1), min_size=1))
        start = data.draw(st.integers(low, high))
        extra = data.draw(st.sets(st.integers(low, start), max_size=3))
        accepted = sorted({n for n in range(start, high + 1) if n % period in residues} | extra)
    else:
        accepted = sorted(data.draw(st.sets(st.integers(low, high), max_size=40)))
    rule = size_rule(accepted, low, high)
    if "more runs" not in rule:
        assert sizes_of(rule, low, high) == set(accepted), rule


def test_a_periodic_set_is_found_as_one():
    accepted = [n for n in range(1, 4097) if n % 32 == 0]
    assert size_rule(accepted, 1, 4096) == "multiples of 32 from 32"


torch = pytest.importorskip("torch")
from strategies import stack_layers  # noqa: E402
from torch_oracle import torch_output_size  # noqa: E402


def torch_accepts(layers: list[Layer], n: int) -> tuple[int, ...] | None:
    """Eager torch through the stack, one dimension, one layer at a time; None where it raises."""
    size: tuple[int, ...] | None = (n,)
    for layer in layers:
        size = torch_output_size(layer.op, size, layer.kernel_size, layer.stride, layer.padding, layer.dilation,
                                 layer.output_padding, layer.ceil_mode)
        if size is None or min(size) < 1:
            return None
    return size


@settings(max_examples=300, deadline=None)
@given(stack_layers(dims=1, min_layers=1, max_layers=6))
def test_stack_sizes_equal_eager_torch(layers):
    sweep = stack_sizes(layers, 1, 30, 1)
    for result in sweep.results:
        expected = torch_accepts(layers, result.size)
        assert result.out == expected, (result, expected)
        assert result.ok == (result.node is None)


def test_same_size_keeps_the_size():
    sweep = stack_sizes(parse_layers("3x3p1,max2,3x3p1,max2,tconv2s2,3x3p1,tconv2s2"), 1, 64, 2, same_size=True)
    assert sweep.accepted == list(range(4, 65)) and sweep.wanted == list(range(4, 65, 4))
    assert sweep.same_size_rule == "multiples of 4 from 4"
    assert all(r.out == (r.size, r.size) for r in sweep.results if r.size in sweep.wanted)


def test_the_first_failing_layer_is_named():
    sweep = stack_sizes(parse_layers("5x5,max2,5x5,max2"), 1, 20, 2)
    assert sweep.rule == "16..20"
    first = {r.size: r for r in sweep.results}
    assert first[4].node == "layer 1 (5x5)" and "smaller than the effective kernel 5" in first[4].reason
    assert first[5].node == "layer 2 (max2x2)" and first[12].node == "layer 3 (5x5)"


def test_tf_same_keeps_every_size_through_strided_layers():
    sweep = stack_sizes(parse_layers("7x7s2psame,max3s2psame", 2, None, "tf"), 1, 100, 2)
    assert sweep.rule == "all of 1..100"
    assert [r.out for r in sweep.results[:5]] == [(1, 1), (1, 1), (1, 1), (1, 1), (2, 2)]


@pytest.mark.parametrize("text, message", [
    ("0..5", "expected 1 <= A <= B"), ("9..3", "expected 1 <= A <= B"), ("1-", "expected a range"),
    ("a..b", "expected a range"), ("1..200000", "at most 100,000"),
])
def test_bad_ranges(text, message):
    with pytest.raises(ConvcalcError, match=message):
        parse_range(text)
