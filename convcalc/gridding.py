"""Dilation gridding: common factor, the HDC recursion, exact tap coverage and repairs.

A stack of dilated convolutions (stride 1) reaches the input offsets
``sum_l t_l * r_l`` for taps ``t_l in [0, k)``: a sum of arithmetic progressions. Where that set
leaves holes inside its span, the stack "grids" (Wang et al. 2018, "Understanding Convolution for
Semantic Segmentation", section 3.2). Neither the common-factor rule nor the HDC criterion alone is
exact (REFERENCES.md); the coverage computed here is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import ConvcalcError

MAX_RATES = 10_000
MAX_RATE = 10**6
MAX_KERNEL = 101


@dataclass(frozen=True)
class Coverage:
    """Which offsets inside a receptive field of ``receptive_field`` positions are reached."""

    receptive_field: int
    covered: int
    largest_gap: int

    @property
    def holes(self) -> int:
        return self.receptive_field - self.covered


class _SymmetricSet:
    """A symmetric set of offsets ``0..top``, stored as its low end plus a solid middle.

    Sums of symmetric progressions stay symmetric, and once a middle run ``[cut, top - cut]`` is
    solid it stays solid while progressions with steps no longer than it are added. Only the
    bits below ``cut`` are then kept, so adding a progression costs O(cut) however long the field.
    With ``cut is None`` the set is explicit: ``bits`` holds every offset 0..top.
    """

    def __init__(self) -> None:
        self.top = 0
        self.bits = 1
        self.cut: int | None = None

    def add(self, step: int, taps: int) -> None:
        """The set becomes ``{x + i*step : x in set, 0 <= i < taps}``, in O(log taps) big-int steps."""
        if self.cut is not None and step > self.top - 2 * self.cut + 1:
            self._materialize()
        mask = (1 << self.cut) - 1 if self.cut is not None else -1
        bits, reached = self.bits, 1  # bits = set + [0, reached) * step
        while 2 * reached <= taps:
            bits |= (bits << (reached * step)) & mask
            reached *= 2
        if reached < taps:  # [0, reached) and [taps - reached, taps) together make [0, taps)
            bits |= (bits << ((taps - reached) * step)) & mask
        self.bits = bits
        self.top += (taps - 1) * step
        self._shrink()

    def _shrink(self) -> None:
        """Move ``cut`` just past the highest hole in the lower half."""
        limit = self.top // 2 + 1 if self.cut is None else self.cut
        holes = ~self.bits & ((1 << limit) - 1)
        cut = holes.bit_length()
        if cut <= self.top // 2:
            self.cut = cut
            self.bits &= (1 << cut) - 1

    def _materialize(self) -> None:
        assert self.cut is not None
        low = self.bits
        middle = ((1 << (self.top - 2 * self.cut + 1)) - 1) << self.cut
        high = int(format(low, f"0{self.cut}b")[::-1], 2) << (self.top - self.cut + 1) if self.cut else 0
        self.bits = low | middle | high
        self.cut = None

    def covered(self) -> int:
        if self.cut is None:
            return self.bits.bit_count()
        return 2 * self.bits.bit_count() + self.top - 2 * self.cut + 1

    def largest_gap(self) -> int:
        """The longest run of missing offsets (the high end mirrors the low end)."""
        width = self.top + 1 if self.cut is None else self.cut
        if width == 0:
            return 0
        text = format(self.bits, f"0{width}b")
        return max(len(run) for run in text.split("1"))


def tap_coverage(terms: Sequence[tuple[int, int]]) -> Coverage:
    """Exact coverage of ``{sum_l t_l * step_l : 0 <= t_l < taps_l}`` for ``terms = [(step, taps), ...]``.

    Equal steps merge into one progression; the common factor g of the steps is taken out (the set
    is g times a set with coprime steps); steps that bring the factor down come first, then the rest
    smallest first, so that the middle of the set turns solid early.
    """
    merged: dict[int, int] = {}
    for step, taps in terms:
        if taps > 1:
            merged[step] = merged.get(step, 1) + taps - 1
    if not merged:
        return Coverage(1, 1, 0)
    common = math.gcd(*merged)
    offsets = _SymmetricSet()
    for step in _coverage_order(list(merged), common):
        offsets.add(step // common, merged[step])
    span = common * offsets.top + 1
    gap = offsets.largest_gap()
    largest_gap = gap if common == 1 else common * (gap + 1) - 1
    return Coverage(span, offsets.covered(), largest_gap)


def _coverage_order(steps: list[int], common: int) -> list[int]:
    """The smallest step, then steps that lower the running gcd most until it reaches ``common``, then
    the rest in ascending order."""
    steps.sort()
    order = [steps.pop(0)]
    running = order[0]
    while running != common:
        best = min(steps, key=lambda s: (math.gcd(running, s), s))
        steps.remove(best)
        order.append(best)
        running = math.gcd(running, best)
    return order + steps


def offsets_reached(terms: Sequence[tuple[int, int]]) -> list[int]:
    """Path counts: entry x is the number of tap choices whose offsets sum to x (small fields only)."""
    counts = [1]
    for step, taps in terms:
        grown = [0] * (len(counts) + (taps - 1) * step)
        for i in range(taps):
            for x, c in enumerate(counts):
                grown[x + i * step] += c
        counts = grown
    return counts


def check_rates(rates: Sequence[int], kernel_size: int) -> None:
    """Rates are positive integers (at most 10,000 of them); the kernel has 1 to 101 taps."""
    if not rates:
        raise ConvcalcError("no rates given: expected a list such as 1,2,5")
    if len(rates) > MAX_RATES:
        raise ConvcalcError(f"{len(rates):,} rates given; at most {MAX_RATES:,} are supported")
    for i, rate in enumerate(rates, 1):
        if isinstance(rate, bool) or not isinstance(rate, int) or not 1 <= rate <= MAX_RATE:
            raise ConvcalcError(f"rate {i} must be an integer from 1 to {MAX_RATE:,}, got {rate!r}")
    if isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or not 1 <= kernel_size <= MAX_KERNEL:
        raise ConvcalcError(f"kernel_size must be an integer from 1 to {MAX_KERNEL}, got {kernel_size!r}")
