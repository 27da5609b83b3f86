"""Exact fields of units that read their input periodically: windows, bitsets and periodic fields.

A layer's output unit u reads a window of its input's units R(u), with R(u + A) = R(u) + B: for a
convolution A = 1 and B = stride, for a transposed convolution A = stride and B = 1, for nearest
upsampling by f A = f and B = 1. A tensor's field per dimension is periodic the same way: unit u sees
the input positions S_{u mod P} + (u div P) * Q. Both compose exactly, and a merge (add, cat) is a
union; the sets are bitsets, so fields thousands of positions wide stay cheap. Used by receptive.py for
stacks with transposed convolutions and by convcalc.graph for whole models (docs/architecture.md, "Fields").
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction

from .gridding import Coverage


@dataclass(frozen=True)
class UnitField:
    """What one output unit sees along one dimension: its span and how many positions in it are holes."""

    first: int
    last: int
    holes: int

    @property
    def receptive_field(self) -> int:
        return self.last - self.first + 1


NO_FIELD = UnitField(0, -1, 0)


@dataclass(frozen=True)
class Window:
    """How one output unit reads its input's units along one dimension: R(r) for r < period, and
    R(u + period) = R(u) + step."""

    period: int
    step: int
    reads: tuple[tuple[int, ...], ...]

    @classmethod
    def convolution(cls, kernel_size: int, stride: int, dilation: int, padding: int) -> Window:
        """Conv and pooling: unit u reads u*s - p + t*d for taps t (padding: the left one)."""
        return cls(1, stride, (tuple(t * dilation - padding for t in range(kernel_size)),))

    @classmethod
    def transposed(cls, kernel_size: int, stride: int, dilation: int, padding: int) -> Window:
        """Transposed conv: unit u reads the v with v*s - p + t*d = u."""
        reads = tuple(tuple(sorted({(r + padding - t * dilation) // stride for t in range(kernel_size)
                                    if (r + padding - t * dilation) % stride == 0}))
                      for r in range(stride))
        return cls(stride, 1, reads)

    @classmethod
    def from_function(cls, period: int, step: int, read: Callable[[int], Sequence[int]]) -> Window:
        """A window given by what units 0 .. period-1 read (e.g. interpolation, adaptive pooling)."""
        return cls(period, step, tuple(tuple(sorted(set(read(r)))) for r in range(period)))

    def of(self, unit: int) -> tuple[int, ...]:
        q, r = divmod(unit, self.period)
        return tuple(v + q * self.step for v in self.reads[r])


class Bits:
    """A finite set of integers as a Python int bitset with an offset: shifts and unions in C."""

    __slots__ = ("low", "bits")

    def __init__(self, low: int = 0, bits: int = 0):
        self.low, self.bits = low, bits

    @classmethod
    def of(cls, values: Iterable[int]) -> Bits:
        values = list(values)
        if not values:
            return cls()
        low = min(values)
        bits = 0
        for v in values:
            bits |= 1 << (v - low)
        return cls(low, bits)

    def shifted(self, by: int) -> Bits:
        return Bits(self.low + by, self.bits)

    def union(self, other: Bits) -> Bits:
        if not other.bits:
            return self
        if not self.bits:
            return other
        low = min(self.low, other.low)
        return Bits(low, (self.bits << (self.low - low)) | (other.bits << (other.low - low)))

    def __bool__(self) -> bool:
        return bool(self.bits)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Bits) and (self.bits == other.bits == 0 or
                                            (self.low, self.bits) == (other.low, other.bits))

    def __hash__(self) -> int:
        return hash((self.low, self.bits) if self.bits else 0)

    @property
    def first(self) -> int:
        return self.low

    @property
    def last(self) -> int:
        return self.low + self.bits.bit_length() - 1

    def coverage(self) -> Coverage:
        if not self.bits:
            return Coverage(0, 0, 0)
        text = format(self.bits, "b")
        return Coverage(len(text), self.bits.bit_count(), max(len(run) for run in text.split("1")))

    def values(self) -> list[int]:
        text = format(self.bits, "b")[::-1]
        return [self.low + i for i, bit in enumerate(text) if bit == "1"]


@dataclass(frozen=True)
class PeriodicField:
    """The input positions each unit of a tensor sees along one dimension: unit u sees
    ``phases[u mod period]`` shifted by ``(u div period) * shift``."""

    period: int
    shift: int
    phases: tuple[Bits, ...]

    @classmethod
    def input(cls) -> PeriodicField:
        """The model's input: unit u sees position u."""
        return cls(1, 1, (Bits(0, 1),))

    def of(self, unit: int) -> Bits:
        q, r = divmod(unit, self.period)
        return self.phases[r].shifted(q * self.shift)

    def through(self, window: Window) -> PeriodicField:
        """The field after a layer that reads this tensor through ``window``."""
        k = self.period // math.gcd(window.step, self.period)
        period = window.period * k
        shift = window.step * self.shift // math.gcd(window.step, self.period)
        phases = []
        for unit in range(period):
            seen = Bits()
            for v in window.of(unit):
                seen = seen.union(self.of(v))
            phases.append(seen)
        return PeriodicField(period, shift, tuple(phases))

    def union(self, other: PeriodicField) -> tuple[PeriodicField, bool]:
        """What a merge's units see: both inputs' fields. False when the inputs' jumps differ (the union
        then holds for the units of one period only)."""
        period = self.period * other.period // math.gcd(self.period, other.period)
        mine, theirs = self.shift * (period // self.period), other.shift * (period // other.period)
        phases = tuple(self.of(u).union(other.of(u)) for u in range(period))
        return PeriodicField(period, mine, phases), mine == theirs

    @property
    def jump(self) -> Fraction:
        return Fraction(self.shift, self.period)

    @property
    def spans(self) -> list[int]:
        return [p.last - p.first + 1 if p else 0 for p in self.phases]

    @property
    def receptive_field(self) -> int:
        """The largest field over the units of one period."""
        return max(self.spans)

    @property
    def receptive_field_min(self) -> int:
        """The smallest field over the units of one period (0 where some unit sees no input position)."""
        return min(self.spans)

    @property
    def varies(self) -> bool:
        return len(set(self.spans)) > 1

    @property
    def start(self) -> Fraction:
        """The average placement: the mean over a period of (centre of unit r) - r * jump (for a stack
        without transposed convolutions or upsampling, the centre of unit 0)."""
        centres = [Fraction(p.first + p.last, 2) - r * self.jump for r, p in enumerate(self.phases) if p]
        return sum(centres, Fraction(0)) / len(centres) if centres else Fraction(0)

    @property
    def coverage(self) -> Coverage:
        """The holes of a largest field."""
        spans = self.spans
        return self.phases[spans.index(max(spans))].coverage()
