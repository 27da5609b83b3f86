"""Dilation schedules that reach a receptive field with no holes (``convcalc design``).

A schedule is the list of dilation rates of a stack of stride-1 ``k``-tap convolutions, written in
ascending order. Its field is ``1 + (k-1) * sum(rates)`` and it reaches every offset of that field
exactly when, sorted, ``r_1 = 1`` and every ``r_{i+1} <= 1 + (k-1) * (r_1 + ... + r_i)``
(:func:`convcalc.gridding.is_hole_free`; docs/architecture.md, "Dilation and gridding"). The offsets a stack
reaches are a sum over its layers, so the order of the layers changes nothing: every permutation of a
hole-free schedule is hole-free, and a schedule is one sorted list.

The search is exact. Schedules are ordered by (largest rate, sum of rates, sorted rates
lexicographically). Let ``G(n, m)`` be the largest sum ``n`` hole-free rates capped at ``m`` can have:
the greedy list ``1, min(m, 1+(k-1)*1), ...`` (each next rate as large as allowed) has every prefix
sum as large as any list's, so it reaches ``G``; ``G`` grows with ``m``. So the least largest rate
that can reach a target sum ``T`` is the least ``m`` with ``G(n, m) >= T`` (a binary search), and the
schedules are enumerated largest rate by largest rate, sum by sum, each (rate, sum) pair by a
depth-first search in lexicographic order that prunes every prefix whose remaining positions cannot
reach the sum: at least ``last * free`` more (and enough for the last rate's bound), at most the greedy
completion. HDC's ``M_2 <= k`` (``hdc``) depends on the order; it is evaluated on the ascending list
and filtered at the leaves. A budget of search nodes bounds the work; ``optimal`` says whether the
search finished within it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from .errors import ConvcalcError
from .gridding import MAX_KERNEL, MAX_RATE, FieldTooWide, Hdc, dilated_field, hdc, is_hole_free, sawtooth, tap_coverage

MAX_LAYERS = 256
MAX_TARGET = 10**9
MAX_TOP = 1000
SEARCH_BUDGET = 1_000_000  # search nodes; beyond it the answer is the best found and optimal is False


@dataclass(frozen=True)
class Schedule:
    """A list of rates (ascending) of stacked ``kernel_size``-tap layers, and what it covers."""

    rates: tuple[int, ...]
    kernel_size: int

    @property
    def receptive_field(self) -> int:
        return dilated_field(self.rates, self.kernel_size)

    @property
    def hole_free(self) -> bool:
        return is_hole_free(self.rates, self.kernel_size)

    @property
    def holes(self) -> int | None:
        """Offsets of the field never reached (None where the field is too wide to count)."""
        if self.hole_free:
            return 0
        try:
            return tap_coverage([(r, self.kernel_size) for r in self.rates]).holes
        except FieldTooWide:
            return None

    @property
    def hdc(self) -> Hdc:
        return hdc(self.rates, self.kernel_size)


@dataclass(frozen=True)
class Reference:
    """A well-known schedule, at the answer's number of layers, and why it does or does not qualify."""

    name: str
    schedule: Schedule
    problems: tuple[str, ...]


@dataclass(frozen=True)
class Design:
    """The answer to ``convcalc design``: the best schedules in order, and the well-known ones beside."""

    kernel_size: int
    target_rf: int | None
    layers: int | None  # the number of layers searched (given, or the fewest that reach the target)
    layers_given: bool
    map_size: int | None
    max_rate: int | None
    hdc: bool
    schedules: tuple[Schedule, ...]
    optimal: bool
    largest_field: int | None  # the largest field reachable under the constraints (None if not known)
    sawtooth: tuple[int, ...] | None = None  # without a target: an HDC sawtooth reaching the largest field
    references: tuple[Reference, ...] = field(default=())

    @property
    def found(self) -> bool:
        return bool(self.schedules)


