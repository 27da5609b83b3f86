"""The effective receptive field (Luo et al., NeurIPS 2016; docs/erf.md): how much each input position
contributes to one output unit, not only whether it can.

For a stack of layers whose every tap weighs 1 (pooling included) and no nonlinearity, the contribution
of an input offset to an output unit far from the borders is the number of paths from that offset to
the unit: an exact integer per dimension, and a 2-d or 3-d map is the product of its dimensions'
profiles. For convolutions and pools (no transposed convolution) the profile is the polynomial product
``prod_l sum_{t<k_l} x^(t * d_l * J_l)``, ``J_l`` the product of the strides before layer ``l``
(:func:`convcalc.gridding.path_counts`), and its variance is exactly ``sum_l J_l^2 d_l^2 (k_l^2 - 1) / 12``
(a sum of independent uniform tap choices). Transposed convolutions make the profile depend on the
output unit; the unit with the widest field is taken, as ``rf`` shows the widest.

The statistics (:func:`shortest_window`, :func:`centred_squares`) work on any non-negative numbers, so
that a measured map (graph/erf.py) goes through the same code. Pure Python: no torch, no numpy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from .errors import ConvcalcError
from .gridding import path_counts
from .layer import Layer
from .spec import parse_layers

MASSES = (Fraction(1, 5), Fraction(3, 10), Fraction(1, 2), Fraction(19, 20), Fraction(99, 100))
AREA_THRESHOLDS = (0.2, 0.3, 0.5, 0.99)  # RepLKNet's high-contribution area ratio
MAX_FIELD = 2**20  # positions per dimension of a stack's profile
MAX_WORK = 4 * 10**9  # bytes the exact product moves (the growing field x coefficient bytes x taps, per layer)
MAX_PERIOD = 256  # output units tried for a stack with transposed convolutions
MAX_UNIT_WORK = 2 * 10**7  # (positions x taps) for the unit-by-unit count of such stacks


@dataclass(frozen=True)
class Profile:
    """One dimension's contribution per input offset, first to last position of the theoretical field."""

    counts: tuple[int, ...]
    formula_variance: Fraction | None = None  # sum_l J_l^2 d_l^2 (k_l^2 - 1)/12, for conv and pool stacks

    @property
    def receptive_field(self) -> int:
        return len(self.counts)

    @property
    def total(self) -> int:
        return sum(self.counts)

    @property
    def variance(self) -> Fraction:
        """The variance of the offset, each offset weighted by its contribution (exact)."""
        total = self.total
        mean = Fraction(sum(i * c for i, c in enumerate(self.counts)), total)
        return Fraction(sum(i * i * c for i, c in enumerate(self.counts)), total) - mean * mean

    @property
    def std(self) -> float:
        return math.sqrt(self.variance)

    @property
    def holes(self) -> int:
        return sum(1 for c in self.counts if c == 0)

    def mass_window(self, mass: Fraction) -> int:
        window = shortest_window(self.counts, mass)
        assert window is not None  # a whole profile always holds its mass
        return window


@dataclass(frozen=True)
class StackErf:
    """The effective field of a stack: one profile per spatial dimension."""

    layers: tuple[Layer, ...]
    profiles: tuple[Profile, ...]

    @property
    def dims(self) -> int:
        return len(self.profiles)

    @property
    def receptive_field(self) -> tuple[int, ...]:
        return tuple(p.receptive_field for p in self.profiles)


def stack_erf(layers: str | Sequence[Layer], dims: int | None = None) -> StackErf:
    """The exact contribution profiles of a stack (a layer spec or Layers), every tap weighing 1."""
    stack = tuple(parse_layers(layers, dims) if isinstance(layers, str) else layers)
    if not stack:
        raise ConvcalcError("no layers given: expected a stack such as 3x3*4")
    for layer in stack:
        layer.check()
    n = stack[0].dims
    profiles: list[Profile] = []
    for d in range(n):  # a dimension the same as one before it has its profile already
        along = [layer.along(d) for layer in stack]
        same = next((profiles[e] for e in range(d) if [layer.along(e) for layer in stack] == along), None)
        profiles.append(same or _profile(along, d))
    return StackErf(stack, tuple(profiles))


def _profile(stack: list[Layer], dim: int) -> Profile:
    if any(layer.op == "conv_transpose" for layer in stack):
        return Profile(_transposed_profile(stack, dim))
    terms, jump, variance = [], 1, Fraction(0)
    for layer in stack:
        k, s, d = layer.kernel_size[0], layer.stride[0], layer.dilation[0]
        terms.append((d * jump, k))
        variance += Fraction((d * jump) ** 2 * (k * k - 1), 12)
        jump *= s
    field = 1 + sum(step * (taps - 1) for step, taps in terms)
    _bounded(field, dim)
    taps = math.prod(t for _, t in terms)
    size, length, work = (taps.bit_length() + 8) // 8, 1, 0
    for step, t in terms:
        length += step * (t - 1)
        work += length * size * t
    if work > MAX_WORK:
        raise ConvcalcError(f"dim {dim + 1}: the exact profile of {len(stack):,} layers over a field of {field:,} "
                            f"positions, with coefficients up to {taps.bit_length():,} bits, is beyond what "
                            f"answers in seconds here: use fewer layers")
    return Profile(tuple(path_counts(terms)), variance)


