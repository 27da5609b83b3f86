"""Dilation gridding: common factor, the HDC recursion, exact tap coverage and repairs.

A stack of dilated convolutions (stride 1) reaches the input offsets
``sum_l t_l * r_l`` for taps ``t_l in [0, k)``: a sum of arithmetic progressions. Where that set
leaves holes inside its span, the stack "grids" (Wang et al. 2018, "Understanding Convolution for
Semantic Segmentation", section 3.2). Neither the common-factor rule nor the HDC criterion alone is
exact (docs/references.md); the coverage computed here is.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import NamedTuple

from .errors import ConvcalcError

MAX_RATES = 10_000
MAX_RATE = 10**6
MAX_KERNEL = 101
MAX_EXACT_OFFSETS = 2**26  # bitsets of 8 MiB: fields beyond are not counted (seconds, then minutes)


class FieldTooWide(ConvcalcError):
    """A field too wide to count its holes exactly."""


class Coverage(NamedTuple):  # NamedTuples, not dataclasses: this module loads with the package
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

    def runs(self, edge: int) -> tuple[list[tuple[int, int]], int, list[tuple[int, int]]]:
        """The first ``edge`` maximal runs [first, last] of offsets in the set, how many lie between,
        and the last ``edge``; no run list is built (a field can hold millions of runs)."""
        if self.cut is None:
            total = _run_count(self.bits)
            if total <= 2 * edge:
                return _low_runs(self.bits, total), 0, []
            return _low_runs(self.bits, edge), total - 2 * edge, _high_runs(self.bits, edge)
        low_total = _run_count(self.bits)
        total = 2 * low_total + 1
        low = _low_runs(self.bits, min(low_total, edge)) + ([(self.cut, self.top - self.cut)] if low_total < edge
                                                            else [])
        mirrored = [(self.top - last, self.top - first) for first, last in reversed(low)]
        if total <= 2 * edge:
            everything = _low_runs(self.bits, low_total)
            return (everything + [(self.cut, self.top - self.cut)] +
                    [(self.top - last, self.top - first) for first, last in reversed(everything)]), 0, []
        return low[:edge], total - 2 * edge, mirrored[-edge:]

    def largest_gap(self) -> int:
        """The longest run of missing offsets (the high end mirrors the low end)."""
        width = self.top + 1 if self.cut is None else self.cut
        return _longest_run(~self.bits & ((1 << width) - 1))


def _run_count(bits: int) -> int:
    """Maximal runs of ones: the ones whose lower neighbour is zero."""
    return (bits & ~(bits << 1)).bit_count()


def _low_runs(bits: int, count: int) -> list[tuple[int, int]]:
    """The lowest ``count`` runs of ones, lowest first."""
    runs = []
    while bits and len(runs) < count:
        start = (bits & -bits).bit_length() - 1
        above = bits >> start
        length = ((above ^ (above + 1)) >> 1).bit_length()  # the trailing ones
        runs.append((start, start + length - 1))
        bits &= ~((1 << (start + length)) - 1)
    return runs


def _high_runs(bits: int, count: int) -> list[tuple[int, int]]:
    """The highest ``count`` runs of ones, lowest first."""
    runs = []
    while bits and len(runs) < count:
        last = bits.bit_length() - 1
        first = (~bits & ((1 << last) - 1)).bit_length()  # just above the highest zero below ``last``
        runs.append((first, last))
        bits &= (1 << first) - 1
    return runs[::-1]


def _longest_run(bits: int) -> int:
    """The longest run of ones, in O(log length) big-int steps: ``runs[k]`` marks where k ones start,
    and ``runs[a + b] = runs[a] & (runs[b] >> a)``."""
    if not bits:
        return 0
    powers = [(1, bits)]
    while True:
        length, marks = powers[-1]
        doubled = marks & (marks >> length)
        if not doubled:
            break
        powers.append((2 * length, doubled))
    length, marks = powers.pop()
    for step, step_marks in reversed(powers):
        longer = marks & (step_marks >> length)
        if longer:
            length, marks = length + step, longer
    return length


def _offsets(terms: Sequence[tuple[int, int]]) -> tuple[int, _SymmetricSet]:
    """The common factor g of the steps and the set of offsets divided by it.

    Equal steps merge into one progression; steps that bring the factor down come first, then the
    rest smallest first, so that the middle of the set turns solid early.
    """
    merged: dict[int, int] = {}
    for step, taps in terms:
        if taps > 1:
            merged[step] = merged.get(step, 1) + taps - 1
    offsets = _SymmetricSet()
    if not merged:
        return 1, offsets
    common = math.gcd(*merged)
    span = sum((taps - 1) * (step // common) for step, taps in merged.items())
    if span > MAX_EXACT_OFFSETS:
        raise FieldTooWide(f"the field spans {common * span + 1:,} positions ({span + 1:,} after its common factor "
                           f"{common}); holes are counted exactly up to {MAX_EXACT_OFFSETS + 1:,}")
    for step in _coverage_order(list(merged), common):
        offsets.add(step // common, merged[step])
    return common, offsets


def covered_runs(terms: Sequence[tuple[int, int]], edge: int = 8) -> tuple[int, list[tuple[int, int]], int,
                                                                             list[tuple[int, int]]]:
    """Runs of reached offsets, in units of the common factor g: (g, first runs, runs left out, last runs).

    Offset ``g * x`` is reached for every x in the runs; only ``edge`` runs are kept at each end.
    """
    common, offsets = _offsets(terms)
    head, hidden, tail = offsets.runs(edge)
    return common, head, hidden, tail


def tap_coverage(terms: Sequence[tuple[int, int]]) -> Coverage:
    """Exact coverage of ``{sum_l t_l * step_l : 0 <= t_l < taps_l}`` for ``terms = [(step, taps), ...]``.

    The set is g times a set whose steps are coprime (g: their common factor), kept as a
    :class:`_SymmetricSet`, so 1,000 layers with rates up to 1,000 take milliseconds.
    """
    common, offsets = _offsets(terms)
    gap = offsets.largest_gap()
    largest_gap = gap if common == 1 else common * (gap + 1) - 1
    return Coverage(common * offsets.top + 1, offsets.covered(), largest_gap)


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


def path_counts(terms: Sequence[tuple[int, int]]) -> list[int]:
    """Entry x: how many choices of one tap per layer reach offset x (the weighting the stack applies):
    the coefficients of ``prod (1 + z^step + ... + z^((taps-1)*step))``, exact.

    The polynomial lives in one integer, each coefficient in a slot of bytes wide enough for the largest
    (at most the product of the taps), so a layer is ``taps`` shifts and additions done by the integer
    arithmetic (Kronecker substitution) rather than a Python loop per offset.
    """
    slot = 8 * ((math.prod(taps for _, taps in terms).bit_length() + 8) // 8)
    poly, length = 1, 1
    for step, taps in terms:
        shift = step * slot
        grown = poly
        for i in range(1, taps):
            grown += poly << (i * shift)
        poly, length = grown, length + (taps - 1) * step
    width = slot // 8
    raw = poly.to_bytes(length * width, "little")
    return [int.from_bytes(raw[i * width:(i + 1) * width], "little") for i in range(length)]


# -- the three verdicts -------------------------------------------------------------------------------

PATH_COUNT_LIMIT = 1024
SUGGESTIONS = 3
SEARCH_LENGTH_LIMIT = 8
SEARCH_BUDGET = 200_000


class Hdc(NamedTuple):
    """Wang et al. 2018, section 3.2: ``M_i`` for i = 1..n (``M[0]`` is M_1) and the goal ``M_2 <= K``.

    The recursion starts from the last rate and never looks at ``r_1``; with a single rate there is
    no ``M_2`` and the criterion says nothing (``ok`` is None).
    """

    M: tuple[int, ...]
    kernel_size: int

    @property
    def M2(self) -> int | None:
        return self.M[1] if len(self.M) > 1 else None

    @property
    def ok(self) -> bool | None:
        return None if self.M2 is None else self.M2 <= self.kernel_size


def hdc(rates: Sequence[int], kernel_size: int) -> Hdc:
    """``M_n = r_n``, ``M_i = max(M_{i+1} - 2 r_i, M_{i+1} - 2 (M_{i+1} - r_i), r_i)``."""
    M = [rates[-1]]
    for r in reversed(rates[:-1]):
        after = M[0]
        M.insert(0, max(after - 2 * r, after - 2 * (after - r), r))
    return Hdc(tuple(M), kernel_size)


class GriddingReport(NamedTuple):
    """Common factor, HDC and exact coverage of stacked k-tap dilated convolutions, and repairs."""

    rates: tuple[int, ...]
    kernel_size: int
    gcd: int
    hdc: Hdc
    coverage: Coverage
    paths: tuple[int, ...] | None
    suggestions: tuple[tuple[int, ...], ...]
    sawtooth: tuple[int, ...] | None
    largest_hole_free_field: int

    @property
    def gridding(self) -> bool:
        """The exact verdict: some offset inside the field is never reached."""
        return self.coverage.holes > 0


def gridding(rates: Sequence[int], kernel_size: int = 3) -> GriddingReport:
    """Analyse a stack of ``kernel_size``-tap convolutions with dilation ``rates`` (stride 1)."""
    rates = tuple(rates)
    check_rates(rates, kernel_size)
    terms = [(r, kernel_size) for r in rates]
    coverage = tap_coverage(terms)
    paths = tuple(path_counts(terms)) if coverage.receptive_field <= PATH_COUNT_LIMIT else None
    suggestions: tuple[tuple[int, ...], ...] = ()
    sawtooth_rates = None
    if coverage.holes:
        suggestions = nearest_hole_free(rates, kernel_size)
        sawtooth_rates = sawtooth(len(rates), kernel_size, sum(rates)) if len(rates) > 3 else None
    return GriddingReport(rates, kernel_size, math.gcd(*rates), hdc(rates, kernel_size), coverage, paths,
                          suggestions, sawtooth_rates, largest_hole_free_field(len(rates), kernel_size))


# -- repairs ------------------------------------------------------------------------------------------
# Sorted ascending, rates c_1 <= ... <= c_n of k-tap layers cover their field without holes exactly
# when c_1 = 1 and every c_{i+1} <= 1 + (k-1) * (c_1 + ... + c_i): the offsets reached so far form
# the interval [0, (k-1) * sum], and a larger step would leave the next offset unreachable (all later
# steps are larger still). The field is 1 + (k-1) * sum(rates), so keeping it means keeping the sum.

def dilated_field(rates: Sequence[int], kernel_size: int) -> int:
    """The receptive field of stacked stride-1 ``kernel_size``-tap layers: ``1 + (k-1) * sum(rates)``."""
    return 1 + (kernel_size - 1) * sum(rates)


def is_hole_free(rates: Sequence[int], kernel_size: int) -> bool:
    """The covering condition above (order does not matter: the offsets are a sum).

    One-tap kernels reach only offset 0, whatever their rates: nothing to miss.
    """
    if kernel_size == 1:
        return True
    total = 0
    for rate in sorted(rates):
        if rate > 1 + (kernel_size - 1) * total:
            return False
        total += rate
    return True


def largest_hole_free_field(length: int, kernel_size: int) -> int:
    """``k ** n``: rates 1, k, k^2, ... cover every offset of the largest field n layers can."""
    if kernel_size == 1:
        return 1
    return kernel_size ** min(length, 4000 // max(1, kernel_size.bit_length()))


def nearest_hole_free(rates: Sequence[int], kernel_size: int, count: int = SUGGESTIONS
                      ) -> tuple[tuple[int, ...], ...]:
    """The hole-free rate lists of the same length, sum (so field) at least as large, closest in L1.

    Compared sorted (the best pairing for L1) and returned sorted ascending, as HDC recommends within
    a group. Branch and bound for up to 8 rates (longer stacks get :func:`sawtooth`), within a budget
    of nodes, so the answer is the closest found (exact on every case in the tests).
    """
    if kernel_size == 1 or len(rates) > SEARCH_LENGTH_LIMIT:
        return ()
    target = sorted(rates)
    need = sum(rates)
    found: list[tuple[int, tuple[int, ...]]] = []
    budget = [SEARCH_BUDGET]

    def least_extra_cost(i: int, total: int) -> int | None:
        """A lower bound on the cost of positions i.. after a prefix summing to ``total``; None if the
        sum cannot be reached at all.

        Each later value is at most m_j (every earlier value as large as allowed): targets above it
        cost their excess, and whatever sum is still missing beyond min(t_j, m_j) costs too.
        """
        below = reachable = most = 0
        running = total
        for t in target[i:]:
            m = 1 + (kernel_size - 1) * running
            below += max(0, t - m)
            reachable += min(t, m)
            most += m
            running += m
        if total + most < need:
            return None
        return below + max(0, need - total - reachable)

    def search(i: int, chosen: list[int], total: int, cost: int) -> None:
        budget[0] -= 1
        bound = least_extra_cost(i, total)
        if budget[0] < 0 or bound is None or (len(found) == count and cost + bound >= found[-1][0]):
            return
        if i == len(target):
            found.append((cost, tuple(chosen)))
            found.sort()
            del found[count:]
            return
        low, high = (chosen[-1] if chosen else 1), 1 + (kernel_size - 1) * total
        low = _least_feasible(low, high, lambda v: least_extra_cost(i + 1, total + v) is not None)
        for value in _outward(target[i], low, high):
            if budget[0] < 0 or (len(found) == count and cost + abs(value - target[i]) >= found[-1][0]):
                break  # out of budget, or every later value is farther still
            search(i + 1, chosen + [value], total + value, cost + abs(value - target[i]))

    search(0, [], 0, 0)
    return tuple(rates for _, rates in found)


def _least_feasible(low: int, high: int, feasible: Callable[[int], bool]) -> int:
    """The least value in [low, high] that is feasible, feasibility growing with the value (else high)."""
    while low < high:
        middle = (low + high) // 2
        if feasible(middle):
            high = middle
        else:
            low = middle + 1
    return low


def _outward(centre: int, low: int, high: int) -> Iterator[int]:
    """The integers of [low, high] by distance from ``centre``, the smaller first on ties."""
    centre = min(max(centre, low), high)
    yield centre
    for distance in range(1, high - low + 1):
        below, above = centre - distance, centre + distance
        if below < low and above > high:
            return
        if below >= low:
            yield below
        if above <= high:
            yield above


def sawtooth(length: int, kernel_size: int, need: int) -> tuple[int, ...] | None:
    """HDC's sawtooth for long stacks: one hole-free group repeated (e.g. 1,2,3,1,2,3,...).

    Groups of three ``1, b, c`` (b <= k, b <= c <= 1 + (k-1)(1+b)): the smallest repetition that keeps
    the field (sum >= ``need``); failing that, longer groups ``1, k, k^2, ...``. None if none does.
    """
    if kernel_size == 1 or length < 3:
        return None
    k = kernel_size
    ones, bs, cs = ((length - offset + 2) // 3 for offset in range(3))  # positions of 1, b and c
    candidates = []
    for b in range(1, k + 1):
        c = max(b, -(-(need - ones - bs * b) // cs))
        if c <= 1 + (k - 1) * (1 + b):
            candidates.append(_repeat((1, b, c), length))
    if candidates:
        return min(candidates, key=lambda rates: (sum(rates), max(rates), rates))
    for size in range(4, min(length, 64) + 1):
        repeated = _repeat(tuple(k**i for i in range(size)), length)
        if sum(repeated) >= need:
            return repeated
    return None


def _repeat(group: tuple[int, ...], length: int) -> tuple[int, ...]:
    return tuple(group[i % len(group)] for i in range(length))


def ordinal(n: int) -> str:
    """``first`` .. ``tenth``, then ``11th``, ``22nd``: a position for a message, never a value."""
    words = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth")
    if n <= len(words):
        return words[n - 1]
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n:,}{suffix}"


def check_rates(rates: Sequence[int], kernel_size: int) -> None:
    """Rates are positive integers (at most 10,000 of them); the kernel has 1 to 101 taps."""
    if not rates:
        raise ConvcalcError("no rates given: expected a list such as 1,2,5")
    if len(rates) > MAX_RATES:
        raise ConvcalcError(f"{len(rates):,} rates given; at most {MAX_RATES:,} are supported")
    for i, rate in enumerate(rates, 1):
        if isinstance(rate, bool) or not isinstance(rate, int) or not 1 <= rate <= MAX_RATE:
            raise ConvcalcError(f"the {ordinal(i)} rate must be an integer from 1 to {MAX_RATE:,}, got {rate!r}")
    if isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or not 1 <= kernel_size <= MAX_KERNEL:
        raise ConvcalcError(f"kernel_size must be an integer from 1 to {MAX_KERNEL}, got {kernel_size!r}")