def design(kernel_size: int = 3, target_rf: int | None = None, depth: int | None = None,
           map_size: int | None = None, max_rate: int | None = None, hdc_rule: bool = False,
           top: int = 10, budget: int = SEARCH_BUDGET) -> Design:
    """The schedules of fewest layers (or exactly ``depth``) whose field is at least ``target_rf``,
    best first; without ``target_rf``, those reaching the largest field ``depth`` layers can cover.

    Every rate is at most ``max_rate`` and, with a ``map_size`` M, below M (a rate >= M leaves only
    the centre tap on the map: DeepLabv3, section 3.3); ``hdc_rule`` also asks for HDC's M_2 <= k.
    """
    layers = depth
    _check(kernel_size, target_rf, layers, map_size, max_rate, top)
    cap = min(max_rate or MAX_RATE, map_size - 1 if map_size else MAX_RATE)
    search = _Search(kernel_size, cap, hdc_rule, budget)
    if target_rf is None:
        assert layers is not None
        best = search.largest_sum(layers)
        found = search.schedules(layers, best, best, top) if best is not None else []
        largest = 1 + (kernel_size - 1) * best if best is not None else None
        saw = sawtooth(layers, kernel_size, best) if best is not None and layers >= 3 else None
        return _result(kernel_size, None, layers, True, map_size, max_rate, hdc_rule, found, search, largest,
                       saw if saw is not None and dilated_field(saw, kernel_size) == largest and max(saw) <= cap
                       else None)
    need = -(-(target_rf - 1) // (kernel_size - 1))  # the least sum whose field reaches the target
    count = layers if layers is not None else search.fewest_layers(need)
    if count is None:  # not within MAX_LAYERS
        largest = None if hdc_rule else 1 + (kernel_size - 1) * search.greedy_sum(MAX_LAYERS, cap)
        return _result(kernel_size, target_rf, None, False, map_size, max_rate, hdc_rule, [], search, largest)
    found = search.schedules(count, need, None, top)
    largest = None
    if not found:
        best = search.largest_sum(count)
        largest = None if best is None else 1 + (kernel_size - 1) * best
    return _result(kernel_size, target_rf, count, layers is not None, map_size, max_rate, hdc_rule, found, search,
                   largest)


def _result(kernel_size: int, target_rf: int | None, layers: int | None, given: bool, map_size: int | None,
            max_rate: int | None, hdc_rule: bool, found: list[tuple[int, ...]], search: _Search,
            largest: int | None, saw: tuple[int, ...] | None = None) -> Design:
    schedules = tuple(Schedule(rates, kernel_size) for rates in found)
    refs = references(layers or (len(found[0]) if found else 3), kernel_size, map_size, max_rate, hdc_rule,
                      target_rf)
    return Design(kernel_size, target_rf, layers, given, map_size, max_rate, hdc_rule, schedules,
                  not search.exhausted, largest, saw, refs)


def _check(kernel_size: int, target_rf: int | None, layers: int | None, map_size: int | None,
           max_rate: int | None, top: int) -> None:
    def integer(name: str, value: int | None, low: int, high: int) -> None:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high):
            raise ConvcalcError(f"{{{name}}} must be an integer from {low:,} to {high:,}, got {value!r}",
                                parameters=(name,))

    integer("kernel_size", kernel_size, 2, MAX_KERNEL)
    integer("target_rf", target_rf, 1, MAX_TARGET)
    integer("depth", layers, 1, MAX_LAYERS)
    integer("map_size", map_size, 2, MAX_RATE + 1)
    integer("max_rate", max_rate, 1, MAX_RATE)
    integer("top", top, 1, MAX_TOP)
    if target_rf is None and layers is None:
        raise ConvcalcError("give {target_rf} (the field to reach), {depth} (the number of layers), or both",
                            parameters=("target_rf", "depth"))