def _bounded(field: int, dim: int) -> None:
    if field > MAX_FIELD:
        raise ConvcalcError(f"dim {dim + 1}: the receptive field spans {field:,} positions; profiles go up to "
                            f"{MAX_FIELD:,} here")


def _transposed_profile(stack: list[Layer], dim: int) -> tuple[int, ...]:
    """Paths from each input position to one output unit, layer by layer from the output, in unbounded
    coordinates. A transposed convolution's output ``o`` reads input ``i`` through tap ``t`` where
    ``i*s - p + t*d = o``; which taps apply depends on ``o``, so each unit of one period of the output is
    counted and the one with the widest field (then the most paths) is kept."""
    period = math.prod(layer.stride[0] for layer in stack if layer.op == "conv_transpose")
    if period > MAX_PERIOD:
        raise ConvcalcError(f"dim {dim + 1}: transposed convolutions repeat their fields every {period:,} output "
                            f"units; up to {MAX_PERIOD} are counted here")
    best: tuple[int, ...] = ()
    for unit in range(period):
        counts = _counts_to(stack, unit, dim)
        if (len(counts), sum(counts)) > (len(best), sum(best)):
            best = counts
    return best


def _counts_to(stack: list[Layer], unit: int, dim: int) -> tuple[int, ...]:
    first, counts, work = unit, [1], 0
    for layer in reversed(stack):
        k, s, d, p = layer.kernel_size[0], layer.stride[0], layer.dilation[0], layer.pads[0][0]
        work += len(counts) * k
        if work > MAX_UNIT_WORK:
            raise ConvcalcError(f"dim {dim + 1}: counting paths unit by unit through transposed convolutions is "
                                f"beyond {MAX_UNIT_WORK:,} steps for this stack: use fewer layers")
        reached: dict[int, int] = {}
        for offset, count in enumerate(counts):
            if not count:
                continue
            o = first + offset
            for t in range(k):
                if layer.op == "conv_transpose":
                    i, rest = divmod(o + p - t * d, s)
                    if rest:
                        continue
                else:
                    i = o * s - p + t * d
                reached[i] = reached.get(i, 0) + count
        if not reached:  # an output position no input reaches (a transposed conv leaving gaps)
            return ()
        first = min(reached)
        counts = [0] * (max(reached) - first + 1)
        for i, count in reached.items():
            counts[i - first] = count
        _bounded(len(counts), dim)
    return tuple(counts)


def shortest_window(values: Sequence[float] | Sequence[int], mass: Fraction | float) -> int | None:
    """The length of the shortest run of consecutive values holding at least ``mass`` of their total
    (two pointers over non-negative values; exact for integers and fractions); None for an empty total."""
    total = sum(values)
    if total <= 0:
        return None
    need = total * mass
    best, start, running = len(values), 0, 0
    for end, value in enumerate(values):
        running += value
        while start <= end and running - values[start] >= need:
            running -= values[start]
            start += 1
        if running >= need:
            best = min(best, end - start + 1)
    return best


def centred_squares(grid: Sequence[Sequence[float]], thresholds: Sequence[float], log_scale: bool = True
                    ) -> dict[float, tuple[int, float] | None]:
    """RepLKNet's high-contribution area ratio (erf/analyze_erf.py, ``get_rectangle``), per threshold t:
    with the map as ``log10(1 + m)`` scaled to a maximum of 1 (``log_scale``; else the raw map), the
    smallest square centred on ``(H//2, W//2)`` of side 3, 5, ..., ``2*(H//2) - 1`` whose sum exceeds t of
    the total; its side, and its area over ``H*W``. None where no such square does (or the map is zero)."""
    rows = [[math.log10(1 + v) for v in row] for row in grid] if log_scale else [list(row) for row in grid]
    top = max((v for row in rows for v in row), default=0)
    if top <= 0:
        return {t: None for t in thresholds}
    if log_scale:
        rows = [[v / top for v in row] for row in rows]
    h, w = len(rows), len(rows[0])
    prefix = [[0.0] * (w + 1) for _ in range(h + 1)]
    for y in range(h):
        running, above, here = 0.0, prefix[y], prefix[y + 1]
        for x in range(w):
            running += rows[y][x]
            here[x + 1] = above[x + 1] + running
    total = prefix[h][w]
    cy, cx = h // 2, w // 2
    found: dict[float, tuple[int, float] | None] = {t: None for t in thresholds}
    for i in range(1, h // 2):
        y0, y1, x0, x1 = cy - i, cy + i + 1, cx - i, cx + i + 1
        if x0 < 0 or x1 > w:
            break
        share = (prefix[y1][x1] - prefix[y0][x1] - prefix[y1][x0] + prefix[y0][x0]) / total
        for t in thresholds:
            if found[t] is None and share > t:
                side = 2 * i + 1
                found[t] = (side, side / h * side / w)
        if all(v is not None for v in found.values()):
            break
    return found