class _Search:
    """The exact enumeration of hole-free schedules (the module docstring says how and why it is exact)."""

    def __init__(self, kernel_size: int, cap: int, hdc_rule: bool, budget: int):
        self.k, self.cap, self.hdc_rule = kernel_size, cap, hdc_rule
        self.budget = budget
        self.exhausted = False
        # HDC's M_i >= M_{i+1} / 3 (M_i >= |M_{i+1} - 2 r_i| and M_i >= r_i), so M_2 <= k needs
        # r_i <= M_i <= k * 3^(i-2): a necessary bound per position that prunes the HDC search.
        self.caps = [1, 1] + [min(cap, kernel_size * 3 ** min(i - 2, 40)) if hdc_rule else cap
                              for i in range(2, MAX_LAYERS + 2)]

    def greedy_sum(self, n: int, cap: int, total: int = 0, last: int = 1, position: int = 1) -> int:
        """The largest sum of ``n`` more rates from ``position`` (1-based) on, each in [last, cap], within
        the covering bound (and HDC's per-position bound); -1 when no rate fits."""
        for i in range(position, position + n):
            rate = min(cap, self.caps[i], 1 + (self.k - 1) * total)
            if rate < last:
                return -1  # no valid continuation
            total += rate
            last = rate
        return total

    def fewest_layers(self, need: int) -> int | None:
        for n in range(1, MAX_LAYERS + 1):
            if self.greedy_sum(n, self.cap) >= need and (not self.hdc_rule or self.schedules(n, need, None, 1)):
                return n
        return None

    def largest_sum(self, n: int) -> int | None:
        """The largest sum of a valid ``n``-rate schedule: the greedy one's; with HDC, a branch and bound
        over rates tried largest first, bounded by the greedy completion (None if none, or out of budget)."""
        best = self.greedy_sum(n, self.cap)
        if not self.hdc_rule or n < 2:
            return best if best >= 0 else None
        found: list[int] = []
        chosen = [1]

        def search(total: int) -> None:
            self.budget -= 1
            if self.budget < 0:
                self.exhausted = True
                return
            position = len(chosen) + 1
            if position > n:
                if hdc(chosen, self.k).ok and (not found or total > found[0]):
                    found[:] = [total]
                return
            for rate in range(min(self.cap, self.caps[position], 1 + (self.k - 1) * total), chosen[-1] - 1, -1):
                bound = self.greedy_sum(n - position, self.cap, total + rate, rate, position + 1)
                if bound < 0 or (found and bound <= found[0]):
                    break  # the bound only falls with the rate
                chosen.append(rate)
                search(total + rate)
                chosen.pop()
                if self.exhausted:
                    return

        search(1)
        return found[0] if found and not self.exhausted else None

    def schedules(self, n: int, low: int, high: int | None, top: int) -> list[tuple[int, ...]]:
        """The first ``top`` schedules of ``n`` rates with low <= sum (<= high), in the design order."""
        found: list[tuple[int, ...]] = []
        first = self._least_largest_rate(n, low)
        if first is None:
            return found
        ceiling = min(self.cap, 1 + (self.k - 1) * max(self.greedy_sum(n - 1, self.cap), 0)) if n > 1 else 1
        for largest in range(first, ceiling + 1):
            most = self.greedy_sum(n, largest)
            for total in range(low, (most if high is None else min(high, most)) + 1):
                for rates in self._exact(n, largest, total):
                    found.append(rates)
                    if len(found) == top:
                        return found
                if self.exhausted:
                    return found
        return found

    def _least_largest_rate(self, n: int, need: int) -> int | None:
        if self.greedy_sum(n, self.cap) < need:
            return None
        low, high = 1, self.cap
        while low < high:
            middle = (low + high) // 2
            if self.greedy_sum(n, middle) >= need:
                high = middle
            else:
                low = middle + 1
        return low

    def _exact(self, n: int, largest: int, total: int) -> Iterator[tuple[int, ...]]:
        """Hole-free ascending lists of ``n`` rates ending in ``largest`` and summing to ``total``, in
        lexicographic order (HDC-filtered when asked).

        Each next rate ranges from the least that still lets the greedy completion reach the sum (the
        greedy sum grows with the rate, so a binary search finds it) to the most that leaves room for
        the remaining rates, each at least as large: no branch in that range is a dead end by bound.
        """
        if n == 1:
            if largest == 1 == total:
                yield (1,)
            return
        k = self.k
        before_last = total - largest  # the sum of the rates before the largest
        if before_last < 1 or largest > min(1 + (k - 1) * before_last, self.caps[n]):
            return
        chosen = [1]

        def reachable(before: int, last: int, free: int, position: int) -> bool:
            return self.greedy_sum(free, largest, before, last, position) >= before_last

        def extend(before: int, free: int) -> Iterator[tuple[int, ...]]:
            self.budget -= 1
            if self.budget < 0:
                self.exhausted = True
                return
            if free == 0:
                rates = (*chosen, largest)
                if before == before_last and (not self.hdc_rule or hdc(rates, k).ok):
                    yield rates
                return
            position = len(chosen) + 1
            top = min(largest, self.caps[position], 1 + (k - 1) * before, (before_last - before) // free)
            low, high = chosen[-1], top
            while low < high:
                middle = (low + high) // 2
                if reachable(before + middle, middle, free - 1, position + 1):
                    high = middle
                else:
                    low = middle + 1
            high = top
            for rate in range(low, high + 1):
                chosen.append(rate)
                yield from extend(before + rate, free - 1)
                chosen.pop()
                if self.exhausted:
                    return

        yield from extend(1, n - 2)


def references(layers: int, kernel_size: int, map_size: int | None, max_rate: int | None, hdc_rule: bool,
               target_rf: int | None) -> tuple[Reference, ...]:
    """The schedules people reach for, at ``layers`` layers, judged by the same rules."""
    def repeat(group: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(group[i % len(group)] for i in range(layers))

    yu_koltun = (1, 1) + tuple(2 ** i for i in range(1, max(layers - 1, 1)))
    known = [("HDC groups 1,2,5 (Wang et al. 2018)", repeat((1, 2, 5))),
             ("Yu & Koltun 2016 context module", yu_koltun[:layers]),
             ("powers of two", tuple(2 ** i for i in range(layers)))]
    if map_size is not None:
        known.append(("DeepLabv3 ASPP rates 6,12,18 (as a stack)", (6, 12, 18)))
    found = []
    for name, rates in known:
        schedule = Schedule(tuple(rates), kernel_size)  # as published: HDC's M_i depends on the order
        problems = []
        if not schedule.hole_free:
            problems.append("has holes")
        if max_rate is not None and max(rates) > max_rate:
            problems.append(f"a rate above {max_rate}")
        if map_size is not None and max(rates) >= map_size:
            problems.append(f"degenerate on a {map_size} map (rate >= {map_size})")
        if hdc_rule and schedule.hdc.ok is False:
            problems.append("fails HDC")
        if target_rf is not None and schedule.receptive_field < target_rf:
            problems.append(f"field below {target_rf:,}")
        found.append(Reference(name, schedule, tuple(problems)))
    return tuple(found)
